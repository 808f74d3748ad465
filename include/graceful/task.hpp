// graceful: bounded-concurrency async work with graceful shutdown, on Boost.Asio.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <concepts>
#include <cstdint>
#include <functional>
#include <type_traits>

namespace graceful {

namespace asio = boost::asio;

/// A task: a callable with no arguments returning asio::awaitable<void>
/// (move-only callables too, e.g. a lambda owning a socket).
template <class Task>
concept awaitable_task = std::move_constructible<Task> &&
    std::same_as<std::invoke_result_t<Task&>, asio::awaitable<void>>;

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
