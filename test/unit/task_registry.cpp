#include <graceful/run_tasks.hpp>
#include <graceful/shield.hpp>
#include <graceful/task_registry.hpp>

#include "context_hints.hpp"
#include "task_probe.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using boost::system::error_code;
using graceful::registry_snapshot;
using graceful::stop_cause;
using graceful::task_registry;
using graceful::task_state;
using graceful::task_outcome;
using namespace std::chrono_literals;
using namespace graceful_test;

// Named, not anonymous: the data test cases below are templates, and their
// lambdas capture these types (-Wsubobject-linkage).
namespace registry_test {

// Counts the completions of one async_join.
struct join_result {
  int calls = 0;
  error_code ec;
  auto handler() {
    return [this](error_code e) {
      ++calls;
      ec = e;
    };
  }
};

// Joins `reg` while running `ctx` to the end; checks the join was not inline.
join_result join_and_run(asio::io_context& ctx, task_registry& reg) {
  join_result j;
  reg.async_join(j.handler());
  BOOST_TEST(j.calls == 0);
  ctx.run();
  BOOST_TEST(j.calls == 1);
  BOOST_TEST(!j.ec);
  return j;
}

// Every spawned task is in exactly one state or outcome.
void check_accounting(const registry_snapshot& s, std::size_t spawned) {
  std::size_t sum = 0;
  for (auto st : {task_state::not_started, task_state::queued, task_state::running,
                  task_state::done}) {
    sum += s.count(st);
  }
  BOOST_TEST(sum == spawned);
  BOOST_TEST(s.running_ids.size() == s.running);
}

struct result_holder {
  graceful::run_report report;
};

// A move-only task: proves a refused spawn hands the task back untouched.
struct owning_task {
  std::unique_ptr<int> payload = std::make_unique<int>(7);
  asio::awaitable<void> operator()() { co_return; }
};

}  // namespace registry_test
using namespace registry_test;

BOOST_AUTO_TEST_SUITE(task_registry_suite)

BOOST_DATA_TEST_CASE(runs_every_spawned_task_and_join_waits_for_all, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  task_registry reg(ctx.get_executor());
  std::vector<graceful::task_id> ids;
  for (std::size_t i = 0; i < 5; ++i) ids.push_back(reg.spawn(sleeper(p, i, 1ms)));
  for (std::size_t i = 1; i < ids.size(); ++i) BOOST_TEST(ids[i] > ids[i - 1]);
  BOOST_TEST(ids.front() != 0u);
  join_and_run(ctx, reg);
  BOOST_TEST(p.finished.load() == 5);
  BOOST_TEST(p.peak.load() == 5);  // no limit: all ran at once
  auto s = reg.snapshot();
  BOOST_TEST(s.completed == 5u);
  BOOST_TEST(s.cause == stop_cause::none);
  check_accounting(s, 5);
}

BOOST_DATA_TEST_CASE(a_limit_queues_tasks_in_spawn_order, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  task_registry reg(ctx.get_executor(), 3);
  std::optional<registry_snapshot> seen;
  p.on_start = [&] {
    if (p.started == 3) seen = reg.snapshot();
  };
  for (std::size_t i = 0; i < 10; ++i) reg.spawn(sleeper(p, i, 1ms));
  auto before = reg.snapshot();
  BOOST_TEST(before.not_started == 3u);  // given a slot, not begun: nothing ran yet
  BOOST_TEST(before.queued == 7u);
  ctx.run();
  BOOST_TEST_REQUIRE(seen.has_value());
  BOOST_TEST(seen->running == 3u);
  BOOST_TEST(seen->queued == 7u);
  BOOST_TEST(seen->running_ids == (std::vector<graceful::task_id>{1, 2, 3}),
             boost::test_tools::per_element());
  BOOST_TEST(p.peak.load() == 3);
  std::vector<std::size_t> expected(10);
  for (std::size_t i = 0; i < 10; ++i) expected[i] = i;
  BOOST_TEST(p.start_order == expected, boost::test_tools::per_element());
  check_accounting(reg.snapshot(), 10);
}

