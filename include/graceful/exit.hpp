// graceful: bounded-concurrency async work with graceful shutdown, on Boost.Asio.
#pragma once

#include <graceful/report.hpp>

namespace graceful {

struct registry_snapshot;

/// Ends the process the way its parent expects after `report`'s run.
///
/// Flushes stdio first, with SIGPIPE ignored (a closed stdout does not change
/// how the process ends); std::cout and std::cerr write through stdio unless
/// the program called `std::ios_base::sync_with_stdio(false)`, and such a
/// program flushes them itself before this call. If a signal stopped the
/// run, restores that signal's default action and raises it, so that the
/// parent sees "killed by SIGINT" (what shells rely on to stop a script on
/// Ctrl+C); if that does not end the process (PID 1 of a container ignores
/// signals whose action is the default), `_exit(128 + signal)`. Otherwise
/// `std::exit(report.exit_code())`: 0 when every task completed, 1 if not.
[[noreturn]] void exit_process(const run_report& report);

/// As above, after a task_registry's shutdown (a server's): by the signal in
/// `snapshot` if one stopped it, else std::exit(snapshot.exit_code()).
[[noreturn]] void exit_process(const registry_snapshot& snapshot);

}  // namespace graceful
