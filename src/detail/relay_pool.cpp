#include "relay_executor.hpp"

#include <mutex>
#include <new>
#include <vector>

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
    {
      std::lock_guard lock(mutex_);
      if (n == 1 && singles_ != nullptr) {
        cancel_relay* r = singles_;
        singles_ = r->next_free;
        r->next_free = nullptr;
        return {r, 1};
      }
      if (n > 1) {
        if (auto best = best_fit(n); best != blocks_.end()) {
          relay_span s = *best;
          *best = blocks_.back();
          blocks_.pop_back();
          return s;
        }
      }
    }
    return {new cancel_relay[n], n};
  }

  void release(relay_span s) noexcept {
    std::lock_guard lock(mutex_);
    if (s.size == 1) {
      s.first->next_free = singles_;
      singles_ = s.first;
      return;
    }
    try {
      blocks_.push_back(s);
    } catch (const std::bad_alloc&) {
      // Out of memory: the block stays allocated, unused (relays are never freed).
    }
  }

 private:
  // The smallest free block that holds n relays and wastes at most as many again.
  std::vector<relay_span>::iterator best_fit(std::size_t n) {
    auto best = blocks_.end();
    for (auto it = blocks_.begin(); it != blocks_.end(); ++it) {
      if (it->size >= n && it->size / 2 <= n && (best == blocks_.end() || it->size < best->size)) {
        best = it;
      }
    }
    return best;
  }

  std::mutex mutex_;
  cancel_relay* singles_ = nullptr;
  std::vector<relay_span> blocks_;
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
