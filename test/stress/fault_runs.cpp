// Randomized fault runs of async_run_tasks: nothing may be lost, whatever the
// timing.
//
//   fault_runs [--runs N] [--seed S] [--verbose]
//
// Each trial draws, from its own seed, one or two runs sharing an io_context
// of 1-4 threads (and sometimes a limiter semaphore): 0-200 tasks, a limit of
// 1-16, a failure policy, and per task one behaviour (finishes after a short
// timer or at once; throws at once or later; waits until cancelled; awaits a
// shielded cleanup, or a shielded helper that shields a step of its own and
// then waits on; its cleanup throws; its callable throws before returning a
// coroutine). Every callable holds a reference to its run's state. A run may
// be cancelled, with a random cancellation type, at once, after a random
// delay and/or when a given task is launched; a shared limiter may be closed
// after a random delay. A run may keep time: a deadline, a task timeout, a
// grace period, a drain budget (tasks may then be abandoned: they end later,
// before the context runs out of work) and progress reports. A run may take
// its tasks from a source instead of a vector (pulled one at a time as slots
// free up), a source that may throw at a given pull; its tasks may be Asio
// operations (asio::deferred timers) instead of coroutines. After the
// context ran out of work, every invariant is checked (see check_run). Trial k
// uses seed S+k; a failure prints the seed that replays it alone
// (`--seed X --runs 1`). Without --seed, S is drawn at random and printed.
#include <graceful/async_semaphore.hpp>
#include <graceful/run_tasks.hpp>
#include <graceful/shield.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using graceful::task_outcome;
using std::chrono::microseconds;

namespace {

enum class behaviour : std::uint8_t {
  finish,          // a timer of `body` (or no await at all when 0), then returns
  throw_now,       // throws before its first await
  throw_later,     // a timer of `body`, then throws
  wait_cancel,     // waits an hour: ends only when cancelled
  shielded,        // a timer of `body`, then a shielded cleanup timer of `cleanup`
  cleanup_throws,  // like shielded, but the shielded cleanup throws at its end
  factory_throws,  // the callable throws instead of returning a coroutine
  nested_shield,   // like shielded, but the cleanup is a shielded helper that shields a
                   // step of its own and then waits again (still shielded)
};
constexpr const char* behaviour_names[] = {"finish",         "throw_now",     "throw_later",
                                           "wait_cancel",    "shielded",      "cleanup_throws",
                                           "factory_throws", "nested_shield"};

enum class moment : std::uint8_t { none, at_once, timed };

struct counter_peak {
  std::atomic<int> now{0}, peak{0};
  void enter() {
    int n = ++now;
    int p = peak.load();
    while (n > p && !peak.compare_exchange_weak(p, n)) {
    }
  }
  void leave() { --now; }
};

struct task_record {
  behaviour kind = behaviour::finish;
  microseconds body{0}, cleanup{0};
  std::atomic<int> invoked{0}, entered{0}, cleaned{0}, shield_done{0};
};

struct run_state;

// What a run's tasks do; every counter is checked afterwards.
struct task_env {
  run_state* run;
  task_record* rec;
  std::size_t index;
};

struct run_state {
  // The plan.
  std::size_t limit = 1;
  graceful::failure_policy policy = graceful::failure_policy::continue_running;
  moment when = moment::none;
  asio::cancellation_type type = asio::cancellation_type::terminal;
  microseconds delay{0};
  std::optional<std::size_t> cancel_on_launch;  // also emit when this task is launched
  std::unique_ptr<task_record[]> recs;
  std::size_t n = 0;
  bool limiter_may_close = false;
  // Time (zero: not set).
  microseconds deadline{0}, task_timeout{0}, grace{0}, drain_timeout{0};
  bool progress = false;
  // A source run: the tasks are pulled from a callable, one per free slot;
  // it throws at pull number source_throws_at, if set.
  bool source = false;
  std::optional<std::size_t> source_throws_at;
  std::size_t pulled = 0;  // on the run's strand; the tasks [0, pulled) were taken
  bool source_threw = false;
  // Operation tasks: each task a timer's async_wait(asio::deferred) whose
  // continuation is its cleanup (and its error, for the kinds that fail).
  bool operations = false;
  // Every task's callable holds a reference: once the run is over, only the
  // never-started ones in the report may still hold theirs.
  std::shared_ptr<const int> captured = std::make_shared<const int>(0);

