// task_registry::async_shutdown: the shutdown ladder (grace, cancel, drain
// budget) for tasks spawned over time, and the names of what it gave up on.
#include <graceful/shield.hpp>
#include <graceful/task_registry.hpp>
#include <graceful/this_task.hpp>

#include "context_hints.hpp"
#include "task_probe.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <csignal>
#include <chrono>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using boost::system::error_code;
using graceful::registry_snapshot;
using graceful::run_phase;
using graceful::shutdown_options;
using graceful::stop_cause;
using graceful::task_registry;
using namespace std::chrono_literals;
using namespace graceful_test;
using clock_type = std::chrono::steady_clock;

using shutdown_result = completion<registry_snapshot>;

BOOST_AUTO_TEST_SUITE(registry_shutdown)

BOOST_DATA_TEST_CASE(the_ladder_lets_tasks_finish_then_cancels_then_drops_the_waiting, context_hints,
                     hint) {
  asio::io_context ctx(hint);
  probe p;
  task_registry reg(ctx.get_executor(), 3);
  bool wound_down = false;
  reg.spawn(sleeper(p, 0, 100ms), "finishes-in-grace");
  reg.spawn([&]() -> asio::awaitable<void> {
    p.start(1, false);
    cleanup_guard g{p};
    co_await graceful::this_task::async_wait_stop(asio::use_awaitable);
    wound_down = co_await graceful::this_task::stop_requested();
  });
  reg.spawn(sleeper(p, 2, 1h), "cancelled-after-grace");
  reg.spawn(sleeper(p, 3, 1h), "waits-for-a-slot");
  shutdown_result res;
  shutdown_options o;
  o.grace = 300ms;
  const auto t0 = clock_type::now();
  asio::post(ctx, [&] { reg.async_shutdown(o, res.handler()); });
  ctx.run();
  BOOST_TEST(res.calls == 1);
  BOOST_TEST(!res.ec);
  const auto& s = res.value;
  BOOST_TEST(s.closed);
  BOOST_TEST(s.cause == stop_cause::signal);
  BOOST_TEST(s.completed == 2u);
  BOOST_TEST(s.cancelled_running == 1u);
  BOOST_TEST(s.cancelled_queued == 1u);
  BOOST_TEST(s.abandoned == 0u);
  BOOST_TEST(wound_down);
  BOOST_TEST(p.started.load() == 3);
  BOOST_TEST(p.cleaned.load() == 3);
  BOOST_TEST((res.at - t0 >= 300ms));
  BOOST_TEST((res.at - t0 < 10s));
  error_code ec;
  BOOST_TEST(reg.spawn(sleeper(p, 4, 1ms), ec) == 0u);
  BOOST_TEST(ec == graceful::error::registry_closed);
}

BOOST_DATA_TEST_CASE(a_hung_cleanup_is_given_up_on_and_named_and_ends_safely_later, context_hints,
                     hint) {
  asio::io_context ctx(hint);
  probe p;
  asio::steady_timer gate(ctx, asio::steady_timer::time_point::max());
  auto state = std::make_shared<int>(0);
  std::weak_ptr<int> watch = state;
  shutdown_result res;
  std::optional<task_registry> reg(std::in_place, ctx.get_executor());
  reg->spawn(sleeper(p, 0, 1h));
  graceful::task_id hung = reg->spawn(hangs_in_cleanup(p, 0, gate, state), "stuck-upload");
  BOOST_TEST(hung == 2u);
  state.reset();
  shutdown_options o;
  o.cause = stop_cause::cancelled;
  o.drain_timeout = 100ms;
  // Posted: behind the tasks' starts (a task not begun when the shutdown
  // comes is dropped).
  asio::post(ctx, [&] {
    reg->async_shutdown(o, [&](error_code e, registry_snapshot s) {
      res.handler()(e, std::move(s));
      reg.reset();  // the registry goes before the abandoned task ends
      asio::post(ctx, [&] { gate.cancel(); });  // which it may now
    });
  });
  ctx.run();
  BOOST_TEST(res.calls == 1);
  const auto& s = res.value;
  BOOST_TEST(s.cause == stop_cause::cancelled);
  BOOST_TEST(s.cancelled_running == 1u);
  BOOST_TEST(s.abandoned == 1u);
  BOOST_TEST(s.running == 0u);
  BOOST_TEST_REQUIRE(s.abandoned_tasks.size() == 1u);
  BOOST_TEST(s.abandoned_tasks[0].id == 2u);
  BOOST_TEST(s.abandoned_tasks[0].name == "stuck-upload");
  BOOST_TEST((s.abandoned_tasks[0].ran_for >= 100ms));
  BOOST_TEST(p.cleaned.load() == 2);
  BOOST_TEST(watch.expired());  // its callable went when it ended
}

