// Runs over a task source (a callable returning std::optional<Task>) and
// graceful::from_range.
#include <graceful/async_semaphore.hpp>
#include <graceful/from_range.hpp>
#include <graceful/run_tasks.hpp>

#include "context_hints.hpp"
#include "malloc_probe.hpp"
#include "report_checks.hpp"
#include "task_probe.hpp"

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
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <ranges>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace asio = boost::asio;
using boost::system::error_code;
using graceful::run_report;
using graceful::stop_cause;
using graceful::task_outcome;
using namespace std::chrono_literals;
using namespace graceful_test;

namespace {

using result = completion<run_report>;

// A source of n tasks made by make(i), counting its pulls; it checks that it
// is pulled only while a slot is free: never more than `limit` of its tasks
// pulled and not ended.
struct counted_source {
  struct state {
    std::size_t pulled = 0;
    std::size_t ended = 0;
    std::size_t most_in_flight = 0;
    bool ran_out = false;  // returned std::nullopt
    bool pulled_after_end = false;
  };
  std::shared_ptr<state> s = std::make_shared<state>();
  std::size_t n;
  std::function<task(std::size_t)> make;

  std::optional<task> operator()() {
    if (s->ran_out) s->pulled_after_end = true;
    if (s->pulled == n) {
      s->ran_out = true;
      return std::nullopt;
    }
    std::size_t i = s->pulled++;
    s->most_in_flight = std::max(s->most_in_flight, s->pulled - s->ended);
    return [inner = make(i), st = s]() -> asio::awaitable<void> {
      struct count_end {
        state& s;
        ~count_end() { ++s.ended; }
      } end{*st};
      co_await inner();
    };
  }
};

task quick(probe& p, std::size_t i) {
  return [&p, i]() -> asio::awaitable<void> {
    p.start(i, true);
    cleanup_guard g{p};
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    ++p.finished;
  };
}


}  // namespace

BOOST_AUTO_TEST_SUITE(task_sources)

BOOST_DATA_TEST_CASE(pulls_only_into_a_free_slot_and_runs_in_pull_order, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  counted_source src{std::make_shared<counted_source::state>(), 40, [&p](std::size_t i) { return quick(p, i); }};
  auto st = src.s;
  result r;
  graceful::async_run_tasks(ctx.get_executor(), src, 3, r.handler());
  BOOST_TEST(st->pulled == 0u);  // nothing runs inside the initiating call
  ctx.run();
  BOOST_TEST(r.calls == 1);
  BOOST_TEST(!r.ec);
  BOOST_TEST(r.value.size() == 40u);
  BOOST_TEST(r.value.count(task_outcome::completed) == 40u);
  BOOST_TEST(r.value.cause() == stop_cause::none);
  BOOST_TEST(r.value.exit_code() == 0);
  BOOST_TEST(st->most_in_flight <= 3u);
  BOOST_TEST(st->most_in_flight == 3u);
  BOOST_TEST(p.peak.load() == 3);
  BOOST_TEST(st->ran_out);
  BOOST_TEST(!st->pulled_after_end);
  std::vector<std::size_t> in_order(40);
  for (std::size_t i = 0; i < 40; ++i) in_order[i] = i;
  BOOST_TEST(p.start_order == in_order, boost::test_tools::per_element());
  // The run kept nothing of the source: only the test holds its state.
  BOOST_TEST(st.use_count() == 2);  // st and the test's src
}

BOOST_DATA_TEST_CASE(a_cancel_pulls_nothing_more_and_reports_what_was_pulled, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  counted_source src{std::make_shared<counted_source::state>(), 1000, [&p](std::size_t i) { return sleeper(p, i, std::chrono::hours(1)); }};
  auto st = src.s;
  asio::cancellation_signal cancel;
  p.on_start = [&] {
    if (p.started == 4) asio::post(ctx, [&] { cancel.emit(asio::cancellation_type::terminal); });
  };
  result r;
  graceful::async_run_tasks(ctx.get_executor(), src, 4,
                            asio::bind_cancellation_slot(cancel.slot(), r.handler()));
  ctx.run();
  BOOST_TEST(r.calls == 1);
  BOOST_TEST(r.value.cause() == stop_cause::cancelled);
  BOOST_TEST(st->pulled == 4u);  // one per slot, none after the stop
  BOOST_TEST(r.value.size() == 4u);
  BOOST_TEST(r.value.count(task_outcome::cancelled_running) == 4u);
  BOOST_TEST(r.value.count(task_outcome::cancelled_queued) == 0u);
  BOOST_TEST(r.value.count(task_outcome::not_started) == 0u);
  BOOST_TEST(p.cleaned.load() == 4);
  check_accounting(r.value);
}

