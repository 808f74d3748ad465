#include <graceful/error.hpp>
#include <graceful/this_task.hpp>

#include "detail/relay_executor.hpp"
#include "detail/stop_notice.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/system_error.hpp>

namespace graceful {
namespace detail {

std::shared_ptr<stop_notice> current_stop_notice(const char* what) {
  const relay_ref& ref = current_step;
  if (ref.relay == nullptr || !ref.current() || ref.relay->notice == nullptr) {
    throw boost::system::system_error(make_error_code(error::not_in_task), what);
  }
  return ref.relay->notice->shared_from_this();
}

void wait_stop_erased(std::shared_ptr<stop_notice> notice, stop_wait_handler handler) {
  std::unique_lock lock(notice->mutex);
  if (notice->requested || notice->closed) {
    boost::system::error_code ec;
    if (!notice->requested) ec = asio::error::operation_aborted;
    lock.unlock();
    asio::post(notice->ex, asio::append(std::move(handler), ec));
    return;
  }
  park_waiter<stop_notice>(notice, std::move(lock), std::move(handler));
}

}  // namespace detail

namespace this_task {

asio::awaitable<bool> stop_requested() {
  co_return detail::current_stop_notice("graceful::this_task::stop_requested")->requested.load();
}

}  // namespace this_task
}  // namespace graceful