// A cancel during the grace (cancel_all, a signal of stop_on, a failure
// under failure_policy::cancel_all) is a second stop request: the grace
// ends and the drain budget counts from it.
BOOST_DATA_TEST_CASE(a_cancel_all_during_the_grace_ends_it_and_starts_the_drain_budget, context_hints,
                     hint) {
  asio::io_context ctx(hint);
  probe p;
  asio::steady_timer gate(ctx, asio::steady_timer::time_point::max());
  task_registry reg(ctx.get_executor());
  reg.spawn(hangs_in_cleanup(p, 0, gate, std::make_shared<int>(0)));
  shutdown_result res;
  shutdown_options o;
  o.grace = 1h;
  o.drain_timeout = 50ms;
  // Without the cancel, the grace would outlast this: the hung task is let
  // go, and the shutdown completes with nothing abandoned.
  asio::steady_timer too_late(ctx, 5s);
  too_late.async_wait([&](error_code) {
    if (res.calls == 0) gate.cancel();
  });
  const auto t0 = clock_type::now();
  asio::post(ctx, [&] {
    reg.async_shutdown(o, [&](error_code e, registry_snapshot s) {
      res.handler()(e, std::move(s));
      too_late.cancel();
      gate.cancel();
    });
    asio::post(ctx, [&] { reg.cancel_all(); });
  });
  ctx.run();
  BOOST_TEST_REQUIRE(res.calls == 1);
  BOOST_TEST(res.value.abandoned == 1u);
  BOOST_TEST((res.at - t0 >= 50ms));
  BOOST_TEST((res.at - t0 < 5s));
  BOOST_TEST(p.cleaned.load() == 1);
}

BOOST_DATA_TEST_CASE(a_second_shutdown_ends_the_grace_and_both_complete_alike, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  task_registry reg(ctx.get_executor());
  for (std::size_t i = 0; i < 3; ++i) reg.spawn(sleeper(p, i, 1h));
  shutdown_result first, second, late;
  shutdown_options o;
  o.grace = 1h;  // only the second request ends it
  asio::post(ctx, [&] {
    reg.async_shutdown(o, first.handler());
    asio::post(ctx, [&] { reg.async_shutdown(o, second.handler()); });
  });
  ctx.run();
  BOOST_TEST(first.calls == 1);
  BOOST_TEST(second.calls == 1);
  BOOST_TEST(first.value.cancelled_running == 3u);
  BOOST_TEST(second.value.cancelled_running == 3u);
  reg.async_shutdown(o, late.handler());  // over: completes at once (posted)
  BOOST_TEST(late.calls == 0);
  ctx.restart();
  ctx.run();
  BOOST_TEST(late.calls == 1);
  BOOST_TEST(late.value.cancelled_running == 3u);
}

