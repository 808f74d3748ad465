// Tasks that return a value (asio::awaitable<T>): the report keeps the values
// of the tasks that completed, and nothing else.
#include <graceful/run_tasks.hpp>

#include "context_hints.hpp"
#include "report_checks.hpp"
#include "task_probe.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
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

using string_task = std::function<asio::awaitable<std::string>()>;

// Returns "value i" after a post; an hour first for the tasks that hang
// (they end only when cancelled).
string_task named(std::size_t i, bool hangs = false) {
  return [i, hangs]() -> asio::awaitable<std::string> {
    if (hangs) {
      asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::hours(1));
      co_await t.async_wait(asio::use_awaitable);
    }
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    co_return "value " + std::to_string(i);
  };
}

using result = completion<run_report>;

}  // namespace

BOOST_AUTO_TEST_SUITE(task_results)

BOOST_DATA_TEST_CASE(the_report_keeps_each_completed_task_value_by_index, context_hints, hint) {
  asio::io_context ctx(hint);
  std::vector<string_task> tasks;
  for (std::size_t i = 0; i < 30; ++i) tasks.push_back(named(i));
  result r;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 4, r.handler());
  ctx.run();
  BOOST_TEST(r.value.count(task_outcome::completed) == 30u);
  for (std::size_t i = 0; i < 30; ++i) {
    std::optional<std::string> v = r.value.take_result<std::string>(i);
    BOOST_REQUIRE(v.has_value());
    BOOST_TEST(*v == "value " + std::to_string(i));
    BOOST_TEST(!r.value.take_result<std::string>(i).has_value());  // taken
  }
}

BOOST_DATA_TEST_CASE(only_completed_tasks_have_a_value, context_hints, hint) {
  asio::io_context ctx(hint);
  std::vector<string_task> tasks;
  tasks.push_back(named(0));
  tasks.push_back([]() -> asio::awaitable<std::string> {
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    throw std::runtime_error("no value");
  });
  tasks.push_back(named(2, true));  // cancelled while running
  tasks.push_back(named(3, true));  // cancelled while running
  tasks.push_back(named(4));        // queued, then cancelled
  tasks.push_back(named(5));        // never started
  asio::cancellation_signal cancel;
  result r;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 2,
                            asio::bind_cancellation_slot(cancel.slot(), r.handler()));
  asio::steady_timer stop(ctx, 20ms);
  stop.async_wait([&](error_code) { cancel.emit(asio::cancellation_type::terminal); });
  ctx.run();
  run_report& rep = r.value;
  BOOST_TEST(rep.outcome(0) == task_outcome::completed);
  BOOST_TEST(rep.outcome(1) == task_outcome::failed);
  BOOST_TEST(rep.outcome(2) == task_outcome::cancelled_running);
  BOOST_TEST(rep.outcome(3) == task_outcome::cancelled_running);
  BOOST_TEST(rep.outcome(4) == task_outcome::cancelled_queued);
  BOOST_TEST(rep.outcome(5) == task_outcome::not_started);
  check_accounting(rep);
  BOOST_TEST(rep.take_result<std::string>(0).value_or("") == "value 0");
  for (std::size_t i = 1; i < 6; ++i) BOOST_TEST(!rep.take_result<std::string>(i).has_value());
}

BOOST_AUTO_TEST_CASE(a_move_only_result_is_moved_out_whole) {
  std::vector<std::function<asio::awaitable<std::unique_ptr<int>>()>> tasks;
  for (int i = 0; i < 8; ++i) {
    tasks.push_back([i]() -> asio::awaitable<std::unique_ptr<int>> {
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
      co_return std::make_unique<int>(i * i);
    });
  }
  run_report rep = graceful::run_tasks(std::move(tasks), 3);
  for (int i = 0; i < 8; ++i) {
    std::optional<std::unique_ptr<int>> v = rep.take_result<std::unique_ptr<int>>(static_cast<std::size_t>(i));
    BOOST_REQUIRE(v.has_value());
    BOOST_REQUIRE(*v != nullptr);
    BOOST_TEST(**v == i * i);
  }
}

BOOST_DATA_TEST_CASE(a_source_of_result_tasks_keeps_them_in_pull_order, context_hints, hint) {
  asio::io_context ctx(hint);
  std::size_t next = 0;
  auto source = [&next]() -> std::optional<string_task> {
    if (next == 12) return std::nullopt;
    return named(next++);
  };
  result r;
  graceful::async_run_tasks(ctx.get_executor(), source, 5, r.handler());
  ctx.run();
  BOOST_TEST(r.value.size() == 12u);
  for (std::size_t i = 0; i < 12; ++i) {
    BOOST_TEST(r.value.take_result<std::string>(i).value_or("") == "value " + std::to_string(i));
  }
}

BOOST_DATA_TEST_CASE(an_abandoned_task_that_ends_later_leaves_the_report_alone, context_hints, hint) {
  asio::io_context ctx(hint);
  asio::steady_timer gate(ctx, std::chrono::hours(1));
  auto state = std::make_shared<int>(0);
  std::vector<std::function<asio::awaitable<int>()>> tasks;
  tasks.push_back([]() -> asio::awaitable<int> { co_return 7; });
  tasks.push_back([&gate, state]() -> asio::awaitable<int> {
    co_await wait_an_hour();                       // until the stop
    co_await graceful::shield(wait_on(gate, state));  // then a cleanup that hangs
    co_return 8;                                   // long after the report
  });
  graceful::run_options o;
  o.drain_timeout = 20ms;
  asio::cancellation_signal cancel;
  result r;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 2, o,
                            asio::bind_cancellation_slot(cancel.slot(), r.handler()));
  asio::steady_timer stop(ctx, 10ms);
  stop.async_wait([&](error_code) { cancel.emit(asio::cancellation_type::terminal); });
  while (r.calls == 0 && ctx.run_one_for(10s) > 0) {
  }
  BOOST_REQUIRE(r.calls == 1);
  gate.cancel();  // the abandoned task ends now, with its value
  ctx.run();
  BOOST_TEST(*state == 1);
  BOOST_TEST(r.value.outcome(1) == task_outcome::abandoned);
  BOOST_TEST(!r.value.take_result<int>(1).has_value());
  BOOST_TEST(r.value.take_result<int>(0).value_or(0) == 7);
}

BOOST_AUTO_TEST_CASE(the_wrong_type_or_a_run_without_values_is_refused) {
  std::vector<std::function<asio::awaitable<int>()>> tasks;
  tasks.push_back([]() -> asio::awaitable<int> { co_return 1; });
  run_report rep = graceful::run_tasks(std::move(tasks), 1);
  BOOST_CHECK_THROW(rep.take_result<long>(0), std::invalid_argument);
  BOOST_CHECK_THROW(rep.take_result<int>(1), std::out_of_range);
  BOOST_TEST(rep.take_result<int>(0).value_or(0) == 1);

  probe p;
  run_report plain = graceful::run_tasks(sleepers(p, 2, 1ms), 2);
  BOOST_CHECK_THROW(plain.take_result<int>(0), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()
