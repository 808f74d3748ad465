#include <graceful/exit.hpp>

#include <pthread.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>

namespace graceful {

void exit_process(const run_report& report) {
  // A closed stdout must not turn the exit status into "killed by SIGPIPE".
  std::signal(SIGPIPE, SIG_IGN);
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  if (report.cause() == stop_cause::signal && report.signal_number() > 0) {
    int n = report.signal_number();
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(n, &dfl, nullptr);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, n);
    ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    ::raise(n);  // delivered before raise returns when it kills
    ::_exit(128 + n);
  }
  std::exit(report.exit_code());
}

}  // namespace graceful
