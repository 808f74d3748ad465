#include "relay_executor.hpp"

#include <mutex>

// The process-wide pool of cancel_relays (see relay_executor.hpp for why they
// are never freed). A run takes one block for all its concurrency slots and
// gives it back whole: nothing is touched per relay on the way out, so the end
// of a run of 100,000 tasks costs no walk over 100,000 cold relays. Single
// relays (a task_registry's tasks) go on a list of their own.
//
// What it keeps: the relays of the most tasks ever running at once, each with
// the memory its last task's cancellation handler had (about 100 bytes in
// all), for later runs to reuse.

namespace graceful::detail {

namespace {

class relay_pool {
 public:
  relay_span acquire(std::size_t n) {
    if (n == 1) {
      std::lock_guard lock(mutex_);
      if (singles_ != nullptr) {
        cancel_relay* r = singles_;
        singles_ = r->next_free;
        r->next_free = nullptr;
        return {r, 1};
      }
    }
    return n == 1 ? relay_span{new cancel_relay, 1} : blocks_.acquire(n);
  }

  void release(relay_span s) noexcept {
    if (s.size > 1) return blocks_.release(s);
    std::lock_guard lock(mutex_);
    s.first->next_free = singles_;
    singles_ = s.first;
  }

 private:
  std::mutex mutex_;  // for singles_
  cancel_relay* singles_ = nullptr;
  block_cache<cancel_relay> blocks_;
};

// Never destroyed: an executor copy in a static object may look at its relay
// during static destruction.
relay_pool& pool() {
  static relay_pool* p = new relay_pool;
  return *p;
}

}  // namespace

relay_span acquire_relays(std::size_t n) { return pool().acquire(n); }

void release_relays(relay_span relays) noexcept {
  if (relays.first != nullptr) pool().release(relays);
}

}  // namespace graceful::detail
