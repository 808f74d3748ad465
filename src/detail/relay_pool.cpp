#include <algorithm>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "cached_memory.hpp"
#include "relay_executor.hpp"

// The process-wide pool of cancel_relays (see relay_executor.hpp for why a
// relay outlives its task). One list of the relays not in use, whatever
// slab they were made in: a run takes as many as it has slots, a registry's
// task one, and each gives them back as the chain it took, in one step:
// nothing is touched per relay on the way out, so the end of a run of 100,000
// tasks costs no walk over 100,000 cold relays.
//
// What it keeps: the most relays ever taken at once (a run takes one per
// slot, a registry one per task it holds; in all runs and registries
// together, plus at most min_slab - 1), each with the memory its last task's
// cancellation handler had, until graceful::release_cached_memory() frees
// them.

namespace graceful::detail {

namespace {

class relay_pool {
 public:
  relay_chain acquire(std::size_t n) {
    if (n == 0) return {};
    std::lock_guard lock(mutex_);
    if (kept_ < n) grow(n - kept_);
    relay_chain c{free_, free_, n};
    for (std::size_t k = 1; k < n; ++k) c.last = c.last->next_free;
    free_ = c.last->next_free;
    c.last->next_free = nullptr;
    kept_ -= n;
    out_ += n;
    return c;
  }

  void release(relay_chain c) noexcept {
    std::lock_guard lock(mutex_);
    c.last->next_free = free_;
    free_ = c.first;
    kept_ += c.size;
    out_ -= c.size;
  }

  std::size_t kept() {
    std::lock_guard lock(mutex_);
    return kept_;
  }

  std::size_t free_all() noexcept {
    std::vector<std::unique_ptr<cancel_relay[]>> slabs;
    std::size_t freed = 0;
    {
      std::lock_guard lock(mutex_);
      if (out_ != 0 || slabs_.empty()) return 0;
      // Before the relays go: a copy of a task's executor from an earlier
      // era compares eras and never reads its relay again. The era moves on
      // only when relays go; once it has no value left, it stays, and so do
      // the relays: an era used again would let a copy from back then read
      // memory freed since.
      std::uint64_t era = relay_era.load(std::memory_order_relaxed);
      if ((era >> relay_era_shift) == max_era) return 0;
      relay_era.store(era + (std::uint64_t{1} << relay_era_shift), std::memory_order_release);
      slabs.swap(slabs_);
      free_ = nullptr;
      freed = kept_;
      kept_ = 0;
    }
    return freed;  // the slabs are freed here, outside the lock
  }

 private:
  static constexpr std::size_t min_slab = 8;  // a registry's tasks take one each
  static constexpr std::uint64_t max_era = (std::uint64_t{1} << (64 - relay_era_shift)) - 1;

  // At least n more relays on the list; nothing changed if it throws.
  void grow(std::size_t n) {
    std::size_t size = std::max(n, min_slab);
    std::unique_ptr<cancel_relay[]> slab(new cancel_relay[size]);
    cancel_relay* first = slab.get();
    slabs_.push_back(std::move(slab));
    for (std::size_t k = size; k > 0; --k) {
      first[k - 1].next_free = std::exchange(free_, &first[k - 1]);
    }
    kept_ += size;
  }

  std::mutex mutex_;
  cancel_relay* free_ = nullptr;  // the relays not in use, linked through next_free
  std::size_t kept_ = 0;          // on free_
  std::size_t out_ = 0;           // taken and not given back
  std::vector<std::unique_ptr<cancel_relay[]>> slabs_;
};

// Never destroyed: an executor copy in a static object may look at its relay
// during static destruction.
relay_pool& pool() {
  static relay_pool* p = new relay_pool;
  return *p;
}

}  // namespace

relay_chain acquire_relays(std::size_t n) { return pool().acquire(n); }

void release_relays(relay_chain relays) noexcept {
  if (relays.first != nullptr) pool().release(relays);
}

std::size_t kept_relays() { return pool().kept(); }

std::size_t free_kept_relays() noexcept { return pool().free_all(); }

}  // namespace graceful::detail
