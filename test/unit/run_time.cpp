// Time in a run: the deadline, task timeouts, the grace period, the drain
// budget, progress reports, names, and this_task.
#include <graceful/run_tasks.hpp>
#include <graceful/shield.hpp>
#include <graceful/this_task.hpp>

#include "context_hints.hpp"
#include "report_checks.hpp"
#include "task_probe.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace asio = boost::asio;
using boost::system::error_code;
using graceful::run_phase;
using graceful::run_report;
using graceful::stop_cause;
using graceful::task_outcome;
using namespace std::chrono_literals;
using namespace graceful_test;
using clock_type = std::chrono::steady_clock;

using timed_result = completion<run_report>;

namespace {


// Took at least `at_least` (a timer never fires early), and not forever:
// timing is asserted only with a generous upper bound.
void check_took(clock_type::duration took, clock_type::duration at_least) {
  BOOST_TEST((took >= at_least));
  BOOST_TEST((took < 10s));
}

// A task that returns after `d` (or ends by its cancellation).
task timed(probe& p, std::size_t i, std::chrono::milliseconds d) { return sleeper(p, i, d); }

// Emits `type` on `sig` once `n` tasks have started.
void cancel_when_started(asio::io_context& ctx, probe& p, asio::cancellation_signal& sig, int n) {
  p.on_start = [&ctx, &p, &sig, n] {
    if (p.started == n) asio::post(ctx, [&sig] { sig.emit(asio::cancellation_type::terminal); });
  };
}

}  // namespace

BOOST_AUTO_TEST_SUITE(run_time)

BOOST_DATA_TEST_CASE(the_deadline_stops_the_run_as_a_signal_would, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  graceful::run_options o;
  o.deadline = 50ms;
  timed_result res;
  const auto t0 = clock_type::now();
  graceful::async_run_tasks(ctx.get_executor(), sleepers(p, 6, 1h), 3, o, res.handler());
  ctx.run();
  BOOST_TEST(res.calls == 1);
  const auto& r = res.value;
  BOOST_TEST(r.cause() == stop_cause::deadline);
  BOOST_TEST(r.count(task_outcome::cancelled_running) == 3u);
  BOOST_TEST(r.count(task_outcome::cancelled_queued) == 1u);
  BOOST_TEST(r.count(task_outcome::not_started) == 2u);
  BOOST_TEST(p.cleaned.load() == 3);
  BOOST_TEST(r.exit_code() == 1);
  check_took(res.at - t0, 50ms);
  check_accounting(r);
}

BOOST_DATA_TEST_CASE(a_deadline_that_never_comes_changes_nothing, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  graceful::run_options o;
  o.deadline = 1h;
  o.task_timeout = 1h;
  timed_result res;
  graceful::async_run_tasks(ctx.get_executor(), sleepers(p, 20, 1ms), 4, o, res.handler());
  ctx.run();  // returns: the run's timer goes with the run
  BOOST_TEST(res.value.cause() == stop_cause::none);
  BOOST_TEST(res.value.count(task_outcome::completed) == 20u);
  BOOST_TEST(res.value.exit_code() == 0);
}

BOOST_DATA_TEST_CASE(durations_too_long_to_add_mean_never, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  asio::cancellation_signal sig;
  cancel_when_started(ctx, p, sig, 2);
  graceful::run_options o;
  o.deadline = graceful::duration::max();
  o.task_timeout = graceful::duration::max();
  o.grace = graceful::duration::max();
  o.drain_timeout = graceful::duration::max();
  o.progress_interval = graceful::duration::max();
  std::vector<run_phase> phases;
  o.on_progress = [&](const graceful::run_progress& pr) { phases.push_back(pr.phase); };
  timed_result res;
  graceful::async_run_tasks(ctx.get_executor(), sleepers(p, 2, 50ms), 2, o,
                            asio::bind_cancellation_slot(sig.slot(), res.handler()));
  ctx.run();
  // No deadline, no timeout: both tasks run until the stop request, then
  // finish within a grace that never ends.
  BOOST_TEST(res.value.cause() == stop_cause::cancelled);
  BOOST_TEST(res.value.count(task_outcome::completed) == 2u);
  BOOST_TEST((phases == std::vector<run_phase>{run_phase::running, run_phase::grace, run_phase::done}));
}