BOOST_DATA_TEST_CASE(a_source_task_completes_fails_or_times_out, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  counted_source src{std::make_shared<counted_source::state>(), 3, [&](std::size_t i) -> task {
                       if (i == 0) return quick(p, i);
                       if (i == 1) {
                         return []() -> asio::awaitable<void> {
                           throw std::runtime_error("task one");
                           co_return;
                         };
                       }
                       return sleeper(p, i, std::chrono::hours(1), false);
                     }};
  graceful::run_options o;
  o.task_timeout = 50ms;
  result r;
  graceful::async_run_tasks(ctx.get_executor(), src, 3, o, r.handler());
  ctx.run_for(10s);
  BOOST_TEST(r.calls == 1);
  const run_report& rep = r.value;
  BOOST_TEST(rep.size() == 3u);
  BOOST_TEST(rep.outcome(0) == task_outcome::completed);
  BOOST_TEST(rep.outcome(1) == task_outcome::failed);
  BOOST_TEST(rep.outcome(2) == task_outcome::timed_out);
  BOOST_TEST(rep.cause() == stop_cause::none);
  BOOST_TEST(p.cleaned.load() == 2);
  check_accounting(rep);
}

BOOST_DATA_TEST_CASE(a_task_left_running_past_the_drain_budget_is_abandoned, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  asio::steady_timer gate(ctx, std::chrono::hours(1));
  auto state = std::make_shared<int>(0);
  counted_source src{std::make_shared<counted_source::state>(), 3, [&](std::size_t i) -> task {
                       if (i == 0) return hangs_in_cleanup(p, i, gate, state);
                       return sleeper(p, i, std::chrono::hours(1), false);
                     }};
  auto st = src.s;
  graceful::run_options o;
  o.drain_timeout = 50ms;
  asio::cancellation_signal cancel;
  p.on_start = [&] {
    if (p.started == 3) asio::post(ctx, [&] { cancel.emit(asio::cancellation_type::terminal); });
  };
  result r;
  graceful::async_run_tasks(ctx.get_executor(), src, 8, o,
                            asio::bind_cancellation_slot(cancel.slot(), r.handler()));
  while (r.calls == 0 && ctx.run_one_for(10s) > 0) {
  }
  BOOST_TEST(r.calls == 1);
  BOOST_TEST(r.value.outcome(0) == task_outcome::abandoned);
  BOOST_TEST(r.value.outcome(1) == task_outcome::cancelled_running);
  BOOST_TEST(r.value.outcome(2) == task_outcome::cancelled_running);
  BOOST_TEST(st->ran_out);  // it ran out before the stop (3 tasks, 8 slots)
  gate.cancel();  // the abandoned task ends on its own, with its callable alive
  ctx.run();
  BOOST_TEST(*state == 1);
  BOOST_TEST(p.cleaned.load() == 3);
}

BOOST_DATA_TEST_CASE(a_source_that_throws_stops_the_run_with_its_exception, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  std::size_t calls = 0;
  auto source = [&]() -> std::optional<task> {
    if (++calls == 4) throw std::runtime_error("the source broke");
    return sleeper(p, calls - 1, std::chrono::hours(1));
  };
  result r;
  graceful::async_run_tasks(ctx.get_executor(), source, 10, r.handler());
  ctx.run();
  BOOST_TEST(r.calls == 1);
  BOOST_TEST(!r.ec);
  BOOST_TEST(calls == 4u);  // never pulled again
  BOOST_TEST(r.value.cause() == stop_cause::failure);
  BOOST_TEST(r.value.size() == 3u);
  BOOST_TEST(r.value.count(task_outcome::cancelled_running) == 3u);
  BOOST_TEST(p.cleaned.load() == 3);
  BOOST_TEST(r.value.exit_code() == 1);
  BOOST_REQUIRE(r.value.source_error());
  BOOST_CHECK_THROW(std::rethrow_exception(r.value.source_error()), std::runtime_error);
  std::ostringstream text;
  text << r.value;
  BOOST_TEST(text.str().find("the source threw: the source broke") != std::string::npos);
}

