#include <graceful/async_semaphore.hpp>
#include <graceful/run_tasks.hpp>
#include <graceful/shield.hpp>

#include "context_hints.hpp"
#include "report_checks.hpp"
#include "task_probe.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <csignal>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace asio = boost::asio;
using boost::system::error_code;
using graceful::run_report;
using graceful::stop_cause;
using graceful::task_outcome;
using namespace std::chrono_literals;
using namespace graceful_test;

// Outside the anonymous namespace: the data test cases are templates, whose
// coroutine frames may not hold a type of internal linkage.
struct cleanup_counter {
  int& n;
  ~cleanup_counter() { ++n; }
};

namespace {

// Result of one async_run_tasks, filled in by its handler.
struct result {
  int calls = 0;
  error_code ec;
  run_report report;
  auto handler() {
    return [this](error_code e, run_report r) {
      ++calls;
      ec = e;
      report = std::move(r);
    };
  }
};


}  // namespace

BOOST_AUTO_TEST_SUITE(run_tasks)

BOOST_DATA_TEST_CASE(runs_every_task_in_input_order_within_the_limit, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  result res;
  graceful::async_run_tasks(ctx.get_executor(), sleepers(p, 20, 1ms), 3, res.handler());
  ctx.run();
  BOOST_TEST(res.calls == 1);
  BOOST_TEST(!res.ec);
  BOOST_TEST(res.report.size() == 20u);
  BOOST_TEST(res.report.count(task_outcome::completed) == 20u);
  BOOST_TEST(res.report.cause() == stop_cause::none);
  BOOST_TEST(res.report.exit_code() == 0);
  BOOST_TEST(p.peak.load() == 3);
  BOOST_TEST(p.cleaned.load() == 20);
  std::vector<std::size_t> expected(20);
  for (std::size_t i = 0; i < 20; ++i) expected[i] = i;
  BOOST_TEST(p.start_order == expected, boost::test_tools::per_element());
  check_accounting(res.report);
}

BOOST_DATA_TEST_CASE(never_completes_inside_the_initiating_call, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  result empty, bad, some;
  graceful::async_run_tasks(ctx.get_executor(), std::vector<task>{}, 2, empty.handler());
  graceful::async_run_tasks(ctx.get_executor(), sleepers(p, 2, 0ms), 0, bad.handler());
  graceful::async_run_tasks(ctx.get_executor(), sleepers(p, 2, 0ms), 2, some.handler());
  BOOST_TEST(empty.calls + bad.calls + some.calls == 0);
  ctx.run();
  BOOST_TEST(empty.calls == 1);
  BOOST_TEST(!empty.ec);
  BOOST_TEST(empty.report.size() == 0u);
  BOOST_TEST(empty.report.exit_code() == 0);
  BOOST_TEST(bad.calls == 1);
  BOOST_TEST(some.calls == 1);
}

BOOST_AUTO_TEST_CASE(bad_input_is_refused_before_anything_starts) {
  asio::io_context ctx;
  probe p;
  result zero, null_task;
  graceful::async_run_tasks(ctx.get_executor(), sleepers(p, 3, 0ms), 0, zero.handler());
  auto with_null = sleepers(p, 3, 0ms);
  with_null.insert(with_null.begin() + 1, task{});
  graceful::async_run_tasks(ctx.get_executor(), std::move(with_null), 2, null_task.handler());
  ctx.run();
  BOOST_TEST(zero.ec == graceful::error::invalid_argument);
  BOOST_TEST(null_task.ec == graceful::error::invalid_argument);
  BOOST_TEST(zero.report.size() == 0u);
  BOOST_TEST(p.invoked.load() == 0);  // nothing started
}

BOOST_AUTO_TEST_CASE(options_of_the_blocking_form_are_refused_by_the_async_one) {
  // They would be ignored: threads that are never made, signals never listened to.
  asio::io_context ctx;
  probe p;
  graceful::run_options threads, force_exit, other_signals, defaults;
  threads.threads = 4;
  force_exit.signals.force_exit_after = 3;
  other_signals.signals.signals = {SIGHUP};
  std::vector<result> refused(3);
  graceful::async_run_tasks(ctx.get_executor(), sleepers(p, 3, 0ms), 2, threads, refused[0].handler());
  graceful::async_run_tasks(ctx.get_executor(), sleepers(p, 3, 0ms), 2, force_exit, refused[1].handler());
  graceful::async_run_tasks(ctx.get_executor(), sleepers(p, 3, 0ms), 2, other_signals,
                            refused[2].handler());
  ctx.run();
  for (const result& r : refused) {
    BOOST_TEST(r.calls == 1);
    BOOST_TEST(r.ec == graceful::error::invalid_argument);
    BOOST_TEST(r.report.size() == 0u);
  }
  BOOST_TEST(p.invoked.load() == 0);  // nothing started
  result accepted;  // the defaults, spelled out, are fine
  graceful::async_run_tasks(ctx.get_executor(), sleepers(p, 3, 0ms), 2, defaults, accepted.handler());
  ctx.restart();
  ctx.run();
  BOOST_TEST(!accepted.ec);
  BOOST_TEST(accepted.report.count(task_outcome::completed) == 3u);
}

BOOST_DATA_TEST_CASE(a_limit_above_the_task_count_runs_them_all_at_once, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  result res;
  graceful::async_run_tasks(ctx.get_executor(), sleepers(p, 5, 5ms), 1000, res.handler());
  ctx.run();
  BOOST_TEST(!res.ec);
  BOOST_TEST(res.report.count(task_outcome::completed) == 5u);
  BOOST_TEST(p.peak.load() == 5);  // every task was in flight together
}

