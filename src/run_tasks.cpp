// The blocking run_tasks: a run on an io_context of its own, stopped by the
// process's shutdown signals.
#include <graceful/run_tasks.hpp>
#include <graceful/signals.hpp>

#include "detail/context_lease.hpp"
#include "detail/run_engine.hpp"
#include "detail/signals_access.hpp"
#include "detail/systemd_status.hpp"
#include "detail/thread_runner.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include <cstdio>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace graceful::detail {

run_report run_tasks_blocking(std::shared_ptr<task_list_base> tasks, std::size_t max_concurrent,
                              run_options options) {
  if (auto bad = find_bad_input(*tasks, max_concurrent, options); !bad.empty()) {
    throw std::invalid_argument("graceful::run_tasks: " + bad);
  }
  if (options.threads == 0) {
    throw std::invalid_argument("graceful::run_tasks: threads must be at least 1");
  }
  // One thread: the leased context is built with concurrency hint 1, so the
  // run is serial too (one_thread_executor).
  const bool serial = options.threads == 1;
  context_lease lease(options.threads);
  asio::io_context& ctx = lease.context();
  // The run's handler runs one at a time with the run's own handlers (on its
  // strand; one thread needs none). The first signal goes straight from the
  // signal_set's handler to request_stop, which hops onto the run's strand.
  asio::any_io_executor handler_ex =
      serial ? asio::any_io_executor(ctx.get_executor()) : asio::any_io_executor(asio::make_strand(ctx));
  // Listening starts before any task does: a signal during start-up counts.
  shutdown_signals signals(ctx.get_executor(), options.signals);
  // systemd hears of the run through its progress reports.
  std::shared_ptr<systemd_status> status = systemd_status::make(options);
  if (status) {
    options.on_progress = [status, user = std::move(options.on_progress)](const run_progress& p) {
      status->progress(p);
      if (user) user(p);
    };
    if (options.progress_interval <= duration{}) options.progress_interval = run_options{}.progress_interval;
    status->start_watchdog(handler_ex);
  }
  run_report report;
  bool abandoned = false;
  auto engine = start_run(ctx.get_executor(), std::move(tasks), max_concurrent, options,
                          asio::bind_executor(handler_ex, [&](boost::system::error_code, run_report r) {
                            report = std::move(r);
                            signals.close();  // nothing left to stop: let the context run out
                            if (status) status->stop_watchdog();
                            // Tasks given up on would keep it busy: stop it.
                            abandoned = report.count(task_outcome::abandoned) > 0;
                            if (abandoned) ctx.stop();
                          }),
                          true);
  if (engine) {
    // request_stop hops onto the run's strand (on one thread it is there).
    // The run's own listener goes with this call: nothing to forget.
    signals_access::on_signals(signals_access::state_of(signals), nullptr, run_signal_hook(engine));
  } else {
    signals.close();
    if (status) {
      status->stop_watchdog();  // the loop has not run yet
      status->nothing_to_run();
    }
  }
  engine.reset();

  run_on_threads(ctx, options.threads);
  if (abandoned) {
    // The context, still holding the abandoned tasks, is destroyed with the
    // lease (not kept): their frames go unfinished.
    // Through stdio: <iostream> would construct the standard streams (and
    // the classic locale) in every program that links this file.
    std::ostringstream text;
    text << report;
    std::fputs(text.str().c_str(), stderr);
    std::fflush(stderr);
  } else {
    lease.ran_out();
  }
  return report;
}

}  // namespace graceful::detail
