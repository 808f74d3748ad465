// The cancel-latency protocol v1 (see bench/run) written with
// graceful's public API, the way a user would: run_tasks owns the io_context
// and the SIGINT/SIGTERM handling, a task is a small callable, the async
// cleanup goes through graceful::shield, and exit_process ends the process as
// the protocol (and a shell) expects.
//
//   cancel_latency --tasks N --max-concurrent C [--cleanup sync|async] [--threads T]
//                  [--source vector|lazy]
//
// --source lazy (the default): the tasks come from a source (a callable that
// makes the next one when a slot is free), as a user with N = 1,000,000
// would write it: memory O(C). --source vector: a vector of N tasks, the
// seed's run_tasks(tasks, max_concurrent), memory O(N).
#include "protocol_args.hpp"

#include <graceful/graceful.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>
#include <vector>

namespace asio = boost::asio;

namespace {

struct counters {
  std::atomic<std::size_t> started{0};
  std::atomic<std::size_t> cleaned{0};
  std::size_t ready_at = 0;

  void count_start() {
    if (started.fetch_add(1, std::memory_order_relaxed) + 1 == ready_at) bench::print_ready();
  }
};

// Counts the task as cleaned however it ends.
struct cleanup_guard {
  counters* c;
  ~cleanup_guard() { c->cleaned.fetch_add(1, std::memory_order_relaxed); }
};

asio::awaitable<void> async_cleanup(counters* c) {
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
  c->cleaned.fetch_add(1, std::memory_order_relaxed);
}

// A task is a pointer (8 bytes per queued task), one type per cleanup mode so
// that each coroutine frame holds only what its mode needs. It learns of its
// cancellation by error code (as_tuple): no exception on the shutdown path.

// --cleanup sync: the cleanup is RAII.
struct sync_cleanup_task {
  counters* c;

  asio::awaitable<void> operator()() const {
    c->count_start();
    cleanup_guard g{c};
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::hours(1));
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  }
};

// --cleanup async: an awaited cleanup, shielded from the cancellation.
struct async_cleanup_task {
  counters* c;

  asio::awaitable<void> operator()() const {
    c->count_start();
    {
      asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::hours(1));
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    co_await graceful::shield(async_cleanup(c));
  }
};

template <class Task>
graceful::run_report run(counters& c, const bench::protocol_args& a) {
  graceful::run_options options;
  options.threads = a.threads;
  if (a.lazy_source) {
    auto next = [&c, left = a.tasks]() mutable -> std::optional<Task> {
      if (left == 0) return std::nullopt;
      --left;
      return Task{&c};
    };
    return graceful::run_tasks(next, a.max_concurrent, options);
  }
  return graceful::run_tasks(std::vector<Task>(a.tasks, Task{&c}), a.max_concurrent, options);
}

}  // namespace

int main(int argc, char** argv) {
  bench::protocol_args a = bench::parse_protocol_args(argc, argv);
  counters c;
  c.ready_at = std::min(a.tasks, a.max_concurrent);
  if (c.ready_at == 0) bench::print_ready();

  graceful::run_report report = a.async_cleanup ? run<async_cleanup_task>(c, a)
                                                : run<sync_cleanup_task>(c, a);
  long long joined = bench::monotonic_ns();
  bench::print_done(c.started.load(), c.cleaned.load(), joined);
  graceful::exit_process(report);  // 130/143 or death by the signal; 0 without one
}