BOOST_DATA_TEST_CASE(exactly_the_slow_tasks_time_out_and_the_others_complete, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  std::vector<task> tasks;
  const std::vector<std::size_t> slow{1, 4, 7};
  for (std::size_t i = 0; i < 10; ++i) {
    bool is_slow = std::find(slow.begin(), slow.end(), i) != slow.end();
    tasks.push_back(timed(p, i, is_slow ? 1h : 1ms));
  }
  graceful::run_options o;
  o.task_timeout = 100ms;
  timed_result res;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 4, o, res.handler());
  ctx.run();
  const auto& r = res.value;
  BOOST_TEST(r.cause() == stop_cause::none);
  BOOST_TEST(r.indices(task_outcome::timed_out) == slow);
  BOOST_TEST(r.count(task_outcome::completed) == 7u);
  BOOST_TEST(p.cleaned.load() == 10);  // each once
  BOOST_TEST(p.started.load() == 10);
  BOOST_TEST(r.exit_code() == 1);
  for (std::size_t i : slow) BOOST_TEST((r.ran_for(i) >= 100ms));
  BOOST_TEST((r.ran_for(0) == graceful::duration{}));  // completed: not kept
  check_accounting(r);
}

BOOST_DATA_TEST_CASE(under_cancel_all_the_first_timeout_stops_the_run, context_hints, hint) {
  for (auto policy : {graceful::failure_policy::continue_running, graceful::failure_policy::cancel_all}) {
    BOOST_TEST_CONTEXT("cancel_all " << (policy == graceful::failure_policy::cancel_all)) {
      asio::io_context ctx(hint);
      probe p;
      std::vector<task> tasks;
      tasks.push_back(timed(p, 0, 20ms));
      for (std::size_t i = 1; i < 4; ++i) tasks.push_back(timed(p, i, 1h));
      graceful::run_options o;
      o.on_failure = policy;
      o.task_timeout = 50ms;
      timed_result res;
      graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 1, o, res.handler());
      ctx.run();
      const auto& r = res.value;
      BOOST_TEST(r.outcome(0) == task_outcome::completed);
      BOOST_TEST(r.outcome(1) == task_outcome::timed_out);
      if (policy == graceful::failure_policy::cancel_all) {
        BOOST_TEST(r.cause() == stop_cause::failure);
        // Stopped at the timeout, while task 2 waited for the slot.
        BOOST_TEST(r.outcome(2) == task_outcome::cancelled_queued);
        BOOST_TEST(r.outcome(3) == task_outcome::not_started);
        BOOST_TEST(p.started.load() == 2);
      } else {
        BOOST_TEST(r.cause() == stop_cause::none);
        BOOST_TEST(r.count(task_outcome::timed_out) == 3u);
        BOOST_TEST(p.cleaned.load() == 4);
      }
      check_accounting(r);
    }
  }
}

