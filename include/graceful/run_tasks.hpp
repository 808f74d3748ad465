// graceful: bounded-concurrency async work with graceful shutdown, on Boost.Asio.
#pragma once

#include <graceful/async_semaphore.hpp>
#include <graceful/error.hpp>
#include <graceful/report.hpp>
#include <graceful/signals.hpp>
#include <graceful/task.hpp>
#include <graceful/this_task.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/system/error_code.hpp>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace graceful {

namespace asio = boost::asio;

/// Options of a run.
struct run_options {
  failure_policy on_failure = failure_policy::continue_running;
  /// An extra concurrency limit shared with other runs (or anything else that
  /// takes its permits): a task starts only with one of its permits, held until
  /// the task ends, besides the run's own max_concurrent. Must be alive when
  /// the run starts (when async_run_tasks initiates: for a deferred token,
  /// when it is launched); the run then holds the semaphore's shared state,
  /// not the object. Tasks still start in input order; a run stopped while
  /// waiting for a permit gives its place in the queue back.
  ///
  /// Closing the limiter, or destroying it, while the run uses it stops the
  /// starts: no task starts after that, the one waiting for a permit ends
  /// cancelled_queued and the later ones not_started, the running ones go on
  /// to their own end (they are not cancelled), and the run completes with
  /// cause stop_cause::limiter_closed (a signal or a cancellation that comes
  /// meanwhile still cancels them, and its cause wins).
  async_semaphore* limiter = nullptr;
  /// Stops the run at the first signal of this listener (at once if it
  /// already came), as the blocking run_tasks stops at its own: cause
  /// stop_cause::signal, report.signal_number() the signal, so that
  /// exit_code() is 128+n and graceful::exit_process dies by it. For a
  /// program that runs its own io_context (a server, a run inside a bigger
  /// program). Must be alive when the run starts; the run then holds its
  /// state, and stops listening when it completes. Several runs and
  /// registries may share one listener.
  shutdown_signals* stop_on = nullptr;
  /// Blocking run_tasks only (async_run_tasks refuses anything but the
  /// default): the signals that stop the run (the first one is the shutdown
  /// request, cause stop_cause::signal) and what repeated ones do.
  signal_policy signals{};
  /// Blocking run_tasks only (async_run_tasks refuses anything but 1): threads
  /// that run the io_context, the calling one included. The tasks of one run
  /// share one strand: more threads never run them in parallel, and a task
  /// that blocks its thread holds up the others all the same. The other
  /// threads only run work that the tasks hand to other executors of the
  /// context (a `co_spawn` onto a strand of its own, say). For tasks that run
  /// in parallel, use a task_registry (a strand per task) on a thread pool.
  std::size_t threads = 1;

  // --- time: the shutdown ladder (see run_phase) ---------------------------
  // Every duration is optional: zero (the default) means not set; a negative
  // one is refused (error::invalid_argument / std::invalid_argument). With
  // none of them set and no on_progress, a run keeps no time at all.

