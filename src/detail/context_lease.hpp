#pragma once

#include <boost/asio/io_context.hpp>

#include <cstddef>
#include <memory>

namespace graceful::detail {

// The io_context of one blocking run_tasks. On one thread it is the calling
// thread's, kept from one call to the next: a run then neither opens nor
// closes the context's descriptors (its epoll, timer and wake-up descriptors,
// and Asio's signal pipe), which took 40-90 us of a small run's return here,
// and a thread that calls run_tasks once pays for them at its exit, when
// nobody waits.
//
// - Kept only when the run let it run out of work: an exception out of run()
//   leaves handlers queued, and that context is destroyed.
// - A run_tasks called from inside a task of another one on the same thread,
//   or with several threads, gets a context of its own, as before.
// - Before a fork, every idle kept context is destroyed (pthread_atfork): a
//   child must not share their epoll instances and Asio's signal pipe with
//   its parent, which would then read the child's signals.
// - graceful::release_cached_memory() destroys every idle kept context too.
class context_lease {
 public:
  explicit context_lease(std::size_t threads);
  context_lease(const context_lease&) = delete;
  context_lease& operator=(const context_lease&) = delete;
  ~context_lease();

  boost::asio::io_context& context() const noexcept { return *ctx_; }
  // run() returned normally: nothing is left queued on the context.
  void ran_out() noexcept { clean_ = true; }

  struct slot;  // a thread's kept context

 private:
  slot* slot_ = nullptr;
  std::unique_ptr<boost::asio::io_context> own_;
  boost::asio::io_context* ctx_ = nullptr;
  bool clean_ = false;
};

}  // namespace graceful::detail