BOOST_DATA_TEST_CASE(cancel_stops_running_queued_and_not_started_tasks, context_hints, hint) {
  // The scenario: 50 one-hour tasks, limit 4, cancelled once 4 run.
  for (auto type : {asio::cancellation_type::terminal, asio::cancellation_type::partial,
                    asio::cancellation_type::total}) {
    BOOST_TEST_CONTEXT("cancellation type " << static_cast<int>(type)) {
      asio::io_context ctx(hint);
      probe p;
      asio::cancellation_signal sig;
      p.on_start = [&] {
        if (p.started == 4) asio::post(ctx, [&sig, type] { sig.emit(type); });
      };
      result res;
      graceful::async_run_tasks(ctx.get_executor(), sleepers(p, 50, 1h), 4,
                                asio::bind_cancellation_slot(sig.slot(), res.handler()));
      ctx.run();  // returns only once every task was joined
      BOOST_TEST(res.calls == 1);
      BOOST_TEST(!res.ec);
      const auto& r = res.report;
      BOOST_TEST(r.cause() == stop_cause::cancelled);
      BOOST_TEST(r.count(task_outcome::cancelled_running) == 4u);
      BOOST_TEST(r.count(task_outcome::cancelled_queued) == 1u);
      BOOST_TEST(r.count(task_outcome::not_started) == 45u);
      BOOST_TEST(r.count(task_outcome::completed) == 0u);
      BOOST_TEST(r.indices(task_outcome::cancelled_queued) == std::vector<std::size_t>{4});
      BOOST_TEST(r.exit_code() == 1);
      BOOST_TEST(p.started.load() == 4);
      BOOST_TEST(p.cleaned.load() == 4);
      BOOST_TEST(p.finished.load() == 0);
      BOOST_TEST(p.invoked.load() == 4);  // the others' callables were never called
      check_accounting(r);
    }
  }
}

// A task's executor may outlive the task. Here a coroutine that run 1's only
// task spawned on it keeps stepping on one thread while run 2, on another
// thread, has taken over the cancellation relay that task had (the pool hands
// the last one given back out first) and is being cancelled. The leftover's
// steps must leave that relay alone: TSan reports the race if they do not.
BOOST_AUTO_TEST_CASE(an_executor_that_outlives_its_task_leaves_the_next_run_alone) {
  asio::io_context first_ctx;
  std::atomic<bool> leftover_stop{false};
  std::atomic<long> leftover_steps{0};
  auto leftover = [&]() -> asio::awaitable<void> {
    while (!leftover_stop.load()) {
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
      ++leftover_steps;
    }
  };
  std::vector<task> one{[&]() -> asio::awaitable<void> {
    asio::co_spawn(co_await asio::this_coro::executor, leftover(), asio::detached);
    co_return;
  }};
  // The handler runs after the run's state is gone: its relay is back in the pool.
  std::promise<run_report> first_done;
  graceful::async_run_tasks(first_ctx.get_executor(), std::move(one), 1,
                            [&](error_code, run_report r) { first_done.set_value(std::move(r)); });
  std::thread first_thread([&] { first_ctx.run(); });
  run_report first = first_done.get_future().get();

  asio::io_context second_ctx;
  asio::cancellation_signal cancel;
  bool cleaned = false;
  auto cleanup = [&]() -> asio::awaitable<void> {
    long from = leftover_steps.load();
    while (leftover_steps.load() < from + 1000) {
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    }
    cleaned = true;
  };
  std::vector<task> two{[&]() -> asio::awaitable<void> {
    asio::steady_timer t(co_await asio::this_coro::executor, 1h);
    asio::post(second_ctx, [&] { cancel.emit(asio::cancellation_type::terminal); });
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    co_await graceful::shield(cleanup());
  }};
  result second;
  graceful::async_run_tasks(second_ctx.get_executor(), std::move(two), 1,
                            asio::bind_cancellation_slot(cancel.slot(), second.handler()));
  second_ctx.run();
  leftover_stop = true;
  first_thread.join();
  BOOST_TEST(first.count(task_outcome::completed) == 1u);
  BOOST_TEST(second.report.cause() == stop_cause::cancelled);
  BOOST_TEST(cleaned);  // the shielded cleanup ran to its end, the leftover stepping all along
}

BOOST_DATA_TEST_CASE(a_mass_cancel_reaches_every_task_even_while_earlier_cleanups_wait, context_hints, hint) {
  // More running tasks than two cancellation batches (256 each). Every
  // task's shielded cleanup waits until all of them are in their cleanup: if
  // the next batch waited for the previous one to end, this would never finish.
  constexpr std::size_t n = 2'500;
  asio::io_context ctx(hint);
  asio::cancellation_signal sig;
  asio::steady_timer gate(ctx, asio::steady_timer::time_point::max());
  std::size_t started = 0, in_cleanup = 0, cleaned = 0;
  auto cleanup = [&]() -> asio::awaitable<void> {
    if (++in_cleanup == n) {
      gate.cancel();
    } else {
      co_await gate.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    ++cleaned;
  };
  std::vector<std::function<asio::awaitable<void>()>> tasks(n, [&]() -> asio::awaitable<void> {
    ++started;
    std::exception_ptr e;
    try {
      asio::steady_timer t(co_await asio::this_coro::executor, 1h);
      co_await t.async_wait(asio::use_awaitable);
    } catch (...) {
      e = std::current_exception();
    }
    co_await graceful::shield(cleanup());
    if (e) std::rethrow_exception(e);
  });
  result res;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), n,
                            asio::bind_cancellation_slot(sig.slot(), res.handler()));
  while (started < n) ctx.run_one();
  sig.emit(asio::cancellation_type::terminal);
  ctx.run_for(30s);  // bounded only so that a regression fails instead of hanging
  BOOST_TEST_REQUIRE(res.calls == 1);
  BOOST_TEST(res.report.count(task_outcome::cancelled_running) == n);
  BOOST_TEST(cleaned == n);
}