BOOST_DATA_TEST_CASE(a_source_with_nothing_completes_with_an_empty_report, context_hints, hint) {
  asio::io_context ctx(hint);
  int calls = 0;
  auto source = [&]() -> std::optional<task> {
    ++calls;
    return std::nullopt;
  };
  result r;
  graceful::async_run_tasks(ctx.get_executor(), source, 4, r.handler());
  ctx.run();
  BOOST_TEST(r.calls == 1);
  BOOST_TEST(!r.ec);
  BOOST_TEST(calls == 1);
  BOOST_TEST(r.value.size() == 0u);
  BOOST_TEST(r.value.cause() == stop_cause::none);
  BOOST_TEST(r.value.exit_code() == 0);
}

BOOST_AUTO_TEST_CASE(bad_input_is_refused_before_anything_is_pulled) {
  asio::io_context ctx;
  int calls = 0;
  auto source = [&]() -> std::optional<task> {
    ++calls;
    return std::nullopt;
  };
  result zero_limit;
  graceful::async_run_tasks(ctx.get_executor(), source, 0, zero_limit.handler());
  result null_source;
  std::function<std::optional<task>()> empty;
  graceful::async_run_tasks(ctx.get_executor(), empty, 2, null_source.handler());
  ctx.run();
  BOOST_TEST(zero_limit.ec == graceful::error::invalid_argument);
  BOOST_TEST(null_source.ec == graceful::error::invalid_argument);
  BOOST_TEST(calls == 0);
  try {
    graceful::run_tasks(empty, 2);
    BOOST_FAIL("an empty source was accepted");
  } catch (const std::invalid_argument& e) {
    BOOST_TEST(std::string(e.what()).find("source is an empty callable") != std::string::npos);
  }
  BOOST_CHECK_THROW(graceful::run_tasks(source, 0), std::invalid_argument);
  BOOST_TEST(calls == 0);
}

BOOST_DATA_TEST_CASE(a_pulled_empty_callable_fails_as_a_task, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  std::size_t calls = 0;
  auto source = [&]() -> std::optional<task> {
    switch (calls++) {
      case 0:
        return quick(p, 0);
      case 1:
        return task{};  // empty
      case 2:
        return quick(p, 2);
      default:
        return std::nullopt;
    }
  };
  result r;
  graceful::async_run_tasks(ctx.get_executor(), source, 1, r.handler());
  ctx.run();
  BOOST_TEST(r.value.size() == 3u);
  BOOST_TEST(r.value.outcome(0) == task_outcome::completed);
  BOOST_TEST(r.value.outcome(1) == task_outcome::failed);
  BOOST_TEST(r.value.outcome(2) == task_outcome::completed);
  BOOST_CHECK_THROW(std::rethrow_exception(r.value.error(1)), std::invalid_argument);
  BOOST_TEST(r.value.cause() == stop_cause::none);
}

// A task's callable goes when it ends, not with the run: with one slot, each
// task sees the one before it gone.
BOOST_DATA_TEST_CASE(a_task_callable_goes_when_its_task_ends, context_hints, hint) {
  asio::io_context ctx(hint);
  std::weak_ptr<int> last;
  std::size_t calls = 0, saw_previous_alive = 0;
  auto source = [&]() -> std::optional<task> {
    if (calls++ == 20) return std::nullopt;
    auto mine = std::make_shared<int>(0);
    std::weak_ptr<int> previous = last;
    last = mine;
    return [mine, previous, &saw_previous_alive]() -> asio::awaitable<void> {
      if (!previous.expired()) ++saw_previous_alive;
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    };
  };
  result r;
  graceful::async_run_tasks(ctx.get_executor(), source, 1, r.handler());
  ctx.run();
  BOOST_TEST(r.value.count(task_outcome::completed) == 20u);
  BOOST_TEST(saw_previous_alive == 0u);
  BOOST_TEST(last.expired());
}

