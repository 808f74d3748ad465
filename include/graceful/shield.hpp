// graceful: bounded-concurrency async work with graceful shutdown, on Boost.Asio.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdint>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

namespace graceful {

namespace asio = boost::asio;

namespace detail {

// A shielded step of a task run by graceful, awaited by the task's own
// coroutine: while one runs, the task's cancellation is held back (nothing is
// emitted into its coroutine), and the first step after the last one ends
// delivers it. Empty anywhere else: another executor, a task that ended, or
// another coroutine on the task's executor (a helper it spawned, or the task
// itself after a reset_cancellation_state of its own).
class shield_scope {
 public:
  // `state`: the awaiting coroutine's; the task is the one whose step runs on
  // this thread now.
  explicit shield_scope(const asio::cancellation_state& state) noexcept;
  shield_scope(const shield_scope&) = delete;
  shield_scope& operator=(const shield_scope&) = delete;
  ~shield_scope();

  explicit operator bool() const noexcept { return relay_ != nullptr; }

 private:
  void* relay_ = nullptr;  // the task's relay while the scope holds it back
};

// Runs `op` on a thread of execution of its own whose cancellation slot is
// connected to nothing, and waits for it: what nothing can cancel.
template <class T, class Executor>
asio::awaitable<std::optional<T>, Executor> as_optional(asio::awaitable<T, Executor> op) {
  co_return std::optional<T>(co_await std::move(op));
}

template <class T, class Executor>
asio::awaitable<T, Executor> run_unconnected(asio::awaitable<T, Executor> op) {
  auto ex = co_await asio::this_coro::executor;
  auto token = asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable_t<Executor>());
  if constexpr (std::is_void_v<T>) {
    co_await asio::co_spawn(ex, std::move(op), token);
  } else {
    co_return std::move(*co_await asio::co_spawn(ex, as_optional(std::move(op)), token));
  }
}

}  // namespace detail

/// Runs `op` to its end, whatever happens to the coroutine that awaits it:
/// the C++ form of Python's `asyncio.shield`.
///
/// No cancellation that reaches the awaiting coroutine before `op` or while
/// it runs (a second Ctrl+C) touches `op`, and the awaiting coroutine's
/// cancellation state is left exactly as shield found it: its filters (a
/// `reset_cancellation_state` of the task's own) and whether it was cancelled.
/// Shields nest: a shield inside a shielded `op` keeps the outer one shielded
/// once it ends. `shield` returns what `op` returns and rethrows what `op`
/// throws; it never throws because the awaiting coroutine was cancelled.
///
/// - In the coroutine of a task run by graceful (async_run_tasks, run_tasks,
///   task_registry), `op` runs inline in the task's own thread of execution:
///   no co_spawn, no strand, no timer; the only allocations are `op`'s
///   coroutine frame and shield's own. The task's cancellation is held back
///   while it runs and delivered to whatever the task awaits next.
/// - Anywhere else (a coroutine you co_spawn, a helper the task spawns, a
///   task that replaced its cancellation state with reset_cancellation_state),
///   `op` runs as a thread of execution of its own (a co_spawn on the awaiting
///   coroutine's executor) whose cancellation slot is connected to nothing,
///   and the awaiting coroutine waits for it: only `op` is shielded.
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
  if constexpr (std::is_same_v<Executor, asio::any_io_executor>) {
    detail::shield_scope scope(co_await asio::this_coro::cancellation_state);
    if (scope) co_return co_await std::move(op);
  }
  co_return co_await detail::run_unconnected(std::move(op));
}

}  // namespace graceful
