// async_run_tasks in-process.
// - cancel_and_join/*: the time from the cancellation to the handler (every
//   running task cancelled and joined, every queued one accounted for).
// - cancel_and_join/deferred_op: the task as an Asio operation (a timer's
//   async_wait(asio::deferred)), with no coroutine.
// - cancel_and_join/*_source: the same over a task source (a callable that
//   makes each task as a slot frees up) instead of a vector.
// - run_to_end/*: a whole run of short tasks (each awaits one post), with no
//   option set and with a task_timeout that is never reached: what keeping
//   time costs per task.
// Arguments: tasks / max_concurrent / the io_context's concurrency hint (-1:
// Asio's default, tasks on a strand; 1: "run from one thread", tasks on the
// context's executor directly).
#include <graceful/run_tasks.hpp>
#include <graceful/shield.hpp>

#include <benchmark/benchmark.h>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <memory>
#include <type_traits>
#include <optional>
#include <vector>

namespace asio = boost::asio;

namespace {

struct counters {
  std::size_t started = 0, cleaned = 0;
};

// Protocol-like task: count the start, wait an hour, count the cleanup. With
// `Throwing`, the task learns of its cancellation by exception (use_awaitable),
// otherwise by error code (as_tuple) and returns normally, which costs far less
// (design.md fact 11) but is reported as completed.
asio::awaitable<void> async_cleanup(counters* c) {
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
  ++c->cleaned;
}

// The protocol's --cleanup async: after the cancel, a shielded cleanup that
// awaits one post.
struct hour_task_async_cleanup {
  counters* c;
  asio::awaitable<void> operator()() const {
    ++c->started;
    {
      asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::hours(1));
      auto [ec] = co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      benchmark::DoNotOptimize(ec);
    }
    co_await graceful::shield(async_cleanup(c));
  }
};

// The protocol task as an operation task (no coroutine): a one-hour timer
// whose own completion is the cleanup.
struct hour_op_task {
  counters* c;
  asio::io_context* ctx;
  auto operator()() const {
    ++c->started;
    auto t = std::make_shared<asio::steady_timer>(*ctx, std::chrono::hours(1));
    return t->async_wait(asio::deferred([t, cc = c](boost::system::error_code ec) {
      ++cc->cleaned;
      return asio::deferred.values(ec);
    }));
  }
};

template <bool Throwing>
struct hour_task {
  counters* c;
  asio::awaitable<void> operator()() const {
    ++c->started;
    struct cleanup {
      counters* c;
      ~cleanup() { ++c->cleaned; }
    } guard{c};
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::hours(1));
    if constexpr (Throwing) {
      co_await t.async_wait(asio::use_awaitable);
    } else {
      auto [ec] = co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      benchmark::DoNotOptimize(ec);  // returns normally: reported completed
    }
  }
};

// The run's tasks: a vector of n, or (Lazy) a source that makes them as
// slots free up.
// A task of `c` (an hour_op_task also needs the context).
template <class Task>
Task make_task(asio::io_context& ctx, counters& c) {
  if constexpr (std::is_same_v<Task, hour_op_task>) {
    return Task{&c, &ctx};
  } else {
    (void)ctx;
    return Task{&c};
  }
}

template <class Task, bool Lazy, class Token>
void start_run(asio::io_context& ctx, counters& c, std::size_t n, std::size_t limit, Token token) {
  if constexpr (Lazy) {
    auto next = [&c, &ctx, left = n]() mutable -> std::optional<Task> {
      if (left == 0) return std::nullopt;
      --left;
      return make_task<Task>(ctx, c);
    };
    graceful::async_run_tasks(ctx.get_executor(), next, limit, std::move(token));
  } else {
    graceful::async_run_tasks(ctx.get_executor(), std::vector<Task>(n, make_task<Task>(ctx, c)), limit,
                              std::move(token));
  }
}

