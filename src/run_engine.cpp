#include <graceful/async_semaphore.hpp>
#include <graceful/run_tasks.hpp>
#include <graceful/signals.hpp>

#include "detail/cancellation.hpp"
#include "detail/handler_work.hpp"
#include "detail/block_cache.hpp"
#include "detail/cached_memory.hpp"
#include "detail/limiter_ref.hpp"
#include "detail/one_thread.hpp"
#include "detail/one_thread_check.hpp"
#include "detail/report_builder.hpp"
#include "detail/shutdown_ladder.hpp"
#include "detail/signals_access.hpp"
#include "detail/stop_notice.hpp"
#include "detail/task_frame.hpp"
#include "detail/run_engine.hpp"

#include <boost/asio/any_completion_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <bit>
#include <cassert>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace graceful::detail {
namespace {

using clock = steady;

// Once a run's first fill is over: faults in 120 KB of heap and gives
// it back. A stop sets off allocations in bulk (a shielded cleanup's frame and
// its posted completions, for hundreds of tasks at a time) that glibc serves
// from the top of the heap; with those pages already mapped the way out takes
// no page faults (measured in the README, "Performance").
// 120 KB is under glibc's default mmap and trim thresholds (128 KB): the block
// comes from the heap and stays mapped once freed.
void reserve_shutdown_headroom() {
  constexpr std::size_t size = 120 * 1024;
  constexpr std::size_t page = 4096;
  auto* p = static_cast<volatile unsigned char*>(std::malloc(size));
  if (p == nullptr) return;
  for (std::size_t i = 0; i < size; i += page) p[i] = 0;
  std::free(const_cast<unsigned char*>(p));
}

// One per concurrency slot in use. A task's relay is only used on the run's
// strand, where the task runs (a cancellation_signal is not thread-safe), and
// outlives the task (an emit may still be on its way when it ends): the
// runner keeps it for the whole run, and gives it to each task in turn.
struct runner {
  cancel_relay* relay = nullptr;  // the runner's own, begun anew for each task
  semaphore_permit permit;        // a shared limiter's, or none
  std::size_t index = 0;
  std::size_t slot = 0;  // its place among the run's runners: the task's slot in a source
  runner* next_free = nullptr;
  // A timed run's running tasks, in the order they started (oldest first).
  runner* older = nullptr;
  runner* newer = nullptr;
  clock::time_point started{};  // a timed run's only, once stamped
  bool busy = false;
  bool stamped = false;    // started holds this task's start
  bool timed_out = false;  // its own task_timeout cancelled it
};

// Runner arrays are kept for the next run rather than freed: see block_cache.
// Never destroyed, like the relay pool.
block_cache<runner>& runner_blocks() {
  static auto* cache = new block_cache<runner>;
  return *cache;
}

// The idle runners, last freed first. Intrusive rather than a vector: a
// vector of 10,000 pointers is a heap block big enough that freeing it at
// the end of a run makes glibc consolidate every small chunk the tasks left.
class runner_stack {
 public:
  bool empty() const noexcept { return top_ == nullptr; }
  void push(runner& r) noexcept { r.next_free = std::exchange(top_, &r); }
  runner& pop() noexcept { return *std::exchange(top_, top_->next_free); }

 private:
  runner* top_ = nullptr;
};

}  // namespace

