// The seed's program in C++: N tasks, at most C at once. Each prints
// "Task started.", sleeps 2 s, prints "Task finished.", and in a cleanup that
// must survive Ctrl+C (awaited, shielded) sleeps 1 s and prints "Cleaned up.".
//
//   seed_run_tasks --n-tasks N --max-concurrent C
//       [--task-ms 2000] [--cleanup-ms 1000] [--force-exit-after K] [--trace-cleanup]
//       [--grace-ms MS] [--drain-timeout-ms MS] [--deadline-ms MS] [--task-timeout-ms MS]
//       [--hang-cleanup] [--cleanup-step-ms MS] [--progress-ms MS]
//
// Press Ctrl+C: every started task cleans up, no new task starts, and the
// process dies by SIGINT, as a shell expects. With --grace-ms, the running
// tasks may finish for that long first (a second Ctrl+C cancels them at
// once); with --drain-timeout-ms, cleanups still running that long after the
// cancel are abandoned (named on stderr). --hang-cleanup: every cleanup
// hangs (waits forever), to see the drain budget at work. With any of the
// time options, each phase of the shutdown is printed as it begins
// ("Shutdown: grace.", "Shutdown: cancelling.", "Shutdown: done.").
// --cleanup-step-ms: task i's cleanup takes i steps more, so that cleanups
// end one after another; --progress-ms: the progress interval. Under
// systemd ($NOTIFY_SOCKET) the run tells it how the drain goes.
#include <graceful/graceful.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace asio = boost::asio;

namespace {

struct settings {
  std::size_t n_tasks = 0;
  std::size_t max_concurrent = 0;
  std::chrono::milliseconds task{2000};
  std::chrono::milliseconds cleanup{1000};
  unsigned force_exit_after = 0;
  bool trace_cleanup = false;
  bool hang_cleanup = false;
  std::chrono::milliseconds grace{0};
  std::chrono::milliseconds drain_timeout{0};
  std::chrono::milliseconds deadline{0};
  std::chrono::milliseconds task_timeout{0};
  std::chrono::milliseconds cleanup_step{0};
  std::chrono::milliseconds progress{0};
};

// One line, flushed at once: the output may be a pipe that a test reads.
void say(const char* line) {
  std::puts(line);
  std::fflush(stdout);
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

asio::awaitable<void> cleanup(const settings& s, std::size_t i) {
  if (s.trace_cleanup) say("Cleanup started.");
  const auto step = s.cleanup_step * static_cast<std::chrono::milliseconds::rep>(i);
  co_await sleep_for(s.hang_cleanup ? std::chrono::hours(24 * 365) : s.cleanup + step);
  say("Cleaned up.");
}

asio::awaitable<void> task(const settings& s, std::size_t i) {
  say("Task started.");
  std::exception_ptr e;
  try {
    co_await sleep_for(s.task);
    say("Task finished.");
  } catch (...) {
    e = std::current_exception();
  }
  co_await graceful::shield(cleanup(s, i));  // runs to its end, Ctrl+C or not
  if (e) std::rethrow_exception(e);
}

std::size_t count_arg(std::string_view name, const char* value) {
  std::size_t used = 0;
  unsigned long long n = std::stoull(value, &used);
  if (used != std::string_view(value).size()) throw std::invalid_argument(std::string(name));
  return static_cast<std::size_t>(n);
}

settings parse(int argc, char** argv) {
  settings s;
  bool have_n = false, have_c = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--trace-cleanup") {
      s.trace_cleanup = true;
      continue;
    }
    if (arg == "--hang-cleanup") {
      s.hang_cleanup = true;
      continue;
    }
    if (i + 1 >= argc) throw std::invalid_argument("missing value after " + std::string(arg));
    const char* value = argv[++i];
    if (arg == "--n-tasks") {
      s.n_tasks = count_arg(arg, value);
      have_n = true;
    } else if (arg == "--max-concurrent") {
      s.max_concurrent = count_arg(arg, value);
      have_c = true;
    } else if (arg == "--task-ms") {
      s.task = std::chrono::milliseconds(count_arg(arg, value));
    } else if (arg == "--cleanup-ms") {
      s.cleanup = std::chrono::milliseconds(count_arg(arg, value));
    } else if (arg == "--force-exit-after") {
      s.force_exit_after = static_cast<unsigned>(count_arg(arg, value));
    } else if (arg == "--grace-ms") {
      s.grace = std::chrono::milliseconds(count_arg(arg, value));
    } else if (arg == "--drain-timeout-ms") {
      s.drain_timeout = std::chrono::milliseconds(count_arg(arg, value));
    } else if (arg == "--deadline-ms") {
      s.deadline = std::chrono::milliseconds(count_arg(arg, value));
    } else if (arg == "--task-timeout-ms") {
      s.task_timeout = std::chrono::milliseconds(count_arg(arg, value));
    } else if (arg == "--cleanup-step-ms") {
      s.cleanup_step = std::chrono::milliseconds(count_arg(arg, value));
    } else if (arg == "--progress-ms") {
      s.progress = std::chrono::milliseconds(count_arg(arg, value));
    } else {
      throw std::invalid_argument("unknown option " + std::string(arg));
    }
  }
  if (!have_n || !have_c) throw std::invalid_argument("--n-tasks and --max-concurrent are required");
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  try {
    s = parse(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr,
                 "seed_run_tasks: %s\nusage: seed_run_tasks --n-tasks N --max-concurrent C "
                 "[--task-ms MS] [--cleanup-ms MS] [--force-exit-after K] [--trace-cleanup]\n"
                 "       [--grace-ms MS] [--drain-timeout-ms MS] [--deadline-ms MS] "
                 "[--task-timeout-ms MS] [--hang-cleanup]\n"
                 "       [--cleanup-step-ms MS] [--progress-ms MS]\n",
                 e.what());
    return 2;
  }
  std::vector<std::function<asio::awaitable<void>()>> tasks;
  tasks.reserve(s.n_tasks);
  for (std::size_t i = 0; i < s.n_tasks; ++i) tasks.push_back([&s, i] { return task(s, i); });
  graceful::run_options options;
  options.signals.force_exit_after = s.force_exit_after;
  options.grace = s.grace;
  options.drain_timeout = s.drain_timeout;
  options.deadline = s.deadline;
  options.task_timeout = s.task_timeout;
  if (s.progress.count() > 0) options.progress_interval = s.progress;
  if (s.grace.count() > 0 || s.drain_timeout.count() > 0 || s.deadline.count() > 0) {
    options.on_progress = [last = graceful::run_phase::running](const graceful::run_progress& p) mutable {
      if (p.phase == last) return;  // a phase change, not the periodic report
      last = p.phase;
      static constexpr const char* lines[] = {"Shutdown: running.", "Shutdown: grace.",
                                              "Shutdown: cancelling.", "Shutdown: done."};
      say(lines[static_cast<int>(p.phase)]);
    };
  }
  try {
    graceful::run_report report = graceful::run_tasks(std::move(tasks), s.max_concurrent, options);
    graceful::exit_process(report);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "seed_run_tasks: %s\n", e.what());
    return 2;
  }
}
