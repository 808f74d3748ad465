// Built against the installed package only: find_package(graceful) + graceful::graceful.
#include <graceful/graceful.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/version.hpp>

#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>

namespace asio = boost::asio;

// The semaphore with a callback token: FIFO grants, then close().
static bool semaphore_ok() {
  asio::io_context ctx;
  graceful::async_semaphore sem(ctx.get_executor(), 1);
  std::vector<int> order;
  for (int i = 0; i < 3; ++i) {
    sem.async_acquire([&, i](boost::system::error_code ec, graceful::semaphore_permit p) {
      if (ec) return;
      order.push_back(i);
      p.release();  // hands the slot to the next waiter
    });
  }
  ctx.run();
  bool in_order = order == std::vector<int>{0, 1, 2};
  sem.close();
  boost::system::error_code after_close;
  sem.async_acquire([&](boost::system::error_code ec, graceful::semaphore_permit) { after_close = ec; });
  ctx.restart();
  ctx.run();
  bool closed_ok = after_close == graceful::error::semaphore_closed;
  std::printf("consumer: granted %zu of 3%s, closed %s\n", order.size(),
              in_order ? " in order" : " OUT OF ORDER", closed_ok ? "ok" : "WRONG");
  return in_order && closed_ok;
}

// Waits an hour (it only ends when cancelled); counts its cleanup however it ends.
struct hour_task {
  int* cleaned;
  asio::awaitable<void> operator()() const {
    struct cleanup {
      int* n;
      ~cleanup() { ++*n; }
    } c{cleaned};
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::hours(1));
    co_await t.async_wait(asio::use_awaitable);
  }
};

// 50 one-hour tasks, limit 4, the operation cancelled through its slot after 50 ms.
static bool run_ok() {
  asio::io_context ctx;
  int cleaned = 0;
  std::vector<std::function<asio::awaitable<void>()>> tasks(50, hour_task{&cleaned});
  asio::cancellation_signal sig;
  graceful::run_report report;
  auto t0 = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration took{};
  graceful::async_run_tasks(
      ctx.get_executor(), std::move(tasks), 4,
      asio::bind_cancellation_slot(sig.slot(), [&](boost::system::error_code, graceful::run_report r) {
        took = std::chrono::steady_clock::now() - t0;
        report = std::move(r);
      }));
  asio::steady_timer after(ctx, std::chrono::milliseconds(50));
  after.async_wait([&](boost::system::error_code) { sig.emit(asio::cancellation_type::terminal); });
  ctx.run();
  using graceful::task_outcome;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(took).count();
  std::printf("consumer: run: %zu cancelled_running (%d cleaned), %zu cancelled_queued, %zu not_started, "
              "%zu completed, handler after %lld ms\n",
              report.count(task_outcome::cancelled_running), cleaned,
              report.count(task_outcome::cancelled_queued), report.count(task_outcome::not_started),
              report.count(task_outcome::completed), static_cast<long long>(ms));
  return report.count(task_outcome::cancelled_running) == 4 && cleaned == 4 &&
         report.count(task_outcome::cancelled_queued) + report.count(task_outcome::not_started) == 46 &&
         report.count(task_outcome::completed) == 0 && ms < 1000 &&
         report.cause() == graceful::stop_cause::cancelled;
}

// A registry, the way a server uses it: spawn, close, cancel_all, join.
static bool registry_ok() {
  asio::io_context ctx;
  graceful::task_registry reg(ctx.get_executor(), 2);
  int cleaned = 0;
  for (int i = 0; i < 5; ++i) reg.spawn(hour_task{&cleaned});
  bool joined = false;
  asio::post(ctx, [&] {
    reg.close();
    reg.cancel_all(graceful::stop_cause::signal);
    reg.async_join([&](boost::system::error_code ec) { joined = !ec; });
  });
  ctx.run();
  auto s = reg.snapshot();
  std::printf("consumer: registry: %zu cancelled_running (%d cleaned), %zu cancelled_queued, joined %s\n",
              s.cancelled_running, cleaned, s.cancelled_queued, joined ? "yes" : "no");
  return joined && s.cancelled_running == 2 && cleaned == 2 && s.cancelled_queued == 3;
}

// The consumer compiles against the Boost graceful was built with: the
// installed package finds it, whatever the system has (the build passes the
// expected BOOST_VERSION in).
#ifdef GRACEFUL_EXPECTED_BOOST_VERSION
static_assert(BOOST_VERSION == GRACEFUL_EXPECTED_BOOST_VERSION,
              "the installed package found another Boost than the one graceful was built with");
#endif

int main() {
  std::printf("consumer: Boost %d.%d.%d\n", BOOST_VERSION / 100000, BOOST_VERSION / 100 % 1000,
              BOOST_VERSION % 100);
  bool ok = semaphore_ok();
  ok = run_ok() && ok;
  ok = registry_ok() && ok;
  std::printf("consumer: %s\n", ok ? "all ok" : "FAILED");
  return ok ? 0 : 1;
}
