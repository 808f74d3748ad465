#include "detail/shutdown_ladder.hpp"

#include <algorithm>
#include <utility>

namespace graceful::detail {

namespace {

bool keeps_time(const ladder_settings& s) noexcept {
  return s.grace != duration{} || s.drain_timeout != duration{} || static_cast<bool>(s.on_progress) ||
         s.owner_alarms;
}

}  // namespace

shutdown_ladder::shutdown_ladder(const boost::asio::any_io_executor& ex, ladder_settings settings,
                                 ladder_owner& owner, one_thread_check* check)
    : settings_(std::move(settings)), owner_(owner), check_(check) {
  if (keeps_time(settings_)) timer_.emplace(ex);
}

void shutdown_ladder::start() {
  if (timed() && phase_ == run_phase::running) report(steady::now());
}

bool shutdown_ladder::request(stop_cause cause, int signal_number, bool grace_allowed) {
  if (phase_ == run_phase::done) return false;
  if (phase_ != run_phase::running) {
    if (phase_ == run_phase::grace) begin_cancel();
    return false;
  }
  cause_ = cause;
  signal_ = signal_number;
  if (timed()) stop_at_ = steady::now();
  if (settings_.grace > duration{} && grace_allowed) {
    phase_ = run_phase::grace;
    wake_by(later_by(stop_at_, settings_.grace));
    report(stop_at_);
  } else {
    begin_cancel();
  }
  return true;
}

void shutdown_ladder::begin_cancel() {
  phase_ = run_phase::cancelling;
  owner_.ladder_cancel();
  if (!timed() || phase_ == run_phase::done) return;
  cancel_at_ = steady::now();
  if (settings_.drain_timeout > duration{}) wake_by(later_by(cancel_at_, settings_.drain_timeout));
  report(cancel_at_);
}

void shutdown_ladder::finish() {
  if (phase_ == run_phase::done) return;
  phase_ = run_phase::done;
  if (!timed()) return;
  ++wake_generation_;
  timer_->cancel();
  report(steady::now());
  // The last report: what on_progress captured goes now, not with the owner
  // (after the report that runs, if this finish comes from inside it).
  if (reporting_ == 0) settings_.on_progress = nullptr;
}

void shutdown_ladder::wake_by(steady::time_point t) {
  if (t >= wake_ || phase_ == run_phase::done) return;
  wake_ = t;
  timer_->expires_at(t);  // a wait it replaces completes, and is ignored
  timer_->async_wait(
      [this, keep = keep_alive_.lock(), g = ++wake_generation_](boost::system::error_code) {
        one_thread_scope scope(check_);
        if (g == wake_generation_) on_wake();
      });
}

void shutdown_ladder::arm_next() {
  steady::time_point t = owner_.ladder_next_alarm();
  if (phase_ == run_phase::grace) t = std::min(t, later_by(stop_at_, settings_.grace));
  if (phase_ == run_phase::cancelling && settings_.drain_timeout > duration{}) {
    t = std::min(t, later_by(cancel_at_, settings_.drain_timeout));
  }
  if (phase_ != run_phase::running && settings_.on_progress) t = std::min(t, next_report_);
  if (t != steady::time_point::max()) wake_by(t);
}

void shutdown_ladder::on_wake() {
  wake_ = steady::time_point::max();
  if (phase_ == run_phase::done) return;
  const auto now = steady::now();
  owner_.ladder_alarm(now);
  if (phase_ == run_phase::grace && now >= later_by(stop_at_, settings_.grace)) begin_cancel();
  if (phase_ == run_phase::done) return;
  if (phase_ == run_phase::cancelling && settings_.drain_timeout > duration{} &&
      now >= later_by(cancel_at_, settings_.drain_timeout)) {
    return owner_.ladder_abandon(now);
  }
  if (phase_ != run_phase::running && settings_.on_progress && now >= next_report_) report(now);
  arm_next();
}

void shutdown_ladder::report(steady::time_point now) {
  if (!settings_.on_progress) return;
  next_report_ = later_by(now, settings_.progress_interval);
  if (phase_ == run_phase::grace || phase_ == run_phase::cancelling) wake_by(next_report_);
  run_progress p;
  p.phase = phase_;
  p.cause = cause_;
  p.signal_number = signal_;
  if (phase_ != run_phase::running) p.since_stop = now - stop_at_;
  owner_.ladder_fill(p);
  call_on_progress(p);
}

// An exception out of on_progress ends the process: the owner cannot go on
// half-way through a phase change.
void shutdown_ladder::call_on_progress(const run_progress& p) noexcept {
  ++reporting_;
  settings_.on_progress(p);
  if (--reporting_ == 0 && phase_ == run_phase::done) settings_.on_progress = nullptr;
}

}  // namespace graceful::detail