// The state of one async_run_tasks. Everything below runs on strand_.
//
// Tasks [0, next_) have started; the others cost nothing but their stored
// callable. Task next_ is the queued one (reported cancelled_queued if the run
// stops then) while it waits for a slot:
// - without a shared limiter, the run's slots are its runners: task next_
//   waits while every runner is busy, and a finishing task's runner goes
//   straight to it. No semaphore, no permits, nothing parked: the run's own
//   bookkeeping is all a slot costs.
// - with one, a task starts only with a permit of the limiter. While a runner
//   is free and no permit is, the run keeps exactly one acquire parked on the
//   limiter: its place in the limiter's queue. A finishing task hands its
//   permit straight to the next one unless others wait on the limiter.
//   A limiter that is closed (or destroyed) stops the starts: the task waiting
//   for a permit ends cancelled_queued, the rest not_started, and the running
//   ones end on their own (cause limiter_closed, unless a stop comes too).
//
// The shutdown (see shutdown_ladder.hpp): stop() stops the starts at once and
// tells the tasks (this_task); the ladder says when to cancel (after the
// grace) and when to give up on them (the drain budget). A timed run (any time
// option, or on_progress) keeps its running tasks in a list in start order;
// its ladder's one timer also wakes for the run's own alarms: the deadline
// and the oldest task's timeout. Tasks start in order and share one timeout,
// so the oldest running task is always the first to time out: a task's start
// costs a list link, never a timer of its own, nor a clock read. Starts are
// stamped in batches: the first start after a stamp posts one, and that
// handler reads the clock once for every task started meanwhile. A stamp is
// never earlier than its task's start, so a timeout never comes early; it
// may come later by the time the event loop takes to reach the stamp.
class run_engine final : public std::enable_shared_from_this<run_engine>, private ladder_owner {
 public:
  // A serial run is one whose ex_ is an io_context executor that only one
  // thread runs (see one_thread_executor): tasks then run on it directly, with
  // no strand, and their executor fits in any_io_executor's inline buffer.
  // `own_handler`: the handler is the blocking run_tasks' own, and runs
  // inline when a serial run ends.
  run_engine(asio::any_io_executor ex, std::shared_ptr<task_list_base> tasks, std::size_t limit,
             run_options options, run_handler handler, bool own_handler)
      : ex_(std::move(ex)),
        serial_(one_thread_executor(ex_)),
        check_(serial_ != nullptr ? one_thread_check::of(*serial_) : nullptr),
        own_handler_(serial_ != nullptr && own_handler),
        task_strand_(serial_ != nullptr
                         ? std::nullopt
                         : std::optional<asio::strand<asio::any_io_executor>>(asio::make_strand(ex_))),
        strand_(task_strand_ ? asio::any_io_executor(*task_strand_) : ex_),
        tasks_(std::move(tasks)),
        source_(tasks_->is_source()),
        operation_(tasks_->is_operation()),
        n_(tasks_->size()),
        options_(options),
        limiter_(options_.limiter),
        handler_(std::move(handler)),
        work_(tracked_work(handler_, ex_)),
        task_work_(asio::prefer(ex_, asio::execution::outstanding_work.tracked)),
        outcomes_(n_),
        runner_limit_(source_ ? limit : std::min(n_, limit)),
        notice_(std::make_shared<stop_notice>(ex_)),
        ladder_(strand_,
                ladder_settings{options_.grace, options_.drain_timeout, options_.on_progress,
                                options_.progress_interval,
                                options_.deadline != duration{} || options_.task_timeout != duration{}},
                *this, check_) {
    chunks_.reserve(max_chunks);
    // A list's runners all at once; a source's as its tasks need them.
    add_runners(source_ ? std::min(runner_limit_, first_source_chunk) : runner_limit_);
  }

  // A timed run keeps time (any time option, or on_progress): its ladder has the timer.
  bool timed() const noexcept { return ladder_.timed(); }

  // Makes the engine of a run; nothing of it runs yet.
  static std::shared_ptr<run_engine> make(asio::any_io_executor ex, std::shared_ptr<task_list_base> tasks,
                                          std::size_t limit, run_options options, run_handler handler,
                                          bool own_handler) {
    auto engine = std::make_shared<run_engine>(std::move(ex), std::move(tasks), limit, std::move(options),
                                               std::move(handler), own_handler);
    engine->ladder_.hold(engine);
    return engine;
  }

  run_engine(const run_engine&) = delete;
  run_engine& operator=(const run_engine&) = delete;
  ~run_engine() {
    signals_access::forget(stop_signals_, this);
    if (running_ > 0) {  // tasks destroyed unfinished (their context went first)
      for (std::size_t k = 0; k < runner_count_; ++k) {
        runner& r = runner_at(k);
        // Its frame is gone (it held this engine): its callable goes too,
        // even where a report still holds the task list.
        if (r.busy && tasks_) tasks_->release(r.index, r.slot);
        r.permit.release();
      }
    }
    for (const runner_chunk& c : chunks_) {
      runner_blocks().release(c.runners);
      release_relays(c.relays);
    }
  }

  // Starts the run on its strand.
  static void start(const std::shared_ptr<run_engine>& engine) {
    asio::dispatch(engine->strand_, [engine] {
      one_thread_scope scope(engine->check_);
      engine->begin();
    });
  }

  // stop(), from any thread: hops onto the run's strand. A serial run asked
  // from its context's thread (the blocking run_tasks' signal handler, a
  // cancellation emitted in a handler) stops at once, without a dispatch.
  static void request_stop(const std::shared_ptr<run_engine>& engine, stop_cause cause,
                           int signal_number) {
    if (engine->serial_ != nullptr && engine->serial_->running_in_this_thread()) {
      one_thread_scope scope(engine->check_);
      return engine->stop(cause, signal_number);
    }
    asio::dispatch(engine->strand_, [engine, cause, signal_number] {
      one_thread_scope scope(engine->check_);
      engine->stop(cause, signal_number);
    });
  }

  // Stops the run at the first signal of `signals` (at once if it came); a
  // later one ends its grace.
  // Before start(): the stop then comes before any task could start, and
  // nothing else touches stop_signals_ until the run is on its strand.
  static void stop_on(const std::shared_ptr<run_engine>& engine,
                      const std::shared_ptr<signals_state>& signals) {
    engine->stop_signals_ = signals;
    signals_access::on_signals(signals, engine.get(), signal_hook(engine));
  }

