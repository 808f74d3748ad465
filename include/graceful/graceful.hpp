// graceful: bounded-concurrency async work with graceful shutdown, on Boost.Asio.
// The umbrella header: every public component.
#pragma once

#include <graceful/async_semaphore.hpp>
#include <graceful/error.hpp>
#include <graceful/exit.hpp>
#include <graceful/from_range.hpp>
#include <graceful/memory.hpp>
#include <graceful/report.hpp>
#include <graceful/run_tasks.hpp>
#include <graceful/shield.hpp>
#include <graceful/signals.hpp>
#include <graceful/systemd.hpp>
#include <graceful/task.hpp>
#include <graceful/task_registry.hpp>
#include <graceful/this_task.hpp>