  /// The whole run: stopped this long after it starts, as by a signal
  /// (through the grace, if any), cause stop_cause::deadline.
  duration deadline{};
  /// Each task: cancelled once it has run this long; it runs its cleanup and
  /// ends task_outcome::timed_out, and the run goes on (under
  /// failure_policy::cancel_all, a timeout is a failure and stops the run).
  /// A task that returns normally although its timeout came is completed.
  /// Never early; late by the timer's own lateness plus at most the time
  /// the event loop takes, after a task starts, to come back to the run:
  /// the starts are stamped in batches, by one clock read in a handler
  /// posted at the first start since the last stamp. Costs a list link per
  /// task: one timer per run wakes for the oldest task's timeout, none per
  /// task.
  duration task_timeout{};
  /// On a stop request (signal, cancellation, deadline; not a failure under
  /// cancel_all): no new task starts, and the running ones may finish on
  /// their own for this long before they are cancelled. They can see the
  /// request (this_task::stop_requested, this_task::async_wait_stop). A
  /// second stop request (a second signal, a cancellation) ends the grace at
  /// once. A task that returns within it is completed.
  duration grace{};
  /// After the cancel: wait at most this long for the running tasks (their
  /// cleanups included), then give up on them: they end
  /// task_outcome::abandoned and the run completes without them. An
  /// abandoned task goes on to its end on its own: its callable, the
  /// run's shared state and its limiter permit stay alive until then, and
  /// its end changes nothing that was reported; the tasks' context still has
  /// its work. The blocking run_tasks, whose context goes when it returns,
  /// stops the context and destroys it there: the abandoned tasks' frames
  /// are destroyed unfinished (their destructors run, the awaited cleanup
  /// does not go on); it prints the report on stderr. The budget is counted
  /// on the event loop: a cleanup that blocks the loop's thread holds it up
  /// too (signal_policy::force_exit_after is the way out of that). It bounds
  /// the shutdown, not a task_timeout: a task cancelled by its own timeout
  /// while the run goes on is waited for (it keeps its slot), and if it is
  /// still in its cleanup when a stop's drain budget runs out, it is
  /// abandoned with the others. A deadline bounds the whole run.
  duration drain_timeout{};
  /// Index -> name of a task, for the report (run_report::name, its
  /// operator<<) and on_progress's readers. Default: "task #i". Called only
  /// for the tasks named in a report, never per task; the report keeps it.
  /// If it throws, run_report::name passes the exception on and the printed
  /// report names that task "task #i".
  std::function<std::string(std::size_t)> task_name{};
  /// Called on the run's strand at each phase change (the start included)
  /// and every progress_interval while the run stops, with its progress:
  /// counts, time since the stop request, and the tasks the drain waits
  /// for. Nothing is computed without it. It must not block the loop and
  /// must not throw (an exception ends the process: std::terminate). An
  /// empty task list completes at once, with no report.
  std::function<void(const run_progress&)> on_progress{};
  duration progress_interval = std::chrono::seconds(1);

  // --- production ----------------------------------------------------------

  /// Blocking run_tasks only (async_run_tasks ignores it; a program with a
  /// loop of its own has graceful::systemd::notify): when $NOTIFY_SOCKET is
  /// set, tell systemd how the run goes (a `Type=notify` service):
  /// READY=1 at the start (with an empty task list too); a STATUS= line at
  /// each progress report (every progress_interval while stopping, naming
  /// the tasks the drain waits for). When a signal stops the run (the
  /// service is stopping; not a deadline or a failure, after which the
  /// process may go on): STOPPING=1, and while tasks keep ending in the
  /// drain, EXTEND_TIMEOUT_USEC= of twice progress_interval, so that
  /// `TimeoutStopSec=` does not kill a drain that makes progress (a drain
  /// that stalls asks for no more, and none reaches past the end of
  /// drain_timeout, however soon a second signal ends the grace). And
  /// WATCHDOG=1 every half $WATCHDOG_USEC when $WATCHDOG_PID is unset or
  /// this process. Nothing without $NOTIFY_SOCKET. Under systemd the run
  /// keeps time as if on_progress were set (with a zero progress_interval,
  /// the default one).
  bool notify_systemd = true;
};