  // What a signal does to the run: the first stops it, cause signal; a later
  // one is a second stop request (it ends the grace).
  static std::function<void(int)> signal_hook(const std::shared_ptr<run_engine>& engine) {
    return [weak = std::weak_ptr<run_engine>(engine)](int signo) {
      if (auto e = weak.lock()) request_stop(e, stop_cause::signal, signo);
    };
  }

  // Starts what the free slots allow, parks for the rest.
  //
  // A source run starts at most source_fill_batch tasks per turn of the
  // event loop, then posts the rest: a source that never runs out, under a
  // limit that is never reached, would otherwise hold the loop for ever (no
  // signal, deadline or cancel could get in).
  void fill() {
    std::size_t launched = 0;
    while (starting() && more() && has_free_runner()) {
      if (source_ && launched++ == source_fill_batch) {
        fill_later();
        break;
      }
      semaphore_permit permit;  // none without a limiter: the free runner is the slot
      if (limiter_) {
        auto granted = limiter_.try_acquire();
        if (!granted) {
          if (!limiter_.is_open()) limiter_closed();
          break;
        }
        permit = std::move(*granted);
      }
      launch(permit);
    }
    // Once the first fill is over, while the run still starts tasks. A
    // source's first fill comes in batches: after its first batch (for a
    // stop that comes meanwhile, or a source that never stops giving), and
    // again after its last (the later batches took that heap).
    if (headroom_ != headroom::reserved && running_ > 0 && starting()) {
      if (!fill_posted_) {
        headroom_ = headroom::reserved;
        reserve_shutdown_headroom();
      } else if (headroom_ == headroom::none) {
        headroom_ = headroom::reserved_early;
        reserve_shutdown_headroom();
      }
    }
    park_if_needed();
    maybe_finish();
  }

  // A source run's next fill, after what the event loop has queued.
  void fill_later() {
    if (fill_posted_) return;
    fill_posted_ = true;
    asio::post(strand_, [self = shared_from_this()] {
      one_thread_scope scope(self->check_);
      self->fill_posted_ = false;
      self->fill();
    });
  }

  // Stops the starts and cancels the running tasks. After a closed limiter
  // (which only stopped the starts) it still cancels, and its cause wins.
  //
  // The first request moves the run to its grace (if it has one, something
  // runs, and the cause is not a failure), else straight to cancelling; a
  // later one during the grace ends it.
  void stop(stop_cause cause, int signal_number) {
    if (finished_) return;
    if (stopping_) {
      ladder_.request(cause, signal_number, false);  // ends the grace, if in it
      return;
    }
    stopping_ = true;
    cause_ = cause;
    signal_ = signal_number;
    if (parked_) {
      if (!source_) queued_ = next_;  // a source's next task is not pulled yet
      park_signal_.emit(asio::cancellation_type::terminal);
    } else if (!source_ && !limiter_ && next_ < n_ && free_.empty()) {
      queued_ = next_;  // waiting for one of the run's own slots
    }
    notice_->request();
    // No task starts after a stop: stamped now, every running task has one
    // (an abandoned task's report then says it ran for the drain budget at least).
    if (timed()) stamp(clock::now());
    ladder_.request(cause, signal_number, cause != stop_cause::failure && running_ > 0);
    maybe_finish();
  }

 private:
  // Cancels the next batch of running tasks and, while some are left, posts
  // the next batch behind the completions this one queued.
  //
  // Paced: a batch's tasks run their cleanup and give their memory back
  // before the next batch's cancellations are even handled, so a mass cancel
  // of 100,000 tasks whose cleanups allocate (shield, an awaited post) reuses
  // a few hundred tasks' worth of hot memory instead of faulting in fresh
  // pages for all of them at once. A slow cleanup delays nobody: the next
  // batch goes out after one turn of the event loop, not when this one ends.
  // cancel_batch_size was chosen by measurement (README, "Performance").
  //
  // Last runner first: runners are taken in order, so this is roughly the
  // reverse of the start order. Timers armed one after another with the same
  // timeout lie in Asio's timer heap in arming order; removing the newest is
  // a pop_back, removing the oldest a sift through the whole heap that
  // touches other tasks' timers (35% of the workers baseline's cancel time
  // on 100,000 tasks). By index over the fixed array: a completion that ran
  // inline could not invalidate anything here.
  void cancel_batch() {
    std::size_t end = uncancelled_ > cancel_batch_size ? uncancelled_ - cancel_batch_size : 0;
    for (std::size_t k = uncancelled_; k-- > end;) {
      runner& r = runner_at(k);
      if (r.busy && !r.relay->requested) r.relay->request();
    }
    uncancelled_ = end;
    if (uncancelled_ > 0) {
      asio::post(strand_, [self = shared_from_this()] {
        one_thread_scope scope(self->check_);
        self->cancel_batch();
      });
    }
  }

