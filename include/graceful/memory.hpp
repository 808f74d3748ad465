// graceful: bounded-concurrency async work with graceful shutdown, on Boost.Asio.
#pragma once

#include <cstddef>

namespace graceful {

/// What graceful keeps between runs, for later runs to reuse (all of it
/// process-wide, none of it in use by a run now):
struct cached_memory {
  /// Cancellation relays: a run takes one per slot, a task_registry one per
  /// task it holds; kept are at most the most ever taken at once, in all runs
  /// and registries together (plus 7: they are made 8 at a time at least).
  std::size_t relays = 0;
  /// Runner slots (a run's per-slot bookkeeping), in arrays of 64 MiB in all
  /// at most.
  std::size_t runners = 0;
  /// io_contexts of the blocking run_tasks, one per thread that ran it on one
  /// thread, with their descriptors.
  std::size_t contexts = 0;
  /// Bytes of graceful's relays and runners; each relay also keeps the memory
  /// of its last task's cancellation handler, and each context what Asio
  /// keeps in it.
  std::size_t bytes = 0;
};

/// What graceful keeps now.
cached_memory cached_memory_usage();

/// Frees what graceful keeps and no run uses, and says what it freed.
///
/// - Relays are freed only while none is taken: no run is in progress and
///   no task_registry holds a task; otherwise none is. A run gives its relays
///   back once its last task's last step is over: on a context that several
///   threads run, that may be just after its completion handler began. A
///   copy of a task's executor that outlived its task (a coroutine the task
///   spawned and left running) stays safe to use after the call, but must
///   not run a handler on another thread during it.
/// - The idle io_contexts of the blocking run_tasks are destroyed, as before
///   a fork: an I/O object that one of its tasks made must not outlive that
///   run_tasks.
///
/// Thread-safe otherwise, and may be called at any time. What it frees goes
/// back to malloc; whether the process's RSS falls is the allocator's
/// business (glibc: `malloc_trim`).
cached_memory release_cached_memory() noexcept;

}  // namespace graceful
