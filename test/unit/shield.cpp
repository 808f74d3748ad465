#include <graceful/shield.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <stdexcept>

namespace asio = boost::asio;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(shield)

BOOST_AUTO_TEST_CASE(returns_the_value_and_rethrows_the_exception_of_op) {
  asio::io_context ctx;
  int value = 0;
  bool caught = false;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        value = co_await graceful::shield([]() -> asio::awaitable<int> { co_return 42; }());
        try {
          co_await graceful::shield(
              []() -> asio::awaitable<void> { throw std::runtime_error("op"); co_return; }());
        } catch (const std::runtime_error&) {
          caught = true;
        }
      },
      [](std::exception_ptr e) { BOOST_TEST(!e); });
  ctx.run();
  BOOST_TEST(value == 42);
  BOOST_TEST(caught);
}

BOOST_AUTO_TEST_CASE(cleanup_runs_to_its_end_after_a_cancel_and_through_a_second_one) {
  asio::io_context ctx;
  asio::cancellation_signal sig;
  bool work_aborted = false, cleanup_done = false, rethrown = false;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        // What a hand-spawned coroutine must do (async_run_tasks does it for its tasks).
        co_await asio::this_coro::throw_if_cancelled(false);
        auto ex = co_await asio::this_coro::executor;
        std::exception_ptr e;
        try {
          asio::steady_timer t(ex, 1h);
          asio::post(ex, [&] { sig.emit(asio::cancellation_type::terminal); });
          co_await t.async_wait(asio::use_awaitable);
        } catch (const boost::system::system_error& err) {
          work_aborted = err.code() == asio::error::operation_aborted;
          e = std::current_exception();
        }
        co_await graceful::shield([&]() -> asio::awaitable<void> {
          asio::steady_timer t(co_await asio::this_coro::executor, 5ms);
          asio::post(ctx, [&] { sig.emit(asio::cancellation_type::terminal); });  // second Ctrl+C
          co_await t.async_wait(asio::use_awaitable);  // would throw if the cancel reached it
          cleanup_done = true;
        }());
        if (e) std::rethrow_exception(e);
      },
      asio::bind_cancellation_slot(sig.slot(), [&](std::exception_ptr e) { rethrown = !!e; }));
  ctx.run();
  BOOST_TEST(work_aborted);
  BOOST_TEST(cleanup_done);
  BOOST_TEST(rethrown);
}

asio::awaitable<void> wait_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

// In a coroutine graceful does not run: nested shields, and a second cancel
// while the outer one goes on after the inner one ended.
BOOST_AUTO_TEST_CASE(nested_shields_in_a_coroutine_of_one_s_own) {
  asio::io_context ctx;
  asio::cancellation_signal sig;
  int steps = 0;
  bool rethrown = false;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        co_await asio::this_coro::throw_if_cancelled(false);
        std::exception_ptr e;
        try {
          asio::post(ctx, [&] { sig.emit(asio::cancellation_type::terminal); });
          co_await wait_for(1h);
        } catch (...) {
          e = std::current_exception();
        }
        co_await graceful::shield([&]() -> asio::awaitable<void> {
          co_await graceful::shield(wait_for(1ms));
          ++steps;
          asio::post(ctx, [&] { sig.emit(asio::cancellation_type::terminal); });  // second Ctrl+C
          co_await wait_for(5ms);
          ++steps;
        }());
        if (e) std::rethrow_exception(e);
      },
      asio::bind_cancellation_slot(sig.slot(), [&](std::exception_ptr e) { rethrown = !!e; }));
  ctx.run();
  BOOST_TEST(steps == 2);
  BOOST_TEST(rethrown);
}

// The coroutine's own filter (here: partial cancellation too) is still in
// place after a shield: a partial cancel afterwards reaches its next await.
BOOST_AUTO_TEST_CASE(the_awaiting_coroutine_s_filter_survives_a_shield) {
  asio::io_context ctx;
  asio::cancellation_signal sig;
  int value = 0;
  bool aborted_after = false;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        co_await asio::this_coro::throw_if_cancelled(false);
        co_await asio::this_coro::reset_cancellation_state(asio::enable_partial_cancellation());
        value = co_await graceful::shield([]() -> asio::awaitable<int> {
          co_await wait_for(1ms);
          co_return 7;
        }());
        asio::post(ctx, [&] { sig.emit(asio::cancellation_type::partial); });
        try {
          co_await wait_for(10s);  // fails the test, not hangs it, if the cancel is filtered out
        } catch (const boost::system::system_error& err) {
          aborted_after = err.code() == asio::error::operation_aborted;
        }
      },
      asio::bind_cancellation_slot(sig.slot(), [](std::exception_ptr e) { BOOST_TEST(!e); }));
  ctx.run();
  BOOST_TEST(value == 7);
  BOOST_TEST(aborted_after);
}

BOOST_AUTO_TEST_SUITE_END()