// A pulled callable stays where it was put while its task runs (a member
// coroutine reads its object there after every suspension), whichever of
// thousands of slots it took and however often the slots were reused: with
// members that need a destructor (reset at the task's end) and without.
namespace {
std::size_t capture_of(std::size_t i, std::size_t) { return i; }
std::string capture_of(std::size_t i, const std::string&) { return "task " + std::to_string(i); }

template <class Capture>
struct checked_task {
  Capture id;
  std::size_t mine;
  std::size_t* intact;

  asio::awaitable<void> operator()() const {
    const std::size_t me = mine;  // in the frame: what the object must still say
    for (int k = 0; k < 3; ++k) {
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
      if (mine != me || id != capture_of(me, id)) co_return;
    }
    ++*intact;
  }
};

template <class Capture>
void run_checked_tasks(int hint) {
  asio::io_context ctx(hint);
  constexpr std::size_t limit = 3000, n = 9000;
  std::size_t pulled = 0, intact = 0;
  auto source = [&]() -> std::optional<checked_task<Capture>> {
    if (pulled == n) return std::nullopt;
    const std::size_t mine = pulled++;
    return checked_task<Capture>{capture_of(mine, Capture{}), mine, &intact};
  };
  result r;
  graceful::async_run_tasks(ctx.get_executor(), source, limit, r.handler());
  ctx.run();
  BOOST_TEST(r.value.count(task_outcome::completed) == n);
  BOOST_TEST(intact == n);
}
}  // namespace

BOOST_DATA_TEST_CASE(pulled_callables_stay_in_their_slots, context_hints, hint) {
  static_assert(std::is_trivially_destructible_v<checked_task<std::size_t>>);
  run_checked_tasks<std::size_t>(hint);
  run_checked_tasks<std::string>(hint);
}

// A source's slots are made for the run's limit and kept in blocks of at
// most 32 KiB: three tasks under a limit of 1 take one slot, not a block of
// 64 (of a 504-byte slot: 31.5 KiB); under a limit of 64, 4 KiB tasks take
// a block of 4 slots, not of 64 (256 KiB), and a 256 KiB task a block of
// its own.
namespace {
template <std::size_t Size>
struct sized_task {
  std::array<char, Size> payload{};
  std::size_t before = 0;
  std::size_t* in_use = nullptr;

  asio::awaitable<void> operator()() const {
    const std::size_t now = malloc_in_use();
    *in_use = std::max(*in_use, now > before ? now - before : 0);
    co_return;
  }
};

// The most the heap held above where it was, seen by the tasks of a run of
// three, all started at once (none ends inline).
template <std::size_t Size>
std::size_t in_use_by_three(std::size_t limit) {
  asio::io_context ctx(1);
  std::size_t pulled = 0, in_use = 0;
  const std::size_t before = malloc_in_use();
  auto source = [&]() -> std::optional<sized_task<Size>> {
    if (pulled == 3) return std::nullopt;
    ++pulled;
    return sized_task<Size>{{}, before, &in_use};
  };
  result r;
  graceful::async_run_tasks(ctx.get_executor(), source, limit, r.handler());
  ctx.run();
  BOOST_TEST(r.value.count(task_outcome::completed) == 3u);
  return in_use;
}
}  // namespace

BOOST_AUTO_TEST_CASE(a_small_limit_makes_only_its_slots) {
  const std::size_t small = in_use_by_three<480>(1);
  const std::size_t page = in_use_by_three<4096>(64);
  const std::size_t big = in_use_by_three<256 * 1024>(1);
  BOOST_TEST_MESSAGE("in use: " << small << ", " << page << " and " << big << " bytes");
  if (malloc_counts) {  // a sanitizer's malloc keeps no count
    BOOST_TEST(small < 16u * 1024);
    BOOST_TEST(page < 64u * 1024);
    BOOST_TEST(big > 256u * 1024);       // the task's slot was counted
    BOOST_TEST(big < 256u * 1024 * 2);  // and nothing like 64 of them
  }
}

BOOST_DATA_TEST_CASE(a_huge_limit_costs_what_the_source_runs, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  counted_source src{std::make_shared<counted_source::state>(), 300, [&p](std::size_t i) { return sleeper(p, i, 20ms, false); }};
  auto st = src.s;
  result r;
  graceful::async_run_tasks(ctx.get_executor(), src, std::numeric_limits<std::size_t>::max(),
                            r.handler());
  ctx.run();
  BOOST_TEST(r.value.count(task_outcome::completed) == 300u);
  BOOST_TEST(st->most_in_flight == 300u);  // all at once: the slots grew as needed
}

