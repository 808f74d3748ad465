#pragma once

// Tasks that record what happened to them, shared by the run_tasks and
// task_registry tests.

#include <graceful/shield.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

namespace graceful_test {

namespace asio = boost::asio;
using task = std::function<asio::awaitable<void>()>;

// What the tasks of one run did; atomics so that multi-threaded runs can share it.
struct probe {
  std::atomic<int> invoked{0}, started{0}, finished{0}, cleaned{0}, in_flight{0}, peak{0};
  std::vector<std::size_t> start_order;  // single-threaded runs only
  std::function<void()> on_start;        // called after each start
  // >= 0: every sleeper started from now on waits this long instead (ms).
  std::atomic<long long> sleep_override_ms{-1};

  void start(std::size_t i, bool record_order) {
    ++started;
    int now = ++in_flight;
    int p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {
    }
    if (record_order) start_order.push_back(i);
    if (on_start) on_start();
  }
};

// Counts its cleanup when it goes out of scope, however the task ends.
struct cleanup_guard {
  probe& p;
  ~cleanup_guard() {
    --p.in_flight;
    ++p.cleaned;
  }
};

// A task that waits `d` on a timer (one hour: it only ends when cancelled).
inline task sleeper(probe& p, std::size_t i, std::chrono::milliseconds d, bool record_order = true) {
  return [&p, i, d, record_order]() -> asio::awaitable<void> {
    ++p.invoked;
    p.start(i, record_order);
    cleanup_guard g{p};
    long long o = p.sleep_override_ms.load();
    asio::steady_timer t(co_await asio::this_coro::executor,
                         o >= 0 ? std::chrono::milliseconds(o) : d);
    co_await t.async_wait(asio::use_awaitable);
    ++p.finished;
  };
}

inline std::vector<task> sleepers(probe& p, std::size_t n, std::chrono::milliseconds d) {
  std::vector<task> v;
  for (std::size_t i = 0; i < n; ++i) v.push_back(sleeper(p, i, d));
  return v;
}

// The completion of one operation that completes with (error_code, Result):
// how many times, with what, and when.
template <class Result>
struct completion {
  int calls = 0;
  boost::system::error_code ec;
  Result value;
  std::chrono::steady_clock::time_point at{};
  auto handler() {
    return [this](boost::system::error_code e, Result r) {
      ++calls;
      ec = e;
      value = std::move(r);
      at = std::chrono::steady_clock::now();
    };
  }
};

// A cleanup that waits on `gate` until the test opens it (cancels it). A
// named coroutine, not a lambda: GCC 12 destroys the closure of a lambda
// that is called and co_awaited in one expression twice.
inline asio::awaitable<void> wait_on(asio::steady_timer& gate, std::shared_ptr<int> state) {
  co_await gate.async_wait(asio::as_tuple(asio::use_awaitable));
  ++*state;  // the task's state is still there when it ends late
}

// Waits an hour; returns how the wait ended (its cancellation's exception).
inline asio::awaitable<std::exception_ptr> wait_an_hour() {
  try {
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::hours(1));
    co_await t.async_wait(asio::use_awaitable);
  } catch (...) {
    co_return std::current_exception();
  }
  co_return nullptr;
}

// A task that waits an hour, then (cancelled) runs a shielded cleanup that
// hangs on `gate`.
inline task hangs_in_cleanup(probe& p, std::size_t i, asio::steady_timer& gate,
                             std::shared_ptr<int> state) {
  return [&p, i, &gate, state]() -> asio::awaitable<void> {
    p.start(i, false);
    cleanup_guard g{p};
    std::exception_ptr e = co_await wait_an_hour();
    co_await graceful::shield(wait_on(gate, state));
    if (e) std::rethrow_exception(e);
  };
}

// A cleanup that takes `d`, cancelled or not (awaited shielded).
inline asio::awaitable<void> cleanup_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
}

// A task that waits an hour, then (cancelled) runs a shielded cleanup of
// `after`.
inline task cleans_up_for(probe& p, std::size_t i, std::chrono::milliseconds after) {
  return [&p, i, after]() -> asio::awaitable<void> {
    p.start(i, false);
    cleanup_guard g{p};
    std::exception_ptr e = co_await wait_an_hour();
    co_await graceful::shield(cleanup_for(after));
    if (e) std::rethrow_exception(e);
  };
}

}  // namespace graceful_test