  // The run starts, on its strand.
  void begin() {
    if (timed()) {
      started_at_ = clock::now();
      if (options_.deadline > duration{} && !stopping_) {
        ladder_.wake_by(later_by(started_at_, options_.deadline));
      }
      ladder_.start();
    }
    fill();
  }

  // --- the ladder's owner ----------------------------------------------------

  void ladder_cancel() override {
    uncancelled_ = runner_count_;
    cancel_batch();
  }

  // The drain budget is spent: the tasks still running are abandoned and the
  // run completes without them. They end on their own later (on_task_end
  // then only gives their runner, permit and callable back).
  void ladder_abandon(clock::time_point now) override {
    for (runner* r = oldest_; r != nullptr; r = r->newer) {
      outcomes_.set(r->index, task_outcome::abandoned);
      ran_.emplace_back(r->index, ran_for(*r, now));
    }
    abandoned_ = true;
    finish();
  }

  void ladder_fill(run_progress& p) override {
    p.running = running_;
    p.queued = !source_ && starting() && next_ < n_ && (parked_ || free_.empty()) ? 1 : 0;
    p.ended = next_ - running_;
    p.not_started = source_ ? 0 : n_ - next_ - p.queued;
    constexpr std::size_t blocking_shown = 8;
    for (runner* r = oldest_; r != nullptr && p.blocking.size() < blocking_shown; r = r->newer) {
      p.blocking.push_back(r->index);
    }
  }

  // The deadline (until a stop) and the oldest task's timeout (until the cancel).
  clock::time_point ladder_next_alarm() override {
    auto t = clock::time_point::max();
    if (!stopping_ && options_.deadline > duration{}) t = later_by(started_at_, options_.deadline);
    if (times_out() && unexpired_ != nullptr && unexpired_->stamped) {
      t = std::min(t, later_by(unexpired_->started, options_.task_timeout));
    }
    return t;
  }

  void ladder_alarm(clock::time_point now) override {
    const bool deadline_set = options_.deadline > duration{};
    if (!stopping_ && deadline_set && now >= later_by(started_at_, options_.deadline)) {
      stop(stop_cause::deadline, 0);
    }
    if (times_out()) expire(now);
  }

  // Task timeouts apply until the run's cancel (in the grace too).
  bool times_out() const noexcept {
    return options_.task_timeout > duration{} && ladder_.phase() != run_phase::cancelling &&
           ladder_.phase() != run_phase::done;
  }

  // Cancels the tasks that have run for task_timeout by `now`: a prefix of
  // the running list, from unexpired_ on (stamped tasks only: the others'
  // stamp is on its way, and arms the timer for them).
  void expire(clock::time_point now) {
    while (unexpired_ != nullptr && unexpired_->stamped &&
           now >= later_by(unexpired_->started, options_.task_timeout)) {
      runner& r = *unexpired_;
      unexpired_ = r.newer;
      if (r.relay->requested) continue;  // the run's cancel reached it first
      r.timed_out = true;
      r.relay->request();
      // A timeout is a failure to cancel_all: the run stops now, not when
      // the timed-out task's cleanup ends.
      if (options_.on_failure == failure_policy::cancel_all) stop(stop_cause::failure, 0);
    }
  }

  void track(runner& r) {
    r.stamped = false;
    r.timed_out = false;
    r.older = newest_;
    r.newer = nullptr;
    (newest_ != nullptr ? newest_->newer : oldest_) = &r;
    newest_ = &r;
    if (unexpired_ == nullptr) unexpired_ = &r;
    if (unstamped_ == nullptr) unstamped_ = &r;
    if (stamp_posted_) return;
    try {
      asio::post(strand_, [self = shared_from_this()] {
        one_thread_scope scope(self->check_);
        self->stamp_posted_ = false;
        self->stamp(clock::now());
      });
      stamp_posted_ = true;
    } catch (...) {  // no memory for the handler: stamped now instead
      stamp(clock::now());
    }
  }

  // The tasks started since the last stamp started no later than `now`.
  void stamp(clock::time_point now) {
    if (unstamped_ == nullptr || finished_) return;
    for (runner* r = unstamped_; r != nullptr; r = r->newer) {
      r->started = now;
      r->stamped = true;
    }
    unstamped_ = nullptr;
    if (times_out()) ladder_.wake_by(later_by(now, options_.task_timeout));
  }

  // How long a tracked task has run by `now`, as far as its stamp tells.
  static duration ran_for(const runner& r, clock::time_point now) noexcept {
    return r.stamped ? now - r.started : duration{};
  }

  void untrack(runner& r) {
    if (unexpired_ == &r) unexpired_ = r.newer;
    if (unstamped_ == &r) unstamped_ = r.newer;
    (r.older != nullptr ? r.older->newer : oldest_) = r.newer;
    (r.newer != nullptr ? r.newer->older : newest_) = r.older;
    r.older = r.newer = nullptr;
  }