BOOST_DATA_TEST_CASE(cancelling_the_shutdown_ends_the_grace, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  task_registry reg(ctx.get_executor());
  reg.spawn(sleeper(p, 0, 1h));
  asio::cancellation_signal sig;
  shutdown_result res;
  shutdown_options o;
  o.grace = 1h;
  asio::post(ctx, [&] {
    reg.async_shutdown(o, asio::bind_cancellation_slot(sig.slot(), res.handler()));
    asio::post(ctx, [&] { sig.emit(asio::cancellation_type::terminal); });
  });
  ctx.run();
  BOOST_TEST(res.calls == 1);
  BOOST_TEST(res.value.cancelled_running == 1u);
}

BOOST_DATA_TEST_CASE(progress_names_the_running_tasks_oldest_first, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  asio::steady_timer gate(ctx, asio::steady_timer::time_point::max());
  task_registry reg(ctx.get_executor());
  reg.spawn(sleeper(p, 0, 1h));
  reg.spawn(hangs_in_cleanup(p, 0, gate, std::make_shared<int>(0)));
  reg.spawn(hangs_in_cleanup(p, 0, gate, std::make_shared<int>(0)));
  std::vector<graceful::run_progress> seen;
  shutdown_options o;
  o.grace = 30ms;
  o.progress_interval = 20ms;
  o.on_progress = [&](const graceful::run_progress& pr) {
    seen.push_back(pr);
    if (pr.phase == run_phase::cancelling && pr.since_stop >= 100ms) gate.cancel();
  };
  shutdown_result res;
  asio::post(ctx, [&] { reg.async_shutdown(o, res.handler()); });
  ctx.run();
  BOOST_TEST(res.calls == 1);
  BOOST_TEST_REQUIRE(seen.size() >= 3u);
  BOOST_TEST(seen.front().phase == run_phase::grace);
  BOOST_TEST(seen.back().phase == run_phase::done);
  for (std::size_t k = 1; k < seen.size(); ++k) BOOST_TEST(seen[k - 1].phase <= seen[k].phase);
  const auto& last_cancelling = *std::find_if(seen.rbegin(), seen.rend(), [](const auto& s) {
    return s.phase == run_phase::cancelling;
  });
  BOOST_TEST(last_cancelling.blocking == (std::vector<std::size_t>{2, 3}));
  BOOST_TEST(last_cancelling.running == 2u);
}

BOOST_DATA_TEST_CASE(a_shutdown_that_is_over_keeps_nothing_of_its_options, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  task_registry reg(ctx.get_executor());
  reg.spawn(sleeper(p, 0, 1h));
  auto watch = std::make_shared<int>(0);
  int reports = 0;
  shutdown_options o;
  o.grace = 10ms;
  o.on_progress = [&reports, watch](const graceful::run_progress&) { ++reports; };
  shutdown_result res;
  // Posted: behind the task's start.
  asio::post(ctx, [&reg, &res, o] { reg.async_shutdown(o, res.handler()); });
  o = shutdown_options{};
  ctx.run();
  BOOST_TEST_REQUIRE(res.calls == 1);
  BOOST_TEST(reports >= 2);
  // The registry lives on; what its shutdown was given does not.
  BOOST_TEST(watch.use_count() == 1);
  shutdown_result late;
  reg.async_shutdown(shutdown_options{}, late.handler());
  ctx.restart();
  ctx.run();
  BOOST_TEST(late.calls == 1);
  BOOST_TEST(late.value.cancelled_running == 1u);
}

// A task that holds its own registry (to spawn more, say) and waits for the
// stop: a context destroyed meanwhile destroys the wait, the task's frame
// and its callable, and so the registry too.
BOOST_DATA_TEST_CASE(a_context_destroyed_with_a_task_waiting_for_the_stop_lets_the_registry_go,
                     context_hints, hint) {
  std::weak_ptr<task_registry> watch;
  bool parked = false, resumed = false;
  {
    asio::io_context ctx(hint);
    auto reg = std::make_shared<task_registry>(ctx.get_executor());
    watch = reg;
    reg->spawn([&parked, &resumed, reg]() -> asio::awaitable<void> {
      parked = true;
      co_await graceful::this_task::async_wait_stop(asio::use_awaitable);
      resumed = true;
    });
    reg.reset();
    ctx.poll();
    BOOST_TEST_REQUIRE(parked);
    BOOST_TEST(!watch.expired());
  }
  BOOST_TEST(!resumed);
  BOOST_TEST(watch.expired());
}

