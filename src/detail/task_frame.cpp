#include "task_frame.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/system/system_error.hpp>

namespace graceful::detail {

boost::asio::awaitable<task_end> run_task_frame(boost::asio::awaitable<void> task) {
  co_await boost::asio::this_coro::throw_if_cancelled(false);
  task_end end;
  try {
    co_await std::move(task);
  } catch (const boost::system::system_error& e) {
    end.kind = e.code() == boost::asio::error::operation_aborted ? end_kind::aborted
                                                                 : end_kind::threw;
    end.error = std::current_exception();
  } catch (...) {
    end.kind = end_kind::threw;
    end.error = std::current_exception();
  }
  co_return end;
}

}  // namespace graceful::detail
