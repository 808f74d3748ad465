#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/version.hpp>

#if BOOST_ASIO_VERSION >= 103200  // Boost 1.87: execution contexts have a public configuration
#include <boost/asio/config.hpp>
#endif

namespace graceful::detail {

// The concurrency hint `ctx` was constructed with.
inline int concurrency_hint(boost::asio::io_context& ctx) {
#if BOOST_ASIO_VERSION >= 103200
  // The configuration an io_context(int) constructor fills, and the value
  // Asio's own scheduler reads to decide it runs on one thread.
  return boost::asio::config(ctx).get("scheduler", "concurrency_hint", 0);
#else
  // Before the configuration existed, the hint is held only by the
  // io_context's implementation (asio::detail): its accessor disappearing is
  // a compile error, and test one_thread_path checks the value per Boost.
  return boost::asio::use_service<boost::asio::detail::io_context_impl>(ctx).concurrency_hint();
#endif
}

// `ex`'s io_context executor when `ex` is an io_context's own executor and
// that io_context was constructed with concurrency hint 1, which Asio
// documents as "the io_context will be run from a single thread" and relies
// on itself; nullptr otherwise. Handlers on it then never run two at once,
// so it serves as the strand of every task: no strand to allocate, and a
// relay_executor of it fits in any_io_executor's inline buffer.
inline const boost::asio::io_context::executor_type* one_thread_executor(
    const boost::asio::any_io_executor& ex) {
  const auto* io = ex.target<boost::asio::io_context::executor_type>();
  if (io != nullptr && concurrency_hint(io->context()) == 1) return io;
  return nullptr;
}

}  // namespace graceful::detail
