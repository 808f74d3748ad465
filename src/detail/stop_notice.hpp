#pragma once

#include "waiter_list.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/error.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <utility>

namespace graceful::detail {

// The stop request of a run or a registry as its tasks see it
// (graceful::this_task): a flag, and the waits of async_wait_stop. Thread-safe.
struct stop_notice : std::enable_shared_from_this<stop_notice> {
  explicit stop_notice(asio::any_io_executor executor) : ex(std::move(executor)) {}

  // The stop was requested: every wait completes (posted), and later ones at once.
  void request() {
    waiter_list<>::batch b;
    {
      std::lock_guard lock(mutex);
      if (requested.exchange(true)) return;
      b = waiters.take_all();
    }
    waiter_list<>::complete(b, ex, {});
  }

  // The run ended without a stop request: the waits still parked (of tasks
  // that ended) complete with operation_aborted, so that nothing is kept,
  // and so do later ones (a deferred wait made in a task and started after
  // the run, or a helper that outlived its task).
  void close() {
    waiter_list<>::batch b;
    {
      std::lock_guard lock(mutex);
      closed = true;
      b = waiters.take_all();
    }
    waiter_list<>::complete(b, ex, asio::error::operation_aborted);
  }

  const asio::any_io_executor ex;
  std::atomic<bool> requested{false};
  std::mutex mutex;
  bool closed = false;    // guarded by mutex: close() came
  waiter_list<> waiters;  // async_wait_stop
};

}  // namespace graceful::detail
