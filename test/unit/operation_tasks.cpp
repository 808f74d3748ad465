// Callback-style tasks: a callable returning an Asio operation that has yet
// to start (asio::deferred), run with no coroutine.
#include <graceful/run_tasks.hpp>

#include "context_hints.hpp"
#include "report_checks.hpp"
#include "task_probe.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

namespace asio = boost::asio;
using boost::system::error_code;
using graceful::run_report;
using graceful::stop_cause;
using graceful::task_outcome;
using namespace std::chrono_literals;
using namespace graceful_test;

// Not in an anonymous namespace: the data test cases are templates, whose
// lambdas may not capture a type of internal linkage.
namespace operation_tests {

using result = completion<run_report>;

// Counts what the operation tasks of one run do.
struct op_probe {
  int started = 0, finished = 0, in_flight = 0, peak = 0;
  std::vector<error_code> seen;  // what each one's own completion logic saw
  std::list<asio::steady_timer> timers;

  // A task: a timer of `d` whose completion logic (the task's cleanup)
  // counts it finished, whatever the error.
  auto timer_task(asio::io_context& ctx, std::chrono::steady_clock::duration d) {
    return [this, &ctx, d] {
      ++started;
      peak = std::max(peak, ++in_flight);
      asio::steady_timer& t = timers.emplace_back(ctx, d);
      return t.async_wait(asio::deferred([this](error_code ec) {
        --in_flight;
        ++finished;
        seen.push_back(ec);
        return asio::deferred.values(ec);
      }));
    };
  }
};

// A task whose operation completes with `e` after a post.
struct completes_with {
  asio::io_context* ctx;
  error_code e;
  auto operator()() const {
    return asio::post(*ctx, asio::deferred([e = e] { return asio::deferred.values(e); }));
  }
};

// An operation that waits on `timer` if set (taking cancellation), else
// parks its handler in `parked` (taking none) for the test to complete.
struct wait_or_park {
  std::shared_ptr<asio::steady_timer> timer;
  std::optional<asio::any_completion_handler<void(error_code)>>* parked = nullptr;
  template <class Handler>
  void operator()(Handler handler) const {
    if (timer) {
      timer->async_wait(std::move(handler));
    } else {
      parked->emplace(std::move(handler));
    }
  }
};
using wait_or_park_op = decltype(asio::async_initiate<const asio::deferred_t&, void(error_code)>(
    std::declval<wait_or_park>(), asio::deferred));

using timer_op = decltype(std::declval<op_probe&>().timer_task(std::declval<asio::io_context&>(), 1ms)());
using timer_task = std::function<timer_op()>;

}  // namespace operation_tests

using namespace operation_tests;

BOOST_TEST_DONT_PRINT_LOG_VALUE(asio::cancellation_type)

BOOST_AUTO_TEST_SUITE(operation_tasks)

BOOST_DATA_TEST_CASE(operations_run_within_the_limit_and_complete, context_hints, hint) {
  asio::io_context ctx(hint);
  op_probe p;
  using task = timer_task;
  std::vector<task> tasks;
  for (int i = 0; i < 25; ++i) tasks.emplace_back(p.timer_task(ctx, 1ms));
  result r;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 4, r.handler());
  ctx.run();
  BOOST_TEST(r.calls == 1);
  BOOST_TEST(r.value.count(task_outcome::completed) == 25u);
  BOOST_TEST(p.finished == 25);
  BOOST_TEST(p.peak == 4);
}

BOOST_DATA_TEST_CASE(every_cancellation_type_cancels_the_pending_operations, context_hints *
                         boost::unit_test::data::make({asio::cancellation_type::terminal,
                                                       asio::cancellation_type::partial,
                                                       asio::cancellation_type::total}),
                     hint, type) {
  asio::io_context ctx(hint);
  op_probe p;
  using task = timer_task;
  std::vector<task> tasks;
  for (int i = 0; i < 10; ++i) tasks.emplace_back(p.timer_task(ctx, std::chrono::hours(1)));
  asio::cancellation_signal cancel;
  result r;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 3,
                            asio::bind_cancellation_slot(cancel.slot(), r.handler()));
  asio::post(ctx, [&] { cancel.emit(type); });
  ctx.run_for(10s);
  BOOST_TEST(r.calls == 1);
  BOOST_TEST(r.value.cause() == stop_cause::cancelled);
  BOOST_TEST(r.value.count(task_outcome::cancelled_running) == 3u);
  BOOST_TEST(r.value.count(task_outcome::cancelled_queued) == 1u);
  BOOST_TEST(r.value.count(task_outcome::not_started) == 6u);
  BOOST_TEST(p.finished == 3);  // each started one's own completion ran
  for (error_code ec : p.seen) BOOST_TEST(ec == asio::error::operation_aborted);
  check_accounting(r.value);
}