BOOST_DATA_TEST_CASE(cancel_all_reaches_every_state, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  task_registry reg(ctx.get_executor(), 2);
  join_result j;
  p.on_start = [&] {
    if (p.started == 2) {
      // Two run, three wait for a slot.
      reg.close();
      reg.cancel_all(stop_cause::signal);
      reg.async_join(j.handler());
    }
  };
  for (std::size_t i = 0; i < 5; ++i) reg.spawn(sleeper(p, i, 1h));
  ctx.run_for(30s);  // bounded only so that a regression fails instead of hanging
  BOOST_TEST(j.calls == 1);
  BOOST_TEST(!j.ec);
  auto s = reg.snapshot();
  BOOST_TEST(s.cancelled_running == 2u);
  BOOST_TEST(s.cancelled_queued == 3u);
  BOOST_TEST(s.cause == stop_cause::signal);
  BOOST_TEST(s.closed);
  BOOST_TEST(p.cleaned.load() == 2);
  BOOST_TEST(p.invoked.load() == 2);  // the queued ones never ran
  check_accounting(s, 5);
}

BOOST_DATA_TEST_CASE(a_task_cancelled_before_its_coroutine_begins_never_runs, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  task_registry reg(ctx.get_executor(), 2);
  reg.spawn(sleeper(p, 0, 1h));
  reg.spawn(sleeper(p, 1, 1h));
  BOOST_TEST(reg.snapshot().not_started == 2u);
  reg.cancel_all();
  ctx.run();
  auto s = reg.snapshot();
  BOOST_TEST(s.cancelled_not_started == 2u);
  BOOST_TEST(s.count(task_outcome::not_started) == 2u);
  BOOST_TEST(s.cause == stop_cause::cancelled);
  BOOST_TEST(p.invoked.load() == 0);
  // cancel_all does not close: a later task runs normally.
  reg.spawn(sleeper(p, 2, 0ms));
  ctx.restart();
  ctx.run();
  BOOST_TEST(reg.snapshot().completed == 1u);
}

// On one thread the running tasks see cancel_all in spawn order: their
// cleanups start oldest first.
BOOST_DATA_TEST_CASE(cancel_all_goes_in_spawn_order, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  task_registry reg(ctx.get_executor());
  std::vector<std::size_t> cancelled;
  constexpr std::size_t n = 40;
  for (std::size_t i = 0; i < n; ++i) {
    reg.spawn([&p, &cancelled, i]() -> asio::awaitable<void> {
      p.start(i, true);
      asio::steady_timer t(co_await asio::this_coro::executor, 1h);
      auto [ec] = co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      if (ec == asio::error::operation_aborted) cancelled.push_back(i);
    });
  }
  while (p.started.load() < static_cast<int>(n)) ctx.run_one();
  reg.cancel_all();
  join_and_run(ctx, reg);
  std::vector<std::size_t> expected(n);
  for (std::size_t i = 0; i < n; ++i) expected[i] = i;
  BOOST_TEST(p.start_order == expected, boost::test_tools::per_element());
  BOOST_TEST(cancelled == expected, boost::test_tools::per_element());
}

BOOST_DATA_TEST_CASE(cancel_one_task_by_id, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  task_registry reg(ctx.get_executor(), 1);
  graceful::task_id running = 0, waiting = 0;
  p.on_start = [&] {
    if (p.started == 1) {
      BOOST_TEST(reg.cancel(waiting));  // dropped while queued
      BOOST_TEST(reg.cancel(running));  // cancelled while running
    }
  };
  running = reg.spawn(sleeper(p, 0, 1h));
  waiting = reg.spawn(sleeper(p, 1, 1h));
  reg.spawn(sleeper(p, 2, 1ms));  // gets the slot afterwards
  // The cancel reaches task 0 while it runs, with nothing pending to cancel:
  // its next await must still be cancelled. Bounded only so that a
  // regression fails instead of hanging.
  ctx.run_for(30s);
  auto s = reg.snapshot();
  BOOST_TEST(s.cancelled_running == 1u);
  BOOST_TEST(s.cancelled_queued == 1u);
  BOOST_TEST(s.completed == 1u);
  BOOST_TEST(s.cause == stop_cause::none);  // cancel(id) is not a stop
  BOOST_TEST(p.start_order == (std::vector<std::size_t>{0, 2}), boost::test_tools::per_element());
  BOOST_TEST(!reg.cancel(running));  // done
  BOOST_TEST(!reg.cancel(12345));    // unknown
}

