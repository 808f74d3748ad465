#pragma once

#include <boost/asio/execution_context.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <thread>

namespace graceful::detail {

// Checks, in builds with GRACEFUL_CHECKS, the assumption graceful's
// one-thread path rests on: Asio documents concurrency hint 1 as "assumes the
// io_context will be run from a single thread", and graceful then runs tasks
// on the context's executor with no strand. Run by two threads at once, that
// would be a silent data race; instead, a graceful handler that starts while
// another one runs on a different thread of the same context stops the
// process with a message that says why. One per io_context (a service), so
// that runs and registries sharing a context check against each other.
class one_thread_check final : public boost::asio::execution_context::service {
 public:
#if defined(GRACEFUL_CHECKS)
  static constexpr bool enabled = true;
#else
  static constexpr bool enabled = false;
#endif

  static boost::asio::execution_context::id id;

  explicit one_thread_check(boost::asio::execution_context& ctx) : service(ctx) {}

  // The check of `ex`'s io_context; null when checks are compiled out.
  static one_thread_check* of(const boost::asio::io_context::executor_type& ex);

  // Around every handler graceful runs on the context; nested on one thread.
  void enter() noexcept {
    const std::thread::id me = std::this_thread::get_id();
    if (owner_.load(std::memory_order_acquire) == me) {
      ++depth_;
      return;
    }
    std::thread::id none{};
    if (!owner_.compare_exchange_strong(none, me, std::memory_order_acq_rel)) violated();
    depth_ = 1;
  }
  void exit() noexcept {
    if (--depth_ == 0) owner_.store(std::thread::id{}, std::memory_order_release);
  }

 private:
  void shutdown() override {}
  [[noreturn]] static void violated() noexcept;

  std::atomic<std::thread::id> owner_{};
  unsigned depth_ = 0;  // the owner's only
};

// Holds `check` (if any) for a scope.
class one_thread_scope {
 public:
  explicit one_thread_scope(one_thread_check* check) noexcept : check_(check) {
    if (check_ != nullptr) check_->enter();
  }
  one_thread_scope(const one_thread_scope&) = delete;
  one_thread_scope& operator=(const one_thread_scope&) = delete;
  ~one_thread_scope() {
    if (check_ != nullptr) check_->exit();
  }

 private:
  one_thread_check* check_;
};

}  // namespace graceful::detail