BOOST_DATA_TEST_CASE(the_grace_lets_tasks_finish_and_wind_down_before_the_cancel, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  asio::cancellation_signal sig;
  bool requested_before = true, requested_after = false;
  std::vector<task> tasks;
  tasks.push_back(timed(p, 0, 100ms));  // finishes within the grace
  tasks.push_back([&]() -> asio::awaitable<void> {  // winds down when told
    p.start(1, false);
    cleanup_guard g{p};
    requested_before = co_await graceful::this_task::stop_requested();
    co_await graceful::this_task::async_wait_stop(asio::use_awaitable);
    requested_after = co_await graceful::this_task::stop_requested();
  });
  tasks.push_back(timed(p, 2, 1h));  // cancelled when the grace ends
  tasks.push_back(timed(p, 3, 1h));  // never starts
  cancel_when_started(ctx, p, sig, 3);
  graceful::run_options o;
  o.grace = 300ms;
  timed_result res;
  auto t_stop = clock_type::now();
  p.on_start = [&, inner = p.on_start] {
    if (p.started == 3) t_stop = clock_type::now();
    inner();
  };
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 3, o,
                            asio::bind_cancellation_slot(sig.slot(), res.handler()));
  ctx.run();
  const auto& r = res.value;
  BOOST_TEST(r.cause() == stop_cause::cancelled);
  BOOST_TEST(r.outcome(0) == task_outcome::completed);
  BOOST_TEST(r.outcome(1) == task_outcome::completed);
  BOOST_TEST(r.outcome(2) == task_outcome::cancelled_running);
  BOOST_TEST(r.outcome(3) == task_outcome::cancelled_queued);
  BOOST_TEST(!requested_before);
  BOOST_TEST(requested_after);
  BOOST_TEST(p.cleaned.load() == 3);
  check_took(res.at - t_stop, 300ms);
  check_accounting(r);
}

BOOST_DATA_TEST_CASE(a_second_stop_request_ends_the_grace_at_once, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  asio::cancellation_signal sig;
  p.on_start = [&] {
    if (p.started == 2) {
      asio::post(ctx, [&] {
        sig.emit(asio::cancellation_type::terminal);
        asio::post(ctx, [&] { sig.emit(asio::cancellation_type::terminal); });
      });
    }
  };
  graceful::run_options o;
  o.grace = 1h;  // the run ends only if the second request cuts it short
  timed_result res;
  graceful::async_run_tasks(ctx.get_executor(), sleepers(p, 2, 1h), 2, o,
                            asio::bind_cancellation_slot(sig.slot(), res.handler()));
  ctx.run();
  BOOST_TEST(res.value.cause() == stop_cause::cancelled);
  BOOST_TEST(res.value.count(task_outcome::cancelled_running) == 2u);
  BOOST_TEST(p.cleaned.load() == 2);
}

BOOST_DATA_TEST_CASE(a_failure_under_cancel_all_skips_the_grace, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  std::vector<task> tasks = sleepers(p, 2, 1h);
  tasks.push_back([]() -> asio::awaitable<void> {
    co_await asio::post(asio::use_awaitable);
    throw std::runtime_error("boom");
  });
  graceful::run_options o;
  o.on_failure = graceful::failure_policy::cancel_all;
  o.grace = 1h;
  timed_result res;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 3, o, res.handler());
  ctx.run();
  BOOST_TEST(res.value.cause() == stop_cause::failure);
  BOOST_TEST(res.value.count(task_outcome::cancelled_running) == 2u);
}

BOOST_DATA_TEST_CASE(a_hung_cleanup_is_abandoned_at_the_drain_budget_and_ends_safely_later,
                     context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  asio::cancellation_signal sig;
  asio::steady_timer gate(ctx, asio::steady_timer::time_point::max());
  auto capture = std::make_shared<int>(0);
  std::weak_ptr<int> watch = capture;
  std::vector<task> tasks;
  tasks.push_back(timed(p, 0, 1h));  // cancelled, cleans up at once
  tasks.push_back(hangs_in_cleanup(p, 1, gate, capture));
  tasks.push_back(timed(p, 2, 1h));
  capture.reset();
  cancel_when_started(ctx, p, sig, 3);
  graceful::run_options o;
  o.drain_timeout = 100ms;
  o.task_name = [](std::size_t i) { return "worker-" + std::to_string(i); };
  timed_result res;
  clock_type::time_point t_cancel{};
  asio::cancellation_slot slot = sig.slot();
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 3, o,
                            asio::bind_cancellation_slot(slot, [&](error_code e, run_report r) {
                              res.handler()(e, std::move(r));
                              // The run completed without task 1: open its gate
                              // only after the report is gone.
                              std::ostringstream text;
                              text << res.value;
                              BOOST_TEST(text.str().find("abandoned:\n    worker-1 (ran ") !=
                                         std::string::npos, text.str());
                              res.value = run_report{};
                              asio::post(ctx, [&] { gate.cancel(); });
                            }));
  p.on_start = [&, inner = p.on_start] {
    if (p.started == 3) t_cancel = clock_type::now();
    inner();
  };
  ctx.run();  // returns once the abandoned task has ended too
  BOOST_TEST(res.calls == 1);
  check_took(res.at - t_cancel, 100ms);
  BOOST_TEST(p.cleaned.load() == 3);
  BOOST_TEST(watch.expired(), "use_count " << watch.use_count());  // its callable went when it ended
}