BOOST_DATA_TEST_CASE(a_done_task_s_captures_are_gone_at_once, context_hints, hint) {
  asio::io_context ctx(hint);
  task_registry reg(ctx.get_executor(), 1);
  auto ran = std::make_shared<int>(0), queued = std::make_shared<int>(1);
  long ran_refs_at_join = -1;
  reg.spawn([ran]() -> asio::awaitable<void> {
    asio::steady_timer t(co_await asio::this_coro::executor, 1ms);
    co_await t.async_wait(asio::use_awaitable);
  });
  graceful::task_id waiting = reg.spawn([queued]() -> asio::awaitable<void> { co_return; });
  BOOST_TEST(queued.use_count() == 2);
  BOOST_TEST(reg.cancel(waiting));
  BOOST_TEST(queued.use_count() == 1);  // dropped with the cancel, not with the registry
  reg.async_join([&](error_code) { ran_refs_at_join = ran.use_count(); });
  ctx.run();
  BOOST_TEST(ran_refs_at_join == 1);
}

// A listener that lives on a context of its own, gone (with that context)
// before the registry and the run that stop on it: they hold nothing of it.
BOOST_AUTO_TEST_CASE(a_stop_on_listener_may_go_with_its_context_first) {
  asio::io_context ctx;
  std::optional<task_registry> reg(std::in_place, ctx.get_executor());
  int ran = 0;
  result_holder run;
  {
    asio::io_context listener_ctx;
    graceful::shutdown_signals signals(listener_ctx.get_executor());
    reg->stop_on(signals);
    graceful::run_options options;
    options.stop_on = &signals;
    std::vector<task> tasks(3, [&ran]() -> asio::awaitable<void> {
      ++ran;
      co_return;
    });
    graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 2, options,
                              [&run](error_code, graceful::run_report r) { run.report = std::move(r); });
  }
  reg->spawn([&ran]() -> asio::awaitable<void> {
    ++ran;
    co_return;
  });
  ctx.run();
  reg.reset();
  BOOST_TEST(ran == 4);
  BOOST_TEST(run.report.count(task_outcome::completed) == 3u);
  BOOST_TEST(run.report.cause() == stop_cause::none);
}

BOOST_DATA_TEST_CASE(close_refuses_later_spawns_and_hands_the_task_back, context_hints, hint) {
  asio::io_context ctx(hint);
  task_registry reg(ctx.get_executor());
  reg.close();
  BOOST_TEST(reg.is_closed());
  owning_task t;
  error_code ec;
  BOOST_TEST(reg.spawn(std::move(t), ec) == 0u);
  BOOST_TEST(ec == graceful::error::registry_closed);
  BOOST_TEST_REQUIRE(static_cast<bool>(t.payload));  // not moved from
  BOOST_TEST(*t.payload == 7);
  try {
    reg.spawn(std::move(t));
    BOOST_FAIL("spawn into a closed registry must throw");
  } catch (const boost::system::system_error& e) {
    BOOST_TEST(e.code() == graceful::error::registry_closed);
  }
  BOOST_TEST(static_cast<bool>(t.payload));
  check_accounting(reg.snapshot(), 0);
}

BOOST_AUTO_TEST_CASE(bad_input_is_refused) {
  asio::io_context ctx;
  BOOST_CHECK_THROW(task_registry(ctx.get_executor(), 0), std::invalid_argument);
  task_registry reg(ctx.get_executor());
  error_code ec;
  BOOST_TEST(reg.spawn(task{}, ec) == 0u);
  BOOST_TEST(ec == graceful::error::invalid_argument);
  BOOST_CHECK_THROW(reg.spawn(task{}), boost::system::system_error);
  check_accounting(reg.snapshot(), 0);
}

BOOST_DATA_TEST_CASE(join_on_an_idle_registry_completes_at_once_but_never_inline, context_hints,
                     hint) {
  asio::io_context ctx(hint);
  task_registry reg(ctx.get_executor());
  join_and_run(ctx, reg);
}

