#include "task_frame.hpp"

#ifndef GRACEFUL_DETAIL_OWN_ENTRY_POINT

#include <boost/asio/this_coro.hpp>

namespace graceful::detail {

boost::asio::awaitable<task_end> run_task_frame(boost::asio::awaitable<void> task, relay_ref relay) {
  co_await boost::asio::this_coro::throw_if_cancelled(false);
  boost::asio::cancellation_state state = co_await boost::asio::this_coro::cancellation_state;
  if (relay.current()) relay.relay->task_slot = state.slot();
  task_end end;
  try {
    co_await std::move(task);
  } catch (const boost::system::system_error& e) {
    end = ended_by(e);
  } catch (...) {
    end = ended_by_exception();
  }
  co_return end;
}

}  // namespace graceful::detail

#endif