BOOST_DATA_TEST_CASE(a_cancel_that_finds_no_pending_operation_reaches_the_next_one, context_hints, hint) {
  // Task 0's resumption is already queued when the cancel arrives (nothing to
  // cancel then); task 1 is running when it cancels the run itself. Both must
  // still see their next await cancelled, not sleep for an hour.
  asio::io_context ctx(hint);
  asio::cancellation_signal sig;
  int cleaned = 0, finished = 0;
  std::vector<task> tasks;
  tasks.push_back([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    co_await asio::post(ex, asio::use_awaitable);  // completes before the cancel...
    cleanup_counter c{cleaned};
    asio::steady_timer t(ex, 1h);                  // ...so this must be cancelled
    co_await t.async_wait(asio::use_awaitable);
    ++finished;
  });
  tasks.push_back([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    cleanup_counter c{cleaned};
    sig.emit(asio::cancellation_type::terminal);  // from inside the run, no await pending
    asio::steady_timer t(ex, 1h);
    co_await t.async_wait(asio::use_awaitable);
    ++finished;
  });
  result res;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 2,
                            asio::bind_cancellation_slot(sig.slot(), res.handler()));
  ctx.run_for(30s);  // bounded only so that a regression fails instead of hanging
  BOOST_TEST_REQUIRE(res.calls == 1);
  BOOST_TEST(res.report.count(task_outcome::cancelled_running) == 2u);
  BOOST_TEST(cleaned == 2);
  BOOST_TEST(finished == 0);
}

BOOST_DATA_TEST_CASE(shielded_cleanup_runs_to_its_end_through_a_second_cancel, context_hints, hint) {
  asio::io_context ctx(hint);
  asio::cancellation_signal sig;
  int started = 0, cleanup_begun = 0, cleanup_done = 0;
  std::vector<task> tasks;
  for (int i = 0; i < 3; ++i) {
    tasks.push_back([&]() -> asio::awaitable<void> {
      auto ex = co_await asio::this_coro::executor;
      ++started;
      if (started == 2) asio::post(ctx, [&] { sig.emit(asio::cancellation_type::terminal); });
      std::exception_ptr e;
      try {
        asio::steady_timer t(ex, 1h);
        co_await t.async_wait(asio::use_awaitable);
      } catch (...) {
        e = std::current_exception();
      }
      co_await graceful::shield([&]() -> asio::awaitable<void> {
        ++cleanup_begun;
        // A second cancel while the cleanup waits must not cut it short.
        asio::post(ctx, [&] { sig.emit(asio::cancellation_type::terminal); });
        asio::steady_timer t(co_await asio::this_coro::executor, 5ms);
        co_await t.async_wait(asio::use_awaitable);
        ++cleanup_done;
      }());
      if (e) std::rethrow_exception(e);
    });
  }
  result res;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 2,
                            asio::bind_cancellation_slot(sig.slot(), res.handler()));
  ctx.run();
  BOOST_TEST(res.calls == 1);
  BOOST_TEST(cleanup_begun == 2);
  BOOST_TEST(cleanup_done == 2);
  BOOST_TEST(res.report.count(task_outcome::cancelled_running) == 2u);
  BOOST_TEST(res.report.count(task_outcome::cancelled_queued) == 1u);
}

asio::awaitable<void> wait_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

// What a cleanup helper does: a shielded step of its own, then more work; the
// whole helper is shielded by the task.
asio::awaitable<void> cleanup_with_a_shielded_step(int& steps) {
  co_await graceful::shield(wait_for(1ms));
  ++steps;
  co_await wait_for(5ms);  // still inside the outer shield
  ++steps;
}

BOOST_DATA_TEST_CASE(a_shield_inside_a_shield_keeps_the_outer_one_shielded, context_hints, hint) {
  asio::io_context ctx(hint);
  asio::cancellation_signal sig;
  int steps = 0;
  std::vector<task> tasks;
  tasks.push_back([&]() -> asio::awaitable<void> {
    asio::post(ctx, [&] { sig.emit(asio::cancellation_type::terminal); });
    std::exception_ptr e;
    try {
      co_await wait_for(1h);
    } catch (...) {
      e = std::current_exception();
    }
    co_await graceful::shield(cleanup_with_a_shielded_step(steps));
    if (e) std::rethrow_exception(e);
  });
  result res;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 1,
                            asio::bind_cancellation_slot(sig.slot(), res.handler()));
  ctx.run();
  BOOST_TEST(steps == 2);
  BOOST_TEST(res.report.outcome(0) == task_outcome::cancelled_running);
}

// A helper coroutine the task spawns and detaches shields a step of its own:
// that protects the helper's step, not the task, whose cancellation goes on.
BOOST_DATA_TEST_CASE(a_helper_s_shield_does_not_hold_back_the_task_s_cancel, context_hints, hint) {
  asio::io_context ctx(hint);
  asio::cancellation_signal sig;
  bool helper_done = false, helper_done_when_cancelled = true;
  std::vector<task> tasks;
  tasks.push_back([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    asio::co_spawn(
        ex,
        [&]() -> asio::awaitable<void> {
          co_await graceful::shield(wait_for(300ms));
          helper_done = true;
        },
        asio::detached);
    asio::post(ctx, [&] { sig.emit(asio::cancellation_type::terminal); });
    try {
      co_await wait_for(1h);
    } catch (...) {
      helper_done_when_cancelled = helper_done;
      throw;
    }
  });
  result res;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 1,
                            asio::bind_cancellation_slot(sig.slot(), res.handler()));
  ctx.run();
  BOOST_TEST(helper_done);
  BOOST_TEST(!helper_done_when_cancelled);
  BOOST_TEST(res.report.outcome(0) == task_outcome::cancelled_running);
}

