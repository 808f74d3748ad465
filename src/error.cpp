#include <graceful/error.hpp>

#include <ostream>
#include <string>

namespace graceful {
namespace {

class category final : public boost::system::error_category {
 public:
  // A fixed id makes codes compare equal across shared-library boundaries.
  constexpr category() noexcept : error_category(0x6a1e'c0de'5eed'0001ULL) {}

  const char* name() const noexcept override { return "graceful"; }

  std::string message(int value) const override {
    switch (static_cast<error>(value)) {
      case error::semaphore_closed:
        return "semaphore closed: async_acquire after close(), or a waiter failed by close()";
      case error::registry_closed:
        return "task registry closed: spawn refused after close(), the task is handed back";
      case error::invalid_argument:
        return "invalid argument: the operation was refused before anything started";
      case error::not_in_task:
        return "not in a task: graceful::this_task used outside a task of a run or a registry";
    }
    return "graceful: unknown error " + std::to_string(value);
  }

  boost::system::error_condition default_error_condition(int value) const noexcept override {
    if (static_cast<error>(value) == error::invalid_argument) {
      return boost::system::errc::make_error_condition(boost::system::errc::invalid_argument);
    }
    return {value, *this};
  }
};

constexpr category the_category;

}  // namespace

const boost::system::error_category& error_category() noexcept { return the_category; }

boost::system::error_code make_error_code(error e) noexcept {
  return {static_cast<int>(e), the_category};
}

std::ostream& operator<<(std::ostream& os, error e) {
  switch (e) {
    case error::semaphore_closed:
      return os << "semaphore_closed";
    case error::registry_closed:
      return os << "registry_closed";
    case error::invalid_argument:
      return os << "invalid_argument";
    case error::not_in_task:
      return os << "not_in_task";
  }
  return os << "graceful::error(" << static_cast<int>(e) << ")";
}

}  // namespace graceful
