#pragma once

#include "relay_executor.hpp"

#include <graceful/report.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <boost/version.hpp>

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

// How a task that threw ended: operation_aborted is a cancellation (if one
// was asked for), anything else a failure. Call inside a catch block.
inline task_end ended_by(const boost::system::system_error& e) noexcept {
  return {e.code() == boost::asio::error::operation_aborted ? end_kind::aborted : end_kind::threw,
          std::current_exception()};
}
inline task_end ended_by_exception() noexcept { return {end_kind::threw, std::current_exception()}; }

// asio::detail below (awaitable_thread, its entry point, has_context_switched)
// is compiled against Boost 1.81's Asio only: no other release ever sees it.
#if BOOST_VERSION == 108100 && !defined(GRACEFUL_PORTABLE_SPAWN)

// The fast path, for the Asio this was measured on (Boost 1.81): a task is
// its own thread of execution whose entry point is graceful's frame, launched
// without co_spawn. Per task that is one coroutine frame less (co_spawn's
// entry point and a frame of ours become one), no proxy cancellation handler
// (the relay's signal is the thread's parent slot), no work guards (the
// caller keeps the context busy), and no hop through the executor at the
// start and at the end. Other Boost versions take the co_spawn path below,
// which needs nothing of Asio's internals.
#define GRACEFUL_DETAIL_OWN_ENTRY_POINT 1

using entry_point_awaitable =
    boost::asio::awaitable<boost::asio::detail::awaitable_thread_entry_point, boost::asio::any_io_executor>;

template <class OnEnd>
entry_point_awaitable task_entry_point(boost::asio::awaitable<void> task, cancel_relay* relay,
                                       OnEnd on_end) {
  using switched = boost::asio::detail::awaitable_thread_has_context_switched;
  (co_await switched{}) = false;
  task_end end;
  try {
    co_await std::move(task);
  } catch (const boost::system::system_error& e) {
    end = ended_by(e);
  } catch (...) {
    end = ended_by_exception();
  }
  // A task that never suspended ends after a post, as co_spawn does: on_end
  // then never runs inside spawn_task (no recursion through launch_next).
  if (!(co_await switched{})) {
    co_await boost::asio::post(boost::asio::use_awaitable_t<boost::asio::any_io_executor>{});
  }
  relay->end();
  on_end(std::move(end));
}

// Starts `task` on `strand` (a strand, or an executor that never runs two
// handlers at once) with `relay` as its cancellation: the coroutine's
// executor is a relay_executor (see relay_executor.hpp), its slot is the
// relay's signal, it runs with throw_if_cancelled(false). `on_end(task_end)`
// runs on the strand once the coroutine has completed. Call it on the strand:
// the coroutine then runs inline up to its first suspension, before any emit
// can reach it (an emit before a co_spawned coroutine first runs can throw out
// of io_context::run() in Asio 1.26). The caller keeps outstanding work on the
// context while the task runs.
template <class Serial, class OnEnd>
void spawn_task(const Serial& strand, relay_ref relay, boost::asio::awaitable<void> task,
                OnEnd on_end) {
  boost::asio::any_io_executor ex(relay_executor(strand, relay));
  boost::asio::cancellation_slot slot = relay.relay->signal.slot();
  boost::asio::cancellation_state state(slot);
  relay.relay->task_slot = state.slot();
  boost::asio::detail::awaitable_thread<boost::asio::any_io_executor> thread(
      task_entry_point(std::move(task), relay.relay, std::move(on_end)), ex, slot, state);
  thread.throw_if_cancelled(false);
  // The first step runs inline, not through the relay executor: a cancel it
  // causes (a task that stops its own run) still reaches its first await.
  run_step(relay, [&thread] { thread.launch(); });
}

#else

// Runs one task to its end. throw_if_cancelled(false) applies to the whole
// awaitable thread, the task's own frames included, so that a cancelled task
// can still co_await its shielded cleanup; the exception is classified here
// instead of being rethrown through co_spawn's completion.
boost::asio::awaitable<task_end> run_task_frame(boost::asio::awaitable<void> task, relay_ref relay);

// The completion of a task's co_spawn. It exposes its cancellation slot as a
// member rather than through bind_cancellation_slot: its associated executor
// then stays unspecialised, so co_spawn emits into the coroutine directly
// instead of dispatching a lambda that holds a raw pointer (it dangles in Asio
// 1.26 if the coroutine finishes before the lambda runs) and a
// copy of the executor.
template <class OnEnd>
struct task_completion {
  using cancellation_slot_type = boost::asio::cancellation_slot;

  relay_ref relay;
  OnEnd on_end;

  cancellation_slot_type get_cancellation_slot() const noexcept { return relay.relay->signal.slot(); }

  void operator()(std::exception_ptr e, task_end end) {
    relay.relay->end();
    if (e) end = {end_kind::threw, e};
    on_end(std::move(end));
  }
};

// As above, through co_spawn.
template <class Serial, class OnEnd>
void spawn_task(const Serial& strand, relay_ref relay, boost::asio::awaitable<void> task,
                OnEnd on_end) {
  boost::asio::any_io_executor ex(relay_executor(strand, relay));
  boost::asio::co_spawn(std::move(ex), run_task_frame(std::move(task), relay),
                        task_completion<OnEnd>{relay, std::move(on_end)});
}

#endif

}  // namespace graceful::detail