BOOST_AUTO_TEST_CASE(a_task_name_that_throws_leaves_the_printed_report_whole) {
  asio::io_context ctx(1);
  std::vector<task> tasks;
  for (int i = 0; i < 2; ++i) {
    tasks.push_back([]() -> asio::awaitable<void> {
      throw std::runtime_error("boom");
      co_return;
    });
  }
  graceful::run_options o;
  o.task_name = [](std::size_t i) -> std::string {
    if (i == 0) throw std::runtime_error("no name");
    return "worker-" + std::to_string(i);
  };
  timed_result res;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 2, o, res.handler());
  ctx.run();
  BOOST_TEST_REQUIRE(res.calls == 1);
  BOOST_TEST(res.value.count(task_outcome::failed) == 2u);
  BOOST_CHECK_THROW(res.value.name(0), std::runtime_error);  // asked for, it is the user's answer
  std::ostringstream text;
  BOOST_CHECK_NO_THROW(text << res.value);
  BOOST_TEST(text.str().find("    task #0: boom\n    worker-1: boom\n") != std::string::npos,
             text.str());
}

BOOST_DATA_TEST_CASE(a_timed_out_task_still_in_its_cleanup_is_abandoned_at_the_stop_s_drain_budget,
                     context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  asio::steady_timer gate(ctx, asio::steady_timer::time_point::max());
  std::vector<task> tasks;
  tasks.push_back(hangs_in_cleanup(p, 0, gate, std::make_shared<int>(0)));
  graceful::run_options o;
  o.task_timeout = 20ms;  // its cleanup hangs: the run waits for it
  o.deadline = 100ms;     // until the stop,
  o.drain_timeout = 50ms;  // whose budget gives up on it
  timed_result res;
  const auto t0 = clock_type::now();
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 1, o,
                            [&](error_code e, run_report r) {
                              res.handler()(e, std::move(r));
                              gate.cancel();
                            });
  ctx.run_for(10s);
  BOOST_REQUIRE(res.calls == 1);
  BOOST_TEST(res.value.cause() == stop_cause::deadline);
  BOOST_TEST(res.value.outcome(0) == task_outcome::abandoned);
  check_took(res.at - t0, 150ms);
  BOOST_TEST(p.cleaned.load() == 1);  // its cleanup ended, late
}

BOOST_DATA_TEST_CASE(the_report_names_abandoned_tasks_with_how_long_they_ran, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  asio::cancellation_signal sig;
  asio::steady_timer gate(ctx, asio::steady_timer::time_point::max());
  std::vector<task> tasks;
  tasks.push_back(hangs_in_cleanup(p, 0, gate, std::make_shared<int>(0)));
  tasks.push_back([]() -> asio::awaitable<void> {
    co_await asio::post(asio::use_awaitable);
    throw std::runtime_error("disk full");
  });
  cancel_when_started(ctx, p, sig, 1);
  graceful::run_options o;
  o.drain_timeout = 50ms;
  timed_result res;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 2, o,
                            asio::bind_cancellation_slot(sig.slot(), [&](error_code e, run_report r) {
                              res.handler()(e, std::move(r));
                              gate.cancel();
                            }));
  ctx.run();
  const auto& r = res.value;
  BOOST_TEST(r.outcome(0) == task_outcome::abandoned);
  BOOST_TEST(r.outcome(1) == task_outcome::failed);
  BOOST_TEST((r.ran_for(0) >= 50ms));
  BOOST_TEST(r.exit_code() == 1);
  std::ostringstream text;
  text << r;
  const std::string s = text.str();
  BOOST_TEST(s.find("stopped (cancelled)") != std::string::npos, s);
  BOOST_TEST(s.find("failed:\n    task #1") != std::string::npos, s);
  BOOST_TEST(s.find("disk full") != std::string::npos, s);
  BOOST_TEST(s.find("abandoned:\n    task #0 (ran ") != std::string::npos, s);
  check_accounting(r);
}