BOOST_DATA_TEST_CASE(with_a_limiter_a_task_is_pulled_only_with_its_permit, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  graceful::async_semaphore limiter(ctx.get_executor(), 2);
  counted_source src{std::make_shared<counted_source::state>(), 12, [&p](std::size_t i) { return sleeper(p, i, 2ms, false); }};
  auto st = src.s;
  graceful::run_options o;
  o.limiter = &limiter;
  result r;
  graceful::async_run_tasks(ctx.get_executor(), src, 6, o, r.handler());
  ctx.run();
  BOOST_TEST(r.value.count(task_outcome::completed) == 12u);
  BOOST_TEST(st->most_in_flight == 2u);
  BOOST_TEST(limiter.available() == 2u);
}

BOOST_AUTO_TEST_CASE(a_closed_limiter_stops_the_pulls) {
  asio::io_context ctx;
  probe p;
  graceful::async_semaphore limiter(ctx.get_executor(), 1);
  counted_source src{std::make_shared<counted_source::state>(), 100, [&p](std::size_t i) { return sleeper(p, i, 2ms, false); }};
  auto st = src.s;
  graceful::run_options o;
  o.limiter = &limiter;
  p.on_start = [&] {
    if (p.started == 3) limiter.close();
  };
  result r;
  graceful::async_run_tasks(ctx.get_executor(), src, 4, o, r.handler());
  ctx.run();
  BOOST_TEST(r.value.cause() == stop_cause::limiter_closed);
  BOOST_TEST(st->pulled == 3u);
  BOOST_TEST(r.value.size() == 3u);
  BOOST_TEST(r.value.count(task_outcome::completed) == 3u);
}

// The source is called on the run's strand only: on four threads, calls
// never overlap (and TSan sees no race on the source's plain counters).
BOOST_AUTO_TEST_CASE(a_source_is_pulled_only_on_the_run_strand) {
  asio::thread_pool pool(4);
  std::atomic<int> inside{0};
  std::atomic<bool> overlapped{false};
  std::size_t calls = 0;  // not atomic: the strand orders every call
  std::atomic<int> ran{0};
  auto source = [&]() -> std::optional<graceful_test::task> {
    if (inside.fetch_add(1) != 0) overlapped = true;
    std::optional<graceful_test::task> t;
    if (calls++ < 2000) {
      t = [&ran]() -> asio::awaitable<void> {
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
        ++ran;
      };
    }
    inside.fetch_sub(1);
    return t;
  };
  auto done = graceful::async_run_tasks(pool.get_executor(), source, 16, asio::use_future);
  run_report report = done.get();
  pool.join();
  BOOST_TEST(!overlapped.load());
  BOOST_TEST(calls == 2001u);
  BOOST_TEST(ran.load() == 2000);
  BOOST_TEST(report.count(task_outcome::completed) == 2000u);
}

BOOST_AUTO_TEST_CASE(the_blocking_run_tasks_takes_a_source) {
  probe p;
  counted_source src{std::make_shared<counted_source::state>(), 25, [&p](std::size_t i) { return quick(p, i); }};
  auto st = src.s;
  run_report report = graceful::run_tasks(src, 4);
  BOOST_TEST(report.count(task_outcome::completed) == 25u);
  BOOST_TEST(st->most_in_flight == 4u);
}

// A source that stops its own run from inside its call (its run's
// cancellation emitted there): the source lives through its call, the task
// it gave is taken and never started.
BOOST_DATA_TEST_CASE(a_source_that_stops_its_own_run_outlives_its_call, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  asio::cancellation_signal cancel;
  auto calls = std::make_shared<int>(0);
  auto source = [&p, &cancel, calls, buffer = std::vector<int>(64, 7)]() -> std::optional<task> {
    if (++*calls == 3) cancel.emit(asio::cancellation_type::terminal);
    int sum = 0;
    for (int v : buffer) sum += v;  // its own state, after the stop
    if (sum != 64 * 7) throw std::logic_error("the source's state is gone");
    return sleeper(p, static_cast<std::size_t>(*calls - 1), std::chrono::hours(1), false);
  };
  result r;
  graceful::async_run_tasks(ctx.get_executor(), std::move(source), 8,
                            asio::bind_cancellation_slot(cancel.slot(), r.handler()));
  ctx.run_for(10s);
  BOOST_TEST(r.calls == 1);
  BOOST_TEST(*calls == 3);
  BOOST_TEST(!r.value.source_error());
  BOOST_TEST(r.value.cause() == stop_cause::cancelled);
  BOOST_TEST(r.value.size() == 3u);
  BOOST_TEST(r.value.outcome(0) == task_outcome::cancelled_running);
  BOOST_TEST(r.value.outcome(1) == task_outcome::cancelled_running);
  BOOST_TEST(r.value.outcome(2) == task_outcome::not_started);
  BOOST_TEST(p.started.load() == 2);
  BOOST_TEST(calls.use_count() == 1);  // the source went with the run
}

