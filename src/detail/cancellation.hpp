#pragma once

#include <boost/asio/cancellation_type.hpp>

namespace graceful::detail {

// Waiting for a slot and running a whole run have no partial side effects, so
// graceful's operations honour every cancellation type the same way.
constexpr bool is_cancellation_request(boost::asio::cancellation_type_t type) noexcept {
  constexpr auto any = boost::asio::cancellation_type::terminal |
                       boost::asio::cancellation_type::partial |
                       boost::asio::cancellation_type::total;
  return (type & any) != boost::asio::cancellation_type::none;
}

}  // namespace graceful::detail
