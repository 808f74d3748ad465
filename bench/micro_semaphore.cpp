// Micro benchmarks of graceful::async_semaphore (Google Benchmark).
#include <graceful/async_semaphore.hpp>

#include <benchmark/benchmark.h>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>

#include <functional>
#include <memory>
#include <vector>

namespace asio = boost::asio;
using boost::system::error_code;
using graceful::semaphore_permit;

namespace {

// async_acquire of a free slot, its completion run by the io_context, and the
// release of the permit inside the handler.
void acquire_release_uncontended(benchmark::State& state) {
  asio::io_context ctx;
  graceful::async_semaphore sem(ctx.get_executor(), 1);
  std::size_t granted = 0;
  for (auto _ : state) {
    sem.async_acquire([&](error_code ec, semaphore_permit p) {
      granted += !ec && p;
    });
    ctx.restart();
    ctx.poll();
  }
  if (granted != static_cast<std::size_t>(state.iterations())) state.SkipWithError("lost a grant");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(acquire_release_uncontended);

void try_acquire_release(benchmark::State& state) {
  asio::io_context ctx;
  graceful::async_semaphore sem(ctx.get_executor(), 1);
  for (auto _ : state) {
    auto p = sem.try_acquire();
    benchmark::DoNotOptimize(p);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(try_acquire_release);

// Two clients share one slot: every acquire parks and is woken by the other's
// release (queue, hand-over through the strand, completion).
void acquire_release_contended(benchmark::State& state) {
  asio::io_context ctx;
  graceful::async_semaphore sem(ctx.get_executor(), 1);
  std::int64_t left = 0;
  std::function<void(error_code, semaphore_permit)> again = [&](error_code, semaphore_permit) {
    if (left-- > 0) sem.async_acquire(again);
  };
  for (auto _ : state) {
    state.PauseTiming();
    left = 1000;
    ctx.restart();
    state.ResumeTiming();
    sem.async_acquire(again);
    sem.async_acquire(again);
    ctx.run();
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(acquire_release_contended);

// Park N waiters on an empty semaphore, then cancel every one and run the
// io_context until all have completed with operation_aborted.
void cancel_queued_waiters(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::size_t aborted = 0;
  for (auto _ : state) {
    state.PauseTiming();
    asio::io_context ctx;
    auto sem = std::make_unique<graceful::async_semaphore>(ctx.get_executor(), 0);
    std::vector<asio::cancellation_signal> sigs(n);
    for (auto& s : sigs) {
      sem->async_acquire(asio::bind_cancellation_slot(
          s.slot(), [&](error_code ec, semaphore_permit) { aborted += ec == asio::error::operation_aborted; }));
    }
    ctx.poll();
    state.ResumeTiming();
    for (auto& s : sigs) s.emit(asio::cancellation_type::terminal);
    ctx.restart();
    ctx.poll();
    state.PauseTiming();
    sem.reset();
    sigs.clear();
    state.ResumeTiming();
  }
  if (aborted != n * static_cast<std::size_t>(state.iterations())) state.SkipWithError("lost a waiter");
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
}
BENCHMARK(cancel_queued_waiters)->Arg(1000)->Arg(100'000)->Unit(benchmark::kMillisecond);

// close() with N waiters parked: one strand hop fails them all.
void close_with_queued_waiters(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::size_t closed = 0;
  for (auto _ : state) {
    state.PauseTiming();
    asio::io_context ctx;
    graceful::async_semaphore sem(ctx.get_executor(), 0);
    for (std::size_t i = 0; i < n; ++i) {
      sem.async_acquire([&](error_code ec, semaphore_permit) { closed += ec == graceful::error::semaphore_closed; });
    }
    ctx.poll();
    state.ResumeTiming();
    sem.close();
    ctx.restart();
    ctx.poll();
  }
  if (closed != n * static_cast<std::size_t>(state.iterations())) state.SkipWithError("lost a waiter");
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
}
BENCHMARK(close_with_queued_waiters)->Arg(100'000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
