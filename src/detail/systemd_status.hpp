#pragma once

#include <graceful/report.hpp>
#include <graceful/run_tasks.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

namespace graceful::detail {

// What the blocking run_tasks tells systemd (run_options::notify_systemd),
// driven by the run's progress reports:
//   running (the start)   READY=1, STATUS=
//   the first stop report STOPPING=1, STATUS=
//   each later report     STATUS=, and EXTEND_TIMEOUT_USEC= if a task ended
//                         since the last one (a stalled drain asks for no
//                         more time), never past the end of the drain budget
//   done                  STATUS=
// STOPPING and EXTEND only when a signal stopped the run (the service is
// stopping); a deadline or a failure gets STATUS= lines only.
// and WATCHDOG=1 every half $WATCHDOG_USEC while the run goes on, when
// $WATCHDOG_PID is unset or this process.
class systemd_status : public std::enable_shared_from_this<systemd_status> {
 public:
  // Null unless `o.notify_systemd` and $NOTIFY_SOCKET is set.
  static std::shared_ptr<systemd_status> make(const run_options& o);

  explicit systemd_status(const run_options& o);

  // On the run's strand: one progress report.
  void progress(const run_progress& p);
  // An empty task list: the run completes at once, with no report.
  void nothing_to_run();

  // The watchdog's pings, on `ex`, until stop_watchdog() (on `ex` too).
  void start_watchdog(const boost::asio::any_io_executor& ex);
  void stop_watchdog();

  // The line after STATUS= for `p` (for the tests as much as for systemd).
  std::string status_text(const run_progress& p) const;

 private:
  void ping();

  const std::function<std::string(std::size_t)> names_;
  const duration drain_timeout_;
  const duration extension_;  // what one EXTEND_TIMEOUT_USEC asks for at most
  bool stopping_ = false;
  std::optional<duration> cancel_since_stop_;  // when the cancel came, since the stop
  std::size_t last_ended_ = 0;
  std::optional<boost::asio::steady_timer> watchdog_;  // on the executor of start_watchdog
  bool watching_ = false;
  duration watchdog_every_{};
};

}  // namespace graceful::detail
