#pragma once

#include <graceful/async_semaphore.hpp>

#include <cstddef>
#include <memory>
#include <optional>

namespace graceful::detail {

// A run's hold on the shared limiter it was given (run_options::limiter):
// the semaphore's state, not the object, so that the object may be closed or
// destroyed while the run still waits on it. Either way every later acquire
// fails, and the run stops starting tasks.
class limiter_ref {
 public:
  limiter_ref() = default;
  explicit limiter_ref(const async_semaphore* s) {
    if (s != nullptr) state_ = s->state_;
  }

  explicit operator bool() const noexcept { return state_ != nullptr; }
  // Neither closed nor destroyed.
  bool is_open() const noexcept;
  std::optional<semaphore_permit> try_acquire() const;
  std::size_t waiting() const noexcept;
  void async_acquire(acquire_handler handler) const { async_acquire_erased(state_, std::move(handler)); }

 private:
  std::shared_ptr<semaphore_state> state_;
};

}  // namespace graceful::detail