  // What happened.
  counter_peak in_flight;
  counter_peak* shared_in_flight = nullptr;  // across the runs of a limiter
  std::atomic<int> handler_calls{0};
  bool emitted = false;  // on the handler's strand
  std::vector<graceful::run_progress> progress_seen;  // on the run's strand
  boost::system::error_code ec;
  graceful::run_report report;
  asio::cancellation_signal sig;
  std::optional<asio::strand<asio::io_context::executor_type>> strand;
  std::optional<asio::steady_timer> timer;

  void emit() {  // on the handler's strand
    emitted = true;
    sig.emit(type);
  }
};

// The task's synchronous cleanup: runs once however the coroutine ends.
struct cleanup_guard {
  task_env env;
  ~cleanup_guard() {
    ++env.rec->cleaned;
    env.run->in_flight.leave();
    if (env.run->shared_in_flight) env.run->shared_in_flight->leave();
  }
};

asio::awaitable<void> wait_for(microseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

std::runtime_error task_error(std::size_t i) {
  return std::runtime_error("task " + std::to_string(i) + " failed");
}

asio::awaitable<void> shielded_cleanup(task_env env) {
  if (env.rec->kind == behaviour::nested_shield) {
    co_await graceful::shield(wait_for(env.rec->cleanup / 2));
    co_await wait_for(env.rec->cleanup / 2 + microseconds(1));  // the outer shield still holds
  } else {
    co_await wait_for(env.rec->cleanup);
  }
  ++env.rec->shield_done;
  if (env.rec->kind == behaviour::cleanup_throws) throw task_error(env.index);
}

asio::awaitable<void> task_body(task_env env) {
  ++env.rec->entered;
  env.run->in_flight.enter();
  if (env.run->shared_in_flight) env.run->shared_in_flight->enter();
  cleanup_guard guard{env};
  switch (env.rec->kind) {
    case behaviour::finish:
      if (env.rec->body.count() > 0) co_await wait_for(env.rec->body);
      break;
    case behaviour::throw_now:
      throw task_error(env.index);
    case behaviour::throw_later:
      co_await wait_for(env.rec->body);
      throw task_error(env.index);
    case behaviour::wait_cancel:
      co_await wait_for(std::chrono::hours(1));
      break;
    case behaviour::shielded:
    case behaviour::cleanup_throws:
    case behaviour::nested_shield: {
      std::exception_ptr e;
      try {
        co_await wait_for(env.rec->body);
      } catch (...) {
        e = std::current_exception();
      }
      co_await graceful::shield(shielded_cleanup(env));
      if (e) std::rethrow_exception(e);
      break;
    }
    case behaviour::factory_throws:
      break;  // never reached
  }
}

using task = std::function<asio::awaitable<void>()>;

// An operation task's operation: a timer, then the task's cleanup, then its
// result (connection_reset for the kinds that fail).
auto task_operation(task_env env) {
  ++env.rec->entered;
  env.run->in_flight.enter();
  if (env.run->shared_in_flight) env.run->shared_in_flight->enter();
  const behaviour kind = env.rec->kind;
  const microseconds wait = kind == behaviour::wait_cancel ? microseconds(std::chrono::hours(1)) : env.rec->body;
  const boost::system::error_code result =
      kind == behaviour::throw_later ? asio::error::connection_reset : boost::system::error_code{};
  auto timer = std::make_shared<asio::steady_timer>(*env.run->strand, wait);
  return timer->async_wait(asio::deferred([env, timer, result](boost::system::error_code ec) {
    [[maybe_unused]] const cleanup_guard done{env};  // runs the cleanup as the lambda returns
    return asio::deferred.values(ec ? ec : result);
  }));
}
using operation = decltype(task_operation(std::declval<task_env>()));
using operation_task = std::function<operation()>;

operation_task make_operation_task(task_env env) {
  return [env, held = env.run->captured]() -> operation {
    ++env.rec->invoked;
    run_state& run = *env.run;
    if (run.cancel_on_launch == env.index) asio::post(*run.strand, [r = &run] { r->emit(); });
    if (env.rec->kind == behaviour::factory_throws) throw task_error(env.index);
    return task_operation(env);
  };
}

task make_task(task_env env) {
  return [env, held = env.run->captured]() -> asio::awaitable<void> {
    ++env.rec->invoked;
    run_state& run = *env.run;
    if (run.cancel_on_launch == env.index) asio::post(*run.strand, [r = &run] { r->emit(); });
    if (env.rec->kind == behaviour::factory_throws) throw task_error(env.index);
    return task_body(env);
  };
}

std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

class rng {
 public:
  explicit rng(std::uint64_t seed) : gen_(splitmix(seed)) {}
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(gen_() % n); }
  std::size_t between(std::size_t lo, std::size_t hi) { return lo + below(hi - lo + 1); }
  bool chance(std::size_t one_in) { return below(one_in) == 0; }
  // 0 or a few microseconds to a few milliseconds, spread on a log scale.
  microseconds short_delay(std::size_t max_us) {
    if (chance(6)) return microseconds(0);
    std::size_t bound = std::size_t{1} << between(0, 12);
    return microseconds(below(std::min(bound, max_us) + 1));
  }

 private:
  std::mt19937_64 gen_;
};

struct trial {
  std::uint64_t seed = 0;
  unsigned threads = 1;
  std::optional<std::size_t> limiter_permits;
  std::optional<microseconds> limiter_closes_after;
  std::vector<std::unique_ptr<run_state>> runs;
  counter_peak limiter_in_flight;

