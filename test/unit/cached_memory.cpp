// What graceful keeps between runs: bounded, reported, and given back on
// request (graceful::release_cached_memory).
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstddef>
#include <graceful/memory.hpp>
#include <graceful/run_tasks.hpp>
#include <vector>

#include "detail/relay_executor.hpp"
#include "malloc_probe.hpp"
#include "task_probe.hpp"

namespace asio = boost::asio;
using graceful::cached_memory;
using graceful::run_report;
using graceful::task_outcome;
using namespace std::chrono_literals;
using namespace graceful_test;

namespace {

std::vector<task> instant_tasks(std::size_t n) {
  return std::vector<task>(n, []() -> asio::awaitable<void> { co_return; });
}

// A blocking run of n tasks, all of them at once.
void run_wide(std::size_t n) {
  run_report r = graceful::run_tasks(instant_tasks(n), n);
  BOOST_TEST_REQUIRE(r.count(task_outcome::completed) == n);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cached_memory_suite)

BOOST_AUTO_TEST_CASE(a_release_gives_back_what_a_run_left) {
  graceful::release_cached_memory();
  const std::size_t before = malloc_in_use();

  constexpr std::size_t n = 20000;
  run_wide(n);
  const cached_memory kept = graceful::cached_memory_usage();
  BOOST_TEST(kept.relays >= n);
  BOOST_TEST(kept.runners >= n);
  BOOST_TEST(kept.contexts >= 1u);  // this thread's, for its next blocking run
  BOOST_TEST(kept.bytes >= n * 64);
  if (malloc_counts) BOOST_TEST(malloc_in_use() >= before + kept.bytes);

  const cached_memory freed = graceful::release_cached_memory();
  BOOST_TEST(freed.relays == kept.relays);
  BOOST_TEST(freed.runners == kept.runners);
  BOOST_TEST(freed.contexts == kept.contexts);
  BOOST_TEST(freed.bytes == kept.bytes);
  const cached_memory after = graceful::cached_memory_usage();
  BOOST_TEST(after.relays == 0u);
  BOOST_TEST(after.runners == 0u);
  BOOST_TEST(after.contexts == 0u);
  BOOST_TEST(after.bytes == 0u);
  // Back to where it was, but for what Asio keeps per thread and malloc's
  // rounding: a few KiB, against megabytes kept.
  if (malloc_counts) BOOST_TEST(malloc_in_use() <= before + 64 * 1024);

  run_wide(n);  // and it all comes back when needed
  BOOST_TEST(graceful::cached_memory_usage().relays >= n);
}

// Runs that grow one after another reuse what the smaller ones left, rather
// than keeping a block per size.
BOOST_AUTO_TEST_CASE(what_is_kept_is_bounded_by_the_widest_run) {
  graceful::release_cached_memory();
  constexpr std::size_t widest = 1490;
  for (std::size_t n = 500; n <= widest; n += 10) run_wide(n);
  const cached_memory kept = graceful::cached_memory_usage();
  BOOST_TEST(kept.relays >= widest);
  BOOST_TEST(kept.relays <= widest + 7);  // a slab holds at least 8
  BOOST_TEST(kept.runners >= widest);
  BOOST_TEST(kept.runners <= 2 * widest);
  graceful::release_cached_memory();
}

// The relays of running tasks stay: the run goes on, and is cancelled, as if
// nothing happened; its relays can go once it has ended.
BOOST_AUTO_TEST_CASE(relays_in_use_are_not_freed) {
  graceful::release_cached_memory();
  asio::io_context ctx{1};
  probe p;
  asio::cancellation_signal stop;
  completion<run_report> res;
  graceful::async_run_tasks(ctx.get_executor(), sleepers(p, 10, 1h), 10,
                            asio::bind_cancellation_slot(stop.slot(), res.handler()));
  while (p.started < 10) BOOST_TEST_REQUIRE(ctx.run_one() == 1u);

  const cached_memory freed = graceful::release_cached_memory();
  BOOST_TEST(freed.relays == 0u);
  stop.emit(asio::cancellation_type::terminal);
  ctx.run();
  BOOST_TEST_REQUIRE(res.calls == 1);
  BOOST_TEST(res.value.count(task_outcome::cancelled_running) == 10u);
  BOOST_TEST(p.cleaned == 10);

  BOOST_TEST(graceful::release_cached_memory().relays >= 10u);
}

// A coroutine that a task spawned on its own executor and left running
// outlives the task, the run and the relays: each of its steps still goes
// through the task's executor, which must not look at the freed relay
// (AddressSanitizer would see it).
BOOST_AUTO_TEST_CASE(an_executor_that_outlived_its_task_survives_a_release) {
  graceful::release_cached_memory();
  asio::io_context ctx{1};
  asio::steady_timer gate(ctx, asio::steady_timer::time_point::max());
  int steps = 0;
  auto helper = [&]() -> asio::awaitable<void> {
    co_await gate.async_wait(asio::as_tuple(asio::use_awaitable));
    ++steps;
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    ++steps;
  };
  std::vector<task> tasks(4, [&]() -> asio::awaitable<void> {
    asio::co_spawn(co_await asio::this_coro::executor, helper(), asio::detached);
    co_return;
  });
  completion<run_report> res;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 4, res.handler());
  while (res.calls == 0) BOOST_TEST_REQUIRE(ctx.run_one() == 1u);
  BOOST_TEST(res.value.count(task_outcome::completed) == 4u);

