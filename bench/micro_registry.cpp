// task_registry in-process: the fixed cost of one task's life.
//   spawn_and_join_empty:   spawn a task that returns at once, join it
//   cancel_and_join_one:    cancel one running task (waiting on a timer), join it
//   cancel_and_join_many:   cancel_all of N running tasks, join them
// Argument (of these three): the io_context's concurrency hint (-1: Asio's
// default; 1: run from one thread, where the registry's tasks need no strand).
// And the cost of each operation a task awaits (one thread, hint 1):
//   await_in_task:          one awaited yield inside a task of the registry
//   await_in_coroutine:     the same in a coroutine co_spawned on the
//                           io_context's own executor: the difference is what
//                           a task's executor adds to each operation it awaits
#include <graceful/task_registry.hpp>

#include <benchmark/benchmark.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>

namespace asio = boost::asio;

namespace {

void spawn_and_join_empty(benchmark::State& state) {
  asio::io_context ctx(static_cast<int>(state.range(0)));
  graceful::task_registry reg(ctx.get_executor());
  std::size_t joined = 0;
  for (auto _ : state) {
    reg.spawn([]() -> asio::awaitable<void> { co_return; });
    reg.async_join([&](boost::system::error_code) { ++joined; });
    ctx.restart();
    ctx.run();
  }
  if (joined != static_cast<std::size_t>(state.iterations())) state.SkipWithError("lost a join");
}
BENCHMARK(spawn_and_join_empty)->Arg(BOOST_ASIO_CONCURRENCY_HINT_DEFAULT)->Arg(1);

void cancel_and_join_one(benchmark::State& state) {
  asio::io_context ctx(static_cast<int>(state.range(0)));
  graceful::task_registry reg(ctx.get_executor());
  std::size_t started = 0, joined = 0;
  for (auto _ : state) {
    state.PauseTiming();
    reg.spawn([&]() -> asio::awaitable<void> {
      ++started;
      asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::hours(1));
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    });
    ctx.restart();
    while (started == joined) ctx.run_one();  // the task now waits on its timer
    state.ResumeTiming();
    reg.cancel_all();
    reg.async_join([&](boost::system::error_code) { ++joined; });
    ctx.run();
  }
  if (joined != started) state.SkipWithError("lost a task");
}
BENCHMARK(cancel_and_join_one)->Arg(BOOST_ASIO_CONCURRENCY_HINT_DEFAULT)->Arg(1);

// cancel_all + join of many running tasks (each waiting on a timer).
void cancel_and_join_many(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  asio::io_context ctx(static_cast<int>(state.range(1)));
  graceful::task_registry reg(ctx.get_executor());
  std::size_t started = 0, joined = 0;
  for (auto _ : state) {
    state.PauseTiming();
    for (std::size_t i = 0; i < n; ++i) {
      reg.spawn([&]() -> asio::awaitable<void> {
        ++started;
        asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::hours(1));
        co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      });
    }
    ctx.restart();
    while (started < n) ctx.run_one();
    started = 0;
    state.ResumeTiming();
    reg.cancel_all();
    reg.async_join([&](boost::system::error_code) { ++joined; });
    ctx.run();
  }
  if (joined != static_cast<std::size_t>(state.iterations())) state.SkipWithError("lost a join");
}
BENCHMARK(cancel_and_join_many)
    ->Args({1'000, BOOST_ASIO_CONCURRENCY_HINT_DEFAULT})
    ->Args({1'000, 1})
    ->Args({100'000, BOOST_ASIO_CONCURRENCY_HINT_DEFAULT})
    ->Args({100'000, 1})
    ->Unit(benchmark::kMillisecond);

// The per-operation price of a task's executor: `awaits` yields (a post to
// the coroutine's own executor, awaited) in a loop, timed per await. Both run
// on one thread with concurrency hint 1 (no strand), with no I/O object, so
// that no reactor's system call per turn of the loop hides the difference:
// only who spawned the coroutine differs. (A zero-length timer instead costs
// two timerfd_settime and an epoll_wait per await here, and the difference
// drowns in them.)
constexpr int awaits = 1'000;

asio::awaitable<void> yield_loop(std::size_t& done) {
  auto ex = co_await asio::this_coro::executor;
  for (int i = 0; i < awaits; ++i, ++done) co_await asio::post(ex, asio::use_awaitable);
}

template <bool InTask>
void await_in(benchmark::State& state) {
  asio::io_context ctx(1);
  graceful::task_registry reg(ctx.get_executor());
  std::size_t done = 0;
  for (auto _ : state) {
    if constexpr (InTask) {
      reg.spawn([&]() { return yield_loop(done); });
    } else {
      asio::co_spawn(ctx, yield_loop(done), asio::detached);
    }
    ctx.restart();
    ctx.run();
  }
  if (done != static_cast<std::size_t>(state.iterations()) * awaits) state.SkipWithError("lost an await");
  state.counters["ns_per_await"] = benchmark::Counter(static_cast<double>(done),
                                                      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(await_in<true>)->Name("await_in_task");
BENCHMARK(await_in<false>)->Name("await_in_coroutine");

}  // namespace

BENCHMARK_MAIN();
