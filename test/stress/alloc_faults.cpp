// Allocation failures where a task is taken in and launched: a spawn that
// throws leaves the registry as it was, and a task whose launch fails before
// its coroutine begins is a failed task; either way every join completes and
// every task is accounted for once.
//
//   alloc_faults
//
// operator new is replaced: once armed with k, the k-th allocation from then
// on throws std::bad_alloc (once). For every k, until a trial in which the
// k-th allocation never came, a scenario runs with the fault armed over the
// part under test. (Asio's own handler and coroutine-frame memory comes from
// its recycling allocator, not operator new; the allocations covered are
// graceful's and the executors' and strands'.)
#include <graceful/run_tasks.hpp>
#include <graceful/task_registry.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <new>
#include <string>
#include <utility>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using graceful::task_outcome;

namespace {

std::atomic<long> countdown{0};  // > 0: armed; the allocation that takes it to 0 throws
std::atomic<bool> fired{false};

void arm(long k) {
  fired = false;
  countdown = k;
}
void disarm() { countdown = 0; }

// Asio's make_strand cannot survive a failed allocation once its strand_impl
// exists: the impl's destructor then locks a mutex through a service pointer
// it has not been given yet. Two allocations can come after the impl's: the
// shared_ptr control block (Boost 1.81 and 1.83 allocate it apart; from 1.90
// on it comes with the impl, in one allocation) and a mutex of the service's
// pool, made on first use. So the control block after an impl is never
// failed, and a trial's context has every pool mutex made before the fault
// is armed (fill_strand_mutexes).
thread_local bool after_strand = false;  // the allocation before was a strand_impl's
constexpr std::size_t strand_impl_size = sizeof(asio::detail::strand_executor_service::strand_impl);

bool spared(std::size_t n) {
  const bool control_block = after_strand;
  after_strand = n == strand_impl_size;
  return control_block;
}

// Strands are spread over a pool of mutexes (193) by a hash of their address
// and a counter: after 4,000 strands the chance that one of them is still
// unmade is about 1 in 5 million.
void fill_strand_mutexes(asio::io_context& ctx) {
  for (int i = 0; i < 4000; ++i) (void)asio::make_strand(ctx);
}

void* allocate(std::size_t n, std::size_t align) {
  const bool spare = spared(n);
  if (!spare && countdown.load(std::memory_order_relaxed) > 0 && countdown.fetch_sub(1) == 1) {
    fired = true;
    throw std::bad_alloc();
  }
  if (n == 0) n = 1;
  void* p = align <= alignof(std::max_align_t) ? std::malloc(n)
                                                : std::aligned_alloc(align, (n + align - 1) / align * align);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

int failures = 0;

void check(bool ok, const std::string& what) {
  if (ok) return;
  ++failures;
  std::fprintf(stderr, "alloc_faults: FAIL: %s\n", what.c_str());
}

// Runs `ctx` until it runs out of work; a context still busy after 10 s
// (a join or a run that can never complete) is a failure, not a hang.
void run_out(asio::io_context& ctx, const std::string& at) {
  ctx.run_for(10s);
  check(ctx.stopped(), at + ": the context ran out of work");
}

asio::awaitable<void> short_wait() {
  asio::steady_timer t(co_await asio::this_coro::executor, 1ms);
  co_await t.async_wait(asio::use_awaitable);
}

// The registry: the fault armed over four spawns (limit 2: two start, two
// wait). Returns whether the fault fired.
bool spawn_trial(int hint, long k) {
  asio::io_context ctx(hint);
  fill_strand_mutexes(ctx);
  graceful::task_registry reg(ctx.get_executor(), 2);
  int ran = 0, accepted = 0, thrown = 0;
  arm(k);
  for (int i = 0; i < 4; ++i) {
    try {
      reg.spawn([&ran]() -> asio::awaitable<void> {
        ++ran;
        co_await short_wait();
      });
      ++accepted;
    } catch (const std::bad_alloc&) {
      ++thrown;
    }
  }
  disarm();
  const std::string at = "spawn, hint " + std::to_string(hint) + ", k " + std::to_string(k);
  auto before = reg.snapshot();
  check(before.not_started + before.queued + before.running + before.count(graceful::task_state::done) ==
            static_cast<std::size_t>(accepted),
        at + ": the snapshot counts exactly the spawns that returned");
  int joins = 0;
  reg.async_join([&](boost::system::error_code ec) {
    ++joins;
    check(!ec, at + ": join error");
  });
  run_out(ctx, at);  // nothing left waiting for a task that is not in
  auto after = reg.snapshot();
  check(joins == 1, at + ": the join completed once");
  check(ran == accepted, at + ": every accepted task ran, no refused one did");
  check(after.completed == static_cast<std::size_t>(accepted), at + ": completed == accepted");
  check(after.running + after.queued + after.not_started == 0, at + ": nothing live");
  check(thrown + accepted == 4, at + ": every spawn returned or threw");
  return fired.load();
}

// A task whose move into the registry parks a join: the join then waits for
// this task alone (its admission is counted), and must complete whether the
// spawn goes through or throws.
struct joining_task {
  graceful::task_registry* reg;
  int* joins;
  bool park = true;
  joining_task(graceful::task_registry* r, int* j) : reg(r), joins(j) {}
  joining_task(joining_task&& other) noexcept : reg(other.reg), joins(other.joins), park(false) {
    if (std::exchange(other.park, false)) {
      long armed = countdown.exchange(0);  // the join's own allocations are not under test
      reg->async_join([j = joins](boost::system::error_code) { ++*j; });
      countdown = armed;
    }
  }
  asio::awaitable<void> operator()() const { co_await short_wait(); }
};

bool join_during_spawn_trial(int hint, long k) {
  asio::io_context ctx(hint);
  fill_strand_mutexes(ctx);
  graceful::task_registry reg(ctx.get_executor());
  int joins = 0;
  bool thrown = false;
  arm(k);
  try {
    reg.spawn(joining_task(&reg, &joins));
  } catch (const std::bad_alloc&) {
    thrown = true;
  }
  disarm();
  const std::string at = "join during spawn, hint " + std::to_string(hint) + ", k " + std::to_string(k);
  run_out(ctx, at);
  check(joins == 1, at + ": the join parked during the spawn completed once (" + std::to_string(joins) +
                        (thrown ? ", the spawn threw)" : ")"));
  return fired.load();
}

// A task that arms the fault when it is invoked: what fails is its launch
// (the executor, strand and entry point of its coroutine), before the
// coroutine's body runs, which disarms.
struct arming_task {
  long k;
  int* bodies;
  asio::awaitable<void> operator()() const {
    arm(k);
    return body(bodies);
  }
  static asio::awaitable<void> body(int* bodies) {
    disarm();
    ++*bodies;
    co_await short_wait();
  }
};

bool registry_launch_trial(int hint, long k) {
  asio::io_context ctx(hint);
  fill_strand_mutexes(ctx);
  graceful::task_registry reg(ctx.get_executor());
  int bodies = 0;
  bool any_fired = false;
  reg.spawn(arming_task{k, &bodies});
  reg.spawn(arming_task{k, &bodies});
  int joins = 0;
  reg.async_join([&](boost::system::error_code) { ++joins; });
  const std::string at = "registry launch, hint " + std::to_string(hint) + ", k " + std::to_string(k);
  run_out(ctx, at);
  any_fired = fired.load();
  disarm();
  auto s = reg.snapshot();
  check(joins == 1, at + ": the join completed");
  check(s.completed == static_cast<std::size_t>(bodies), at + ": each task whose body ran completed");
  check(s.completed + s.failed == 2, at + ": the others failed, none lost");
  return any_fired;
}

bool run_launch_trial(int hint, long k) {
  asio::io_context ctx(hint);
  fill_strand_mutexes(ctx);
  int bodies = 0;
  std::vector<arming_task> tasks(5, arming_task{k, &bodies});
  int calls = 0;
  graceful::run_report report;
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 2,
                            [&](boost::system::error_code, graceful::run_report r) {
                              ++calls;
                              report = std::move(r);
                            });
  const std::string at = "run launch, hint " + std::to_string(hint) + ", k " + std::to_string(k);
  run_out(ctx, at);
  bool any_fired = fired.load();
  disarm();
  check(calls == 1, at + ": the run completed");
  check(report.size() == 5, at + ": a report of every task");
  check(report.count(task_outcome::completed) == static_cast<std::size_t>(bodies),
        at + ": each task whose body ran completed");
  check(report.count(task_outcome::completed) + report.count(task_outcome::failed) == 5,
        at + ": the others failed, none lost");
  for (std::size_t i = 0; i < report.size(); ++i) {
    if (report.outcome(i) != task_outcome::failed) continue;
    try {
      std::rethrow_exception(report.error(i));
    } catch (const std::bad_alloc&) {
    } catch (...) {
      check(false, at + ": a failed task holds the bad_alloc");
    }
  }
  return any_fired;
}

// Fails the 1st, 2nd... allocation until a trial in which none failed, on a
// default context and on a one-thread one (hint 1: no strands).
template <class Trial>
void every_k(const char* name, Trial trial) {
  long faults[2] = {0, 0};
  int c = 0;
  for (int hint : {-1, 1}) {
    while (failures == 0 && trial(hint, faults[c] + 1)) ++faults[c];  // the first failure ends it
    ++c;
  }
  std::printf("alloc_faults: %s: %ld allocations failed in turn (hint -1), %ld (hint 1)\n", name,
              faults[0], faults[1]);
}

}  // namespace

void* operator new(std::size_t n) { return allocate(n, alignof(std::max_align_t)); }
void* operator new[](std::size_t n) { return allocate(n, alignof(std::max_align_t)); }
void* operator new(std::size_t n, std::align_val_t a) { return allocate(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return allocate(n, static_cast<std::size_t>(a)); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return allocate(n, alignof(std::max_align_t));
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  try {
    return allocate(n, static_cast<std::size_t>(a));
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t& t) noexcept {
  return operator new(n, a, t);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

int main() {
  every_k("registry spawn", spawn_trial);
  every_k("join during a spawn", join_during_spawn_trial);
  every_k("registry launch", registry_launch_trial);
  every_k("run launch", run_launch_trial);
  if (failures != 0) {
    std::fprintf(stderr, "alloc_faults: %d checks failed\n", failures);
    return 1;
  }
  std::printf("alloc_faults: passed\n");
  return 0;
}