BOOST_AUTO_TEST_CASE(a_shutdown_by_a_signal_prints_its_blockers_and_exits_by_it) {
  asio::io_context ctx(1);
  probe p;
  asio::steady_timer gate(ctx, asio::steady_timer::time_point::max());
  task_registry reg(ctx.get_executor());
  reg.spawn(sleeper(p, 0, 1h));
  reg.spawn(hangs_in_cleanup(p, 1, gate, std::make_shared<int>(0)), "upload-7");
  shutdown_options o;
  o.signal_number = SIGTERM;
  o.drain_timeout = 30ms;
  shutdown_result res;
  asio::post(ctx, [&] {
    reg.async_shutdown(o, [&](error_code e, registry_snapshot s) {
      res.handler()(e, std::move(s));
      gate.cancel();
    });
  });
  ctx.run();
  BOOST_TEST_REQUIRE(res.calls == 1);
  BOOST_TEST(res.value.signal_number == SIGTERM);
  BOOST_TEST(res.value.exit_code() == 128 + SIGTERM);
  std::ostringstream text;
  text << res.value;
  BOOST_TEST(text.str().find("graceful registry: stopped by signal 15") == 0u, text.str());
  BOOST_TEST(text.str().find("cancelled_running 1") != std::string::npos, text.str());
  BOOST_TEST(text.str().find("abandoned:\n    upload-7 (ran ") != std::string::npos, text.str());
  registry_snapshot quiet;
  BOOST_TEST(quiet.exit_code() == 0);
  quiet.failed = 1;
  BOOST_TEST(quiet.exit_code() == 1);
}

BOOST_AUTO_TEST_CASE(bad_options_are_refused_and_nothing_is_touched) {
  asio::io_context ctx;
  probe p;
  task_registry reg(ctx.get_executor());
  reg.spawn(sleeper(p, 0, 10ms));
  shutdown_result res;
  shutdown_options o;
  o.drain_timeout = -1ms;
  reg.async_shutdown(o, res.handler());
  ctx.run();
  BOOST_TEST(res.ec == graceful::error::invalid_argument);
  BOOST_TEST(!reg.is_closed());
  BOOST_TEST(reg.snapshot().completed == 1u);
}

BOOST_AUTO_TEST_CASE(on_a_thread_pool_with_a_future) {
  asio::thread_pool pool(4);
  probe p;
  asio::steady_timer gate(pool, asio::steady_timer::time_point::max());
  task_registry reg(pool.get_executor());
  for (std::size_t i = 0; i < 20; ++i) reg.spawn(sleeper(p, i, 1h, false));
  reg.spawn(hangs_in_cleanup(p, 0, gate, std::make_shared<int>(0)), "stuck");
  while (p.started.load() < 21) std::this_thread::yield();
  shutdown_options o;
  o.grace = 20ms;
  o.drain_timeout = 50ms;
  auto f = reg.async_shutdown(o, asio::use_future);
  registry_snapshot s = f.get();
  BOOST_TEST(s.cancelled_running == 20u);
  BOOST_TEST(s.abandoned == 1u);
  BOOST_TEST_REQUIRE(s.abandoned_tasks.size() == 1u);
  BOOST_TEST(s.abandoned_tasks[0].name == "stuck");
  asio::post(gate.get_executor(), [&] { gate.cancel(); });
  pool.join();
  BOOST_TEST(p.cleaned.load() == 21);
}

BOOST_AUTO_TEST_SUITE_END()
