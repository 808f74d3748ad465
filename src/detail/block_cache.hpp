#pragma once

#include <algorithm>
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
// about as many. Thread-safe.
//
// Why: a block of 10,000 or more objects is bigger than glibc's mmap
// threshold. Freeing it unmaps it, page by page, inside the join of a wide
// run, and the next one faults its pages in again (README, "Performance").
// Objects come back as they were left: the taker resets what it uses.
//
// What it keeps is bounded: at most max_kept blocks and max_kept_bytes in
// all (a block given back beyond that frees the smallest ones, itself if it
// is the smallest), and a taker that no kept block fits frees the kept blocks
// too small for it. free_kept() frees them all.
template <class T>
class block_cache {
 public:
  static constexpr std::size_t max_kept = 64;  // a source run takes up to 64 blocks
  static constexpr std::size_t max_kept_bytes = std::size_t{64} << 20;

  block_span<T> acquire(std::size_t n) {
    std::lock_guard lock(mutex_);
    if (auto best = best_fit(n); best != blocks_.end()) {
      block_span<T> s = *best;
      *best = blocks_.back();
      blocks_.pop_back();
      kept_ -= s.size;
      ++out_;
      return s;
    }
    // None fits: those too small to fit this run go, so that runs that grow
    // one after another do not keep a block each.
    std::erase_if(blocks_, [&](const block_span<T>& b) {
      if (b.size >= n) return false;
      kept_ -= b.size;
      delete[] b.first;
      return true;
    });
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
    kept_ += s.size;
    while (blocks_.size() > max_kept || kept_ * sizeof(T) > max_kept_bytes) {
      auto smallest =
          std::min_element(blocks_.begin(), blocks_.end(),
                           [](const auto& a, const auto& b) { return a.size < b.size; });
      kept_ -= smallest->size;
      delete[] smallest->first;
      *smallest = blocks_.back();
      blocks_.pop_back();
    }
  }

  // How many objects the kept blocks hold.
  std::size_t kept() {
    std::lock_guard lock(mutex_);
    return kept_;
  }

  // Frees every kept block (not those out); how many objects they held.
  std::size_t free_kept() noexcept {
    std::lock_guard lock(mutex_);
    for (const block_span<T>& s : blocks_) delete[] s.first;
    blocks_.clear();  // its capacity stays, for the blocks out
    std::size_t freed = kept_;
    kept_ = 0;
    return freed;
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
  std::size_t kept_ = 0;               // objects in blocks_
  std::size_t out_ = 0;                // blocks taken and not given back
};

}  // namespace graceful::detail
