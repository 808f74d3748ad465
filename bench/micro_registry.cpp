// task_registry in-process: the fixed cost of one task's life.
//   spawn_and_join_empty:   spawn a task that returns at once, join it
//   cancel_and_join_one:    cancel one running task (waiting on a timer), join it
//   cancel_and_join_many:   cancel_all of N running tasks, join them
// Argument: the io_context's concurrency hint (-1: Asio's default; 1: run
// from one thread, where the registry's tasks need no strand).
#include <graceful/task_registry.hpp>

#include <benchmark/benchmark.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
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

}  // namespace

BENCHMARK_MAIN();