BOOST_DATA_TEST_CASE(join_is_cancellable_with_every_type_and_leaves_the_tasks_alone, context_hints,
                     hint) {
  for (auto type : {asio::cancellation_type::terminal, asio::cancellation_type::partial,
                    asio::cancellation_type::total}) {
    BOOST_TEST_CONTEXT("cancellation type " << static_cast<int>(type)) {
      asio::io_context ctx(hint);
      probe p;
      task_registry reg(ctx.get_executor());
      reg.spawn(sleeper(p, 0, 20ms));
      asio::cancellation_signal sig;
      join_result cancelled, plain;
      reg.async_join(asio::bind_cancellation_slot(sig.slot(), cancelled.handler()));
      reg.async_join(plain.handler());
      asio::post(ctx, [&] { sig.emit(type); });
      ctx.run();
      BOOST_TEST(cancelled.calls == 1);
      BOOST_TEST(cancelled.ec == asio::error::operation_aborted);
      BOOST_TEST(plain.calls == 1);
      BOOST_TEST(!plain.ec);
      BOOST_TEST(p.finished.load() == 1);  // the task was not touched
      sig.emit(type);                      // after completion: nothing
      ctx.restart();
      ctx.run();
      BOOST_TEST(cancelled.calls == 1);
    }
  }
}

BOOST_DATA_TEST_CASE(join_token_matrix, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  task_registry reg(ctx.get_executor());
  reg.spawn(sleeper(p, 0, 1ms));
  bool awaited = false;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        co_await reg.async_join(asio::use_awaitable);
        awaited = true;
      },
      asio::detached);
  auto deferred = reg.async_join(asio::deferred);
  ctx.run();
  BOOST_TEST(awaited);
  join_result j;
  std::move(deferred)(j.handler());  // launched now, on an idle registry
  ctx.restart();
  ctx.run();
  BOOST_TEST(j.calls == 1);

  asio::thread_pool pool(2);
  task_registry pooled(pool.get_executor());
  pooled.spawn(sleeper(p, 1, 1ms, false));
  auto f = pooled.async_join(asio::use_future);
  BOOST_CHECK_NO_THROW(f.get());
  pool.join();
  BOOST_TEST(p.finished.load() == 2);
}

BOOST_DATA_TEST_CASE(shielded_cleanup_survives_repeated_cancel_all, context_hints, hint) {
  asio::io_context ctx(hint);
  task_registry reg(ctx.get_executor());
  int begun = 0, done = 0, running = 0;
  auto t = [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    if (++running == 2) asio::post(ctx, [&] { reg.cancel_all(); });
    std::exception_ptr e;
    try {
      asio::steady_timer timer(ex, 1h);
      co_await timer.async_wait(asio::use_awaitable);
    } catch (...) {
      e = std::current_exception();
    }
    co_await graceful::shield([&]() -> asio::awaitable<void> {
      ++begun;
      asio::post(ctx, [&] { reg.cancel_all(); });  // a second request meanwhile
      asio::steady_timer timer(co_await asio::this_coro::executor, 5ms);
      co_await timer.async_wait(asio::use_awaitable);
      ++done;
    }());
    if (e) std::rethrow_exception(e);
  };
  reg.spawn(t);
  reg.spawn(t);
  join_result j;
  reg.async_join(j.handler());
  ctx.run();
  BOOST_TEST(j.calls == 1);
  BOOST_TEST(begun == 2);
  BOOST_TEST(done == 2);
  BOOST_TEST(reg.snapshot().cancelled_running == 2u);
}

BOOST_DATA_TEST_CASE(failure_policies, context_hints, hint) {
  auto failing = []() -> asio::awaitable<void> {
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    throw std::runtime_error("boom");
  };
  {
    asio::io_context ctx(hint);
    probe p;
    task_registry reg(ctx.get_executor(), 4);
    reg.spawn(sleeper(p, 0, 1ms));
    reg.spawn(failing);
    reg.spawn(sleeper(p, 1, 1ms));
    ctx.run();
    auto s = reg.snapshot();
    BOOST_TEST(s.failed == 1u);
    BOOST_TEST(s.completed == 2u);
    BOOST_TEST(!s.closed);
    BOOST_TEST(s.cause == stop_cause::none);
  }
  {
    asio::io_context ctx(hint);
    probe p;
    task_registry reg(ctx.get_executor(), 2, graceful::failure_policy::cancel_all);
    reg.spawn(sleeper(p, 0, 1h));
    reg.spawn(failing);
    for (std::size_t i = 1; i < 5; ++i) reg.spawn(sleeper(p, i, 1h));
    ctx.run();
    auto s = reg.snapshot();
    BOOST_TEST(s.failed == 1u);
    BOOST_TEST(s.cancelled_running + s.cancelled_not_started == 2u);  // the first, and the one given the failed task's slot
    BOOST_TEST(s.cancelled_queued == 3u);
    BOOST_TEST(s.closed);
    BOOST_TEST(s.cause == stop_cause::failure);
    BOOST_TEST(p.cleaned.load() == p.started.load());
    check_accounting(s, 6);
  }
}

