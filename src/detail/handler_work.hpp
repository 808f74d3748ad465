#pragma once

#include <boost/asio/any_completion_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/prefer.hpp>

#include <new>

namespace graceful::detail {

// Outstanding work on `handler`'s associated executor (by default `ex`), for
// as long as the handler is parked, so that its context does not run out of
// work under it. An any_completion_handler
// builds its associated executor with std::nothrow: where that allocation
// failed it hands back an empty executor, which must not be used. The
// failure goes out as the std::bad_alloc it was.
template <class Handler, class Executor>
boost::asio::any_completion_executor tracked_work(const Handler& handler, const Executor& ex) {
  auto associated = boost::asio::get_associated_executor(handler, ex);
  if (!associated) throw std::bad_alloc();
  return boost::asio::prefer(associated, boost::asio::execution::outstanding_work.tracked);
}

}  // namespace graceful::detail
