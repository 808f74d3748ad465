// graceful: bounded-concurrency async work with graceful shutdown, on Boost.Asio.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/this_coro.hpp>

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

namespace graceful {

namespace asio = boost::asio;

/// Runs `op` to its end, whatever happens to the coroutine that awaits it:
/// the C++ form of Python's `asyncio.shield`.
///
/// `op` runs inline, in the awaiting coroutine's own thread of execution (no
/// co_spawn, no strand, no timer: the only allocations are `op`'s coroutine
/// frame and shield's own), behind a cancellation state that lets nothing
/// through: a cancellation that reached the awaiting coroutine before, or
/// reaches it while `op` runs (a second Ctrl+C), never touches `op`. Afterwards
/// the coroutine gets a fresh cancellation state with Asio's default filter
/// (terminal only): cancellations that arrived during `op` are not replayed by
/// Asio (tasks run by graceful get them re-delivered at their next await).
/// `shield` returns what `op` returns and rethrows what `op` throws; it never
/// throws because the awaiting coroutine was cancelled.
///
/// The pattern for an awaited cleanup (`co_await` is not allowed inside a
/// `catch` block, so capture the exception, await the cleanup, rethrow):
/// @code
/// std::exception_ptr e;
/// try { co_await work(); } catch (...) { e = std::current_exception(); }
/// co_await graceful::shield(async_cleanup());   // runs to its end
/// if (e) std::rethrow_exception(e);
/// @endcode
///
/// Tasks run by graceful::async_run_tasks / run_tasks / task_registry are set
/// up for this pattern. A coroutine you `co_spawn` yourself must first call
/// `co_await asio::this_coro::throw_if_cancelled(false);`: with Asio's default
/// (true), a cancelled coroutine throws operation_aborted at its next
/// `co_await` of anything, `co_await shield(...)` included, before the cleanup
/// could start.
template <class T, class Executor>
asio::awaitable<T, Executor> shield(asio::awaitable<T, Executor> op) {
  // Blocks every cancellation type, and clears the sticky "cancelled" flag.
  co_await asio::this_coro::reset_cancellation_state(
      asio::cancellation_filter<asio::cancellation_type::none>());
  std::exception_ptr error;
  if constexpr (std::is_void_v<T>) {
    try {
      co_await std::move(op);
    } catch (...) {
      error = std::current_exception();
    }
    co_await asio::this_coro::reset_cancellation_state();
    if (error) std::rethrow_exception(error);
  } else {
    std::optional<T> result;
    try {
      result.emplace(co_await std::move(op));
    } catch (...) {
      error = std::current_exception();
    }
    co_await asio::this_coro::reset_cancellation_state();
    if (error) std::rethrow_exception(error);
    co_return std::move(*result);
  }
}

}  // namespace graceful
