#pragma once

#include "waiter_list.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/error.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <utility>

namespace graceful::detail {

namespace asio = boost::asio;

class stop_notice_service;

// The stop request of a run or a registry as its tasks see it
// (graceful::this_task): a flag, and the waits of async_wait_stop. Thread-safe.
//
// A parked wait holds its task's coroutine, which holds the run that holds
// this notice: a cycle that only the wait's completion breaks. So every
// notice is known to a service of its executor's context, and a context
// destroyed with waits still parked destroys them (never invoking them), as
// Asio destroys the handlers of its own pending operations; later waits
// complete at once with operation_aborted.
struct stop_notice : std::enable_shared_from_this<stop_notice> {
  explicit stop_notice(asio::any_io_executor executor);
  stop_notice(const stop_notice&) = delete;
  stop_notice& operator=(const stop_notice&) = delete;
  ~stop_notice();

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
  bool closed = false;    // guarded by mutex: close() came, or the context shut down
  waiter_list<> waiters;  // async_wait_stop

  // The service that knows this notice; null once its context shut down.
  // The links are guarded by the service's mutex.
  std::atomic<stop_notice_service*> service{nullptr};
  stop_notice* prev = nullptr;
  stop_notice* next = nullptr;
};

}  // namespace graceful::detail