// The same on the first call, with nothing running: the stop would
// otherwise complete the run inside the call.
BOOST_DATA_TEST_CASE(a_source_that_stops_its_run_at_once, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  asio::cancellation_signal cancel;
  auto state = std::make_shared<std::vector<int>>(64, 7);
  auto source = [&p, &cancel, state]() -> std::optional<task> {
    cancel.emit(asio::cancellation_type::terminal);
    state->push_back(1);  // its captures are still there
    return sleeper(p, 0, std::chrono::hours(1), false);
  };
  result r;
  graceful::async_run_tasks(ctx.get_executor(), source, 8,
                            asio::bind_cancellation_slot(cancel.slot(), r.handler()));
  ctx.run_for(10s);
  BOOST_TEST(r.calls == 1);
  BOOST_TEST(state->size() == 65u);
  BOOST_TEST(r.value.size() == 1u);
  BOOST_TEST(r.value.outcome(0) == task_outcome::not_started);
  BOOST_TEST(r.value.exit_code() == 1);
  BOOST_TEST(p.started.load() == 0);
}

// A source that never runs out, under a limit that is never reached: the
// run starts tasks a batch per turn of the event loop, so a cancel gets in.
BOOST_DATA_TEST_CASE(an_endless_source_under_no_limit_can_be_stopped, context_hints, hint) {
  asio::io_context ctx(hint);
  probe p;
  std::size_t pulled = 0;
  auto source = [&]() -> std::optional<task> { return sleeper(p, pulled++, std::chrono::hours(1), false); };
  asio::cancellation_signal cancel;
  result r;
  graceful::async_run_tasks(ctx.get_executor(), source, std::numeric_limits<std::size_t>::max(),
                            asio::bind_cancellation_slot(cancel.slot(), r.handler()));
  asio::post(ctx, [&] { cancel.emit(asio::cancellation_type::terminal); });
  ctx.run_for(30s);
  BOOST_TEST(r.calls == 1);
  BOOST_TEST(r.value.cause() == stop_cause::cancelled);
  BOOST_TEST(pulled < 10'000u);
  BOOST_TEST(r.value.size() == pulled);
  BOOST_TEST(r.value.count(task_outcome::cancelled_running) == pulled);
  BOOST_TEST(p.cleaned.load() == static_cast<int>(pulled));
}

// A permit granted as the limiter closes starts nothing: the source is not
// called after the close.
BOOST_AUTO_TEST_CASE(a_grant_that_meets_the_close_pulls_nothing) {
  asio::io_context ctx;
  probe p;
  graceful::async_semaphore limiter(ctx.get_executor(), 1);
  std::optional<graceful::semaphore_permit> held = limiter.try_acquire();
  BOOST_REQUIRE(held.has_value());
  int calls = 0;
  auto source = [&]() -> std::optional<task> {
    ++calls;
    return sleeper(p, 0, 1ms, false);
  };
  graceful::run_options o;
  o.limiter = &limiter;
  result r;
  graceful::async_run_tasks(ctx.get_executor(), source, 4, o, r.handler());
  asio::post(ctx, [&] {
    held.reset();     // the parked run is granted the permit (its handler queued)
    limiter.close();  // and the limiter closes before that handler runs
  });
  ctx.run_for(10s);
  BOOST_TEST(r.calls == 1);
  BOOST_TEST(calls == 0);
  BOOST_TEST(r.value.cause() == stop_cause::limiter_closed);
  BOOST_TEST(r.value.size() == 0u);
  BOOST_TEST(r.value.exit_code() == 1);  // the source had more
}

BOOST_AUTO_TEST_SUITE(from_range)

BOOST_AUTO_TEST_CASE(copies_out_of_an_lvalue_range_and_leaves_it_whole) {
  probe p;
  std::vector<task> tasks;
  for (std::size_t i = 0; i < 10; ++i) tasks.push_back(quick(p, i));
  run_report report = graceful::run_tasks(graceful::from_range(tasks), 3);
  BOOST_TEST(report.count(task_outcome::completed) == 10u);
  BOOST_TEST(tasks.size() == 10u);
  for (const task& t : tasks) BOOST_TEST(static_cast<bool>(t));  // still there
  std::vector<std::size_t> in_order{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  BOOST_TEST(p.start_order == in_order, boost::test_tools::per_element());
}

struct move_only_task {
  std::unique_ptr<int> hits;
  int* total;
  asio::awaitable<void> operator()() {
    *total += *hits;
    co_return;
  }
};

BOOST_AUTO_TEST_CASE(takes_move_only_tasks_out_of_an_owned_range) {
  int total = 0;
  std::vector<move_only_task> tasks;
  for (int i = 1; i <= 5; ++i) tasks.push_back({std::make_unique<int>(i), &total});
  run_report report = graceful::run_tasks(graceful::from_range(std::move(tasks)), 2);
  BOOST_TEST(report.count(task_outcome::completed) == 5u);
  BOOST_TEST(total == 15);
}

// A view of the tasks make(0), make(1), ... make(n - 1), each made when its
// element is read: what std::views::iota(0, n) | std::views::transform(make)
// is, written out because clang 14 cannot compile those over libstdc++ 12.
template <class Make>
class made_as_read : public std::ranges::view_base {
 public:
  class iterator {
   public:
    using value_type = std::invoke_result_t<Make&, int>;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    iterator(Make* make, int at) : make_(make), at_(at) {}
    value_type operator*() const { return (*make_)(at_); }
    iterator& operator++() {
      ++at_;
      return *this;
    }
    void operator++(int) { ++at_; }
    bool operator==(const iterator& other) const { return at_ == other.at_; }

   private:
    Make* make_ = nullptr;
    int at_ = 0;
  };

  made_as_read() = default;
  made_as_read(Make make, int n) : make_(std::move(make)), n_(n) {}
  iterator begin() { return {&*make_, 0}; }
  iterator end() { return {&*make_, n_}; }

 private:
  std::optional<Make> make_;
  int n_ = 0;
};

// A run over a lazy view of a billion tasks, stopped after 50 ms.
template <class MakeView>
void check_lazy_view_makes_tasks_as_pulled(MakeView make_view) {
  asio::io_context ctx;
  std::size_t made = 0;
  std::size_t most_made_ahead = 0, ended = 0;
  auto make = [&](int) -> task {
    ++made;
    most_made_ahead = std::max(most_made_ahead, made - ended);
    return [&ended]() -> asio::awaitable<void> {
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
      ++ended;
    };
  };
  asio::cancellation_signal cancel;
  result r;
  graceful::async_run_tasks(ctx.get_executor(), graceful::from_range(make_view(make, 1'000'000'000)),
                            8, asio::bind_cancellation_slot(cancel.slot(), r.handler()));
  asio::steady_timer stop(ctx, 50ms);
  stop.async_wait([&](error_code) { cancel.emit(asio::cancellation_type::terminal); });
  ctx.run();
  BOOST_TEST(r.value.cause() == stop_cause::cancelled);
  BOOST_TEST(made == r.value.size());  // made only as pulled
  BOOST_TEST(most_made_ahead <= 8u);
  BOOST_TEST(made > 8u);
  check_accounting(r.value);
}

BOOST_AUTO_TEST_CASE(a_lazy_view_makes_each_task_only_when_it_is_pulled) {
  check_lazy_view_makes_tasks_as_pulled(
      []<class Make>(Make make, int n) { return made_as_read<Make>(std::move(make), n); });
}

#if !defined(__clang__) || __clang_major__ >= 15
BOOST_AUTO_TEST_CASE(a_std_transform_view_makes_each_task_only_when_it_is_pulled) {
  check_lazy_view_makes_tasks_as_pulled(
      [](auto make, int n) { return std::views::iota(0, n) | std::views::transform(make); });
}
#endif

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE_END()