  std::string describe() const {
    std::ostringstream os;
    os << "threads=" << threads << " limiter=";
    if (limiter_permits) os << *limiter_permits; else os << "none";
    if (limiter_closes_after) os << " closed_after_us=" << limiter_closes_after->count();
    for (std::size_t r = 0; r < runs.size(); ++r) {
      const run_state& s = *runs[r];
      os << "\n  run " << r << ": n=" << s.n << " limit=" << s.limit << " policy="
         << (s.policy == graceful::failure_policy::cancel_all ? "cancel_all" : "continue")
         << " cancel=" << (s.when == moment::none ? "none" : s.when == moment::at_once ? "at_once" : "timed")
         << " type=" << static_cast<unsigned>(s.type) << " delay_us=" << s.delay.count()
         << " deadline_us=" << s.deadline.count() << " timeout_us=" << s.task_timeout.count()
         << " grace_us=" << s.grace.count() << " drain_us=" << s.drain_timeout.count()
         << " progress=" << s.progress << " source=" << s.source << " operations=" << s.operations;
      if (s.source_throws_at) os << " source_throws_at=" << *s.source_throws_at;
      if (s.cancel_on_launch) os << " on_launch=" << *s.cancel_on_launch;
      os << " emitted=" << s.emitted << " cause=" << s.report.cause() << "\n   ";
      for (std::size_t i = 0; i < s.n; ++i) {
        os << ' ' << i << ':' << behaviour_names[static_cast<int>(s.recs[i].kind)];
        if (i < s.report.size()) os << '=' << s.report.outcome(i);
      }
    }
    return os.str();
  }
};

void plan_run(run_state& s, rng& r) {
  static constexpr asio::cancellation_type types[] = {
      asio::cancellation_type::terminal, asio::cancellation_type::partial, asio::cancellation_type::total};
  s.n = r.chance(10) ? r.below(3) : r.below(201);
  s.limit = r.between(1, 16);
  // Now and then a wide run: more tasks running at once than one
  // cancellation batch (256), so that a stop spans several batches.
  if (r.chance(50)) {
    s.n = r.between(1'025, 2'600);
    s.limit = s.n;
  }
  s.policy = r.chance(4) ? graceful::failure_policy::cancel_all : graceful::failure_policy::continue_running;
  s.when = r.chance(2) ? moment::none : r.chance(4) ? moment::at_once : moment::timed;
  s.type = types[r.below(3)];
  s.delay = r.short_delay(4000);
  if (s.when != moment::none && s.n > 0 && r.chance(2)) s.cancel_on_launch = r.below(s.n);
  if (r.chance(3)) {  // a run that keeps time
    auto maybe = [&r](std::size_t one_in, std::size_t max_us) {
      return r.chance(one_in) ? r.short_delay(max_us) + microseconds(1) : microseconds(0);
    };
    s.deadline = maybe(3, 6000);
    s.task_timeout = maybe(3, 2000);
    s.grace = maybe(3, 2000);
    s.drain_timeout = maybe(3, 500);
    s.progress = r.chance(3);
  }
  s.source = r.chance(3);
  s.operations = r.chance(4);
  if (s.source && r.chance(6)) s.source_throws_at = r.below(s.n + 1);
  // Whether something will end a task that waits forever.
  const bool ends_waiters = s.when != moment::none || s.deadline.count() > 0 || s.task_timeout.count() > 0;
  s.recs = std::make_unique<task_record[]>(s.n);
  // Mostly well-behaved tasks, so that runs get far; the rest spread evenly.
  for (std::size_t i = 0; i < s.n; ++i) {
    task_record& t = s.recs[i];
    std::size_t pick = r.below(20);
    t.kind = pick < 10 ? behaviour::finish
           : pick < 12 ? behaviour::shielded
                       : static_cast<behaviour>(1 + (pick - 12) % 7);
    // Only a run that will be cancelled may hold tasks that wait for it.
    if (t.kind == behaviour::wait_cancel && !ends_waiters) t.kind = behaviour::finish;
    t.body = r.short_delay(300);
    t.cleanup = r.short_delay(300);
    if (s.operations) {
      // An operation has no shield and always waits on its timer: the
      // kinds it has are finish, throw_later (an error), wait_cancel and
      // factory_throws.
      if (t.kind == behaviour::shielded || t.kind == behaviour::nested_shield) t.kind = behaviour::finish;
      if (t.kind == behaviour::throw_now || t.kind == behaviour::cleanup_throws) t.kind = behaviour::throw_later;
      t.body += microseconds(1);
    }
  }
}

// Every invariant of one run, after its context ran out of work; the first
// one broken, or empty.
std::string check_run(const run_state& s) {
  std::ostringstream why;
  auto fail = [&why](auto&&... parts) {
    (why << ... << parts);
    return why.str();
  };
  if (s.handler_calls != 1) return fail("the handler ran ", s.handler_calls.load(), " times");
  if (s.ec) return fail("the run completed with ", s.ec.message());
  const graceful::run_report& rep = s.report;
  // A source run's report covers what it pulled, in pull order.
  const std::size_t size = s.source ? s.pulled : s.n;
  if (rep.size() != size) return fail("the report has ", rep.size(), " tasks, not ", size);
  std::size_t total = 0;
  for (std::size_t k = 0; k < graceful::detail::outcome_kinds; ++k) {
    total += rep.count(static_cast<task_outcome>(k));
  }
  if (total != size) return fail("the report's counts add up to ", total, ", not ", size);
  if (rep.count(task_outcome::cancelled_queued) > 1) return fail("more than one task cancelled_queued");
  const bool source_threw = s.source_threw;
  if (static_cast<bool>(rep.source_error()) != source_threw) {
    return fail("source_error() is ", rep.source_error() ? "set" : "null", " but the source ",
                source_threw ? "threw" : "did not throw");
  }
  if (s.source) {
    if (rep.count(task_outcome::cancelled_queued) + rep.count(task_outcome::not_started) > 0) {
      return fail("a source run reports a task that was never started");
    }
    if (s.pulled < s.n && rep.cause() == graceful::stop_cause::none) {
      return fail("the source still had tasks, but the run ended unstopped after ", s.pulled);
    }
    for (std::size_t i = s.pulled; i < s.n; ++i) {
      if (s.recs[i].invoked != 0) return fail("task ", i, " was never pulled but was invoked");
    }
  }

  const bool stopped = rep.cause() != graceful::stop_cause::none;
  switch (rep.cause()) {
    case graceful::stop_cause::none:
      break;
    case graceful::stop_cause::cancelled:
      if (!s.emitted) return fail("cause cancelled, but no cancellation was emitted");
      break;
    case graceful::stop_cause::failure:
      if (source_threw) break;  // a source that throws stops the run
      // A timeout stops a cancel_all run at once, even if the task then
      // returns normally (completed).
      if (s.policy != graceful::failure_policy::cancel_all ||
          (rep.count(task_outcome::failed) + rep.count(task_outcome::timed_out) == 0 &&
           s.task_timeout.count() == 0)) {
        return fail("cause failure without cancel_all and a failed or timed-out task");
      }
      break;
    case graceful::stop_cause::deadline:
      if (s.deadline.count() == 0) return fail("cause deadline, but the run had none");
      break;
    case graceful::stop_cause::limiter_closed:
      if (!s.limiter_may_close) return fail("cause limiter_closed, but the limiter was never closed");
      break;
    default:
      return fail("unexpected cause ", rep.cause());
  }
  if (s.policy == graceful::failure_policy::cancel_all &&
      rep.count(task_outcome::failed) + rep.count(task_outcome::timed_out) > 0 && !stopped) {
    return fail("a task failed or timed out under cancel_all but the run was not stopped");
  }
  if (rep.count(task_outcome::timed_out) > 0 && s.task_timeout.count() == 0) {
    return fail("a task timed out in a run without a task_timeout");
  }
  if (rep.count(task_outcome::abandoned) > 0 && (s.drain_timeout.count() == 0 || !stopped)) {
    return fail("a task was abandoned without a drain budget and a stop");
  }

  std::size_t began_count = 0;
  bool reached_unstarted = false;
  for (std::size_t i = 0; i < size; ++i) {
    const task_record& t = s.recs[i];
    const task_outcome o = rep.outcome(i);
    const bool began = o == task_outcome::completed || o == task_outcome::failed ||
                       o == task_outcome::cancelled_running || o == task_outcome::timed_out ||
                       o == task_outcome::abandoned;
    const int expect_entered = began && t.kind != behaviour::factory_throws ? 1 : 0;
    if (t.invoked != (began ? 1 : 0)) return fail("task ", i, " (", o, ") was invoked ", t.invoked.load(), " times");
    if (t.entered != expect_entered) return fail("task ", i, " (", o, ") began ", t.entered.load(), " times");
    if (t.cleaned != expect_entered) return fail("task ", i, " (", o, ") cleaned up ", t.cleaned.load(), " times");
    const bool has_shield = t.kind == behaviour::shielded || t.kind == behaviour::cleanup_throws ||
                            t.kind == behaviour::nested_shield;
    if (t.shield_done != (has_shield ? expect_entered : 0)) {
      return fail("task ", i, " (", o, ") finished its shielded cleanup ", t.shield_done.load(), " times");
    }
    began_count += began ? 1 : 0;
    // Tasks start in input order: the started ones are a prefix.
    if (began && reached_unstarted) return fail("task ", i, " started after an earlier one did not");
    if (!began) {
      if (!stopped) return fail("task ", i, " is ", o, " but the run was not stopped");
      if (o == task_outcome::cancelled_queued && reached_unstarted) {
        return fail("task ", i, " is cancelled_queued behind a task that never started");
      }
      reached_unstarted = true;
    }
    // The outcome fits what the task did.
    bool fits = false;
    switch (t.kind) {
      case behaviour::finish:
      case behaviour::shielded:
      case behaviour::nested_shield:
        fits = o == task_outcome::completed || (stopped && o == task_outcome::cancelled_running);
        break;
      case behaviour::throw_now:
      case behaviour::cleanup_throws:
      case behaviour::factory_throws:
        fits = o == task_outcome::failed;
        break;
      case behaviour::throw_later:
        fits = o == task_outcome::failed || (stopped && o == task_outcome::cancelled_running);
        break;
      case behaviour::wait_cancel:
        fits = o == task_outcome::cancelled_running;
        break;
    }
    // A task that awaits may time out (its own timeout); one that throws
    // before its first await cannot. Any task that began may be given up on
    // (the drain budget): even one that ended at once, its end still on its
    // way through the event loop.
    const bool awaits = t.kind != behaviour::throw_now && t.kind != behaviour::factory_throws &&
                        !(t.kind == behaviour::finish && t.body.count() == 0);
    if (o == task_outcome::timed_out) fits = awaits && t.kind != behaviour::cleanup_throws;
    if (o == task_outcome::abandoned) fits = true;
    if (began && !fits) return fail("task ", i, " (", behaviour_names[static_cast<int>(t.kind)], ") ended ", o);
    if (o == task_outcome::timed_out && rep.ran_for(i) < s.task_timeout) {
      return fail("task ", i, " timed out after ", rep.ran_for(i).count(), " ns, before its timeout");
    }
    if (o == task_outcome::abandoned && rep.ran_for(i) < s.drain_timeout) {
      return fail("task ", i, " was abandoned after ", rep.ran_for(i).count(), " ns, within the drain budget");
    }
    // A failure carries the task's own exception; nothing else carries one.
    std::exception_ptr e = rep.error(i);
    if ((o == task_outcome::failed) != static_cast<bool>(e)) return fail("task ", i, " (", o, ") error mismatch");
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const boost::system::system_error& err) {
        if (!s.operations || t.kind != behaviour::throw_later || err.code() != asio::error::connection_reset) {
          return fail("task ", i, " carries the error '", err.what(), "'");
        }
      } catch (const std::runtime_error& err) {
        if (std::string_view(err.what()) != task_error(i).what()) {
          return fail("task ", i, " carries the error '", err.what(), "'");
        }
      } catch (...) {
        return fail("task ", i, " carries an unexpected exception type");
      }
    }
  }
  if (rep.started() != began_count) {
    return fail("started() is ", rep.started(), " but ", began_count, " tasks were launched");
  }
  if (s.in_flight.now != 0) return fail(s.in_flight.now.load(), " tasks still in flight");
  // Nothing of the run holds a task that ended: the callables left are the
  // report's never-started ones.
  const long unstarted =
      static_cast<long>(rep.count(task_outcome::cancelled_queued) + rep.count(task_outcome::not_started));
  if (s.captured.use_count() != 1 + unstarted) {
    return fail(s.captured.use_count() - 1, " callables still held, with ", unstarted, " never started");
  }
  if (s.in_flight.peak > static_cast<int>(s.limit)) {
    return fail("peak concurrency ", s.in_flight.peak.load(), " above the limit ", s.limit);
  }
  if (s.progress && s.n > 0) {  // an empty run completes at once, with no report
    const auto& seen = s.progress_seen;
    if (seen.empty() || seen.back().phase != graceful::run_phase::done) {
      return fail("no progress report of the done phase");
    }
    for (std::size_t k = 0; k < seen.size(); ++k) {
      const auto& p = seen[k];
      if (s.source ? p.running + p.ended > s.n || p.queued + p.not_started != 0
                   : p.running + p.queued + p.not_started + p.ended != s.n) {
        return fail("progress counts do not add up");
      }
      if (p.blocking.size() > 8 || p.blocking.size() > p.running) return fail("progress blocking list too long");
      if (k > 0 && p.phase < seen[k - 1].phase) return fail("progress phases went back");
    }
  }
  return {};
}

