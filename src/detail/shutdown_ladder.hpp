#pragma once

#include "one_thread_check.hpp"

#include <graceful/report.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

namespace graceful::detail {

using steady = std::chrono::steady_clock;

// t + d for a non-negative d, or the latest time point when that does not
// fit: a duration of centuries (duration::max()) means never, not an overflow.
constexpr steady::time_point later_by(steady::time_point t, steady::duration d) noexcept {
  return d >= steady::time_point::max() - t ? steady::time_point::max() : t + d;
}


// What a shutdown_ladder drives: a run (run_engine) or a registry's
// shutdown (async_shutdown). Every call comes on the ladder's executor.
class ladder_owner {
 public:
  // The cancel rung: every running task gets terminal cancellation now.
  virtual void ladder_cancel() = 0;
  // The drain budget is spent: give up on what still runs, then call the
  // ladder's finish().
  virtual void ladder_abandon(steady::time_point now) = 0;
  // The counts and the blockers of a progress report (the ladder fills in
  // the phase, the cause and the time since the stop).
  virtual void ladder_fill(run_progress& p) = 0;
  // The owner's own alarms (a run's deadline and task timeouts): when it
  // next needs a wake (max: none), and the wake itself.
  virtual steady::time_point ladder_next_alarm() { return steady::time_point::max(); }
  virtual void ladder_alarm(steady::time_point /*now*/) {}

 protected:
  ~ladder_owner() = default;
};

struct ladder_settings {
  duration grace{};
  duration drain_timeout{};
  std::function<void(const run_progress&)> on_progress;
  duration progress_interval{};
  // Keeps time (has a timer) even with none of the above: the owner has
  // alarms of its own.
  bool owner_alarms = false;
};

// The shutdown ladder, written once for runs and registries:
//
//   running ──request()──> grace ──grace over, or request() again──> cancelling
//      │  (no grace, a failure, nothing running: straight on) ─────────^      │
//      │                                                                      │ drain_timeout:
//      └────────────── finish() ─────────> done <────── finish() ─────────────┤ ladder_abandon()
//                                                                             ┘
// request() stops nothing by itself: the owner stops its starts and tells its
// tasks (this_task), and the ladder says when to cancel (ladder_cancel) and
// when to give up (ladder_abandon). One timer wakes for the earliest of: the
// end of the grace, the end of the drain budget, the next progress report,
// and the owner's own alarms; it is armed again only when it must wake
// earlier than it would (a wake that finds nothing due arms for what is).
// A ladder that keeps no time (no grace, no drain budget, no progress, no
// alarms of the owner) has no timer and reads no clock.
//
// Everything runs on the executor given at construction (a strand, or a
// one-thread context's executor).
class shutdown_ladder {
 public:
  shutdown_ladder(const boost::asio::any_io_executor& ex, ladder_settings settings,
                  ladder_owner& owner, one_thread_check* check);
  shutdown_ladder(const shutdown_ladder&) = delete;
  shutdown_ladder& operator=(const shutdown_ladder&) = delete;

  // Whether the ladder keeps time (see above).
  bool timed() const noexcept { return timer_.has_value(); }
  run_phase phase() const noexcept { return phase_; }
  stop_cause cause() const noexcept { return cause_; }
  int signal_number() const noexcept { return signal_; }

  // The owner, held by the timer's pending wait: set before anything else
  // (the ladder is a member of what it holds).
  void hold(std::weak_ptr<void> owner) noexcept { keep_alive_ = std::move(owner); }

  // The owner starts: a progress report (phase running).
  void start();
  // A stop request. The first moves on to the grace (with one, when
  // `grace_allowed`) or straight to the cancel; a later one during the grace
  // ends it. Returns true for the first.
  bool request(stop_cause cause, int signal_number, bool grace_allowed);
  // The owner is done (every task ended, or the rest abandoned): no more
  // wakes; a last progress report (phase done).
  void finish();
  // The owner's alarms changed: wake no later than `t`.
  void wake_by(steady::time_point t);

 private:
  void begin_cancel();
  void arm_next();
  void on_wake();
  void report(steady::time_point now);
  void call_on_progress(const run_progress& p) noexcept;

  ladder_settings settings_;
  ladder_owner& owner_;
  std::weak_ptr<void> keep_alive_;
  one_thread_check* check_;
  std::optional<boost::asio::steady_timer> timer_;
  steady::time_point wake_ = steady::time_point::max();  // the armed wait's end
  std::uint64_t wake_generation_ = 0;                    // the armed wait's
  run_phase phase_ = run_phase::running;
  stop_cause cause_ = stop_cause::none;
  int signal_ = 0;
  steady::time_point stop_at_{};
  steady::time_point cancel_at_{};
  steady::time_point next_report_ = steady::time_point::max();
  int reporting_ = 0;  // on_progress calls under way (one may finish the owner)
};

}  // namespace graceful::detail