namespace detail {

using op_completion = asio::any_completion_handler<void(boost::system::error_code)>;

// The typed side of a run's tasks: a list (std::vector<Task>) or a source
// (a callable returning std::optional<Task>). Calls the stored callables in
// place, so that a capturing lambda outlives the coroutine it returns.
// `slot`: the run's concurrency slot the task runs in, below max_concurrent.
struct task_list_base : task_source {
  // A source's size() is 0: its tasks are counted as they are pulled.
  virtual bool is_source() const noexcept { return false; }
  // The index of the first empty callable; size() if none. One call for the
  // whole list (free for callables that cannot be empty). A source: 0 if the
  // source itself is an empty callable.
  virtual std::size_t first_null() const noexcept = 0;
  // A source's: takes its next task into `slot`; false when it has no more.
  // Throws what the source throws.
  virtual bool pull(std::size_t /*slot*/) { return false; }
  virtual asio::awaitable<void> make(std::size_t i, std::size_t slot) = 0;
  // Operation tasks (operation_task): no coroutine (make is not called);
  // start_op starts task i's operation with `done`, bound to `cancel` and
  // run on `ex`. `done` gets the operation's error_code (none for a
  // void() operation). Throws what the callable or the initiation throws.
  virtual bool is_operation() const noexcept { return false; }
  virtual void start_op(std::size_t /*i*/, std::size_t /*slot*/, asio::cancellation_slot /*cancel*/,
                        const asio::any_io_executor& /*ex*/, op_completion /*done*/) {}
  // The run is over: the completed result tasks' values, sorted by index,
  // for the report; a task that completes later (abandoned) keeps nothing.
  // Null for tasks that return nothing.
  virtual std::shared_ptr<result_store_base> seal_results() { return nullptr; }
  // Task i has ended (its coroutine frame is gone, or it never got one):
  // its callable, and so what it captured, goes now.
  virtual void release(std::size_t i, std::size_t slot) noexcept = 0;
};

// Where a run's result tasks put their values, on the run's strand.
template <class T>
struct result_sink {
  std::shared_ptr<result_store<T>> store = std::make_shared<result_store<T>>();
  bool sealed = false;

  void add(std::size_t i, T&& value) {
    if (!sealed) store->values.emplace_back(i, std::move(value));
  }
  std::shared_ptr<result_store_base> seal() {
    sealed = true;
    auto& v = store->values;
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    return std::move(store);
  }
};

// A result task's coroutine, with its value kept as task i's.
template <class T>
asio::awaitable<void> keep_result(asio::awaitable<T> task, result_sink<T>* sink, std::size_t i) {
  T value = co_await std::move(task);
  sink->add(i, std::move(value));
}

// What a list keeps of its tasks' results: nothing for tasks returning void.
template <class Task, class T = task_result_t<Task>>
struct result_keeper : task_list_base {
  asio::awaitable<void> start(Task& task, std::size_t i) {
    return keep_result(std::invoke(task), &sink, i);
  }
  std::shared_ptr<result_store_base> seal_results() override { return sink.seal(); }
  result_sink<T> sink;
};

template <class Task>
struct result_keeper<Task, void> : task_list_base {
  asio::awaitable<void> start(Task& task, std::size_t) {
    if constexpr (operation_task<Task>) {
      throw std::logic_error("graceful: an operation task has no coroutine");
    } else {
      return std::invoke(task);
    }
  }

  bool is_operation() const noexcept override { return operation_task<Task>; }

  // An operation task's operation, started with `done` (its error_code, or
  // none for a void() operation) on `ex`, cancelled through `cancel`.
  void start_operation(Task& task, asio::cancellation_slot cancel, const asio::any_io_executor& ex,
                       op_completion done) {
    if constexpr (operation_task<Task>) {
      auto op = std::invoke(task);
      auto handler = [done = std::move(done)](auto... ec) mutable {
        std::move(done)(boost::system::error_code(ec...));
      };
      std::move(op)(asio::bind_cancellation_slot(cancel, asio::bind_executor(ex, std::move(handler))));
    }
  }
};

template <class Task>
struct task_list final : result_keeper<Task> {
  explicit task_list(std::vector<Task> t) : released(t.size()) {
    ::new (static_cast<void*>(&list)) std::vector<Task>(std::move(t));
    this->tasks = &list;
  }
  task_list(const task_list&) = delete;
  task_list& operator=(const task_list&) = delete;
  // The callables still there, then the vector's buffer: the vector's own
  // destructor never runs (it would destroy the released ones again). The
  // buffer came from std::allocator<Task>, capacity() elements of it.
  ~task_list() override {
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (!released[i]) std::destroy_at(&list[i]);
    }
    if (list.data() != nullptr) std::allocator<Task>().deallocate(list.data(), list.capacity());
  }

