// A child process for the real-signal tests of what the seed program does not
// show:
//   signal_child twice           two run_tasks in a row, each interrupted: the
//                                second run's signals must work as the first's did
//   signal_child restored        after run_tasks returns, SIGINT has its default
//                                action again (the child dies by it)
//   signal_child cleanup_throws  three tasks; task 1's shielded cleanup throws
//   signal_child stubborn        three tasks; task 2 ignores the cancel and works
//                                500 ms more (shielded) before it finishes
//   signal_child epipe           cleanups write to stdout, which the test closed:
//                                they report on stderr too
//   signal_child pid1            prints its pid, then two tasks (run it as PID 1)
//   signal_child concurrent      two run_tasks at once, on two threads
//   signal_child async_stop_on   an async run and a registry on a context of the
//                                program's own, stopped by one shutdown_signals
//   signal_child stop_on_after_the_signal
//                                a run started after the first signal came
//   signal_child fork            a run, then a fork: the child's run waits for
//                                SIGTERM while the parent's waits for SIGCHLD
//   signal_child blocked_cleanup force_exit_after = 3; the task's cleanup
//                                blocks the only thread for 30 s
//   signal_child blocked_twice   two such runs at once, on two threads, with
//                                force_exit_after = 3 and 4
//   signal_child bounded         64 shutdown_signals with force_exit_after at once:
//                                a 65th is refused until one of them closes
//   signal_child outlived        a plain asio::signal_set holds SIGINT through a
//                                run with force_exit_after = 3: afterwards the
//                                set's action is back and the set gets SIGINT
//   signal_child lazy_binding    a run over a task source whose tasks wait, then
//                                await a shielded cleanup, all by error code;
//                                getpgrp() once they all run and getppid() after
//                                the run returns mark the dynamic linker's trace
//                                (LD_DEBUG=bindings) for the test
#include <graceful/graceful.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>
#include <string_view>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using task = std::function<asio::awaitable<void>()>;