// Stops a trial that hangs: prints what it was doing and exits.
class watchdog {
 public:
  explicit watchdog(std::chrono::seconds limit) : limit_(limit), thread_([this] { loop(); }) {}
  ~watchdog() {
    {
      std::lock_guard lock(mutex_);
      quit_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  void arm(const trial* t) {
    std::lock_guard lock(mutex_);
    current_ = t;
    ++generation_;
    cv_.notify_one();
  }

 private:
  void loop() {
    std::unique_lock lock(mutex_);
    while (!quit_) {
      auto gen = generation_;
      if (cv_.wait_for(lock, limit_, [&] { return quit_ || generation_ != gen; })) continue;
      if (current_ == nullptr) continue;
      std::fprintf(stderr, "fault_runs: FAIL seed=%llu: hung for %lld s (replay: --seed %llu --runs 1)\n",
                   static_cast<unsigned long long>(current_->seed),
                   static_cast<long long>(limit_.count()),
                   static_cast<unsigned long long>(current_->seed));
      std::fflush(stderr);
      std::_Exit(1);
    }
  }

  std::chrono::seconds limit_;
  std::mutex mutex_;
  std::condition_variable cv_;
  const trial* current_ = nullptr;
  std::uint64_t generation_ = 0;
  bool quit_ = false;
  std::thread thread_;
};

// Starts run s over a vector or a source of tasks made by make.
template <class Task, class Handler, class Make>
void start_run(asio::io_context& ctx, run_state& s, const graceful::run_options& options, Handler handler,
               Make make) {
  if (s.source) {
    auto next = [&s, make]() -> std::optional<Task> {
      if (s.source_throws_at && s.pulled == *s.source_throws_at) {
        s.source_threw = true;
        throw std::runtime_error("the source failed");
      }
      if (s.pulled == s.n) return std::nullopt;
      const std::size_t i = s.pulled++;
      return make(task_env{&s, &s.recs[i], i});
    };
    graceful::async_run_tasks(ctx.get_executor(), next, s.limit, options, std::move(handler));
  } else {
    std::vector<Task> tasks;
    tasks.reserve(s.n);
    for (std::size_t i = 0; i < s.n; ++i) tasks.push_back(make(task_env{&s, &s.recs[i], i}));
    graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), s.limit, options, std::move(handler));
  }
}

