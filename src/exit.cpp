#include <graceful/exit.hpp>
#include <graceful/task_registry.hpp>

#include <pthread.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>

namespace graceful {

namespace {

[[noreturn]] void exit_with(stop_cause cause, int signal_number, int code) {
  // A closed stdout must not turn the exit status into "killed by SIGPIPE".
  std::signal(SIGPIPE, SIG_IGN);
  // std::cout and std::cerr write through stdio (unless the program turned
  // sync_with_stdio off). Not flushed here by name: that takes <iostream>,
  // whose static initialiser would construct the standard streams and the
  // classic locale in every program that links this file, used or not.
  std::fflush(nullptr);
  if (cause == stop_cause::signal && signal_number > 0) {
    int n = signal_number;
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
  std::exit(code);
}

}  // namespace

void exit_process(const run_report& report) {
  exit_with(report.cause(), report.signal_number(), report.exit_code());
}

void exit_process(const registry_snapshot& snapshot) {
  exit_with(snapshot.cause, snapshot.signal_number, snapshot.exit_code());
}

}  // namespace graceful
