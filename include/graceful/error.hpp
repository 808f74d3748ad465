// graceful: bounded-concurrency async work with graceful shutdown, on Boost.Asio.
#pragma once

#include <boost/system/error_code.hpp>

#include <iosfwd>
#include <type_traits>

namespace graceful {

/// The library's own error conditions, in the category graceful::error_category().
enum class error {
  /// async_acquire on a closed semaphore, or a waiter failed by close().
  semaphore_closed = 1,
  /// A spawn on a task registry that was closed (sealed) first.
  registry_closed,
  /// Bad input refused before anything started (a zero limit, a null task...).
  invalid_argument,
  /// graceful::this_task called from outside a task of a run or a registry.
  not_in_task,
};

/// The category of graceful::error; its name is "graceful".
const boost::system::error_category& error_category() noexcept;

/// Makes graceful::error usable as a boost::system::error_code
/// (`ec == graceful::error::semaphore_closed`).
boost::system::error_code make_error_code(error e) noexcept;

/// Prints the enumerator's name, e.g. "semaphore_closed" (for logs and test output).
std::ostream& operator<<(std::ostream& os, error e);

}  // namespace graceful

template <>
struct boost::system::is_error_code_enum<graceful::error> : std::true_type {};