  // Task next_ is there to start: a list's next one, or a source's next pull.
  bool more() const noexcept { return source_ ? !exhausted_ : next_ < n_; }

  // A runner is free, or one more can be made (a source's).
  bool has_free_runner() {
    if (!free_.empty()) return true;
    if (runner_count_ >= runner_limit_) return false;
    add_runners(std::min(runner_count_, runner_limit_ - runner_count_));
    return true;
  }

  // n more runners, free.
  void add_runners(std::size_t n) {
    if (n == 0) return;
    runner_chunk c{runner_blocks().acquire(n), {}, runner_count_};
    try {
      c.relays = acquire_relays(n);
    } catch (...) {
      runner_blocks().release(c.runners);
      throw;
    }
    chunks_.push_back(c);  // within the reserved capacity
    cancel_relay* relay = c.relays.first;
    for (std::size_t k = n; k > 0; --k, relay = relay->next_free) {
      runner& r = c.runners.first[k - 1];
      r = runner{};  // a kept block holds its last run's runners
      r.slot = c.first + (k - 1);
      r.relay = relay;
      r.relay->check = check_;
      r.relay->notice = notice_.get();
      free_.push(r);
    }
    runner_count_ += n;
  }

  // The runner of slot k. A list's runners are one chunk; a source's chunk
  // c > 0 starts at first_source_chunk << (c - 1) (see has_free_runner).
  runner& runner_at(std::size_t k) noexcept {
    const std::size_t c =
        chunks_.size() == 1 ? 0 : static_cast<std::size_t>(std::bit_width(k / first_source_chunk));
    assert(c < chunks_.size() && k >= chunks_[c].first && k - chunks_[c].first < chunks_[c].runners.size);
    return chunks_[c].runners.first[k - chunks_[c].first];
  }

  // False once a stop came or the limiter was closed: no task starts any more.
  bool starting() const noexcept { return !stopping_ && !limiter_closed_; }

  // The limiter was closed or destroyed: no more starts, the running tasks go
  // on. The task that was about to wait for a permit was queued.
  void limiter_closed() {
    if (!starting()) return;
    limiter_closed_ = true;
    cause_ = stop_cause::limiter_closed;
    if (!source_ && next_ < n_) queued_ = next_;
  }

  // A shared limiter is waited for only while a runner is free to take a permit.
  void park_if_needed() {
    if (limiter_ && starting() && more() && !parked_ && has_free_runner()) park();
  }

  void park() {
    parked_ = true;
    limiter_.async_acquire(asio::bind_cancellation_slot(
        park_signal_.slot(),
        asio::bind_executor(strand_, [self = shared_from_this()](boost::system::error_code ec,
                                                                 semaphore_permit permit) {
          one_thread_scope scope(self->check_);
          self->parked_ = false;
          if (!ec && !self->limiter_.is_open()) {
            permit.release();  // granted as the limiter closed: no start after a close
            self->limiter_closed();
          } else if (!ec) {
            self->launch_next(permit);
          } else if (!self->stopping_) {  // not our own cancel: closed or destroyed
            self->limiter_closed();
          }
          self->fill();
        })));
  }

  // Starts the next task that can start with `permit` (a limiter's, or none),
  // if any. A limiter's permits are only taken while a runner is free (it is
  // waited for only while one is, and nothing else takes it meanwhile);
  // checked all the same, since a permit is cheap to give back.
  void launch_next(semaphore_permit& permit) {
    while (starting() && more() && has_free_runner() && !launch(permit)) {
    }
  }

  // Starts the next task (a list's next one, or a source's next pull) on a
  // free runner; takes the permit only if it started.
  bool launch(semaphore_permit& permit) {
    runner& r = free_.pop();
    if (source_ && !pull(r)) {
      free_.push(r);
      return false;
    }
    const std::size_t i = next_++;
    asio::awaitable<void> task;
    try {
      if (!operation_) task = tasks_->make(i, r.slot);
    } catch (...) {  // the callable threw before returning its coroutine
      tasks_->release(i, r.slot);
      free_.push(r);
      record_failure(i, std::current_exception());
      return false;
    }
    r.index = i;
    r.busy = true;
    if (timed()) track(r);
    relay_ref relay = r.relay->begin();
    r.permit = std::move(permit);
    ++running_;
    if (operation_) {
      start_operation(r, relay);
      return true;
    }
    auto on_end = [self = shared_from_this(), &r](task_end end) { self->on_task_end(r, std::move(end)); };
    try {
      if (serial_ != nullptr) {
        spawn_task(*serial_, relay, std::move(task), std::move(on_end));
      } else {
        spawn_task(*task_strand_, relay, std::move(task), std::move(on_end));
      }
    } catch (...) {
      // Thrown after the task ended (by what its end set off) belongs to the
      // caller; before it began (an allocation of its launch), it is the
      // task's end: counted, its runner and permit back.
      if (!relay.current()) throw;
      r.relay->end();
      on_task_end(r, task_end{end_kind::threw, std::current_exception()});
    }
    return true;
  }

