#include "detail/stop_notice.hpp"

#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/query.hpp>

namespace graceful::detail {

// The stop notices of one execution context, for its shutdown (see
// stop_notice). Lock order: this service's mutex, then a notice's.
class stop_notice_service final : public asio::execution_context::service {
 public:
  static inline asio::execution_context::id id;

  explicit stop_notice_service(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}

  void enter(stop_notice& n) {
    std::lock_guard lock(mutex_);
    if (shut_down_) {
      n.closed = true;  // not shared yet: no other thread sees it
      return;
    }
    n.next = head_;
    if (head_ != nullptr) head_->prev = &n;
    head_ = &n;
    n.service.store(this, std::memory_order_release);
  }

  void leave(stop_notice& n) noexcept {
    std::lock_guard lock(mutex_);
    if (n.service.load(std::memory_order_relaxed) == nullptr) return;  // the shutdown let go of it
    unlink(n);
  }

 private:
  void shutdown() override {
    waiter_list<>::batch dropped;
    {
      std::lock_guard lock(mutex_);
      shut_down_ = true;
      while (head_ != nullptr) {
        stop_notice& n = *head_;
        unlink(n);
        std::lock_guard notice_lock(n.mutex);
        n.closed = true;
        dropped.splice(dropped.end(), n.waiters.take_all());
      }
    }
    // Destroyed here, outside both locks: a coroutine frame that goes with
    // its wait may take its run, and so a notice, with it.
  }

  void unlink(stop_notice& n) noexcept {
    (n.prev != nullptr ? n.prev->next : head_) = n.next;
    if (n.next != nullptr) n.next->prev = n.prev;
    n.prev = n.next = nullptr;
    n.service.store(nullptr, std::memory_order_relaxed);
  }

  std::mutex mutex_;
  stop_notice* head_ = nullptr;
  bool shut_down_ = false;
};

stop_notice::stop_notice(asio::any_io_executor executor) : ex(std::move(executor)) {
  asio::use_service<stop_notice_service>(asio::query(ex, asio::execution::context)).enter(*this);
}

stop_notice::~stop_notice() {
  if (stop_notice_service* s = service.load(std::memory_order_acquire)) s->leave(*this);
}

}  // namespace graceful::detail
