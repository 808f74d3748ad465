#pragma once

#include <graceful/signals.hpp>

#include <functional>

namespace graceful::detail {

// What the blocking run_tasks needs of shutdown_signals beyond its public
// interface.
class signals_access {
 public:
  // `hook(signal_number)` runs for the first signal inside the signal_set's
  // own handler, before any async_wait handler, with no executor hop and no
  // type-erased handler between the signal and the stop (an async_wait
  // handler's first run through those layers cost 11-15 us of a small run,
  // all of it cold code). At once, here, if the first signal already came.
  static void on_first_signal(shutdown_signals& s, std::function<void(int)> hook);
};

}  // namespace graceful::detail