  // Starts an operation task (no coroutine): its operation completes with
  // our handler, on the run's strand, cancelled through the relay's signal
  // (its slot). The relay's re-delivery is not needed: an operation pending
  // has its handler in the slot until it completes.
  void start_operation(runner& r, relay_ref relay) {
    // What the relay's last task left in its slot goes: an operation that
    // takes no cancellation installs nothing, and a stop would reach the
    // handler of an operation that is over.
    r.relay->signal.slot().clear();
    starting_op_ = &r;
    try {
      tasks_->start_op(r.index, r.slot, r.relay->signal.slot(), strand_,
                       op_completion([self = shared_from_this(), &r, relay](boost::system::error_code ec) {
                         one_thread_scope scope(self->check_);
                         self->operation_ended(r, relay, ec);
                       }));
    } catch (...) {
      starting_op_ = nullptr;
      // As for a coroutine's launch: thrown after the task ended belongs to
      // the caller; before (the callable or the initiation threw), it is the
      // task's end.
      if (!relay.current()) throw;
      r.relay->end();
      on_task_end(r, task_end{end_kind::threw, std::current_exception()});
      return;
    }
    starting_op_ = nullptr;
  }

  void operation_ended(runner& r, relay_ref relay, boost::system::error_code ec) {
    if (!relay.current()) return;
    r.relay->end();
    task_end end;
    if (ec) {
      end.kind = ec == asio::error::operation_aborted ? end_kind::aborted : end_kind::threw;
      end.error = std::make_exception_ptr(boost::system::system_error(ec));
    }
    if (starting_op_ == &r) {
      // Completed inside its own start: it ends after a post, as a coroutine
      // that never suspended (no recursion through launch_next).
      asio::post(strand_, [self = shared_from_this(), &r, end = std::move(end)]() mutable {
        one_thread_scope scope(self->check_);
        self->on_task_end(r, std::move(end));
      });
      return;
    }
    on_task_end(r, std::move(end));
  }

  // A source's next task, into r's slot: false if it has none, or threw,
  // or the run was stopped during the call (by the source itself, say): that
  // task was taken and never starts, reported not_started (its callable
  // goes). No memory for its outcome: as if the source threw that, and the
  // task it gave never counted.
  bool pull(runner& r) {
    bool pulled = false;
    pulling_ = true;
    try {
      pulled = tasks_->pull(r.slot);
      if (pulled) outcomes_.add();
    } catch (...) {
      pulling_ = false;
      if (pulled) tasks_->release(next_, r.slot);
      exhausted_ = true;
      source_error_ = std::current_exception();
      stop(stop_cause::failure, 0);
      return false;
    }
    pulling_ = false;
    if (!pulled) {
      exhausted_ = true;
      source_ended_ = true;
      return false;
    }
    if (!starting()) {
      tasks_->release(next_++, r.slot);  // stays not_started
      return false;
    }
    return true;
  }

  void on_task_end(runner& r, task_end end) {
    tasks_->release(r.index, r.slot);  // before anything can complete the run
    --running_;
    r.busy = false;
    if (timed()) untrack(r);
    if (finished_) {  // abandoned: its end changes nothing that was reported
      r.permit.release();
      if (running_ == 0) task_work_ = {};
      return;
    }
    free_.push(r);
    task_outcome outcome = outcome_of(end, r.relay->requested);
    if (outcome == task_outcome::cancelled_running && r.timed_out) outcome = task_outcome::timed_out;
    if (timed() && (outcome == task_outcome::failed || outcome == task_outcome::timed_out)) {
      ran_.emplace_back(r.index, ran_for(r, clock::now()));
    }
    if (outcome == task_outcome::failed) {
      record_failure(r.index, std::move(end.error));
    } else {
      outcomes_.set(r.index, outcome);
      // A timeout is a failure to failure_policy::cancel_all.
      if (outcome == task_outcome::timed_out && options_.on_failure == failure_policy::cancel_all) {
        stop(stop_cause::failure, 0);
      }
    }
    semaphore_permit permit = std::move(r.permit);
    if (limiter_ && !limiter_.is_open()) {  // no hand-over past a close
      permit.release();
      limiter_closed();
      maybe_finish();
      return;
    }
    if (limiter_ && limiter_.waiting() > 0) {
      // A shared limiter is FIFO across its users: queue up again rather than
      // hand the permit to our own next task ahead of older waiters. Only by
      // waiting, never with try_acquire: while our wait's grant is on its
      // way, permits freed on other threads could otherwise fill the slot the
      // grant was meant for.
      permit.release();
      park_if_needed();
      maybe_finish();
      return;
    }
    launch_next(permit);
    maybe_finish();
  }