template <class Task, bool Lazy = false>
void cancel_and_join(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto limit = static_cast<std::size_t>(state.range(1));
  const auto hint = static_cast<int>(state.range(2));
  for (auto _ : state) {
    state.PauseTiming();
    asio::io_context ctx(hint);
    counters c;
    asio::cancellation_signal sig;
    bool done = false;
    std::size_t accounted = 0;
    start_run<Task, Lazy>(ctx, c, n, limit,
                          asio::bind_cancellation_slot(sig.slot(), [&](boost::system::error_code,
                                                                       graceful::run_report r) {
                            done = true;
                            accounted = r.size();
                          }));
    while (c.started < std::min(n, limit)) ctx.run_one();
    state.ResumeTiming();
    sig.emit(asio::cancellation_type::terminal);
    while (!done) ctx.run_one();
    state.PauseTiming();
    // A source's report covers what it pulled: the running tasks.
    const std::size_t expected = Lazy ? c.started : n;
    if (c.cleaned != c.started || accounted != expected) state.SkipWithError("lost a task");
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
void workloads(benchmark::internal::Benchmark* b) {
  for (int hint : {BOOST_ASIO_CONCURRENCY_HINT_DEFAULT, 1}) {
    b->Args({1'000, 100, hint})
        ->Args({100'000, 1'000, hint})
        ->Args({1'000'000, 10'000, hint})
        ->Args({100'000, 100'000, hint});
  }
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}
BENCHMARK(cancel_and_join<hour_task<true>>)->Name("cancel_and_join/exception")->Apply(workloads);
BENCHMARK(cancel_and_join<hour_task<false>>)->Name("cancel_and_join/error_code")->Apply(workloads);
BENCHMARK(cancel_and_join<hour_task_async_cleanup>)
    ->Name("cancel_and_join/async_cleanup")
    ->Apply(workloads);
// The protocol's task as an operation (asio::deferred), no coroutine: its
// cancel cost against the coroutine forms above.
BENCHMARK(cancel_and_join<hour_op_task>)->Name("cancel_and_join/deferred_op")->Apply(workloads);
// The same runs over a task source (async_run_tasks(ex, next, ...)).
BENCHMARK(cancel_and_join<hour_task<false>, true>)
    ->Name("cancel_and_join/error_code_source")
    ->Apply(workloads);
BENCHMARK(cancel_and_join<hour_task_async_cleanup, true>)
    ->Name("cancel_and_join/async_cleanup_source")
    ->Apply(workloads);

// A short task: one post, then it returns.
struct short_task {
  counters* c;
  asio::awaitable<void> operator()() const {
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    ++c->started;
  }
};

template <bool Timeout>
void run_to_end(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto limit = static_cast<std::size_t>(state.range(1));
  const auto hint = static_cast<int>(state.range(2));
  graceful::run_options options;
  if constexpr (Timeout) options.task_timeout = std::chrono::hours(1);
  for (auto _ : state) {
    state.PauseTiming();
    asio::io_context ctx(hint);
    counters c;
    std::vector<short_task> tasks(n, short_task{&c});
    std::size_t completed = 0;
    state.ResumeTiming();
    graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), limit, options,
                              [&](boost::system::error_code, graceful::run_report r) {
                                completed = r.count(graceful::task_outcome::completed);
                              });
    ctx.run();
    state.PauseTiming();
    if (completed != n || c.started != n) state.SkipWithError("a task did not complete");
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
void run_to_end_workloads(benchmark::internal::Benchmark* b) {
  for (int hint : {BOOST_ASIO_CONCURRENCY_HINT_DEFAULT, 1}) b->Args({100'000, 1'000, hint});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}
BENCHMARK(run_to_end<false>)->Name("run_to_end/plain")->Apply(run_to_end_workloads);
BENCHMARK(run_to_end<true>)->Name("run_to_end/task_timeout")->Apply(run_to_end_workloads);

}  // namespace

BENCHMARK_MAIN();