BOOST_DATA_TEST_CASE(progress_comes_at_each_phase_and_names_the_blockers_oldest_first, context_hints,
                     hint) {
  asio::io_context ctx(hint);
  probe p;
  asio::cancellation_signal sig;
  asio::steady_timer gate(ctx, asio::steady_timer::time_point::max());
  std::vector<task> tasks;
  tasks.push_back(timed(p, 0, 1h));
  tasks.push_back(hangs_in_cleanup(p, 1, gate, std::make_shared<int>(0)));
  tasks.push_back(hangs_in_cleanup(p, 2, gate, std::make_shared<int>(0)));
  tasks.push_back(timed(p, 3, 1h));
  tasks.push_back(timed(p, 4, 1h));
  cancel_when_started(ctx, p, sig, 3);
  std::vector<graceful::run_progress> seen;
  graceful::run_options o;
  o.grace = 50ms;
  o.on_progress = [&](const graceful::run_progress& pr) {
    BOOST_TEST(pr.running + pr.queued + pr.not_started + pr.ended == 5u);
    seen.push_back(pr);
    if (pr.phase == run_phase::cancelling && pr.since_stop >= 100ms) {
      gate.cancel();  // the hung cleanups may end now
    }
  };
  o.progress_interval = 20ms;
  timed_result res;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 3, o,
                            asio::bind_cancellation_slot(sig.slot(), res.handler()));
  ctx.run();
  BOOST_TEST_REQUIRE(seen.size() >= 4u);
  BOOST_TEST(seen.front().phase == run_phase::running);
  BOOST_TEST(seen.back().phase == run_phase::done);
  // Phases only move forward.
  for (std::size_t k = 1; k < seen.size(); ++k) BOOST_TEST(seen[k - 1].phase <= seen[k].phase);
  auto in = [&](run_phase ph) {
    return std::count_if(seen.begin(), seen.end(), [ph](const auto& s) { return s.phase == ph; });
  };
  BOOST_TEST(in(run_phase::grace) >= 1);
  BOOST_TEST(in(run_phase::cancelling) >= 2);  // the phase change, then the interval
  auto cancelling = std::find_if(seen.begin(), seen.end(),
                                 [](const auto& s) { return s.phase == run_phase::cancelling; });
  BOOST_TEST(cancelling->cause == stop_cause::cancelled);
  BOOST_TEST((cancelling->since_stop >= 50ms));
  // After the cancel, task 0 is gone: the two hung cleanups block, oldest first.
  const auto& last_cancelling = *std::find_if(seen.rbegin(), seen.rend(), [](const auto& s) {
    return s.phase == run_phase::cancelling;
  });
  BOOST_TEST(last_cancelling.blocking == (std::vector<std::size_t>{1, 2}));
  BOOST_TEST(last_cancelling.running == 2u);
  BOOST_TEST(res.value.count(task_outcome::cancelled_running) == 3u);
}

BOOST_AUTO_TEST_CASE(this_task_outside_a_task_is_refused) {
  asio::io_context ctx;
  BOOST_CHECK_EXCEPTION(static_cast<void>(graceful::this_task::async_wait_stop(asio::deferred)),
                        boost::system::system_error, [](const boost::system::system_error& e) {
                          return e.code() == graceful::error::not_in_task;
                        });
  bool threw = false;
  asio::co_spawn(
      ctx,
      []() -> asio::awaitable<void> { co_await graceful::this_task::stop_requested(); },
      [&](std::exception_ptr e) {
        try {
          if (e) std::rethrow_exception(e);
        } catch (const boost::system::system_error& x) {
          threw = x.code() == graceful::error::not_in_task;
        }
      });
  ctx.run();
  BOOST_TEST(threw);
}