  std::size_t size() const noexcept override { return list.size(); }
  const std::type_info& task_type() const noexcept override { return typeid(Task); }
  std::size_t first_null() const noexcept override {
    std::size_t i = 0;
    while (i < list.size() && !is_null_task(list[i])) ++i;
    return i;
  }
  asio::awaitable<void> make(std::size_t i, std::size_t) override { return this->start(list[i], i); }
  void start_op(std::size_t i, std::size_t, asio::cancellation_slot cancel, const asio::any_io_executor& ex,
                op_completion done) override {
    if constexpr (operation_task<Task>) this->start_operation(list[i], cancel, ex, std::move(done));
  }
  // Destroyed in place, whatever its captures (const ones included).
  void release(std::size_t i, std::size_t) noexcept override {
    std::destroy_at(&list[i]);
    released[i] = true;
  }

  union {
    std::vector<Task> list;  // its elements live unless released
  };
  std::vector<bool> released;
};

// Where a source's tasks live while they run, by slot: at most
// max_concurrent of them. Blocks of 64, 64, 128, 256... slots (the run's
// runners grow the same way) up to 32 KiB, then blocks of that size, none
// past the run's limit, made as slots are first used: a slot never moves,
// and the slots lie together rather than in small blocks between the tasks'
// frames, so that the ends of a mass cancel touch them in order. A block
// stays under glibc's threshold (64 KiB) above which a free consolidates
// every small chunk the tasks' frames left, which would delay the run's
// completion (a task bigger than 16 KiB gets a block of its own). A
// callable that needs no destructor is not touched at its release at all.
template <class Task>
class slot_store {
 public:
  explicit slot_store(std::size_t limit) noexcept : limit_(limit) {}

  // `slot` is below the limit.
  Task& emplace(std::size_t slot, Task&& task) {
    while (blocks_.size() <= block_of(slot)) {
      const std::size_t b = blocks_.size();
      blocks_.push_back(std::make_unique<cell_type[]>(std::min(first_of(b + 1), limit_) - first_of(b)));
    }
    return cell(slot).emplace(std::move(task));
  }
  Task& operator[](std::size_t slot) noexcept { return *cell(slot); }
  void reset(std::size_t slot) noexcept {
    if constexpr (!std::is_trivially_destructible_v<Task>) cell(slot).reset();
  }

 private:
  using cell_type = std::optional<Task>;
  // The slots of the largest block (32 KiB of them, at least one), and of
  // the first: powers of two.
  static constexpr std::size_t max_block =
      std::bit_floor(std::max<std::size_t>(1, std::size_t{32768} / sizeof(cell_type)));
  static constexpr std::size_t first_block = std::min<std::size_t>(64, max_block);
  // The doubling blocks before the first of max_block slots.
  static constexpr std::size_t doubling = static_cast<std::size_t>(std::bit_width(max_block / first_block));

  // Block b's first slot.
  static std::size_t first_of(std::size_t b) noexcept {
    if (b <= doubling) return b == 0 ? 0 : first_block << (b - 1);
    return max_block * (b - doubling + 1);
  }
  static std::size_t block_of(std::size_t slot) noexcept {
    if (slot < max_block) return static_cast<std::size_t>(std::bit_width(slot / first_block));
    return doubling + slot / max_block - 1;
  }

  // A slot that was emplaced once: its block is there.
  cell_type& cell(std::size_t slot) noexcept {
    const std::size_t b = block_of(slot);
    return blocks_[b][slot - first_of(b)];
  }

  std::size_t limit_;
  std::vector<std::unique_ptr<cell_type[]>> blocks_;
};

template <class Source, class Task>
struct task_source_list final : result_keeper<Task> {
  // `limit`: the run's max_concurrent.
  task_source_list(Source s, std::size_t limit) : source(std::move(s)), slots(limit) { this->tasks = nullptr; }

