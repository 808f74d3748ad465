#pragma once

// Tasks that record what happened to them, shared by the run_tasks and
// task_registry tests.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
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

}  // namespace graceful_test