  BOOST_TEST(graceful::release_cached_memory().relays >= 4u);
  gate.cancel();
  ctx.run();
  BOOST_TEST(steps == 8);

  run_wide(8);  // new relays, a new era: runs as before
  BOOST_TEST(graceful::cached_memory_usage().relays >= 8u);
}

// On a context that several threads run, the completion handler may begin
// while the run's last task finishes its last step on another thread. A
// release called from the handler must not free the relay under that step
// (ThreadSanitizer and AddressSanitizer would see it), and whatever it
// leaves is freed once everything is over.
BOOST_AUTO_TEST_CASE(a_release_in_a_multi_threaded_completion) {
  graceful::release_cached_memory();
  for (int round = 0; round < 200; ++round) {
    asio::thread_pool pool(4);
    std::size_t freed_by_handler = 0;
    int calls = 0;
    graceful::async_run_tasks(pool.get_executor(), instant_tasks(8), 8,
                              [&](boost::system::error_code, run_report r) {
                                ++calls;
                                BOOST_TEST(r.count(task_outcome::completed) == 8u);
                                freed_by_handler = graceful::release_cached_memory().relays;
                              });
    pool.join();
    BOOST_TEST_REQUIRE(calls == 1);
    const std::size_t freed_after = graceful::release_cached_memory().relays;
    BOOST_TEST_REQUIRE(freed_by_handler + freed_after >= 8u);
  }
}

// The era in a relay's generation has 24 bits. Once it has no value left,
// relays are kept rather than freed: an era used again would let a copy of an
// executor from long ago read a relay freed since.
BOOST_AUTO_TEST_CASE(relays_are_kept_once_the_era_runs_out) {
  namespace d = graceful::detail;
  graceful::release_cached_memory();
  const std::uint64_t last_era = ~std::uint64_t{0} & ~d::relay_count_mask;
  d::relay_era.store(last_era - (std::uint64_t{1} << d::relay_era_shift));  // one left

  run_wide(8);
  BOOST_TEST(graceful::release_cached_memory().relays >= 8u);  // takes the last era
  BOOST_TEST(d::relay_era.load() == last_era);
  run_wide(8);
  BOOST_TEST(graceful::release_cached_memory().relays == 0u);  // kept
  BOOST_TEST(d::relay_era.load() == last_era);
  BOOST_TEST(graceful::cached_memory_usage().relays >= 8u);
  run_wide(8);  // the kept relays serve as before

  // Back to era 0 for whatever runs next in this process: no copy of an
  // executor from before is left.
  graceful::release_cached_memory();
  d::relay_era.store(0);
}

BOOST_AUTO_TEST_SUITE_END()
