#pragma once

#include <graceful/run_tasks.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace graceful::detail {

// The state machine of one run (run_engine.cpp): the front ends, async_run_tasks
// and the blocking run_tasks, start it and stop it through these.
class run_engine;

// The first bad input in a run's arguments, described; empty if none.
std::string find_bad_input(const task_list_base& tasks, std::size_t max_concurrent,
                           const run_options& options);

// Starts a run whose input is valid; returns its engine, or null if the run
// already completed (an empty list). `own_handler`: the handler is the
// blocking run_tasks' own, and runs inline when a serial run ends.
std::shared_ptr<run_engine> start_run(asio::any_io_executor ex, std::shared_ptr<task_list_base> tasks,
                                      std::size_t max_concurrent, run_options options,
                                      run_handler handler, bool own_handler);

// What a signal does to the run: the first stops it, cause signal; a later
// one ends its grace period.
std::function<void(int)> run_signal_hook(const std::shared_ptr<run_engine>& engine);

}  // namespace graceful::detail