// Runs one trial; the first broken invariant, or empty.
std::string run_trial(trial& t, watchdog& dog) {
  rng r(t.seed);
  t.threads = static_cast<unsigned>(r.between(1, 4));
  const std::size_t run_count = r.chance(4) ? 2 : 1;
  if (r.chance(3) || run_count == 2) t.limiter_permits = r.between(1, 16);
  if (t.limiter_permits && r.chance(4)) t.limiter_closes_after = r.short_delay(4000);
  for (std::size_t k = 0; k < run_count; ++k) {
    t.runs.push_back(std::make_unique<run_state>());
    plan_run(*t.runs.back(), r);
  }
  dog.arm(&t);

  asio::io_context ctx(static_cast<int>(t.threads));
  std::optional<graceful::async_semaphore> limiter;
  if (t.limiter_permits) limiter.emplace(ctx.get_executor(), *t.limiter_permits);
  for (auto& sp : t.runs) {
    run_state& s = *sp;
    s.strand.emplace(asio::make_strand(ctx));
    if (limiter) s.shared_in_flight = &t.limiter_in_flight;
    s.limiter_may_close = t.limiter_closes_after.has_value();
    graceful::run_options options;
    options.on_failure = s.policy;
    if (limiter) options.limiter = &*limiter;
    options.deadline = s.deadline;
    options.task_timeout = s.task_timeout;
    options.grace = s.grace;
    options.drain_timeout = s.drain_timeout;
    if (s.progress) {
      options.progress_interval = microseconds(200);
      options.on_progress = [&s](const graceful::run_progress& p) { s.progress_seen.push_back(p); };
    }
    auto handler = asio::bind_cancellation_slot(
        s.sig.slot(), asio::bind_executor(*s.strand, [&s](boost::system::error_code ec,
                                                           graceful::run_report rep) {
          ++s.handler_calls;
          s.ec = ec;
          s.report = std::move(rep);
          if (s.timer) s.timer->cancel();
        }));
    if (s.operations) {
      start_run<operation_task>(ctx, s, options, std::move(handler), make_operation_task);
    } else {
      start_run<task>(ctx, s, options, std::move(handler), make_task);
    }
    if (s.when == moment::at_once) {
      s.emit();  // before any thread runs the context: nothing else touches the strand
    } else if (s.when == moment::timed) {
      s.timer.emplace(*s.strand, s.delay);
      s.timer->async_wait([&s](boost::system::error_code ec) {
        if (!ec) s.emit();
      });
    }
  }

  std::optional<asio::steady_timer> closer;
  if (t.limiter_closes_after) {
    closer.emplace(ctx, *t.limiter_closes_after);
    closer->async_wait([&limiter](boost::system::error_code) { limiter->close(); });
  }
  std::vector<std::thread> pool;
  std::exception_ptr escaped;
  std::mutex escaped_mutex;
  auto work = [&] {
    try {
      ctx.run();
    } catch (...) {
      std::lock_guard lock(escaped_mutex);
      escaped = std::current_exception();
    }
  };
  for (unsigned i = 1; i < t.threads; ++i) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
  dog.arm(nullptr);
  closer.reset();
  for (auto& s : t.runs) {  // I/O objects and strands go before their context
    s->timer.reset();
    s->strand.reset();
  }

  if (escaped) return "an exception escaped io_context::run";
  for (std::size_t k = 0; k < t.runs.size(); ++k) {
    if (std::string why = check_run(*t.runs[k]); !why.empty()) return "run " + std::to_string(k) + ": " + why;
  }
  if (limiter) {
    if (limiter->available() != *t.limiter_permits || limiter->waiting() != 0) {
      return "the limiter has " + std::to_string(limiter->available()) + " of " +
             std::to_string(*t.limiter_permits) + " permits and " + std::to_string(limiter->waiting()) +
             " waiters";
    }
    if (t.limiter_in_flight.peak > static_cast<int>(*t.limiter_permits)) {
      return "peak concurrency across runs " + std::to_string(t.limiter_in_flight.peak.load()) +
             " above the limiter's " + std::to_string(*t.limiter_permits);
    }
  }
  return {};
}