  void record_failure(std::size_t i, std::exception_ptr error) {
    outcomes_.set(i, task_outcome::failed);
    errors_.emplace_back(i, std::move(error));
    if (options_.on_failure == failure_policy::cancel_all) stop(stop_cause::failure, 0);
  }

  void maybe_finish() {
    // Not while the source is being called: a stop it sets off (it cancels
    // its own run, say) must not destroy it under its own call.
    if (finished_ || running_ != 0 || parked_ || fill_posted_ || pulling_ || (starting() && more())) return;
    finish();
  }

  // Completes the run: every task has ended, or the ones still running were
  // abandoned (they keep the task list, and the context busy, until they end).
  void finish() {
    finished_ = true;
    signals_access::forget(stop_signals_, this);  // nothing left to stop: stop listening
    stop_signals_.reset();
    if (!source_ && queued_ < n_) outcomes_.set(queued_, task_outcome::cancelled_queued);
    ladder_.finish();
    notice_->close();
    // A list's report keeps the tasks that never started (take_unstarted);
    // a source has none, and goes now (unless abandoned tasks still use it).
    std::shared_ptr<result_store_base> results = tasks_->seal_results();
    std::shared_ptr<task_source> unstarted;
    if (!source_) unstarted = abandoned_ ? tasks_ : std::move(tasks_);
    if (source_ && !abandoned_) tasks_.reset();
    auto report = report_builder::make(std::move(outcomes_), std::move(errors_), cause_, signal_,
                                       std::move(unstarted), std::move(ran_), options_.task_name,
                                       std::move(source_error_), std::move(results),
                                       source_ && !source_ended_);
    asio::any_completion_executor work(std::move(work_));
    if (running_ == 0) task_work_ = {};
    if (own_handler_) {
      // The blocking run_tasks' own handler, on the only thread of its own
      // context (never inside an initiating function: start() posts): run
      // it now. A post would allocate its operation right after every task's
      // frames went back to malloc, and that first allocation after a mass
      // free sorts glibc's whole unsorted bin, tens of thousands of cold
      // chunks: milliseconds of a huge run's join.
      std::move(handler_)(boost::system::error_code{}, std::move(report));
      return;
    }
    asio::post(ex_, asio::append(std::move(handler_), boost::system::error_code{}, std::move(report)));
  }

  asio::any_io_executor ex_;
  const asio::io_context::executor_type* serial_;  // inside ex_, or null
  one_thread_check* const check_;  // serial_'s, with GRACEFUL_CHECKS
  const bool own_handler_;
  // The concrete strand, for the tasks' executors (no double type erasure);
  // none when serial.
  std::optional<asio::strand<asio::any_io_executor>> task_strand_;
  asio::any_io_executor strand_;  // where the run's state lives: *task_strand_, or ex_
  std::shared_ptr<task_list_base> tasks_;
  const bool source_;  // tasks_ is a source: its tasks are pulled, n_ is 0
  const bool operation_;  // its tasks are operations (operation_task), not coroutines
  bool source_ended_ = false;  // the source returned std::nullopt
  bool pulling_ = false;       // inside the source's call
  bool fill_posted_ = false;   // a source run's next fill is queued
  static constexpr std::size_t source_fill_batch = 1024;
  runner* starting_op_ = nullptr;  // the operation task being started now
  bool exhausted_ = false;  // the source had no more (or threw)
  std::exception_ptr source_error_;  // what the source threw
  std::size_t n_;
  run_options options_;
  limiter_ref limiter_;  // options_.limiter's; none: the run's slots are its runners
  run_handler handler_;
  asio::any_completion_executor work_;
  asio::any_io_executor task_work_;  // the tasks' context stays busy while any may run
  outcome_table outcomes_;
  std::vector<std::pair<std::size_t, std::exception_ptr>> errors_;
  // The runners, in chunks: a list's in one, a source's in chunks that
  // double as they are needed (a source's limit may be far above what it
  // ever runs at once). Each chunk's runners and relays come from the pools
  // (see block_cache.hpp and relay_executor.hpp) and go back whole.
  struct runner_chunk {
    block_span<runner> runners;
    relay_chain relays;
    std::size_t first = 0;  // the slot of its first runner
  };
  static constexpr std::size_t first_source_chunk = 64;
  static constexpr std::size_t max_chunks = 64;  // doubling: more than any size_t
  std::size_t runner_limit_;     // max_concurrent (a list's: no more than its tasks)
  std::size_t runner_count_ = 0;  // the runners made so far
  std::vector<runner_chunk> chunks_;  // reserved: never reallocates
  runner_stack free_;
  asio::cancellation_signal park_signal_;
  static constexpr std::size_t cancel_batch_size = 256;
  std::size_t uncancelled_ = 0;  // after a stop: runners [0, uncancelled_) not cancelled yet
  std::size_t next_ = 0;
  std::size_t running_ = 0;
  std::size_t queued_ = static_cast<std::size_t>(-1);
  bool parked_ = false;
  enum class headroom : std::uint8_t { none, reserved_early, reserved };
  headroom headroom_ = headroom::none;
  std::weak_ptr<signals_state> stop_signals_;  // options_.stop_on's, until the run ends
  bool stopping_ = false;
  bool limiter_closed_ = false;
  bool finished_ = false;
  stop_cause cause_ = stop_cause::none;
  int signal_ = 0;
  std::shared_ptr<stop_notice> notice_;  // this_task's
  shutdown_ladder ladder_;
  clock::time_point started_at_{};  // a timed run's
  runner* oldest_ = nullptr;     // the running list
  runner* newest_ = nullptr;
  runner* unexpired_ = nullptr;  // its first task whose timeout has not come
  runner* unstamped_ = nullptr;  // its first task not stamped yet (all after it neither)
  bool stamp_posted_ = false;
  std::vector<std::pair<std::size_t, duration>> ran_;  // how long failed, timed-out, abandoned tasks ran
  bool abandoned_ = false;
};

