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
  // `hook(signal_number)` runs for every signal inside the signal_set's own
  // handler, before any async_wait handler, with no executor hop and no
  // type-erased handler between the signal and the stop (an async_wait
  // handler's first run through those layers cost 11-15 us of a small run,
  // all of it cold code). At once, here, for the first signal if it already
  // came. A hook tells the first signal from later ones by what it already
  // did (a run's second stop request ends its grace). `key` names the hook
  // for forget() (the address of whoever added it).
  static void on_signals(const std::shared_ptr<signals_state>& state, const void* key,
                         std::function<void(int)> hook);
  // The hook of `key` will not run any more: whoever added it is going.
  // Holders keep the listener's state weakly: it owns a signal_set, which
  // must go before its io_context, and so before the listener's user
  // destroys that context (a run or a registry may outlive both).
  static void forget(const std::weak_ptr<signals_state>& state, const void* key) noexcept;
  static std::shared_ptr<signals_state> state_of(const shutdown_signals& s);
};

}  // namespace graceful::detail
