// What malloc itself says is in use, for tests of how much memory a run takes.
#pragma once

#include <malloc.h>

#include <cstddef>

namespace graceful_test {

// malloc's own count of the bytes in use: meaningless where a sanitizer
// replaces malloc.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool malloc_counts = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool malloc_counts = false;
#else
inline constexpr bool malloc_counts = true;
#endif
#else
inline constexpr bool malloc_counts = true;
#endif

// In use on the heap, and in chunks of their own (mmapped: the big arrays).
inline std::size_t malloc_in_use() {
  struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

}  // namespace graceful_test