BOOST_DATA_TEST_CASE(a_shield_leaves_the_task_s_own_filter_in_place, context_hints, hint) {
  asio::io_context ctx(hint);
  asio::cancellation_signal sig;
  bool waited_through = false;
  std::vector<task> tasks;
  tasks.push_back([&]() -> asio::awaitable<void> {
    // The task takes no cancellation at all, shield or not.
    co_await asio::this_coro::reset_cancellation_state(
        asio::cancellation_filter<asio::cancellation_type::none>());
    co_await graceful::shield(wait_for(1ms));
    asio::post(ctx, [&] { sig.emit(asio::cancellation_type::terminal); });
    co_await wait_for(20ms);
    waited_through = true;
  });
  result res;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 1,
                            asio::bind_cancellation_slot(sig.slot(), res.handler()));
  ctx.run();
  BOOST_TEST(waited_through);
  BOOST_TEST(res.report.outcome(0) == task_outcome::completed);
  BOOST_TEST(res.report.cause() == stop_cause::cancelled);
}

BOOST_DATA_TEST_CASE(cancel_after_completion_does_nothing, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  asio::cancellation_signal sig;
  result res;
  graceful::async_run_tasks(ctx.get_executor(), sleepers(p, 3, 0ms), 2,
                            asio::bind_cancellation_slot(sig.slot(), res.handler()));
  ctx.run();
  BOOST_TEST_REQUIRE(res.calls == 1);
  sig.emit(asio::cancellation_type::terminal);
  ctx.restart();
  ctx.run();
  BOOST_TEST(res.calls == 1);
  BOOST_TEST(res.report.count(task_outcome::completed) == 3u);
  BOOST_TEST(res.report.cause() == stop_cause::none);
}

BOOST_DATA_TEST_CASE(failures_are_recorded_and_the_others_go_on_by_default, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  auto tasks = sleepers(p, 6, 1ms);
  for (std::size_t i : {1u, 4u}) {
    tasks[i] = [i]() -> asio::awaitable<void> {
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
      throw std::runtime_error("task " + std::to_string(i));
    };
  }
  // An operation_aborted the run did not ask for is a failure too.
  tasks[5] = []() -> asio::awaitable<void> {
    throw boost::system::system_error(asio::error::operation_aborted);
    co_return;
  };
  result res;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 2, res.handler());
  ctx.run();
  const auto& r = res.report;
  BOOST_TEST(r.cause() == stop_cause::none);
  BOOST_TEST(r.count(task_outcome::failed) == 3u);
  BOOST_TEST(r.count(task_outcome::completed) == 3u);
  BOOST_TEST(r.indices(task_outcome::failed) == (std::vector<std::size_t>{1, 4, 5}));
  for (std::size_t i : {1u, 4u}) {
    BOOST_TEST_REQUIRE(static_cast<bool>(r.error(i)));
    try {
      std::rethrow_exception(r.error(i));
    } catch (const std::runtime_error& e) {
      BOOST_TEST(e.what() == "task " + std::to_string(i));
    }
  }
  BOOST_TEST(!r.error(0));
  BOOST_TEST(r.exit_code() == 1);
  check_accounting(r);
}

BOOST_DATA_TEST_CASE(cancel_all_policy_stops_the_run_at_the_first_failure, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  auto tasks = sleepers(p, 10, 1h);
  tasks[2] = []() -> asio::awaitable<void> {
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    throw std::logic_error("boom");
  };
  result res;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 3,
                            graceful::run_options{graceful::failure_policy::cancel_all},
                            res.handler());
  ctx.run();
  const auto& r = res.report;
  BOOST_TEST(r.cause() == stop_cause::failure);
  BOOST_TEST(r.outcome(2) == task_outcome::failed);
  BOOST_TEST(r.outcome(0) == task_outcome::cancelled_running);
  BOOST_TEST(r.outcome(1) == task_outcome::cancelled_running);
  BOOST_TEST(r.count(task_outcome::completed) == 0u);
  BOOST_TEST(r.count(task_outcome::cancelled_queued) + r.count(task_outcome::not_started) == 7u);
  BOOST_TEST(p.cleaned.load() == 2);
  check_accounting(r);
}

BOOST_DATA_TEST_CASE(a_callable_that_throws_before_its_coroutine_starts_is_a_failure, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  auto tasks = sleepers(p, 4, 0ms);
  tasks[1] = []() -> asio::awaitable<void> { throw std::runtime_error("no coroutine"); };
  // ... which is still a coroutine here; a plain function is the real case:
  struct eager {
    asio::awaitable<void> operator()() const { throw std::runtime_error("eager"); }
  };
  std::vector<eager> eager_tasks(2);
  result res, res2;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 1, res.handler());
  graceful::async_run_tasks(ctx.get_executor(), std::move(eager_tasks), 1, res2.handler());
  ctx.run();
  BOOST_TEST(res.report.outcome(1) == task_outcome::failed);
  BOOST_TEST(res.report.count(task_outcome::completed) == 3u);
  BOOST_TEST(res2.report.count(task_outcome::failed) == 2u);  // and the run did not stall
}

BOOST_DATA_TEST_CASE(unstarted_tasks_can_be_taken_back_and_run_again, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  asio::cancellation_signal sig;
  p.on_start = [&] {
    if (p.started == 2) asio::post(ctx, [&] { sig.emit(asio::cancellation_type::terminal); });
  };
  result first;
  // An hour: the first two are still waiting when the cancel comes, however
  // slow the machine. The second run's tasks wait 1 ms.
  graceful::async_run_tasks(ctx.get_executor(), sleepers(p, 10, 1h), 2,
                            asio::bind_cancellation_slot(sig.slot(), first.handler()));
  ctx.run();
  BOOST_TEST(first.report.count(task_outcome::cancelled_running) == 2u);
  BOOST_CHECK_THROW(first.report.take_unstarted<int>(), std::invalid_argument);
  std::vector<task> rest = first.report.take_unstarted<task>();
  BOOST_TEST(rest.size() == 8u);
  p.on_start = nullptr;
  p.start_order.clear();
  p.sleep_override_ms = 1;
  result second;
  graceful::async_run_tasks(ctx.get_executor(), std::move(rest), 3, second.handler());
  ctx.restart();
  ctx.run();
  BOOST_TEST(second.report.count(task_outcome::completed) == 8u);
  BOOST_TEST(p.start_order == (std::vector<std::size_t>{2, 3, 4, 5, 6, 7, 8, 9}),
             boost::test_tools::per_element());
}