std::uint64_t number_arg(std::string_view name, const char* value) {
  std::size_t used = 0;
  unsigned long long n = std::stoull(value, &used);
  if (used != std::string_view(value).size()) throw std::invalid_argument("bad value for " + std::string(name));
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t runs = 1000;
  std::optional<std::uint64_t> seed;
  bool verbose = false;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string_view arg = argv[i];
      if (arg == "--verbose") {
        verbose = true;
      } else if ((arg == "--runs" || arg == "--seed") && i + 1 < argc) {
        (arg == "--runs" ? runs : seed.emplace()) = number_arg(arg, argv[++i]);
      } else {
        throw std::invalid_argument("unknown argument " + std::string(arg));
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fault_runs: %s\nusage: fault_runs [--runs N] [--seed S] [--verbose]\n", e.what());
    return 2;
  }
  if (!seed) seed = (std::uint64_t{std::random_device{}()} << 32) | std::random_device{}();
  std::printf("fault_runs: %llu runs from seed %llu\n", static_cast<unsigned long long>(runs),
              static_cast<unsigned long long>(*seed));
  std::fflush(stdout);

  watchdog dog(60s);
  const auto t0 = std::chrono::steady_clock::now();
  std::uint64_t tasks = 0, stopped = 0;
  for (std::uint64_t k = 0; k < runs; ++k) {
    trial t;
    t.seed = *seed + k;
    std::string why = run_trial(t, dog);
    if (!why.empty() || verbose) {
      std::printf("%s seed=%llu: %s\n  %s\n", why.empty() ? "ok" : "fault_runs: FAIL",
                  static_cast<unsigned long long>(t.seed), why.c_str(), t.describe().c_str());
      if (!why.empty()) {
        std::printf("replay: fault_runs --seed %llu --runs 1\n", static_cast<unsigned long long>(t.seed));
        return 1;
      }
    }
    for (auto& s : t.runs) {
      tasks += s->n;
      stopped += s->report.cause() != graceful::stop_cause::none;
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("fault_runs: %llu trials passed (%llu tasks, %llu runs stopped early) in %.1f s\n",
              static_cast<unsigned long long>(runs), static_cast<unsigned long long>(tasks),
              static_cast<unsigned long long>(stopped), secs);
  return 0;
}
