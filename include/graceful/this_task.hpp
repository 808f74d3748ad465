// graceful: bounded-concurrency async work with graceful shutdown, on Boost.Asio.
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <memory>
#include <utility>

namespace graceful {

namespace asio = boost::asio;

namespace detail {

struct stop_notice;

using stop_wait_signature = void(boost::system::error_code);
using stop_wait_handler = asio::any_completion_handler<stop_wait_signature>;

// The stop notice of the task whose step runs on this thread; throws
// boost::system::system_error (error::not_in_task, `what` naming the caller)
// outside one.
std::shared_ptr<stop_notice> current_stop_notice(const char* what);
void wait_stop_erased(std::shared_ptr<stop_notice> notice, stop_wait_handler handler);

struct wait_stop_initiation {
  template <class Handler>
  void operator()(Handler&& handler, std::shared_ptr<stop_notice> notice) const {
    wait_stop_erased(std::move(notice), stop_wait_handler(std::forward<Handler>(handler)));
  }
};

}  // namespace detail

/// What a task of a run (async_run_tasks, run_tasks) or of a task_registry
/// can ask about its own run, from inside its coroutine.
///
/// A run's stop request is its first stop (signal, cancellation, deadline,
/// failure under cancel_all; not a closed limiter, which only stops the
/// starts). A registry's is its first cancel_all or
/// async_shutdown; destroying a registry cancels it, so that is one too.
namespace this_task {

/// Whether the run (or registry) this task belongs to has been asked to
/// stop. During the grace period (run_options::grace) the task is not
/// cancelled yet: this is how it learns that it should wind down. Throws
/// boost::system::system_error (graceful::error::not_in_task) when awaited
/// outside such a task.
asio::awaitable<bool> stop_requested();

/// Waits until the run (or registry) this task belongs to is asked to stop:
/// at once if it was already. For a task that winds down on its own within
/// the grace period, or a long-lived one (a connection) that must hear of the
/// stop while it waits for something else.
///
/// Call it inside the task (from its coroutine, or code it runs on its
/// executor): which run it belongs to is taken at the call, so a deferred
/// operation made there may be awaited later. Called outside such a task
/// it throws boost::system::system_error (graceful::error::not_in_task)
/// before anything starts: there is no run to wait for, nor an executor to
/// complete on.
///
/// @par Completion Signature
/// @code void(boost::system::error_code ec) @endcode
/// Clear once the stop was requested; operation_aborted if the wait was
/// cancelled, or the run completed without a stop request (a wait left
/// behind by a task that ended).
///
/// @par Per-Operation Cancellation
/// `terminal`, `partial` and `total` end the wait with operation_aborted. A
/// task's own cancellation (the run's cancel after the grace) cancels it too,
/// as it does any operation the task awaits.
///
/// @par Executor
/// The handler runs on its associated executor (by default the run's),
/// never inside async_wait_stop itself. If the run's execution context is
/// destroyed while the wait is pending, the handler is destroyed without
/// being invoked, as Asio does with its own pending operations.
template <asio::completion_token_for<detail::stop_wait_signature> CompletionToken =
              asio::default_completion_token_t<asio::any_io_executor>>
auto async_wait_stop(CompletionToken&& token = asio::default_completion_token_t<asio::any_io_executor>()) {
  return asio::async_initiate<CompletionToken, detail::stop_wait_signature>(
      detail::wait_stop_initiation{}, token,
      detail::current_stop_notice("graceful::this_task::async_wait_stop"));
}

}  // namespace this_task
}  // namespace graceful