namespace {

void say(const char* line) {
  std::puts(line);
  std::fflush(stdout);
}

std::vector<task> sleepers(std::size_t n, std::chrono::milliseconds d) {
  return std::vector<task>(n, [d]() -> asio::awaitable<void> {
    say("Task started.");
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(asio::use_awaitable);
    say("Task finished.");
  });
}

void print_report(const char* name, const graceful::run_report& r, std::FILE* out = stdout) {
  std::fprintf(out, "%s: cause=%d signal=%d cancelled_running=%zu completed=%zu failed=%zu\n", name,
               static_cast<int>(r.cause()), r.signal_number(),
               r.count(graceful::task_outcome::cancelled_running),
               r.count(graceful::task_outcome::completed), r.count(graceful::task_outcome::failed));
  std::fflush(out);
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

// As sleep_for, but a cancel ends it without an exception.
asio::awaitable<void> sleep_for_quietly(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
}

enum class quirk { none, cleanup_throws, stubborn, epipe };

asio::awaitable<void> cleanup(quirk q) {
  co_await sleep_for(50ms);
  if (q == quirk::cleanup_throws) throw std::runtime_error("cleanup failed");
  if (q == quirk::epipe) {
    for (int i = 0; i < 100; ++i) std::puts("Cleaned up.");  // EPIPE: stdout is closed
    std::fflush(stdout);
    std::fputs("cleaned\n", stderr);
    std::fflush(stderr);
  } else {
    say("Cleaned up.");
  }
}

// Waits until cancelled, then runs a shielded cleanup of 50 ms, with `q`.
asio::awaitable<void> cancelled_task(quirk q) {
  say("Task started.");
  std::exception_ptr e;
  try {
    co_await sleep_for(1h);
    say("Task finished.");
  } catch (...) {
    e = std::current_exception();
  }
  if (q == quirk::stubborn) {
    say("Stubborn: ignoring the cancel.");
    co_await graceful::shield(sleep_for(500ms));  // goes on working, cancel or not
    say("Stubborn task finished.");
    co_return;
  }
  co_await graceful::shield(cleanup(q));
  if (e) std::rethrow_exception(e);
}

std::vector<task> cancelled_tasks(std::size_t n, std::size_t odd_one, quirk q, quirk others = quirk::none) {
  std::vector<task> v;
  for (std::size_t i = 0; i < n; ++i) {
    v.push_back([q = i == odd_one ? q : others] { return cancelled_task(q); });
  }
  return v;
}

// Waits until cancelled, then blocks its thread, as a cleanup that does a
// synchronous flush to a stuck peer would: only a signal handled in signal
// context can still end the process.
asio::awaitable<void> blocking_cleanup_task() {
  say("Task started.");
  try {
    co_await sleep_for(1h);
  } catch (...) {
    say("Blocking the thread.");
    std::this_thread::sleep_for(30s);
    say("Unblocked.");
    throw;
  }
}

graceful::run_report blocked_run(unsigned force_exit_after) {
  graceful::run_options o;
  o.signals.force_exit_after = force_exit_after;
  return graceful::run_tasks(std::vector<task>{blocking_cleanup_task}, 1, o);
}

// A program with an io_context of its own (a server): an async run and a
// registry stopped by one shutdown_signals; it then exits by the signal.
int async_stop_on() {
  asio::io_context ctx;
  graceful::shutdown_signals signals(ctx.get_executor());
  graceful::run_options options;
  options.stop_on = &signals;
  graceful::run_report report;
  graceful::task_registry registry(ctx.get_executor());
  registry.stop_on(signals);
  for (int i = 0; i < 2; ++i) registry.spawn([] { return cancelled_task(quirk::none); });
  graceful::async_run_tasks(ctx.get_executor(), cancelled_tasks(5, 0, quirk::none), 2, options,
                            [&](boost::system::error_code, graceful::run_report r) {
                              report = std::move(r);
                              registry.async_join([&](boost::system::error_code) {
                                signals.close();  // nothing left to stop: let the context run out
                              });
                            });
  ctx.run();
  print_report("run", report);
  auto snap = registry.snapshot();
  std::printf("registry: cause=%d signal=%d cancelled_running=%zu closed=%d\n",
              static_cast<int>(snap.cause), snap.signal_number, snap.cancelled_running,
              static_cast<int>(snap.closed));
  std::fflush(stdout);
  graceful::exit_process(report);
}

// The first signal comes before the run starts: the run, started from the
// listener's own wait handler, stops at once and starts nothing.
int stop_on_after_the_signal() {
  asio::io_context ctx;
  graceful::shutdown_signals signals(ctx.get_executor());
  graceful::run_options options;
  options.stop_on = &signals;
  graceful::run_report report;
  int invoked = 0;
  signals.async_wait([&](boost::system::error_code, int) {
    std::vector<task> tasks(4, [&invoked]() -> asio::awaitable<void> {
      ++invoked;
      co_return;
    });
    graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 2, options,
                              [&](boost::system::error_code, graceful::run_report r) {
                                report = std::move(r);
                                signals.close();
                              });
  });
  // Said from inside the loop, right before it blocks: clang 14's TSan runtime
  // can lose a signal that arrives between a print before run() and the
  // loop's first wait (a plain asio::signal_set program shows it too).
  asio::post(ctx, [] { say("listening."); });
  ctx.run();
  std::printf("run: cause=%d signal=%d invoked=%d not_started=%zu\n", static_cast<int>(report.cause()),
              report.signal_number(), invoked, report.count(graceful::task_outcome::not_started));
  std::fflush(stdout);
  graceful::exit_process(report);
}

// What the run does from the signal to its return, with no exception and no
// output of the child's own in between: the functions the dynamic linker
// binds between the two markers are the shutdown path's.
int lazy_binding() {
  say("starting.");
  std::size_t left = 3;
  std::size_t started = 0;
  auto next = [&]() -> std::optional<task> {
    if (left == 0) return std::nullopt;
    --left;
    return task([&started]() -> asio::awaitable<void> {
      if (++started == 3) {
        // After the run's first fill has ended (it was on the way here).
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
        (void)::getpgrp();  // the first marker
        say("running.");
      }
      asio::steady_timer t(co_await asio::this_coro::executor, 1h);
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      co_await graceful::shield(sleep_for_quietly(1ms));
    });
  };
  graceful::run_report r = graceful::run_tasks(next, 3);
  (void)::getppid();  // the second marker
  print_report("run", r);
  graceful::exit_process(r);
}

}  // namespace