BOOST_DATA_TEST_CASE(a_wait_for_the_stop_is_cancellable_and_one_left_behind_is_let_go, context_hints,
                     hint) {
  asio::io_context ctx(hint);
  error_code cancelled_wait, left_behind, started_late;
  int left_calls = 0, late_calls = 0;
  std::function<void()> start_late;
  std::vector<task> tasks;
  tasks.push_back([&]() -> asio::awaitable<void> {
    asio::cancellation_signal own;
    asio::post(co_await asio::this_coro::executor,
               [&own] { own.emit(asio::cancellation_type::terminal); });
    auto [ec] = co_await graceful::this_task::async_wait_stop(
        asio::bind_cancellation_slot(own.slot(), asio::as_tuple(asio::use_awaitable)));
    cancelled_wait = ec;
    // A wait the task leaves behind: the run ends without a stop request.
    graceful::this_task::async_wait_stop([&](error_code e) {
      ++left_calls;
      left_behind = e;
    });
    // And one made here but started only after the run ended.
    start_late = [op = graceful::this_task::async_wait_stop(asio::deferred), &late_calls,
                  &started_late]() mutable {
      std::move(op)([&](error_code e) {
        ++late_calls;
        started_late = e;
      });
    };
  });
  timed_result res;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 1, res.handler());
  ctx.run();
  BOOST_TEST(res.value.count(task_outcome::completed) == 1u);
  BOOST_TEST(cancelled_wait == asio::error::operation_aborted);
  BOOST_TEST(left_calls == 1);
  BOOST_TEST(left_behind == asio::error::operation_aborted);
  BOOST_REQUIRE(start_late);
  start_late();
  ctx.restart();
  ctx.run_for(10s);  // a wait that parked would keep the context busy until then
  BOOST_TEST(late_calls == 1);
  BOOST_TEST(started_late == asio::error::operation_aborted);
}

// A context destroyed with a run in it destroys what the run's tasks wait
// on, this_task's waits included: nothing of the run is left behind.
BOOST_DATA_TEST_CASE(a_context_destroyed_mid_run_lets_a_task_waiting_for_the_stop_go, context_hints,
                     hint) {
  auto capture = std::make_shared<int>(0);
  std::weak_ptr<int> watch = capture;
  bool parked = false, resumed = false;
  {
    asio::io_context ctx(hint);
    std::vector<task> tasks;
    tasks.push_back([&parked, &resumed, capture = std::move(capture)]() -> asio::awaitable<void> {
      parked = true;
      co_await graceful::this_task::async_wait_stop(asio::use_awaitable);
      resumed = true;
    });
    int calls = 0;
    graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 2,
                              [&calls](error_code, run_report) { ++calls; });
    ctx.poll();
    BOOST_TEST_REQUIRE(parked);
    BOOST_TEST(calls == 0);
  }
  BOOST_TEST(!resumed);
  BOOST_TEST(watch.expired(), "use_count " << watch.use_count());
}

// on_progress may stop its own run (here at the start report, with nothing
// running: the run finishes inside the call): the callable outlives its call.
BOOST_DATA_TEST_CASE(on_progress_that_stops_its_run_outlives_its_own_call, context_hints, hint) {
  asio::io_context ctx(hint);
  asio::cancellation_signal sig;
  std::vector<task> tasks;
  tasks.push_back([]() -> asio::awaitable<void> { co_return; });
  graceful::run_options o;
  auto seen = std::make_shared<std::vector<run_phase>>();
  std::weak_ptr<std::vector<run_phase>> watch = seen;
  o.on_progress = [&sig, seen](const graceful::run_progress& p) {
    if (p.phase == run_phase::running) sig.emit(asio::cancellation_type::terminal);
    seen->push_back(p.phase);  // after the run finished, inside this call
  };
  std::vector<run_phase> phases;
  o.on_progress = [inner = std::move(o.on_progress), &phases, seen](const graceful::run_progress& p) {
    inner(p);
    phases = *seen;
  };
  seen.reset();
  timed_result res;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 1, std::move(o),
                            asio::bind_cancellation_slot(sig.slot(), res.handler()));
  ctx.run();
  BOOST_TEST(res.calls == 1);
  BOOST_TEST(res.value.cause() == stop_cause::cancelled);
  BOOST_TEST(phases == (std::vector<run_phase>{run_phase::cancelling, run_phase::done,
                                               run_phase::running}),
             boost::test_tools::per_element());
  BOOST_TEST(watch.expired());  // released once the last report returned
}

