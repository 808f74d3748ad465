#pragma once

#include "handler_work.hpp"

#include "cancellation.hpp"

#include <boost/asio/any_completion_executor.hpp>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/system/error_code.hpp>

#include <algorithm>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <utility>

namespace graceful::detail {

// Parked completion handlers of one signature, `void(error_code, Args...)`,
// waiting for an event (a registry becoming idle, a first signal). Guarded by
// its owner's mutex. A std::list: any_completion_handler must never be
// move-assigned in Asio 1.81 (broken until 1.82), which erasing from a vector would do.
template <class... Args>
class waiter_list {
 public:
  using handler_type = boost::asio::any_completion_handler<void(boost::system::error_code, Args...)>;

  struct waiter {
    std::uint64_t id;
    handler_type handler;
    boost::asio::any_completion_executor work;  // outstanding work while parked: a context with a parked waiter stays busy
  };
  using batch = std::list<waiter>;

  // Parks `handler`; returns its id for cancellation. `ex`: the default
  // executor of the handler.
  std::uint64_t add(handler_type handler, const boost::asio::any_io_executor& ex) {
    boost::asio::any_completion_executor work = tracked_work(handler, ex);
    std::uint64_t id = ++last_id_;
    list_.push_back(waiter{id, std::move(handler), std::move(work)});
    return id;
  }

  batch take_all() noexcept { return std::exchange(list_, {}); }

  // The waiter `id`, if it is still parked.
  batch take(std::uint64_t id) {
    batch out;
    auto it = std::find_if(list_.begin(), list_.end(), [id](const waiter& w) { return w.id == id; });
    if (it != list_.end()) out.splice(out.begin(), list_, it);
    return out;
  }

  bool empty() const noexcept { return list_.empty(); }

  // Posts each handler of `b` with (ec, args...); call without the mutex held.
  static void complete(batch& b, const boost::asio::any_io_executor& ex,
                       boost::system::error_code ec, const Args&... args) {
    for (auto& w : b) {
      boost::asio::any_completion_executor work(std::move(w.work));
      boost::asio::post(ex, boost::asio::append(std::move(w.handler), ec, args...));
    }
  }

  // As complete(), but each handler runs at once if the calling thread is
  // already running its associated executor: for completions from inside a
  // handler of the owner's own (never from an initiating function).
  static void dispatch(batch& b, const boost::asio::any_io_executor& ex,
                       boost::system::error_code ec, const Args&... args) {
    for (auto& w : b) {
      boost::asio::any_completion_executor work(std::move(w.work));
      boost::asio::dispatch(ex, boost::asio::append(std::move(w.handler), ec, args...));
    }
  }

 private:
  std::list<waiter> list_;
  std::uint64_t last_id_ = 0;
};

// The slot handler of a parked waiter: `State` has a `mutex` and a
// `waiter_list<Args...> waiters` and an executor `ex`. A cancel that finds the
// waiter gone (completed, or the state destroyed) does nothing.
template <class State, class... Args>
struct cancel_waiter {
  std::weak_ptr<State> state;
  std::uint64_t id;

  void operator()(boost::asio::cancellation_type_t type) const {
    if (!is_cancellation_request(type)) return;
    auto s = state.lock();
    if (!s) return;
    typename waiter_list<Args...>::batch found;
    {
      std::lock_guard lock(s->mutex);
      found = s->waiters.take(id);
    }
    waiter_list<Args...>::complete(found, s->ex, boost::asio::error::operation_aborted, Args{}...);
  }
};

// Parks `handler` in `state->waiters` (the caller holds `lock` on
// `state->mutex` and decided the handler must wait), then connects the
// handler's slot: the slot belongs to the initiating side.
template <class State, class... Args>
void park_waiter(const std::shared_ptr<State>& state, std::unique_lock<std::mutex> lock,
                 typename waiter_list<Args...>::handler_type handler) {
  auto slot = handler.get_cancellation_slot();
  std::uint64_t id = state->waiters.add(std::move(handler), state->ex);
  lock.unlock();
  if (slot.is_connected()) {
    slot.template emplace<cancel_waiter<State, Args...>>(cancel_waiter<State, Args...>{state, id});
  }
}

}  // namespace graceful::detail
