#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/version.hpp>

// How the concurrency hint an io_context was built with can be read:
// - Asio 1.36 (Boost 1.89) on: the public configuration, asio::config;
// - Asio 1.34 (Boost 1.87, 1.88): not reliably. Its configuration reads every
//   integer as 0 on 1.87 (and may throw on a stale errno), and reports hint 1
//   for BOOST_ASIO_CONCURRENCY_HINT_SAFE on both: such a context would lose its
//   strands while several threads run it. No hint is read there: strands always;
// - before: the io_context's implementation, in asio::detail.
#if BOOST_ASIO_VERSION >= 103600
#define GRACEFUL_DETAIL_HINT_FROM_CONFIG 1
#include <boost/asio/config.hpp>
#elif BOOST_ASIO_VERSION < 103400
#define GRACEFUL_DETAIL_HINT_FROM_SCHEDULER 1
#endif

namespace graceful::detail {

// The concurrency hint `ctx` was constructed with; 0 where it cannot be read
// reliably (then no one-thread path).
inline int concurrency_hint(boost::asio::io_context& ctx) noexcept {
#if defined(GRACEFUL_DETAIL_HINT_FROM_CONFIG)
  // The value an io_context(int) constructor configures and Asio's own
  // scheduler reads. A configuration of the user's own with a value that is
  // no integer makes get() throw: no hint then.
  try {
    return boost::asio::config(ctx).get("scheduler", "concurrency_hint", 0);
  } catch (...) {
    return 0;
  }
#elif defined(GRACEFUL_DETAIL_HINT_FROM_SCHEDULER)
  // Held only by the io_context's implementation (asio::detail): its accessor
  // disappearing is a compile error, and test one_thread_path checks the value
  // on every Boost of the matrix.
  return boost::asio::use_service<boost::asio::detail::io_context_impl>(ctx).concurrency_hint();
#else
  (void)ctx;
  return 0;
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