static_assert(!std::is_copy_constructible_v<run_report> && std::is_move_constructible_v<run_report>,
              "a report owns the never-started tasks: move-only");

BOOST_DATA_TEST_CASE(a_task_s_captures_go_when_it_ends_and_the_report_keeps_only_unstarted_ones,
                     context_hints, hint) {
  asio::io_context ctx(hint);
  auto first = std::make_shared<int>(0), second = std::make_shared<int>(1),
       never = std::make_shared<int>(2);
  // A const capture (a `for (const auto& c : conns)` loop's) is copied by a
  // move: it goes only if the callable itself is destroyed.
  const auto konst = std::make_shared<int>(3);
  long first_refs_seen_by_second = -1, second_refs_at_completion = -1, never_refs_at_completion = -1;
  long konst_refs_seen_by_second = -1;
  asio::cancellation_signal sig;
  std::vector<task> tasks;
  tasks.push_back([first, konst]() -> asio::awaitable<void> { co_return; });
  // Limit 1: task 0 has ended when task 1 starts; task 1 stops the run.
  tasks.push_back([second, &first, &first_refs_seen_by_second, &konst, &konst_refs_seen_by_second, &sig,
                   &ctx]() -> asio::awaitable<void> {
    first_refs_seen_by_second = first.use_count();
    konst_refs_seen_by_second = konst.use_count();
    asio::post(ctx, [&] { sig.emit(asio::cancellation_type::terminal); });
    asio::steady_timer t(co_await asio::this_coro::executor, 1h);
    co_await t.async_wait(asio::use_awaitable);
  });
  tasks.push_back([never]() -> asio::awaitable<void> { co_return; });
  run_report report;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 1,
                            asio::bind_cancellation_slot(sig.slot(), [&](error_code, run_report r) {
                              second_refs_at_completion = second.use_count();
                              never_refs_at_completion = never.use_count();
                              report = std::move(r);
                            }));
  ctx.run();
  BOOST_TEST(first_refs_seen_by_second == 1);
  BOOST_TEST(konst_refs_seen_by_second == 1);
  BOOST_TEST(second_refs_at_completion == 1);  // cancelled, ended: gone before the handler
  BOOST_TEST(never_refs_at_completion == 2);   // never started: the report keeps it
  BOOST_TEST(report.outcome(2) == task_outcome::cancelled_queued);
  std::vector<task> rest = report.take_unstarted<task>();
  BOOST_TEST(rest.size() == 1u);
  BOOST_TEST(report.take_unstarted<task>().empty());
  rest.clear();
  BOOST_TEST(never.use_count() == 1);
}

// A report stored in the state its own tasks share: no reference cycle.
struct report_holder {
  run_report report;
  int done = 0;
};

BOOST_DATA_TEST_CASE(a_report_stored_in_the_tasks_shared_state_makes_no_cycle, context_hints, hint) {
  asio::io_context ctx(hint);
  auto state = std::make_shared<report_holder>();
  std::vector<task> tasks;
  for (int i = 0; i < 5; ++i) {
    tasks.push_back([state]() -> asio::awaitable<void> {
      ++state->done;
      co_return;
    });
  }
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 2,
                            [state](error_code, run_report r) { state->report = std::move(r); });
  ctx.run();
  BOOST_TEST(state->done == 5);
  BOOST_TEST(state->report.count(task_outcome::completed) == 5u);
  BOOST_TEST(state.use_count() == 1);
}

BOOST_AUTO_TEST_CASE(a_shared_limiter_bounds_several_runs_and_gets_every_permit_back) {
  asio::io_context ctx;
  graceful::async_semaphore limiter(ctx.get_executor(), 3);
  probe p;  // shared: its peak is the peak over both runs
  graceful::run_options options;
  options.limiter = &limiter;
  result a, b;
  std::vector<task> second;
  for (std::size_t i = 0; i < 10; ++i) second.push_back(sleeper(p, 100 + i, 1ms));
  graceful::async_run_tasks(ctx.get_executor(), sleepers(p, 10, 1ms), 5, options, a.handler());
  graceful::async_run_tasks(ctx.get_executor(), std::move(second), 5, options, b.handler());
  ctx.run();
  // FIFO across runs: the second run starts before the first one is through.
  auto first_of_b = std::find_if(p.start_order.begin(), p.start_order.end(),
                                 [](std::size_t i) { return i >= 100; });
  auto last_of_a = std::find(p.start_order.begin(), p.start_order.end(), std::size_t{9});
  BOOST_TEST((first_of_b < last_of_a));
  BOOST_TEST(a.report.count(task_outcome::completed) == 10u);
  BOOST_TEST(b.report.count(task_outcome::completed) == 10u);
  BOOST_TEST(p.peak.load() == 3);
  BOOST_TEST(limiter.available() == 3u);
  BOOST_TEST(limiter.waiting() == 0u);
}