namespace {

// Lives in the caller's cancellation slot; only hops onto the run's strand.
struct cancel_run {
  std::weak_ptr<run_engine> engine;

  void operator()(asio::cancellation_type_t type) const {
    if (!is_cancellation_request(type)) return;
    if (auto e = engine.lock()) run_engine::request_stop(e, stop_cause::cancelled, 0);
  }
};

void complete_now(const asio::any_io_executor& ex, run_handler handler,
                  boost::system::error_code ec) {
  asio::post(ex, asio::append(std::move(handler), ec, run_report{}));
}

// True when options only the blocking run_tasks uses are set: an
// async_run_tasks would otherwise ignore them silently.
bool sets_blocking_only_options(const run_options& options) {
  return options.threads != 1 || options.signals != signal_policy{};
}

}  // namespace

std::string find_bad_input(const task_list_base& tasks, std::size_t max_concurrent,
                           const run_options& options) {
  if (max_concurrent == 0) return "max_concurrent must be at least 1";
  if (tasks.is_source()) {
    if (tasks.first_null() == 0) return "the task source is an empty callable";
  } else if (std::size_t i = tasks.first_null(); i < tasks.size()) {
    return "task " + std::to_string(i) + " is an empty callable";
  }
  const std::pair<duration, const char*> times[] = {{options.deadline, "deadline"},
                                                    {options.task_timeout, "task_timeout"},
                                                    {options.grace, "grace"},
                                                    {options.drain_timeout, "drain_timeout"}};
  for (const auto& [d, name] : times) {
    if (d < duration{}) return std::string("run_options::") + name + " must not be negative";
  }
  if (options.on_progress && options.progress_interval <= duration{}) {
    return "run_options::progress_interval must be positive when on_progress is set";
  }
  return {};
}

std::shared_ptr<run_engine> start_run(asio::any_io_executor ex, std::shared_ptr<task_list_base> tasks,
                                      std::size_t max_concurrent, run_options options,
                                      run_handler handler, bool own_handler) {
  if (!tasks->is_source() && tasks->size() == 0) {
    complete_now(ex, std::move(handler), {});
    return nullptr;
  }
  auto slot = handler.get_cancellation_slot();
  std::shared_ptr<signals_state> stop_signals;
  if (options.stop_on != nullptr) stop_signals = signals_access::state_of(*options.stop_on);
  auto engine = run_engine::make(ex, std::move(tasks), max_concurrent, std::move(options),
                                 std::move(handler), own_handler);
  // The slot belongs to the initiating side: connect it here, before any hop.
  if (slot.is_connected()) slot.template emplace<cancel_run>(cancel_run{engine});
  if (stop_signals) run_engine::stop_on(engine, stop_signals);
  run_engine::start(engine);
  return engine;
}

void async_run_tasks_erased(asio::any_io_executor ex, std::shared_ptr<task_list_base> tasks,
                            std::size_t max_concurrent, run_options options, run_handler handler) {
  if (!find_bad_input(*tasks, max_concurrent, options).empty() ||
      sets_blocking_only_options(options)) {
    return complete_now(ex, std::move(handler), make_error_code(error::invalid_argument));
  }
  start_run(std::move(ex), std::move(tasks), max_concurrent, std::move(options), std::move(handler),
            false);
}

std::function<void(int)> run_signal_hook(const std::shared_ptr<run_engine>& engine) {
  return run_engine::signal_hook(engine);
}

std::size_t kept_runners() { return runner_blocks().kept(); }
std::size_t free_kept_runners() noexcept { return runner_blocks().free_kept(); }
std::size_t runner_size() noexcept { return sizeof(runner); }

}  // namespace graceful::detail