BOOST_AUTO_TEST_CASE(negative_durations_are_refused_with_a_message_naming_them) {
  const std::pair<graceful::duration graceful::run_options::*, std::string> fields[] = {
      {&graceful::run_options::deadline, "deadline"},
      {&graceful::run_options::task_timeout, "task_timeout"},
      {&graceful::run_options::grace, "grace"},
      {&graceful::run_options::drain_timeout, "drain_timeout"}};
  for (const auto& [field, name] : fields) {
    BOOST_TEST_CONTEXT(name) {
      graceful::run_options o;
      o.*field = -1ms;
      asio::io_context ctx;
      probe p;
      timed_result res;
      graceful::async_run_tasks(ctx.get_executor(), sleepers(p, 1, 1ms), 1, o, res.handler());
      ctx.run();
      BOOST_TEST(res.ec == graceful::error::invalid_argument);
      BOOST_TEST(p.invoked.load() == 0);
      try {
        graceful::run_tasks(sleepers(p, 1, 1ms), 1, o);
        BOOST_FAIL("no exception");
      } catch (const std::invalid_argument& e) {
        BOOST_TEST(std::string(e.what()).find(name) != std::string::npos, e.what());
      }
      BOOST_TEST(p.invoked.load() == 0);
    }
  }
  graceful::run_options o;
  o.on_progress = [](const graceful::run_progress&) {};
  o.progress_interval = {};
  BOOST_CHECK_THROW(graceful::run_tasks(std::vector<task>{}, 1, o), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(the_blocking_run_tasks_lets_an_abandoned_task_s_captures_go) {
  probe p;
  auto capture = std::make_shared<int>(0);
  std::weak_ptr<int> watch = capture;
  std::vector<task> tasks;
  // Cancelled, its shielded cleanup waits for ever on a timer of its own:
  // abandoned, it goes with run_tasks' context.
  tasks.push_back([&p, capture = std::move(capture)]() -> asio::awaitable<void> {
    p.start(0, false);
    cleanup_guard g{p};
    asio::steady_timer forever(co_await asio::this_coro::executor, clock_type::time_point::max());
    co_await forever.async_wait(asio::as_tuple(asio::use_awaitable));
    co_await graceful::shield(forever.async_wait(asio::as_tuple(asio::use_awaitable)));
  });
  tasks.push_back(timed(p, 1, 1h));  // never starts: the report keeps it
  graceful::run_options o;
  o.deadline = 20ms;
  o.drain_timeout = 20ms;
  run_report r = graceful::run_tasks(std::move(tasks), 1, o);
  BOOST_TEST(r.outcome(0) == task_outcome::abandoned);
  BOOST_TEST(r.outcome(1) == task_outcome::cancelled_queued);
  BOOST_TEST(watch.expired(), "use_count " << watch.use_count());
  BOOST_TEST(r.take_unstarted<task>().size() == 1u);
}

BOOST_AUTO_TEST_CASE(the_blocking_run_tasks_keeps_time_too) {
  probe p;
  graceful::run_options o;
  o.deadline = 30ms;
  const auto t0 = clock_type::now();
  run_report r = graceful::run_tasks(sleepers(p, 4, 1h), 2, o);
  BOOST_TEST(r.cause() == stop_cause::deadline);
  BOOST_TEST(r.count(task_outcome::cancelled_running) == 2u);
  BOOST_TEST((clock_type::now() - t0 >= 30ms));
}

BOOST_AUTO_TEST_SUITE_END()
