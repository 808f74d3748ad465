#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>

namespace graceful::detail {

// `ex`'s io_context executor when `ex` is an io_context's own executor and
// that io_context was constructed with concurrency hint 1, which Asio
// documents as "the io_context will be run from a single thread" and relies
// on itself; nullptr otherwise. Handlers on it then never run two at once,
// so it serves as the strand of every task: no strand to allocate, and a
// relay_executor of it fits in any_io_executor's inline buffer. (The hint is
// read from the io_context's implementation, which every io_context has:
// asio::detail, where it is exposed.)
inline const boost::asio::io_context::executor_type* one_thread_executor(
    const boost::asio::any_io_executor& ex) {
  using impl = boost::asio::detail::io_context_impl;
  if constexpr (requires(const impl& i) { i.concurrency_hint(); }) {
    const auto* io = ex.target<boost::asio::io_context::executor_type>();
    if (io != nullptr && boost::asio::use_service<impl>(io->context()).concurrency_hint() == 1) {
      return io;
    }
  }
  return nullptr;
}

}  // namespace graceful::detail
