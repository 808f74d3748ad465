#pragma once

#include <cstddef>

// What graceful keeps between runs, cache by cache (graceful::cached_memory
// puts them together).
namespace graceful::detail {

// Relays not in use; all of them freed only while none is in use.
std::size_t kept_relays();
std::size_t free_kept_relays() noexcept;  // how many it freed

// Runner slots in kept runner arrays.
std::size_t kept_runners();
std::size_t free_kept_runners() noexcept;  // how many it freed
std::size_t runner_size() noexcept;        // sizeof one runner

// The io_contexts kept for the blocking run_tasks, one per thread that ran
// one; the idle ones are destroyed on request.
std::size_t kept_contexts();
std::size_t free_idle_contexts() noexcept;  // how many it destroyed

}  // namespace graceful::detail