BOOST_AUTO_TEST_CASE(every_permit_comes_back_after_a_cancel_in_each_state) {
  // Running tasks hold permits, the queued one waits on the limiter, the rest
  // wait for nothing: after the cancel the limiter is whole again.
  asio::io_context ctx;
  graceful::async_semaphore limiter(ctx.get_executor(), 4);
  probe p;
  asio::cancellation_signal sig;
  p.on_start = [&] {
    if (p.started == 4) asio::post(ctx, [&] { sig.emit(asio::cancellation_type::terminal); });
  };
  graceful::run_options options;
  options.limiter = &limiter;
  result res;
  graceful::async_run_tasks(ctx.get_executor(), sleepers(p, 50, 1h), 8, options,
                            asio::bind_cancellation_slot(sig.slot(), res.handler()));
  ctx.run();
  BOOST_TEST(res.report.count(task_outcome::cancelled_running) == 4u);
  BOOST_TEST(res.report.count(task_outcome::cancelled_queued) == 1u);
  BOOST_TEST(res.report.count(task_outcome::not_started) == 45u);
  BOOST_TEST(limiter.available() == 4u);
  BOOST_TEST(limiter.waiting() == 0u);
}

// How a run ended when its shared limiter went away while task 0 held the
// only permit and task 1 waited for it. `end_limiter` closes or destroys it.
template <class EndLimiter>
void run_while_the_limiter_goes(int hint, EndLimiter end_limiter, bool cancel_too) {
  asio::io_context ctx(hint);
  std::optional<graceful::async_semaphore> limiter(std::in_place, ctx.get_executor(), 1);
  probe p;
  asio::cancellation_signal sig;
  p.on_start = [&] {
    asio::post(ctx, [&] {
      end_limiter(limiter);
      if (cancel_too) asio::post(ctx, [&] { sig.emit(asio::cancellation_type::terminal); });
    });
  };
  graceful::run_options options;
  options.limiter = &*limiter;
  result res;
  // Task 0 takes 20 ms (an hour when it is to be cancelled).
  auto tasks = sleepers(p, 5, cancel_too ? std::chrono::milliseconds(1h) : 20ms);
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 3, options,
                            asio::bind_cancellation_slot(sig.slot(), res.handler()));
  ctx.run();  // and the context runs out of work
  BOOST_TEST(res.calls == 1);
  BOOST_TEST(p.started.load() == 1);
  BOOST_TEST(p.cleaned.load() == 1);
  BOOST_TEST(res.report.outcome(0) ==
             (cancel_too ? task_outcome::cancelled_running : task_outcome::completed));
  BOOST_TEST(res.report.outcome(1) == task_outcome::cancelled_queued);
  BOOST_TEST(res.report.count(task_outcome::not_started) == 3u);
  BOOST_TEST(res.report.cause() == (cancel_too ? stop_cause::cancelled : stop_cause::limiter_closed));
  BOOST_TEST(res.report.exit_code() == 1);
  check_accounting(res.report);
}

BOOST_DATA_TEST_CASE(a_limiter_closed_while_the_run_waits_on_it_stops_the_starts, context_hints, hint) {
  run_while_the_limiter_goes(hint, [](auto& limiter) { limiter->close(); }, false);
}

BOOST_DATA_TEST_CASE(a_limiter_destroyed_while_the_run_waits_on_it_stops_the_starts, context_hints, hint) {
  run_while_the_limiter_goes(hint, [](auto& limiter) { limiter.reset(); }, false);
}

BOOST_DATA_TEST_CASE(a_cancel_after_the_limiter_closed_still_cancels_the_running_tasks, context_hints,
                     hint) {
  run_while_the_limiter_goes(hint, [](auto& limiter) { limiter->close(); }, true);
}

// Limit 1: no acquire is parked, the ending task hands its permit to the
// next one; after a close it must not.
BOOST_DATA_TEST_CASE(a_limiter_closed_while_every_runner_is_busy_hands_no_permit_on, context_hints,
                     hint) {
  asio::io_context ctx(hint);
  graceful::async_semaphore limiter(ctx.get_executor(), 1);
  probe p;
  p.on_start = [&] { asio::post(ctx, [&] { limiter.close(); }); };
  graceful::run_options options;
  options.limiter = &limiter;
  result res;
  graceful::async_run_tasks(ctx.get_executor(), sleepers(p, 3, 10ms), 1, options, res.handler());
  ctx.run();
  BOOST_TEST(p.started.load() == 1);
  BOOST_TEST(res.report.outcome(0) == task_outcome::completed);
  BOOST_TEST(res.report.outcome(1) == task_outcome::cancelled_queued);
  BOOST_TEST(res.report.outcome(2) == task_outcome::not_started);
  BOOST_TEST(res.report.cause() == stop_cause::limiter_closed);
  BOOST_TEST(limiter.available() == 1u);
}

BOOST_DATA_TEST_CASE(a_run_on_a_limiter_closed_before_it_starts_nothing, context_hints, hint) {
  asio::io_context ctx(hint);
  graceful::async_semaphore limiter(ctx.get_executor(), 2);
  limiter.close();
  probe p;
  graceful::run_options options;
  options.limiter = &limiter;
  result res;
  graceful::async_run_tasks(ctx.get_executor(), sleepers(p, 4, 1ms), 2, options, res.handler());
  ctx.run();
  BOOST_TEST(res.calls == 1);
  BOOST_TEST(p.invoked.load() == 0);
  BOOST_TEST(res.report.outcome(0) == task_outcome::cancelled_queued);
  BOOST_TEST(res.report.count(task_outcome::not_started) == 3u);
  BOOST_TEST(res.report.cause() == stop_cause::limiter_closed);
}

// An executor for a limiter that lets the test act at one exact point: the
// next time the limiter's strand needs scheduling, it runs that work inline
// and then calls `after` (as a second thread could, at that instant).
struct hook_executor {
  struct hook {
    bool armed = false;
    std::function<void()> after;
  };
  asio::io_context* ctx;
  hook* h;