  bool is_source() const noexcept override { return true; }
  std::size_t size() const noexcept override { return 0; }
  const std::type_info& task_type() const noexcept override { return typeid(Task); }
  std::size_t first_null() const noexcept override { return is_null_task(source) ? 0 : 1; }
  bool pull(std::size_t slot) override {
    std::optional<Task> next = std::invoke(source);
    if (!next) return false;
    slots.emplace(slot, std::move(*next));
    return true;
  }
  asio::awaitable<void> make(std::size_t i, std::size_t slot) override {
    return this->start(pulled(i, slot), i);
  }
  void start_op(std::size_t i, std::size_t slot, asio::cancellation_slot cancel,
                const asio::any_io_executor& ex, op_completion done) override {
    if constexpr (operation_task<Task>) this->start_operation(pulled(i, slot), cancel, ex, std::move(done));
  }
  // Task i, pulled into `slot`; a pulled empty callable fails as a task.
  Task& pulled(std::size_t i, std::size_t slot) {
    if (is_null_task(slots[slot])) {
      throw std::invalid_argument("graceful: task " + std::to_string(i) +
                                  " of the source is an empty callable");
    }
    return slots[slot];
  }
  void release(std::size_t, std::size_t slot) noexcept override { slots.reset(slot); }

  Source source;
  slot_store<Task> slots;
};

using run_signature = void(boost::system::error_code, run_report);
using run_handler = asio::any_completion_handler<run_signature>;

void async_run_tasks_erased(asio::any_io_executor ex, std::shared_ptr<task_list_base> tasks,
                            std::size_t max_concurrent, run_options options, run_handler handler);
run_report run_tasks_blocking(std::shared_ptr<task_list_base> tasks, std::size_t max_concurrent,
                              run_options options);

struct run_initiation {
  template <class Handler>
  void operator()(Handler&& handler, asio::any_io_executor ex,
                  std::shared_ptr<task_list_base> tasks, std::size_t max_concurrent,
                  run_options options) const {
    async_run_tasks_erased(std::move(ex), std::move(tasks), max_concurrent, std::move(options),
                           run_handler(std::forward<Handler>(handler)));
  }
};

}  // namespace detail

/// Runs `tasks` with at most `max_concurrent` of them at once, and joins them.
///
/// Tasks start in input order; each runs as its own coroutine on a strand of
/// `ex` (so the tasks of one run never run in parallel with each other, even on
/// a multi-threaded executor). On the executor of an io_context constructed
/// with concurrency hint 1 (`asio::io_context ctx{1}`, for which Asio
/// "assumes the io_context will be run from a single thread") they run on
/// `ex` directly, with no strand and cheaper executor copies. Precondition:
/// such a context is run by one thread at a time, as Asio assumes; builds
/// with GRACEFUL_CHECKS (Debug builds by default) stop the process with a
/// message when two threads run graceful's handlers of it at once.
///
/// The operation completes when every task that started has ended and its
/// cleanup has run, with a run_report that accounts for every task exactly
/// once.
///
/// A failing task (any exception other than operation_aborted after a stop
/// request) is recorded with its exception; options.on_failure decides whether
/// the others go on (default) or are cancelled.
///
/// A task may return a value (asio::awaitable<T>, a result_task): the report
/// keeps the value of each task that completes, and only those
/// (run_report::take_result<T>(i)); move-only T is fine. A value costs one
/// more coroutine frame per task while it runs, and its place in the report.
///
/// A task may also be an Asio operation that has yet to start
/// (operation_task: a callable returning an `asio::deferred` operation, say
/// `timer.async_wait(asio::deferred)`), completing with `void(error_code)` or
/// `void()`: no coroutine frame. The run starts it with a handler of its own,
/// bound to the task's cancellation slot (the stop emits `terminal` there)
/// and run on the run's strand. Its cleanup is its own completion logic (an
/// `asio::deferred` continuation, say), which runs before the task counts as
/// ended. No error: completed; operation_aborted after a stop:
/// cancelled_running (timed_out for its own task_timeout); any other error,
/// or operation_aborted nobody asked for: failed, with a
/// boost::system::system_error holding the code. An operation that
/// completes inside its own start ends after a post.
///
/// Every task coroutine runs with `throw_if_cancelled(false)`, so that after a
/// cancellation it can still `co_await graceful::shield(cleanup())`.
///
/// @par Completion Signature
/// @code void(boost::system::error_code ec, graceful::run_report report) @endcode
/// `ec` is set only when the run could not start: graceful::error::invalid_argument
/// for `max_concurrent == 0`, an empty (null) callable in `tasks`, or an
/// option of the blocking run_tasks only (`options.threads != 1`, `options.signals`
/// other than the default: they would be ignored here), with nothing started
/// and an empty report. A stopped run completes with no error
/// and the full report (report.cause() says why it stopped), so that a
/// `use_awaitable` caller never loses the report to an exception. An empty
/// list completes at once (posted) with an empty report.
///
/// @par Per-Operation Cancellation
/// `terminal`, `partial` and `total` all stop the run: no new task starts;
/// running tasks get `terminal` cancellation (their awaited operation fails with
/// operation_aborted) and run their cleanup, shielded awaits included, to the
/// end; the task waiting for a slot ends `cancelled_queued` and the rest
/// `not_started`, without ever starting. The handler runs after the last task
/// was joined, with `report.cause() == stop_cause::cancelled`. Emit the signal
/// on the handler's executor, as Asio requires. A cancellation after
/// completion does nothing.
///
/// @par Executor
/// The handler runs on its associated executor (by default `ex`), never inside
/// async_run_tasks itself. Until then the run is outstanding work there.
///
/// @par Thread Safety
/// The run's state lives on its strand (on a one-thread io_context, on that
/// thread); async_run_tasks may be called from any thread, several runs may
/// share an executor.
template <run_task Task,
          asio::completion_token_for<detail::run_signature> CompletionToken =
              asio::default_completion_token_t<asio::any_io_executor>>
