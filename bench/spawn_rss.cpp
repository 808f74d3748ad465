// Runs a program as the child of this small process and writes the child's
// peak resident set (KiB) to a file: what bench/run reports as peak RSS.
//
//   spawn_rss OUT_FILE PROGRAM [ARGS...]
//
// Why not the driver's own wait4: a child's peak RSS counts the memory it
// had before its exec, and a child of the Python driver starts as a copy of
// the driver (about 15 MiB), more than a small program ever uses. A child of
// this process starts from a megabyte or two.
// SIGINT and SIGTERM are passed on to the child; this process then ends as
// the child did (dies by the same signal, or exits with its status).
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>

namespace {

volatile pid_t child = 0;

extern "C" void pass_on(int signo) {
  if (child > 0) ::kill(child, signo);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: spawn_rss OUT_FILE PROGRAM [ARGS...]\n");
    return 2;
  }
  struct sigaction sa {};
  sa.sa_handler = pass_on;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);  // before the fork: a signal is never lost
  ::sigaction(SIGTERM, &sa, nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("spawn_rss: fork");
    return 2;
  }
  if (pid == 0) {
    ::execvp(argv[2], argv + 2);  // the exec resets the handlers
    std::perror("spawn_rss: exec");
    ::_exit(127);
  }
  child = pid;
  int status = 0;
  rusage usage{};
  while (::wait4(pid, &status, 0, &usage) < 0) {
    if (errno != EINTR) {
      std::perror("spawn_rss: wait4");
      return 2;
    }
  }
  if (std::FILE* out = std::fopen(argv[1], "w")) {
    std::fprintf(out, "%ld\n", usage.ru_maxrss);
    std::fclose(out);
  }
  if (WIFSIGNALED(status)) {
    ::signal(WTERMSIG(status), SIG_DFL);
    ::raise(WTERMSIG(status));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}