  asio::execution_context& query(asio::execution::context_t) const noexcept { return *ctx; }
  static constexpr asio::execution::blocking_t query(asio::execution::blocking_t) noexcept {
    return asio::execution::blocking.never;
  }
  hook_executor require(asio::execution::blocking_t::never_t) const noexcept { return *this; }
  template <class F>
  void execute(F&& f) const {
    if (!h->armed) {
      asio::post(*ctx, std::forward<F>(f));
      return;
    }
    h->armed = false;
    std::forward<F>(f)();
    h->after();
  }
  bool operator==(const hook_executor&) const noexcept = default;
};

BOOST_AUTO_TEST_CASE(a_run_whose_context_is_destroyed_under_it_gives_its_permits_back) {
  // The run's runner array is kept for the next run (block_cache): permits
  // its runners still hold when the run dies unfinished must not stay there.
  asio::io_context limiter_ctx;
  graceful::async_semaphore limiter(limiter_ctx.get_executor(), 2);
  probe p;
  result r;
  {
    asio::io_context ctx;
    graceful::run_options options;
    options.limiter = &limiter;
    graceful::async_run_tasks(ctx.get_executor(), sleepers(p, 2, 1h), 2, options, r.handler());
    ctx.poll();
    BOOST_TEST_REQUIRE(p.started.load() == 2);
    BOOST_TEST_REQUIRE(limiter.available() == 0u);
  }  // the context goes first, with both tasks waiting on their timers
  BOOST_TEST(p.cleaned.load() == 2);  // their frames were destroyed
  BOOST_TEST(r.calls == 0);
  BOOST_TEST(limiter.available() == 2u);
  BOOST_TEST(limiter.waiting() == 0u);
}

BOOST_AUTO_TEST_CASE(a_limiter_grant_that_races_free_permits_never_overfills_the_run) {
  // Found by fault_runs with two runs sharing a limiter on several threads:
  // a task of run X ends while X waits on the limiter; the limiter grants X's
  // wait, and before that grant reaches X, other permits come free (another
  // run's tasks ending on another thread). X must not start more tasks than
  // it has slots: the grant used to find every slot taken and crash.
  asio::io_context ctx;
  hook_executor::hook h;
  graceful::async_semaphore limiter(asio::any_io_executor(hook_executor{&ctx, &h}), 4);
  std::vector<graceful::semaphore_permit> held;  // what the "other run" holds
  for (int i = 0; i < 3; ++i) held.push_back(*limiter.try_acquire());
  probe p;
  asio::cancellation_signal sig;
  // Task 0 ends when the test opens its gate, while the run waits on the
  // limiter (a short timer could expire inside the first poll on a slow
  // build, before the run waits).
  asio::steady_timer gate(ctx, asio::steady_timer::time_point::max());
  std::vector<task> tasks{[&p, &gate]() -> asio::awaitable<void> {
    p.start(0, true);
    cleanup_guard g{p};
    co_await gate.async_wait(asio::as_tuple(asio::use_awaitable));
  }};
  for (std::size_t i = 1; i < 6; ++i) tasks.push_back(sleeper(p, i, 1h));
  graceful::run_options options;
  options.limiter = &limiter;
  result res;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 3, options,
                            asio::bind_cancellation_slot(sig.slot(), res.handler()));
  ctx.poll();  // task 0 runs; the run waits on the limiter with two slots free
  BOOST_TEST_REQUIRE(p.started.load() == 1);
  BOOST_TEST_REQUIRE(limiter.waiting() == 1u);
  // When task 0's permit goes back, the limiter grants the run's wait at
  // once, and then the three other permits come free.
  h.armed = true;
  h.after = [&] { held.clear(); };
  p.on_start = [&] {
    if (p.started == 4) asio::post(ctx, [&] { sig.emit(asio::cancellation_type::terminal); });
  };
  gate.cancel();
  ctx.run();
  BOOST_TEST(!h.armed);  // the race did happen
  BOOST_TEST(p.peak.load() <= 3);
  BOOST_TEST(p.started.load() == 4);
  BOOST_TEST(p.cleaned.load() == 4);
  BOOST_TEST(res.calls == 1);
  BOOST_TEST(res.report.count(task_outcome::completed) == 1u);
  BOOST_TEST(res.report.count(task_outcome::cancelled_running) == 3u);
  check_accounting(res.report);
  BOOST_TEST(limiter.available() == 4u);
  BOOST_TEST(limiter.waiting() == 0u);
}

BOOST_DATA_TEST_CASE(token_use_awaitable_gets_the_report_even_when_cancelled, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  std::optional<run_report> got;
  asio::cancellation_signal sig;
  p.on_start = [&] {
    if (p.started == 2) asio::post(ctx, [&] { sig.emit(asio::cancellation_type::terminal); });
  };
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        got = co_await graceful::async_run_tasks(co_await asio::this_coro::executor,
                                                 sleepers(p, 5, 1h), 2, asio::use_awaitable);
      },
      asio::bind_cancellation_slot(sig.slot(), asio::detached));
  ctx.run();
  BOOST_TEST_REQUIRE(got.has_value());
  BOOST_TEST(got->cause() == stop_cause::cancelled);
  BOOST_TEST(got->count(task_outcome::cancelled_running) == 2u);
}

BOOST_DATA_TEST_CASE(token_deferred, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  auto op = graceful::async_run_tasks(ctx.get_executor(), sleepers(p, 4, 0ms), 2, asio::deferred);
  ctx.run();
  BOOST_TEST(p.invoked.load() == 0);  // nothing runs until launched
  result res;
  std::move(op)(res.handler());
  ctx.restart();
  ctx.run();
  BOOST_TEST(res.report.count(task_outcome::completed) == 4u);
}

