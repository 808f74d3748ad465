// A drain a person can watch: N jobs of random length, at most C at once.
// On Ctrl+C (or SIGTERM) one live line shows the shutdown as it goes: the
// phase, the jobs still cleaning up, those that never started, those done,
// the time since the stop and the jobs the drain waits for. On a terminal
// the line is rewritten in place; otherwise each report is a line of its own.
// Then the run's report, and the process dies by the signal.
//
//   drain_progress [--tasks N (12)] [--max-concurrent C (4)] [--seed S]
//                  [--grace-ms MS (0)] [--drain-timeout-ms MS (10000)]
#include <graceful/graceful.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <iostream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <sys/ioctl.h>
#include <unistd.h>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

struct settings {
  std::size_t tasks = 12;
  std::size_t max_concurrent = 4;
  unsigned seed = std::random_device{}();
  std::chrono::milliseconds grace{0};
  std::chrono::milliseconds drain_timeout{10000};
};

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

// Works for `work`, then cleans up for `cleanup` whatever happened
// (shielded: a Ctrl+C does not cut it short).
asio::awaitable<void> job(std::chrono::milliseconds work, std::chrono::milliseconds cleanup) {
  std::exception_ptr e;
  try {
    co_await sleep_for(work);
  } catch (...) {
    e = std::current_exception();
  }
  co_await graceful::shield(sleep_for(cleanup));
  if (e) std::rethrow_exception(e);
}

std::string seconds(graceful::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", std::chrono::duration<double>(d).count());
  return buf;
}

// The live line of one progress report.
std::string line_of(const graceful::run_progress& p, const std::vector<std::string>& names) {
  std::ostringstream s;
  s << '[' << p.phase << "] ";
  const char* active = p.phase == graceful::run_phase::grace ? " finishing, " : " cleaning up, ";
  s << seconds(p.since_stop) << " since the stop: " << p.running << active << p.queued + p.not_started
    << " never started, " << p.ended << " done";
  if (!p.blocking.empty()) {
    s << "; waiting for";
    for (std::size_t k = 0; k < p.blocking.size() && k < 4; ++k) s << (k ? ", " : " ") << names[p.blocking[k]];
    if (p.blocking.size() > 4) s << ", ...";
  }
  return s.str();
}

// The terminal's width, so that the live line never wraps (a carriage
// return would then rewrite only its last row).
std::size_t terminal_columns() {
  winsize w{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &w) == 0 && w.ws_col > 0) return w.ws_col;
  return 80;
}

settings parse(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument("missing value after " + std::string(arg));
    const unsigned long v = std::stoul(argv[++i]);
    if (arg == "--tasks") {
      s.tasks = v;
    } else if (arg == "--max-concurrent") {
      s.max_concurrent = v;
    } else if (arg == "--seed") {
      s.seed = static_cast<unsigned>(v);
    } else if (arg == "--grace-ms") {
      s.grace = std::chrono::milliseconds(v);
    } else if (arg == "--drain-timeout-ms") {
      s.drain_timeout = std::chrono::milliseconds(v);
    } else {
      throw std::invalid_argument("unknown option " + std::string(arg));
    }
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  try {
    s = parse(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr,
                 "drain_progress: %s\nusage: drain_progress [--tasks N] [--max-concurrent C] [--seed S] "
                 "[--grace-ms MS] [--drain-timeout-ms MS]\n",
                 e.what());
    return 2;
  }
  std::mt19937 rng(s.seed);
  std::uniform_int_distribution<int> work_ms(2000, 20000), cleanup_ms(500, 4000);
  std::vector<std::function<asio::awaitable<void>()>> tasks;
  std::vector<std::string> names;
  for (std::size_t i = 0; i < s.tasks; ++i) {
    const std::chrono::milliseconds work(work_ms(rng)), cleanup(cleanup_ms(rng));
    tasks.push_back([work, cleanup] { return job(work, cleanup); });
    names.push_back("job-" + std::to_string(i) + " (cleanup " + seconds(cleanup) + ")");
  }

  const bool terminal = ::isatty(STDOUT_FILENO) == 1;
  graceful::run_options o;
  o.grace = s.grace;
  o.drain_timeout = s.drain_timeout;
  o.progress_interval = 100ms;
  o.task_name = [&names](std::size_t i) { return names[i]; };
  o.on_progress = [&names, terminal, last = graceful::run_progress{}](const graceful::run_progress& p) mutable {
    if (p.phase == graceful::run_phase::running) return;  // the start: nothing to watch yet
    if (terminal) {
      // Rewritten in place: carriage return, erase the line.
      std::string line = line_of(p, names);
      if (const std::size_t width = terminal_columns() - 1; line.size() > width) {
        line.resize(width > 3 ? width - 3 : width);
        line += "...";
      }
      std::cout << "\r\033[K" << line;
      if (p.phase == graceful::run_phase::done) std::cout << '\n';
    } else if (p.phase != last.phase || p.running != last.running || p.ended != last.ended) {
      std::cout << line_of(p, names) << '\n';  // a log: a line when something changed
    }
    std::cout << std::flush;
    last = p;
  };
  std::cout << s.tasks << " jobs, " << s.max_concurrent << " at a time (seed " << s.seed
            << "). Press Ctrl+C to stop them." << std::endl;
  graceful::run_report report = graceful::run_tasks(std::move(tasks), s.max_concurrent, o);
  std::cout << report << std::flush;
  graceful::exit_process(report);
}
