#pragma once

#include <boost/asio/io_context.hpp>

#include <cstddef>

namespace graceful::detail {

// Runs `ctx` on `threads` threads, the calling one included, until it runs
// out of work. The extra threads are all created before any of them runs the
// context: if one cannot be created, nothing has run yet and the error is
// thrown with the context untouched.
void run_on_threads(boost::asio::io_context& ctx, std::size_t threads);

}  // namespace graceful::detail
