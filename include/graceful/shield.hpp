// graceful: bounded-concurrency async work with graceful shutdown, on Boost.Asio.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <utility>

namespace graceful {

namespace asio = boost::asio;

/// Runs `op` to its end, whatever happens to the coroutine that awaits it:
/// the C++ form of Python's `asyncio.shield`.
///
/// `op` runs as its own coroutine on the awaiting coroutine's executor, with a
/// cancellation state of its own that nothing is connected to: a cancellation
/// that reached the awaiting coroutine before, or reaches it while `op` runs
/// (a second Ctrl+C), never touches `op`. `shield` returns what `op` returns
/// and rethrows what `op` throws; it never throws because the awaiting
/// coroutine was cancelled.
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
/// Tasks run by graceful::async_run_tasks / run_tasks are set up for this
/// pattern. A coroutine you `co_spawn` yourself must first call
/// `co_await asio::this_coro::throw_if_cancelled(false);`: with Asio's default
/// (true), a cancelled coroutine throws operation_aborted at its next
/// `co_await` of anything, `co_await shield(...)` included, before the cleanup
/// could start.
///
/// @par Thread Safety
/// `op` runs on the awaiting coroutine's executor; use a strand there if that
/// executor is multi-threaded and `op` shares state with the awaiting code.
template <class T, class Executor>
asio::awaitable<T, Executor> shield(asio::awaitable<T, Executor> op) {
  auto ex = co_await asio::this_coro::executor;
  // An unconnected slot: the spawned coroutine gets no cancellation from us.
  co_return co_await asio::co_spawn(
      ex, std::move(op),
      asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable_t<Executor>()));
}

}  // namespace graceful