int main(int argc, char** argv) {
  std::string_view mode = argc > 1 ? argv[1] : "";
  if (mode == "async_stop_on") return async_stop_on();
  if (mode == "lazy_binding") return lazy_binding();
  if (mode == "stop_on_after_the_signal") return stop_on_after_the_signal();
  if (mode == "twice") {
    auto first = graceful::run_tasks(sleepers(2, 1h), 2);
    print_report("first", first);
    auto second = graceful::run_tasks(sleepers(2, 1h), 2);
    print_report("second", second);
    graceful::exit_process(second);
  }
  if (mode == "restored") {
    auto r = graceful::run_tasks(sleepers(1, 1ms), 1);
    print_report("run", r);
    say("returned.");
    ::pause();  // SIGINT's default action ends the process here
    say("SIGINT was caught after run_tasks returned");
    return 3;
  }
  if (mode == "cleanup_throws" || mode == "stubborn") {
    auto r = graceful::run_tasks(
        cancelled_tasks(3, mode == "stubborn" ? 2 : 1,
                        mode == "stubborn" ? quirk::stubborn : quirk::cleanup_throws),
        3);
    print_report("report", r);
    graceful::exit_process(r);
  }
  if (mode == "epipe") {
    auto r = graceful::run_tasks(cancelled_tasks(2, 0, quirk::epipe, quirk::epipe), 2);
    print_report("report", r);  // to the closed stdout: lost, harmlessly
    print_report("report", r, stderr);
    graceful::exit_process(r);
  }
  if (mode == "pid1") {
    std::printf("pid=%d\n", static_cast<int>(::getpid()));
    std::fflush(stdout);
    auto r = graceful::run_tasks(cancelled_tasks(2, 0, quirk::none), 2);
    print_report("report", r);
    graceful::exit_process(r);
  }
  if (mode == "concurrent") {
    graceful::run_report first;
    std::thread other([&first] { first = graceful::run_tasks(cancelled_tasks(2, 0, quirk::none), 2); });
    auto second = graceful::run_tasks(cancelled_tasks(2, 0, quirk::none), 2);
    other.join();
    print_report("first", first);
    print_report("second", second);
    graceful::exit_process(first);
  }
  if (mode == "fork") {
    // The first run leaves this thread's io_context kept for the next one;
    // the fork must not hand it (its epoll instance, Asio's signal pipe) to
    // the child, or the child's signal could end up in the parent.
    auto warm = graceful::run_tasks(sleepers(1, 1ms), 1);
    print_report("warm", warm);
    pid_t child = ::fork();
    if (child < 0) return 4;
    if (child == 0) {
      std::printf("child pid=%d\n", static_cast<int>(::getpid()));
      std::fflush(stdout);
      auto r = graceful::run_tasks(cancelled_tasks(1, 0, quirk::none), 1);
      print_report("child", r);
      graceful::exit_process(r);
    }
    graceful::run_options until_child_exits;
    until_child_exits.signals.signals = {SIGCHLD};
    auto r = graceful::run_tasks(sleepers(1, 1h), 1, until_child_exits);
    print_report("parent", r);
    int status = 0;
    if (::waitpid(child, &status, 0) != child) return 5;
    std::printf("child status: exited=%d signaled=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    std::fflush(stdout);
    return 0;
  }
  if (mode == "blocked_cleanup") {
    auto r = blocked_run(3);
    print_report("report", r);
    return 0;  // not reached: the third SIGINT ends the process
  }
  if (mode == "blocked_twice") {
    std::thread other([] { blocked_run(4); });
    blocked_run(3);
    other.join();
    return 0;  // not reached
  }
  if (mode == "bounded") {
    asio::io_context ctx;
    graceful::signal_policy p;
    p.force_exit_after = 3;
    std::vector<std::unique_ptr<graceful::shutdown_signals>> held;
    for (int i = 0; i < 64; ++i) {
      held.push_back(std::make_unique<graceful::shutdown_signals>(ctx.get_executor(), p));
    }
    try {
      graceful::shutdown_signals one_too_many(ctx.get_executor(), p);
      say("65th accepted");
    } catch (const std::length_error& e) {
      std::printf("65th refused: %s\n", e.what());
    }
    held[10]->close();
    graceful::shutdown_signals after_close(ctx.get_executor(), p);
    say("accepted after a close");
    after_close.close();
    held.clear();
    struct sigaction now {};
    ::sigaction(SIGINT, nullptr, &now);
    std::printf("SIGINT default again: %d\n", now.sa_handler == SIG_DFL ? 1 : 0);
    say("ready.");
    ::pause();  // the default action ends the process here
    return 3;
  }
  if (mode == "outlived") {
    asio::io_context plain_ctx;
    asio::signal_set plain(plain_ctx, SIGINT);
    struct sigaction before {};
    ::sigaction(SIGINT, nullptr, &before);
    graceful::run_options o;
    o.signals.force_exit_after = 3;
    auto r = graceful::run_tasks(sleepers(1, 1ms), 1, o);
    print_report("run", r);
    struct sigaction after {};
    ::sigaction(SIGINT, nullptr, &after);
    std::printf("action restored: %d\n",
                before.sa_handler == after.sa_handler && before.sa_flags == after.sa_flags ? 1 : 0);
    say("returned.");
    int got = 0;
    plain.async_wait([&got](boost::system::error_code ec, int signo) { got = ec ? -1 : signo; });
    plain_ctx.run();
    std::printf("plain set got %d\n", got);
    return 0;
  }
  std::fprintf(stderr,
               "usage: signal_child twice|restored|cleanup_throws|stubborn|epipe|pid1|concurrent|fork|"
               "blocked_cleanup|blocked_twice|bounded|outlived\n");
  return 2;
}