BOOST_DATA_TEST_CASE(an_error_fails_the_task_with_it, context_hints, hint) {
  asio::io_context ctx(hint);
  // Operations of our own that complete with no error, an error, and
  // operation_aborted although nobody asked for a stop.
  std::vector<completes_with> tasks;
  for (error_code e : {error_code{}, error_code(asio::error::connection_reset),
                       error_code(asio::error::operation_aborted)}) {
    tasks.push_back({&ctx, e});
  }
  result r;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 3, r.handler());
  ctx.run();
  BOOST_TEST(r.value.outcome(0) == task_outcome::completed);
  BOOST_TEST(r.value.outcome(1) == task_outcome::failed);
  BOOST_TEST(r.value.outcome(2) == task_outcome::failed);
  try {
    std::rethrow_exception(r.value.error(1));
  } catch (const boost::system::system_error& e) {
    BOOST_TEST(e.code() == asio::error::connection_reset);
  }
  try {
    std::rethrow_exception(r.value.error(2));
  } catch (const boost::system::system_error& e) {
    BOOST_TEST(e.code() == asio::error::operation_aborted);
  }
  BOOST_TEST(r.value.cause() == stop_cause::none);
}

BOOST_DATA_TEST_CASE(a_void_operation_is_a_task, context_hints, hint) {
  asio::io_context ctx(hint);
  int ran = 0;
  auto post_task = [&ctx, &ran] {
    return asio::post(ctx, asio::deferred([&ran] {
                        ++ran;
                        return asio::deferred.values();
                      }));
  };
  std::vector<decltype(post_task)> tasks(6, post_task);
  result r;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 2, r.handler());
  ctx.run();
  BOOST_TEST(r.value.count(task_outcome::completed) == 6u);
  BOOST_TEST(ran == 6);
}

// Operations that complete inside their own start (deferred values): each
// ends after a post, so that 20,000 in a row do not nest.
BOOST_DATA_TEST_CASE(operations_that_complete_inline_do_not_nest, context_hints, hint) {
  asio::io_context ctx(hint);
  int started = 0;
  auto done_at_once = [&started] {
    ++started;
    return asio::deferred.values(error_code{});
  };
  std::vector<decltype(done_at_once)> tasks(20'000, done_at_once);
  result r;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 1, r.handler());
  ctx.run();
  BOOST_TEST(r.value.count(task_outcome::completed) == 20'000u);
  BOOST_TEST(started == 20'000);
}

BOOST_DATA_TEST_CASE(a_task_timeout_cancels_an_operation, context_hints, hint) {
  asio::io_context ctx(hint);
  op_probe p;
  using task = timer_task;
  std::vector<task> tasks;
  tasks.emplace_back(p.timer_task(ctx, 1ms));
  tasks.emplace_back(p.timer_task(ctx, std::chrono::hours(1)));
  graceful::run_options o;
  o.task_timeout = 30ms;
  result r;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 2, o, r.handler());
  ctx.run_for(10s);
  BOOST_TEST(r.calls == 1);
  BOOST_TEST(r.value.outcome(0) == task_outcome::completed);
  BOOST_TEST(r.value.outcome(1) == task_outcome::timed_out);
  BOOST_TEST(p.finished == 2);
}

BOOST_DATA_TEST_CASE(a_source_of_operations_and_a_callable_that_throws, context_hints, hint) {
  asio::io_context ctx(hint);
  op_probe p;
  using task = timer_task;
  int pulled = 0;
  auto source = [&]() -> std::optional<task> {
    if (pulled == 8) return std::nullopt;
    if (pulled++ == 3) {
      return task([]() -> timer_op { throw std::runtime_error("no op"); });
    }
    return task(p.timer_task(ctx, 1ms));
  };
  result r;
  graceful::async_run_tasks(ctx.get_executor(), source, 2, r.handler());
  ctx.run();
  BOOST_TEST(r.value.size() == 8u);
  BOOST_TEST(r.value.count(task_outcome::completed) == 7u);
  BOOST_TEST(r.value.outcome(3) == task_outcome::failed);
  BOOST_TEST(p.finished == 7);
}

// A stop must not reach the cancellation handler that a finished operation
// left in the task's slot (its timer is gone with its task): the next task
// in that slot, an operation that takes no cancellation, installs none.
BOOST_DATA_TEST_CASE(a_stop_never_reaches_a_finished_operation, context_hints, hint) {
  asio::io_context ctx(hint);
  std::optional<asio::any_completion_handler<void(error_code)>> parked;
  auto start = [](wait_or_park w) {
    return asio::async_initiate<const asio::deferred_t&, void(error_code)>(std::move(w), asio::deferred);
  };
  std::vector<std::function<wait_or_park_op()>> tasks;
  // Task 0: a timer wait (its cancellation handler in the slot), over in
  // 1 ms; the timer goes with the task's callable.
  tasks.emplace_back([start, w = wait_or_park{std::make_shared<asio::steady_timer>(ctx, 1ms)}] {
    return start(w);
  });
  tasks.emplace_back([start, w = wait_or_park{nullptr, &parked}] { return start(w); });  // takes no cancellation
  asio::cancellation_signal cancel;
  result r;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 1,
                            asio::bind_cancellation_slot(cancel.slot(), r.handler()));
  while (!parked && ctx.run_one_for(10s) > 0) {
  }
  BOOST_REQUIRE(parked.has_value());
  cancel.emit(asio::cancellation_type::terminal);  // reaches nothing (under ASan: no use after free)
  asio::post(ctx, [&] { std::move(*parked)(asio::error::operation_aborted); });
  ctx.run_for(10s);
  BOOST_TEST(r.calls == 1);
  BOOST_TEST(r.value.outcome(0) == task_outcome::completed);
  BOOST_TEST(r.value.outcome(1) == task_outcome::cancelled_running);
}

BOOST_AUTO_TEST_SUITE_END()
