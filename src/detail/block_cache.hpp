#pragma once

#include <cstddef>
#include <mutex>
#include <vector>

namespace graceful::detail {

// `size` objects of T from `first` on.
template <class T>
struct block_span {
  T* first = nullptr;
  std::size_t size = 0;
};

// Arrays of T that are given back rather than freed, for the next taker of
// about as many. Thread-safe. What it keeps is never freed: the blocks of the
// most objects ever taken at once.
//
// Why: a block of 10,000 or more objects is bigger than glibc's mmap
// threshold. Freeing it unmaps it, page by page, inside the join of a wide
// run, and the next one faults its pages in again (README, "Performance"). Objects come back as they were left: the taker resets what it uses.
template <class T>
class block_cache {
 public:
  block_span<T> acquire(std::size_t n) {
    std::lock_guard lock(mutex_);
    if (auto best = best_fit(n); best != blocks_.end()) {
      block_span<T> s = *best;
      *best = blocks_.back();
      blocks_.pop_back();
      ++out_;
      return s;
    }
    // Room to keep every block out, so that release() never allocates: it
    // comes at the end of a run, right after its tasks' frames went back to
    // malloc, when a first allocation can cost milliseconds (README).
    blocks_.reserve(blocks_.size() + out_ + 1);
    block_span<T> s{new T[n], n};
    ++out_;
    return s;
  }

  void release(block_span<T> s) noexcept {
    std::lock_guard lock(mutex_);
    --out_;
    blocks_.push_back(s);  // within the capacity acquire() reserved
  }

 private:
  // The smallest kept block that holds n objects and wastes at most as many again.
  typename std::vector<block_span<T>>::iterator best_fit(std::size_t n) {
    auto best = blocks_.end();
    for (auto it = blocks_.begin(); it != blocks_.end(); ++it) {
      if (it->size >= n && it->size / 2 <= n && (best == blocks_.end() || it->size < best->size)) {
        best = it;
      }
    }
    return best;
  }

  std::mutex mutex_;
  std::vector<block_span<T>> blocks_;  // kept, with capacity for all out_ too
  std::size_t out_ = 0;                // blocks taken and not given back
};

}  // namespace graceful::detail
