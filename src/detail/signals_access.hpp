#pragma once

#include <graceful/signals.hpp>

#include <cstdint>
#include <functional>
#include <memory>

namespace graceful::detail {

// What runs and registries need of shutdown_signals beyond its public
// interface (run_options::stop_on, task_registry::stop_on, and the blocking
// run_tasks' own signals).
class signals_access {
 public:
  // `hook(signal_number)` runs for the first signal inside the signal_set's
  // own handler, before any async_wait handler, with no executor hop and no
  // type-erased handler between the signal and the stop (an async_wait
  // handler's first run through those layers cost 11-15 us of a small run,
  // all of it cold code). At once, here, if the first signal already came.
  // Returns the hook's id, for forget(); 0 if it ran at once.
  static std::uint64_t on_first_signal(const std::shared_ptr<signals_state>& state,
                                       std::function<void(int)> hook);
  // The hook `id` will not run (if it has not yet): whoever added it is gone.
  static void forget(const std::shared_ptr<signals_state>& state, std::uint64_t id) noexcept;
  static std::shared_ptr<signals_state> state_of(const shutdown_signals& s);
};

}  // namespace graceful::detail