BOOST_DATA_TEST_CASE(destroying_the_registry_cancels_and_still_runs_every_cleanup, context_hints,
                     hint) {
  asio::io_context ctx(hint);
  probe p;
  join_result j;
  {
    task_registry reg(ctx.get_executor(), 2);
    for (std::size_t i = 0; i < 4; ++i) reg.spawn(sleeper(p, i, 1h));
    asio::post(ctx, [&] { ctx.stop(); });
    ctx.run();  // lets the first two begin
    ctx.restart();
    reg.async_join(j.handler());
  }
  ctx.run();  // runs out of work: nothing left parked
  BOOST_TEST(p.started.load() == 2);
  BOOST_TEST(p.cleaned.load() == 2);
  BOOST_TEST(j.calls == 1);
  BOOST_TEST(!j.ec);
}

BOOST_DATA_TEST_CASE(tasks_can_spawn_tasks, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  task_registry reg(ctx.get_executor(), 2);
  // An accept loop: each "connection" is a task spawned from inside a task.
  reg.spawn([&]() -> asio::awaitable<void> {
    for (std::size_t i = 0; i < 10; ++i) {
      reg.spawn(sleeper(p, i, 1ms));
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    }
  });
  join_result j;
  reg.async_join(j.handler());
  ctx.run();
  BOOST_TEST(j.calls == 1);
  BOOST_TEST(p.finished.load() == 10);
  BOOST_TEST(p.peak.load() <= 2);
  BOOST_TEST(reg.snapshot().completed == 11u);
}

// Spawns, the shutdown and the join come from threads that do not run the
// context: four run it, or (concurrency hint 1) one does.
BOOST_DATA_TEST_CASE(many_threads_spawn_while_a_shutdown_runs, context_hints, hint) {
  asio::io_context ctx(hint);
  auto guard = asio::make_work_guard(ctx);
  probe p;
  constexpr int limit = 16;
  task_registry reg(ctx.get_executor(), limit);
  std::vector<std::thread> runners;
  for (int i = 0; i < (hint == 1 ? 1 : 4); ++i) runners.emplace_back([&] { ctx.run(); });

  std::atomic<int> accepted{0}, refused{0}, handed_back{0};
  std::atomic<bool> stop_spawning{false};
  auto spawner = [&](std::size_t base) {
    for (std::size_t i = 0; i < 2000 && !stop_spawning; ++i) {
      task t = sleeper(p, base + i, i % 100 == 0 ? 1h : 0ms, false);
      error_code ec;
      if (reg.spawn(std::move(t), ec) != 0) {
        ++accepted;
      } else {
        ++refused;
        if (ec == graceful::error::registry_closed && t) ++handed_back;
        if (ec) stop_spawning = true;
      }
    }
  };
  std::thread s1(spawner, 0), s2(spawner, 100000);
  // Shut down while both spawners are busy: once 300 tasks have begun.
  while (p.started.load() < 300) std::this_thread::yield();
  reg.close();
  reg.cancel_all(stop_cause::signal);
  auto joined = reg.async_join(asio::use_future);
  s1.join();
  s2.join();
  joined.get();
  guard.reset();
  for (auto& t : runners) t.join();

  auto s = reg.snapshot();
  BOOST_TEST(s.count(task_state::done) == static_cast<std::size_t>(accepted.load()));
  check_accounting(s, static_cast<std::size_t>(accepted.load()));
  BOOST_TEST(refused.load() == handed_back.load());
  BOOST_TEST(p.peak.load() <= limit);
  BOOST_TEST(p.cleaned.load() == p.started.load());
  BOOST_TEST(s.completed + s.failed + s.cancelled_running ==
             static_cast<std::size_t>(p.started.load()));
  BOOST_TEST(s.completed == static_cast<std::size_t>(p.finished.load()));
  BOOST_TEST(s.failed == 0u);
  BOOST_TEST(s.cause == stop_cause::signal);
}

BOOST_AUTO_TEST_SUITE_END()