auto async_run_tasks(asio::any_io_executor ex, std::vector<Task> tasks,
                     std::size_t max_concurrent, run_options options,
                     CompletionToken&& token = asio::default_completion_token_t<asio::any_io_executor>()) {
  return asio::async_initiate<CompletionToken, detail::run_signature>(
      detail::run_initiation{}, token, std::move(ex),
      std::shared_ptr<detail::task_list_base>(
          std::make_shared<detail::task_list<Task>>(std::move(tasks))),
      max_concurrent, std::move(options));
}

/// async_run_tasks with default run_options.
template <run_task Task,
          asio::completion_token_for<detail::run_signature> CompletionToken =
              asio::default_completion_token_t<asio::any_io_executor>>
auto async_run_tasks(asio::any_io_executor ex, std::vector<Task> tasks,
                     std::size_t max_concurrent,
                     CompletionToken&& token = asio::default_completion_token_t<asio::any_io_executor>()) {
  return async_run_tasks(std::move(ex), std::move(tasks), max_concurrent, run_options{},
                         std::forward<CompletionToken>(token));
}

/// Runs the tasks that `next` gives, with at most `max_concurrent` of them
/// at once, and joins them: async_run_tasks over a source instead of a list,
/// for work that is generated rather than listed (the lines of a file, the
/// rows of a query). Memory stays O(max_concurrent), whatever the number of
/// tasks: a task's callable lives only while it runs, and the report keeps
/// an outcome byte per task pulled (and the exceptions of the failed ones,
/// and the values of result tasks that completed).
///
/// `next` is called on the run's strand, only when a concurrency slot is
/// free (and, with run_options::limiter, once the limiter's permit is
/// held), one call per task, until it returns std::nullopt (never called
/// again after that). It should not block the event loop for long; at most
/// 1,024 tasks start per turn of the event loop, so that a source that never
/// runs out under a limit that is never reached leaves room for a stop. After
/// a stop request nothing more is pulled: what the source still holds was
/// never taken, and the report covers exactly the tasks pulled, in pull
/// order (no task of a source run is cancelled_queued; one is not_started
/// only if the run was stopped during the call that gave it, by the source
/// itself say: taken, never started, its callable destroyed). A pulled task
/// that is an empty callable ends failed with std::invalid_argument. If
/// `next` throws, the run stops as on a failure under
/// failure_policy::cancel_all (whatever options.on_failure says): cause
/// stop_cause::failure, the exception in report.source_error(). A source
/// run that stops before its source ran out has exit_code() 1 (a signal's
/// 128+n aside). The source is destroyed when the run completes (with
/// abandoned tasks, when the last of them ends).
///
/// Everything else (completion signature, cancellation, the time options,
/// executor) is as for the list form; run_progress::not_started and
/// ::queued stay 0. `ec` is graceful::error::invalid_argument, with nothing
/// pulled, for `max_concurrent == 0`, an empty `next`, or an option of the
/// blocking run_tasks only.
template <task_generator Source,
          asio::completion_token_for<detail::run_signature> CompletionToken =
              asio::default_completion_token_t<asio::any_io_executor>>
