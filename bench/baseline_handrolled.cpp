// The cancel-latency protocol v1 (see bench/run) written the way
// a competent Asio user would without graceful: the baselines graceful is
// compared with in the same run.
//
//   baseline_handrolled --tasks N --max-concurrent C [--cleanup sync|async]
//                       [--variant workers|naive]
//
// workers (the strong baseline): min(N, C) worker coroutines pull the next
//   task index from a shared counter; one cancellation_signal per worker; a
//   queued task costs nothing.
// naive: one co_spawn per task up front, a hand-rolled semaphore of waiting
//   timers, one cancellation_signal per task.
// floor: not an implementation of the protocol but its floor: the same event
//   loop (one thread, a signal_set, a timer armed for an hour) with no task at
//   all; it prints READY at once and takes joined_ns in the signal_set's
//   handler (DONE started=0 cleaned=0). Its join latency is what noticing the
//   signal costs (the kernel waking an idle process, Asio's signal pipe):
//   every program pays it before it can cancel anything.
// Both: one thread, a signal_set that emits every signal, error codes (no
// exceptions) on the shutdown path.
#include "protocol_args.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <list>
#include <memory>
#include <vector>

namespace asio = boost::asio;

namespace {

struct run_state {
  explicit run_state(const bench::protocol_args& a)
      : args(a), ready_at(std::min(a.tasks, a.max_concurrent)), signals(ctx, SIGINT, SIGTERM) {}

  bench::protocol_args args;
  std::size_t ready_at;
  asio::io_context ctx{1};
  asio::signal_set signals;
  std::size_t started = 0, cleaned = 0, joined = 0, to_join = 0;
  int signal_number = 0;
  long long joined_ns = 0;

  void count_start() {
    if (++started == ready_at) bench::print_ready();
  }

  // The task's cleanup, then the join count.
  asio::awaitable<void> cleanup() {
    if (args.async_cleanup) co_await asio::post(ctx, asio::as_tuple(asio::use_awaitable));
    ++cleaned;
  }

  asio::awaitable<void> wait_an_hour() {
    asio::steady_timer t(ctx, std::chrono::hours(1));
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  }

  // On the first signal: set `stopping`, emit every signal, and run to the end.
  void stop_on_signal_then_run(bool& stopping, std::vector<asio::cancellation_signal>& cancel) {
    signals.async_wait([&](boost::system::error_code ec, int signo) {
      if (ec) return;
      signal_number = signo;
      stopping = true;
      for (auto& c : cancel) c.emit(asio::cancellation_type::terminal);
    });
    ctx.run();
  }

  void on_joined() {
    if (++joined == to_join) {
      joined_ns = bench::monotonic_ns();
      signals.cancel();
    }
  }
};

// --- workers -------------------------------------------------------------

void run_workers(run_state& s) {
  std::size_t next = 0;
  bool stopping = false;
  std::size_t workers = s.ready_at;
  std::vector<asio::cancellation_signal> cancel(workers);
  s.to_join = workers;
  for (std::size_t w = 0; w < workers; ++w) {
    asio::co_spawn(
        s.ctx,
        [&]() -> asio::awaitable<void> {
          co_await asio::this_coro::throw_if_cancelled(false);
          while (!stopping && next < s.args.tasks) {
            ++next;
            s.count_start();
            co_await s.wait_an_hour();
            co_await asio::this_coro::reset_cancellation_state();  // the cleanup is not cancelled
            co_await s.cleanup();
          }
        },
        asio::bind_cancellation_slot(cancel[w].slot(), [&](std::exception_ptr) { s.on_joined(); }));
  }
  s.stop_on_signal_then_run(stopping, cancel);
}

// --- naive ---------------------------------------------------------------

struct timer_semaphore {
  struct waiter {
    asio::steady_timer timer;
    bool granted = false;
  };
  std::size_t count;
  std::list<waiter*> waiters;

  void release() {
    if (waiters.empty()) {
      ++count;
      return;
    }
    waiter* w = waiters.front();
    waiters.pop_front();
    w->granted = true;
    w->timer.cancel();
  }
};

void run_naive(run_state& s) {
  bool stopping = false;
  timer_semaphore sem{s.args.max_concurrent, {}};
  std::vector<asio::cancellation_signal> cancel(s.args.tasks);
  s.to_join = s.args.tasks;
  auto task = [&]() -> asio::awaitable<void> {
    co_await asio::this_coro::throw_if_cancelled(false);
    if (sem.count > 0) {
      --sem.count;
    } else {
      timer_semaphore::waiter w{asio::steady_timer(s.ctx, asio::steady_timer::time_point::max())};
      auto it = sem.waiters.insert(sem.waiters.end(), &w);
      co_await w.timer.async_wait(asio::as_tuple(asio::use_awaitable));
      if (!w.granted) {  // cancelled while waiting: never started
        sem.waiters.erase(it);
        co_return;
      }
    }
    if (stopping) {
      sem.release();
      co_return;
    }
    s.count_start();
    co_await s.wait_an_hour();
    co_await asio::this_coro::reset_cancellation_state();
    co_await s.cleanup();
    sem.release();
  };
  for (std::size_t i = 0; i < s.args.tasks; ++i) {
    asio::co_spawn(s.ctx, task,
                   asio::bind_cancellation_slot(cancel[i].slot(),
                                                [&](std::exception_ptr) { s.on_joined(); }));
  }
  s.stop_on_signal_then_run(stopping, cancel);
}

// --- floor ---------------------------------------------------------------

void run_floor(run_state& s) {
  asio::steady_timer timer(s.ctx, std::chrono::hours(1));
  timer.async_wait([](boost::system::error_code) {});
  bench::print_ready();
  s.signals.async_wait([&](boost::system::error_code ec, int signo) {
    if (ec) return;
    s.joined_ns = bench::monotonic_ns();
    s.signal_number = signo;
    timer.cancel();
  });
  s.ctx.run();
}

}  // namespace

int main(int argc, char** argv) {
  bench::protocol_args a = bench::parse_protocol_args(argc, argv);
  if (a.variant.empty()) a.variant = "workers";
  if (a.variant != "workers" && a.variant != "naive" && a.variant != "floor") {
    bench::usage(argv[0], "--variant is workers, naive or floor");
  }
  auto s = std::make_unique<run_state>(a);
  if (s->ready_at == 0 && a.variant != "floor") bench::print_ready();
  if (a.variant == "workers") {
    run_workers(*s);
  } else if (a.variant == "naive") {
    run_naive(*s);
  } else {
    run_floor(*s);
  }
  bench::print_done(s->started, s->cleaned, s->joined_ns);
  ::_exit(s->signal_number != 0 ? 128 + s->signal_number : 0);
}
