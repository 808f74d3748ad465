// Command line and output of the cancel-latency protocol v1 (see
// bench/run), shared by graceful's program and the
// hand-written baselines so that they differ only in how they run the tasks.
#pragma once

#include <time.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace bench {

struct protocol_args {
  std::size_t tasks = 0;
  std::size_t max_concurrent = 0;
  bool async_cleanup = false;
  std::size_t threads = 1;
  std::string variant;  // baselines only
  bool lazy_source = true;  // graceful only: --source lazy (default: the tasks pulled from a source)
                            // or --source vector (a vector of N tasks)
};

[[noreturn]] inline void usage(const char* prog, const char* problem) {
  std::fprintf(stderr,
               "%s: %s\nusage: %s --tasks N --max-concurrent C [--cleanup sync|async] "
               "[--threads T] [--variant V] [--source vector|lazy]\n",
               prog, problem, prog);
  std::exit(2);
}

inline protocol_args parse_protocol_args(int argc, char** argv) {
  protocol_args a;
  auto count = [&](const char* v) {
    char* end = nullptr;
    unsigned long long n = std::strtoull(v, &end, 10);
    if (end == v || *end != '\0') usage(argv[0], "not a number");
    return static_cast<std::size_t>(n);
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (i + 1 >= argc) usage(argv[0], "missing value");
    const char* v = argv[++i];
    if (arg == "--tasks") {
      a.tasks = count(v);
    } else if (arg == "--max-concurrent") {
      a.max_concurrent = count(v);
    } else if (arg == "--threads") {
      a.threads = count(v);
    } else if (arg == "--cleanup") {
      if (std::strcmp(v, "sync") == 0) {
        a.async_cleanup = false;
      } else if (std::strcmp(v, "async") == 0) {
        a.async_cleanup = true;
      } else {
        usage(argv[0], "--cleanup is sync or async");
      }
    } else if (arg == "--source") {
      if (std::strcmp(v, "vector") == 0) {
        a.lazy_source = false;
      } else if (std::strcmp(v, "lazy") == 0) {
        a.lazy_source = true;
      } else {
        usage(argv[0], "--source is vector or lazy");
      }
    } else if (arg == "--variant") {
      a.variant = v;
    } else {
      usage(argv[0], "unknown option");
    }
  }
  if (a.max_concurrent == 0) usage(argv[0], "--max-concurrent must be at least 1");
  if (a.threads == 0) usage(argv[0], "--threads must be at least 1");
  return a;
}

inline long long monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

inline void print_ready() {
  std::fputs("READY\n", stdout);
  std::fflush(stdout);
}

inline void print_done(std::size_t started, std::size_t cleaned, long long joined_ns) {
  std::printf("DONE started=%zu cleaned=%zu joined_ns=%lld\n", started, cleaned, joined_ns);
  std::fflush(stdout);
}

}  // namespace bench