auto async_run_tasks(asio::any_io_executor ex, Source next, std::size_t max_concurrent,
                     run_options options,
                     CompletionToken&& token = asio::default_completion_token_t<asio::any_io_executor>()) {
  return asio::async_initiate<CompletionToken, detail::run_signature>(
      detail::run_initiation{}, token, std::move(ex),
      std::shared_ptr<detail::task_list_base>(
          std::make_shared<detail::task_source_list<Source, generated_task_t<Source>>>(
              std::move(next), max_concurrent)),
      max_concurrent, std::move(options));
}

/// async_run_tasks over a source, with default run_options.
template <task_generator Source,
          asio::completion_token_for<detail::run_signature> CompletionToken =
              asio::default_completion_token_t<asio::any_io_executor>>
auto async_run_tasks(asio::any_io_executor ex, Source next, std::size_t max_concurrent,
                     CompletionToken&& token = asio::default_completion_token_t<asio::any_io_executor>()) {
  return async_run_tasks(std::move(ex), std::move(next), max_concurrent, run_options{},
                         std::forward<CompletionToken>(token));
}

/// The seed's run_tasks for a whole program: runs `tasks` with at most
/// `max_concurrent` at once on an io_context of its own (options.threads
/// threads), until every task has ended or a shutdown signal (SIGINT, SIGTERM
/// by default: options.signals) stopped the run and every started task's
/// cleanup has run. Returns the report; pass it to graceful::exit_process to
/// exit as a shell expects (killed by the signal).
///
/// On the first signal: no new task starts; running tasks get terminal
/// cancellation and run their cleanup (shielded awaits included) to the end;
/// queued and not-started tasks never start; report.cause() is
/// stop_cause::signal and report.signal_number() the signal. Repeated signals
/// follow options.signals.force_exit_after (by default they never cut a
/// cleanup short). The signal handlers are installed before the first task
/// starts and removed before run_tasks returns (SIG_DFL again). Meanwhile
/// SIGPIPE is ignored unless options.signals.ignore_sigpipe is false.
///
/// Throws std::invalid_argument, before anything starts, for
/// `max_concurrent == 0`, an empty callable in `tasks`, `options.threads == 0`
/// or a signal policy that makes no sense; the message names the problem. If
/// a thread cannot be created, std::system_error, also before any task ran.
///
/// Several run_tasks may run at once in one process (from different threads):
/// each listens for its signals, and one signal stops them all, since it asks
/// the whole process to shut down.
///
/// With one thread (the default), the io_context is the calling thread's and
/// is kept for its next run_tasks: the return after the last join does not
/// wait for the context's descriptors to be closed, and they are closed when
/// the thread exits (or before a fork(), so that a child never shares them).
/// Everything the run started has ended when run_tasks returns; the signal
/// handlers are gone. A run that ends by an exception gets its context
/// destroyed; a run_tasks called from inside a task of another, or with
/// several threads, gets a context of its own.
template <run_task Task>
run_report run_tasks(std::vector<Task> tasks, std::size_t max_concurrent, run_options options = {}) {
  return detail::run_tasks_blocking(std::make_shared<detail::task_list<Task>>(std::move(tasks)),
                                    max_concurrent, std::move(options));
}

/// The blocking run_tasks over a source: as async_run_tasks over a source,
/// on the blocking run_tasks' own io_context, with its signals. Throws
/// std::invalid_argument, with nothing pulled, for `max_concurrent == 0` or
/// an empty `next`.
template <task_generator Source>
run_report run_tasks(Source next, std::size_t max_concurrent, run_options options = {}) {
  return detail::run_tasks_blocking(
      std::make_shared<detail::task_source_list<Source, generated_task_t<Source>>>(std::move(next),
                                                                                  max_concurrent),
      max_concurrent, std::move(options));
}

}  // namespace graceful
