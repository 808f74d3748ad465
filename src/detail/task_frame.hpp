#pragma once

#include "relay_executor.hpp"

#include <graceful/report.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/strand.hpp>

#include <cstdint>
#include <exception>
#include <memory>
#include <utility>

namespace graceful::detail {

// How a task's coroutine ended, classified once inside its own frame.
enum class end_kind : std::uint8_t { returned, aborted, threw };

struct task_end {
  end_kind kind = end_kind::returned;
  std::exception_ptr error;  // for aborted and threw
};

// How the report names a task's end: returned -> completed (even if a cancel
// came too late to matter); operation_aborted after a cancel it was sent ->
// cancelled_running; anything else -> failed.
inline task_outcome outcome_of(const task_end& end, bool cancel_requested) noexcept {
  if (end.kind == end_kind::returned) return task_outcome::completed;
  if (end.kind == end_kind::aborted && cancel_requested) return task_outcome::cancelled_running;
  return task_outcome::failed;
}

// Runs one task to its end. throw_if_cancelled(false) applies to the whole
// awaitable thread, the task's own frames included, so that a cancelled task
// can still co_await its shielded cleanup; the exception is classified here
// instead of being rethrown through co_spawn's completion.
boost::asio::awaitable<task_end> run_task_frame(boost::asio::awaitable<void> task);

// The completion of a task's co_spawn. It exposes its cancellation slot as a
// member rather than through bind_cancellation_slot: its associated executor
// then stays unspecialised, so co_spawn emits into the coroutine directly
// instead of dispatching a lambda that holds a raw pointer (Asio fact 2) and a
// copy of the executor (which holds the relay that holds the slot: a cycle).
template <class OnEnd>
struct task_completion {
  using cancellation_slot_type = boost::asio::cancellation_slot;

  relay_ptr relay;
  OnEnd on_end;

  cancellation_slot_type get_cancellation_slot() const noexcept { return relay->signal.slot(); }

  void operator()(std::exception_ptr e, task_end end) {
    relay->ended = true;
    if (e) end = {end_kind::threw, e};
    on_end(std::move(end));
  }
};

// Starts `task` on `strand` (a strand, or an executor that never runs two
// handlers at once) with `relay` as its cancellation: the coroutine's
// executor is a relay_executor (see relay_executor.hpp), its slot is the
// relay's signal. `on_end(task_end)` runs on the strand once the coroutine has
// completed. Call it on the strand: the coroutine then runs inline up to its
// first suspension, before any emit can reach it (Asio fact 3).
template <class Serial, class OnEnd>
void spawn_task(const Serial& strand, relay_ptr relay, boost::asio::awaitable<void> task,
                OnEnd on_end) {
  boost::asio::any_io_executor ex(relay_executor(strand, relay));
  boost::asio::co_spawn(std::move(ex), run_task_frame(std::move(task)),
                        task_completion<OnEnd>{std::move(relay), std::move(on_end)});
}

}  // namespace graceful::detail
