#include "detail/systemd_status.hpp"

#include <graceful/systemd.hpp>

#include <boost/system/error_code.hpp>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <sstream>
#include <utility>

#include <unistd.h>

namespace graceful::detail {

namespace {

// $WATCHDOG_USEC, if it is set for this process; zero otherwise.
std::chrono::microseconds watchdog_usec() {
  const char* usec = std::getenv("WATCHDOG_USEC");
  if (usec == nullptr) return {};
  if (const char* pid = std::getenv("WATCHDOG_PID"); pid != nullptr && *pid != '\0') {
    char* end = nullptr;
    const long long p = std::strtoll(pid, &end, 10);
    if (*end != '\0' || p != static_cast<long long>(::getpid())) return {};
  }
  char* end = nullptr;
  const unsigned long long n = std::strtoull(usec, &end, 10);
  if (end == usec || *end != '\0') return {};
  return std::chrono::microseconds(static_cast<std::chrono::microseconds::rep>(n));
}

long long whole_usec(duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

}  // namespace

std::shared_ptr<systemd_status> systemd_status::make(const run_options& o) {
  if (!o.notify_systemd || !systemd::enabled()) return nullptr;
  return std::make_shared<systemd_status>(o);
}

systemd_status::systemd_status(const run_options& o)
    : names_(o.task_name),
      drain_timeout_(o.drain_timeout),
      // A report comes every progress_interval: asked for twice that, the
      // time lasts until the next one even when it comes late. (Under
      // systemd a run always reports: a zero interval is the default one.)
      extension_(2 * (o.progress_interval > duration{} ? o.progress_interval : run_options{}.progress_interval)) {}

void systemd_status::nothing_to_run() { systemd::notify("READY=1\nSTATUS=done: no tasks"); }

std::string systemd_status::status_text(const run_progress& p) const {
  std::ostringstream s;
  const std::size_t total = p.running + p.queued + p.not_started + p.ended;
  if (p.phase == run_phase::running) {
    s << "running " << total << " tasks";
  } else if (p.phase == run_phase::done) {
    s << "done";
  } else {
    s << "stopping (" << p.cause;
    if (p.signal_number != 0) s << ' ' << p.signal_number;
    s << ", " << std::chrono::duration_cast<std::chrono::milliseconds>(p.since_stop).count()
      << " ms ago): " << p.phase;
  }
  s << ": " << p.running << " running, " << (p.queued + p.not_started) << " waiting, " << p.ended
    << " ended";
  if (p.phase != run_phase::running && p.phase != run_phase::done && !p.blocking.empty()) {
    constexpr std::size_t names_shown = 3;
    s << "; waiting for";
    for (std::size_t k = 0; k < p.blocking.size() && k < names_shown; ++k) {
      s << (k == 0 ? " " : ", ");
      const std::size_t i = p.blocking[k];
      std::string name;
      try {
        if (names_) name = names_(i);
      } catch (...) {
        name.clear();  // a name that throws: as if there were none
      }
      s << (name.empty() ? "task #" + std::to_string(i) : name);
    }
    if (p.running > names_shown) s << " and " << (p.running - names_shown) << " more";
  }
  return s.str();
}

void systemd_status::progress(const run_progress& p) {
  std::string message;
  switch (p.phase) {
    case run_phase::running:
      message = "READY=1\n";
      break;
    case run_phase::grace:
    case run_phase::cancelling:
      // Only a signal stops the service: a deadline or a failure stops this
      // run, and the process may go on (STOPPING=1 would have systemd
      // treat the service as stopping, and kill it at TimeoutStopSec).
      if (p.cause != stop_cause::signal) break;
      if (p.phase == run_phase::cancelling && !cancel_since_stop_) cancel_since_stop_ = p.since_stop;
      if (!stopping_) {
        stopping_ = true;
        message = "STOPPING=1\n";
      } else if (p.ended > last_ended_) {
        duration more = extension_;
        if (drain_timeout_ > duration{}) {
          // The run completes at the end of the drain budget, at the latest:
          // drain_timeout after the cancel. During the grace the cancel may
          // come at any moment (a second signal): no more than the budget.
          more = std::min(more, cancel_since_stop_ ? *cancel_since_stop_ + drain_timeout_ - p.since_stop
                                                   : drain_timeout_);
        }
        if (more > duration{}) message = "EXTEND_TIMEOUT_USEC=" + std::to_string(whole_usec(more)) + "\n";
      }
      break;
    case run_phase::done:
      break;
  }
  last_ended_ = p.ended;
  message += "STATUS=" + status_text(p);
  systemd::notify(message);  // best effort: a manager that is gone changes nothing here
}

void systemd_status::start_watchdog(const boost::asio::any_io_executor& ex) {
  const auto usec = watchdog_usec();
  if (usec <= std::chrono::microseconds{}) return;
  watchdog_every_ = usec / 2;
  watchdog_.emplace(ex);
  watching_ = true;
  ping();
}

void systemd_status::ping() {
  systemd::notify("WATCHDOG=1");
  watchdog_->expires_after(watchdog_every_);
  watchdog_->async_wait([self = shared_from_this()](boost::system::error_code) {
    if (self->watching_) self->ping();
  });
}

void systemd_status::stop_watchdog() {
  watching_ = false;
  if (watchdog_) watchdog_->cancel();
}

}  // namespace graceful::detail
