// graceful: bounded-concurrency async work with graceful shutdown, on Boost.Asio.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/system/error_code.hpp>

#include <concepts>
#include <cstdint>
#include <functional>
#include <optional>
#include <type_traits>

namespace graceful {

namespace asio = boost::asio;

/// A task: a callable with no arguments returning asio::awaitable<void>
/// (move-only callables too, e.g. a lambda owning a socket).
template <class Task>
concept awaitable_task = std::move_constructible<Task> &&
    std::same_as<std::invoke_result_t<Task&>, asio::awaitable<void>>;

namespace detail {
// The value type of an asio::awaitable<T> (on the default executor); none
// for anything else.
template <class A>
struct awaitable_value {};
template <class T>
struct awaitable_value<asio::awaitable<T>> {
  using type = T;
};
}  // namespace detail

/// A task with a result: a callable with no arguments returning
/// asio::awaitable<T> for a T other than void. A run keeps the value of each
/// such task that completes (run_report::take_result).
template <class Task>
concept result_task = std::move_constructible<Task> && requires {
  typename detail::awaitable_value<std::invoke_result_t<Task&>>::type;
} && !std::is_void_v<typename detail::awaitable_value<std::invoke_result_t<Task&>>::type>;

namespace detail {
// Handlers that only tell which completion signature an operation takes.
struct ec_probe_handler {
  void operator()(boost::system::error_code) const {}
};
struct void_probe_handler {
  void operator()() const {}
};
// Only asio::deferred operations: their call operator is constrained by
// their completion signature, so that a probe handler tells it without
// instantiating anything (a generic lambda's body would be).
template <class Op>
concept completes_with_error_code =
    asio::is_deferred<Op>::value && requires(Op op) { std::move(op)(ec_probe_handler{}); };
template <class Op>
concept completes_with_nothing = asio::is_deferred<Op>::value && !completes_with_error_code<Op> &&
    requires(Op op) { std::move(op)(void_probe_handler{}); };
}  // namespace detail

/// A callback-style task: a callable with no arguments returning an
/// `asio::deferred` operation (one that has yet to start) that completes
/// with `void(error_code)` or `void()`, such as
/// `timer.async_wait(asio::deferred)`, or a chain of them. No coroutine: the
/// run starts the operation with a handler of its own, bound to the task's
/// cancellation slot and to the run's strand; like every Asio operation, it
/// must complete through its handler's associated executor.
template <class Task>
concept operation_task = std::move_constructible<Task> && std::invocable<Task&> &&
    (detail::completes_with_error_code<std::invoke_result_t<Task&>> ||
     detail::completes_with_nothing<std::invoke_result_t<Task&>>);

/// What async_run_tasks and run_tasks run: an awaitable_task, a
/// result_task, or an operation_task.
template <class Task>
concept run_task = awaitable_task<Task> || result_task<Task> || operation_task<Task>;

/// The value type of a task's result: T for a task returning
/// asio::awaitable<T>, void for an awaitable_task or an operation_task.
template <run_task Task>
using task_result_t = typename std::conditional_t<
    operation_task<Task>, std::type_identity<void>,
    detail::awaitable_value<std::invoke_result_t<Task&>>>::type;

namespace detail {
template <class T>
struct optional_task : std::false_type {};
template <class Task>
struct optional_task<std::optional<Task>> : std::bool_constant<run_task<Task>> {
  using task = Task;
};
}  // namespace detail

/// A source of tasks: a callable with no arguments returning
/// std::optional<Task> of a run_task Task, std::nullopt once it has
/// no more. A run pulls from it only when a concurrency slot is free.
template <class Source>
concept task_generator = std::move_constructible<Source> && std::invocable<Source&> &&
    detail::optional_task<std::invoke_result_t<Source&>>::value;

/// The task type of a source.
template <task_generator Source>
using generated_task_t = typename detail::optional_task<std::invoke_result_t<Source&>>::task;

/// What a run or a registry does when a task fails (throws anything but a
/// cancellation it was asked for).
enum class failure_policy : std::uint8_t {
  /// Record the failure and go on with the others (Python's
  /// `gather(return_exceptions=True)`).
  continue_running,
  /// The first failure stops everything: nothing new starts, running tasks are
  /// cancelled, the cause is stop_cause::failure (Python's TaskGroup).
  cancel_all,
};

namespace detail {

// True when `task` is an empty callable (a null std::function, a null
// function pointer...): bad input, refused before anything starts.
template <class Task>
bool is_null_task(const Task& task) noexcept {
  if constexpr (requires { static_cast<bool>(task); }) {
    return !static_cast<bool>(task);
  } else {
    return false;
  }
}

}  // namespace detail
}  // namespace graceful