BOOST_AUTO_TEST_CASE(token_use_future_on_a_multi_threaded_pool) {
  asio::thread_pool pool(4);
  probe p;
  std::vector<task> tasks;
  for (std::size_t i = 0; i < 200; ++i) tasks.push_back(sleeper(p, i, 1ms, false));
  auto f = graceful::async_run_tasks(pool.get_executor(), std::move(tasks), 8, asio::use_future);
  run_report r = f.get();
  pool.join();
  BOOST_TEST(r.count(task_outcome::completed) == 200u);
  BOOST_TEST(p.peak.load() <= 8);
  BOOST_TEST(p.cleaned.load() == 200);
}

BOOST_AUTO_TEST_CASE(io_context_run_by_four_threads_cancelled_midway) {
  asio::io_context ctx;
  probe p;
  std::vector<task> tasks;
  for (std::size_t i = 0; i < 300; ++i) tasks.push_back(sleeper(p, i, i < 40 ? 1ms : 1h, false));
  asio::cancellation_signal sig;
  auto strand = asio::make_strand(ctx);
  // Cancel once 50 tasks have started; emit on the handler's executor (a strand).
  p.on_start = [&] {
    if (p.started == 50) asio::post(strand, [&] { sig.emit(asio::cancellation_type::terminal); });
  };
  std::promise<run_report> done;
  graceful::async_run_tasks(
      ctx.get_executor(), std::move(tasks), 16,
      asio::bind_cancellation_slot(sig.slot(), asio::bind_executor(strand, [&](error_code, run_report r) {
                                     done.set_value(std::move(r));
                                   })));
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back([&] { ctx.run(); });
  for (auto& t : threads) t.join();
  run_report r = done.get_future().get();
  BOOST_TEST(r.cause() == stop_cause::cancelled);
  BOOST_TEST(p.peak.load() <= 16);
  BOOST_TEST(r.started() == static_cast<std::size_t>(p.started.load()));
  BOOST_TEST(p.cleaned.load() == p.started.load());
  BOOST_TEST(r.count(task_outcome::completed) == static_cast<std::size_t>(p.finished.load()));
  BOOST_TEST(r.count(task_outcome::cancelled_running) >= 1u);
  check_accounting(r);
}

// The blocking form, without signals (those are tested in child processes).

BOOST_AUTO_TEST_CASE(blocking_run_tasks_refuses_bad_input_with_a_message_naming_it) {
  probe p;
  auto message = [](auto&& call) -> std::string {
    try {
      call();
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  };
  BOOST_TEST(message([&] { graceful::run_tasks(sleepers(p, 2, 0ms), 0); })
                 .find("max_concurrent must be at least 1") != std::string::npos);
  auto with_null = sleepers(p, 3, 0ms);
  with_null[2] = task{};
  BOOST_TEST(message([&] { graceful::run_tasks(std::move(with_null), 2); })
                 .find("task 2 is an empty callable") != std::string::npos);
  graceful::run_options zero_threads;
  zero_threads.threads = 0;
  BOOST_TEST(message([&] { graceful::run_tasks(sleepers(p, 2, 0ms), 2, zero_threads); })
                 .find("threads must be at least 1") != std::string::npos);
  graceful::run_options bad_signals;
  bad_signals.signals.force_exit_after = 1;
  BOOST_TEST(message([&] { graceful::run_tasks(sleepers(p, 2, 0ms), 2, bad_signals); })
                 .find("force_exit_after") != std::string::npos);
  BOOST_TEST(p.invoked.load() == 0);  // nothing started
}

BOOST_AUTO_TEST_CASE(blocking_run_tasks_runs_everything_on_one_or_several_threads) {
  for (std::size_t threads : {1u, 3u}) {
    probe p;
    std::vector<task> tasks;
    for (std::size_t i = 0; i < 40; ++i) tasks.push_back(sleeper(p, i, 1ms, false));
    graceful::run_options options;
    options.threads = threads;
    run_report r = graceful::run_tasks(std::move(tasks), 4, options);
    BOOST_TEST(r.count(task_outcome::completed) == 40u);
    BOOST_TEST(r.cause() == stop_cause::none);
    BOOST_TEST(r.exit_code() == 0);
    BOOST_TEST(p.peak.load() <= 4);
  }
  run_report empty = graceful::run_tasks(std::vector<task>{}, 4);
  BOOST_TEST(empty.size() == 0u);
}

// run_tasks keeps its thread's io_context for the next call, but not one that
// an exception left with handlers queued: the next run must not run them.
BOOST_AUTO_TEST_CASE(a_run_that_ends_by_an_exception_leaves_nothing_for_the_next_one) {
  bool stale_ran = false;
  std::vector<task> throwing{[&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    asio::post(ex, [] { throw std::runtime_error("out of run()"); });
    asio::post(ex, [&] { stale_ran = true; });  // still queued when run() throws
    asio::steady_timer t(ex, 50ms);  // keeps a reused context busy only briefly
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  }};
  BOOST_CHECK_THROW(graceful::run_tasks(std::move(throwing), 1), std::runtime_error);
  probe p;
  run_report next = graceful::run_tasks(sleepers(p, 3, 0ms), 2);
  BOOST_TEST(next.count(task_outcome::completed) == 3u);
  BOOST_TEST(!stale_ran);
}

// A run_tasks inside a task of another, on the same thread, gets a context of
// its own: the outer one's is busy.
BOOST_AUTO_TEST_CASE(a_run_tasks_inside_a_task_runs_on_a_context_of_its_own) {
  probe inner_p;
  std::size_t inner_completed = 0;
  std::vector<task> outer{[&]() -> asio::awaitable<void> {
    inner_completed = graceful::run_tasks(sleepers(inner_p, 4, 0ms), 2).count(task_outcome::completed);
    co_return;
  }};
  run_report r = graceful::run_tasks(std::move(outer), 1);
  BOOST_TEST(r.count(task_outcome::completed) == 1u);
  BOOST_TEST(inner_completed == 4u);
}

BOOST_AUTO_TEST_SUITE_END()
