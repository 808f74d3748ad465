// graceful: bounded-concurrency async work with graceful shutdown, on Boost.Asio.
#pragma once

#include <graceful/error.hpp>
#include <graceful/report.hpp>
#include <graceful/signals.hpp>
#include <graceful/task.hpp>
#include <graceful/this_task.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace graceful {

namespace asio = boost::asio;

/// Identifies one task of a task_registry; never 0 for a spawned task.
using task_id = std::uint64_t;

/// Where a task of a task_registry is in its life.
enum class task_state : std::uint8_t {
  not_started,  ///< given a slot, its coroutine not yet begun
  queued,       ///< waiting for a concurrency slot
  running,      ///< its coroutine has begun
  done,         ///< ended, or dropped before it began (see task_outcome)
};

std::ostream& operator<<(std::ostream& os, task_state s);

/// A task a registry's shutdown gave up on (registry_snapshot::abandoned_tasks).
struct abandoned_task {
  task_id id = 0;
  std::string name;   ///< given to spawn, or "task #<id>"
  duration ran_for{};  ///< from its start to the moment it was given up on
};

/// What a task_registry holds at one instant.
struct registry_snapshot {
  /// Live tasks per state, indexed by task_state (done: see outcomes).
  std::size_t not_started = 0;
  std::size_t queued = 0;
  std::size_t running = 0;
  /// Ended tasks per task_outcome, since the registry was made.
  std::size_t completed = 0;
  std::size_t failed = 0;
  std::size_t cancelled_running = 0;
  std::size_t cancelled_queued = 0;
  std::size_t cancelled_not_started = 0;
  std::size_t timed_out = 0;
  std::size_t abandoned = 0;  ///< given up on by async_shutdown's drain budget
  /// The ids of the running tasks, ascending.
  std::vector<task_id> running_ids;
  bool closed = false;
  /// The cause given to the first cancel_all (none if there was none).
  stop_cause cause = stop_cause::none;
  /// The signal that stopped the registry (stop_on, or
  /// shutdown_options::signal_number); 0 unless cause is stop_cause::signal.
  int signal_number = 0;
  /// The tasks async_shutdown gave up on (its drain budget was spent while
  /// they ran), in the order they came in.
  std::vector<abandoned_task> abandoned_tasks;

  std::size_t count(task_state s) const noexcept;
  std::size_t count(task_outcome o) const noexcept;

  /// As run_report::exit_code: 128+n after signal n (cause signal); 0 when
  /// no task failed, timed out or was abandoned; 1 otherwise.
  int exit_code() const noexcept;
};

/// The summary a person reads after a shutdown: the cause, the counts, and
/// the tasks given up on by name, with how long each ran (at most 20).
std::ostream& operator<<(std::ostream& os, const registry_snapshot& s);

/// How task_registry::async_shutdown shuts the registry down: the shutdown
/// ladder of a run (see run_phase), for tasks spawned over time.
struct shutdown_options {
  /// Recorded as the registry's cause (if it has none yet).
  stop_cause cause = stop_cause::signal;
  /// With cause signal: the signal, recorded as the snapshot's
  /// signal_number (so that exit_code() is 128+n).
  int signal_number = 0;
  /// The running tasks may finish on their own this long (they can see the
  /// request: this_task) before they are cancelled.
  duration grace{};
  /// After the cancel, wait at most this long for the running tasks; then
  /// give up on them (outcome abandoned, named in the snapshot).
  duration drain_timeout{};
  /// As run_options::on_progress, on the shutdown's strand; `blocking` holds
  /// task ids, and the counts are those of the tasks the registry took in.
  std::function<void(const run_progress&)> on_progress{};
  duration progress_interval = std::chrono::seconds(1);
};

namespace detail {

struct registry_state;

// One spawned task, type-erased: the callable lives here until the task ends
// (a capturing lambda must outlive the coroutine it returns).
struct registry_task {
  registry_task() = default;
  registry_task(const registry_task&) = delete;
  registry_task& operator=(const registry_task&) = delete;
  virtual ~registry_task() = default;
  virtual asio::awaitable<void> make() = 0;
};

template <class Task>
struct registry_task_of final : registry_task {
  explicit registry_task_of(Task&& t) : task(std::move(t)) {}
  asio::awaitable<void> make() override { return std::invoke(task); }
  Task task;
};

using join_signature = void(boost::system::error_code);
using join_handler = asio::any_completion_handler<join_signature>;

// A spawn let in: its id, and how many cancel_all calls had been made then.
struct admission {
  task_id id = 0;
  std::uint64_t epoch = 0;
};

// Reserves an id, or refuses (id 0 and `ec` set) when the registry is closed.
admission registry_admit(registry_state& state, boost::system::error_code& ec);
// Undoes an admission whose task could not be stored (its allocation threw).
void registry_retract(const std::shared_ptr<registry_state>& state);
// Takes in an admitted task: it starts now or waits for a slot; dropped if a
// cancel_all came after its admission. `name`: empty for the default one.
void registry_launch(const std::shared_ptr<registry_state>& state, admission a,
                     std::unique_ptr<registry_task> task, std::string name);
void registry_join_erased(std::shared_ptr<registry_state> state, join_handler handler);

using shutdown_signature = void(boost::system::error_code, registry_snapshot);
using shutdown_handler = asio::any_completion_handler<shutdown_signature>;
void registry_shutdown_erased(std::shared_ptr<registry_state> state, shutdown_options options,
                              shutdown_handler handler);

struct shutdown_initiation {
  std::shared_ptr<registry_state> state;

  template <class Handler>
  void operator()(Handler&& handler, shutdown_options options) const {
    registry_shutdown_erased(state, std::move(options), shutdown_handler(std::forward<Handler>(handler)));
  }
};

struct join_initiation {
  std::shared_ptr<registry_state> state;

  template <class Handler>
  void operator()(Handler&& handler) const {
    registry_join_erased(state, join_handler(std::forward<Handler>(handler)));
  }
};

}  // namespace detail

/// The tracked-task registry: tasks spawned as work arrives (a connection per
/// task), run under an optional concurrency limit, cancelled together, joined.
///
/// Every task has an id, a state, its own cancellation signal and its own
/// strand of the registry's executor: tasks of one registry run in parallel on
/// a multi-threaded executor, each one's code serialized on its strand. (On an
/// io_context constructed with concurrency hint 1, for which Asio "assumes the
/// io_context will be run from a single thread", the context's executor is
/// every task's strand, and none is made. Precondition: such a context is run
/// by one thread at a time; builds with GRACEFUL_CHECKS, Debug builds by
/// default, stop the process with a message when it is not.) A
/// task's coroutine runs with `throw_if_cancelled(false)`, so that after a
/// cancellation it can still `co_await graceful::shield(cleanup())`.
///
/// How a task ends is classified as for async_run_tasks: returned ->
/// completed; operation_aborted after a cancel -> cancelled_running; any other
/// exception -> failed. The registry keeps counts (snapshot()), not results.
///
/// A graceful shutdown: `close()` (nothing new gets in), `cancel_all(cause)`
/// (running tasks get terminal cancellation, waiting ones are dropped), then
/// `co_await async_join()` (every cleanup has run).
///
/// Destroying the registry closes it and cancels every task; running tasks
/// still run their cleanup to the end, and pending joins still complete when
/// the last one ends.
///
/// @par Thread Safety
/// Every member may be called from any thread, and from inside the tasks.
class task_registry {
 public:
  using executor_type = asio::any_io_executor;

  /// A registry with no concurrency limit: every spawned task starts at once.
  explicit task_registry(asio::any_io_executor ex);

  /// A registry that runs at most `max_concurrent` tasks at once, the others
  /// waiting in spawn order. `max_concurrent == 0` throws std::invalid_argument.
  /// With failure_policy::cancel_all the first failure closes the registry and
  /// cancels every task (cause stop_cause::failure).
  task_registry(asio::any_io_executor ex, std::size_t max_concurrent,
                failure_policy on_failure = failure_policy::continue_running);

  task_registry(const task_registry&) = delete;
  task_registry& operator=(const task_registry&) = delete;
  ~task_registry();

  executor_type get_executor() const noexcept;

  /// Takes `task` in and returns its id. It starts now if a slot is free,
  /// otherwise it waits for one.
  ///
  /// Refused, with `task` left as it was (handed back, not dropped), when the
  /// registry is closed (`ec` = graceful::error::registry_closed) or `task` is
  /// an empty callable (graceful::error::invalid_argument); then returns 0.
  ///
  /// If taking it in throws (an allocation failed), the exception goes out and
  /// the registry is as it was: nothing of the task is counted, the task is
  /// destroyed, a join waits for nothing more. A task taken in whose launch
  /// fails later, before its coroutine began, ends `failed` with that error.
  template <awaitable_task Task>
  task_id spawn(Task&& task, boost::system::error_code& ec) {
    return spawn(std::forward<Task>(task), std::string(), ec);
  }

  /// As above, with a name for the reports (the snapshot's abandoned_tasks,
  /// async_shutdown's progress); empty: "task #<id>".
  template <awaitable_task Task>
  task_id spawn(Task&& task, std::string name, boost::system::error_code& ec) {
    using stored = std::remove_cvref_t<Task>;
    if (detail::is_null_task(task)) {
      ec = make_error_code(error::invalid_argument);
      return 0;
    }
    detail::admission a = detail::registry_admit(*state_, ec);
    if (a.id == 0) return 0;
    std::unique_ptr<detail::registry_task> stored_task;
    try {
      stored_task = std::make_unique<detail::registry_task_of<stored>>(stored(std::forward<Task>(task)));
    } catch (...) {
      detail::registry_retract(state_);
      throw;
    }
    detail::registry_launch(state_, a, std::move(stored_task), std::move(name));
    return a.id;
  }

  /// As above; a refusal throws boost::system::system_error with the error,
  /// `task` left as it was.
  template <awaitable_task Task>
  task_id spawn(Task&& task) {
    return spawn(std::forward<Task>(task), std::string());
  }

  /// As above, named.
  template <awaitable_task Task>
  task_id spawn(Task&& task, std::string name) {
    boost::system::error_code ec;
    task_id id = spawn(std::forward<Task>(task), std::move(name), ec);
    if (ec) throw boost::system::system_error(ec, "graceful::task_registry::spawn");
    return id;
  }

  /// Cancels task `id`: if it runs, it gets terminal cancellation (on its own
  /// strand) and runs its cleanup; if it waits, it is dropped without ever
  /// starting. Returns false if no such task is live (unknown or already done).
  bool cancel(task_id id);

  /// Cancels every live task as cancel(id) does, oldest first (in the order
  /// spawn took them in), and records `cause` (the first one given is kept).
  /// Does not close the registry: call close() first so that nothing spawned
  /// meanwhile escapes the shutdown.
  void cancel_all(stop_cause cause = stop_cause::cancelled);

  /// Stops the registry at the first signal of `signals` (at once if it
  /// already came): close(), then cancel_all(stop_cause::signal), the
  /// snapshot's signal_number the signal. A server's way to drain on
  /// SIGTERM and exit by it. The registry holds the listener's state until
  /// it is destroyed; a later stop_on replaces the earlier one.
  void stop_on(shutdown_signals& signals);

  /// Seals the registry: every later spawn is refused with
  /// graceful::error::registry_closed. Tasks already in go on. Idempotent.
  void close();

  bool is_closed() const noexcept;

  /// Counts per state and outcome, and the ids of the running tasks.
  registry_snapshot snapshot() const;

  /// Waits until no task is live (every spawned task is done).
  ///
  /// @par Completion Signature
  /// @code void(boost::system::error_code ec) @endcode
  /// `ec` is clear once no task is live; operation_aborted if the wait itself
  /// was cancelled. Completes at once (posted) when no task is live now.
  /// Tasks spawned after the wait began are waited for too (close() first if
  /// that is not wanted).
  ///
  /// @par Per-Operation Cancellation
  /// `terminal`, `partial` and `total`: the wait ends with operation_aborted;
  /// the tasks are not touched (use cancel_all for that).
  ///
  /// @par Executor
  /// The handler runs on its associated executor (by default the registry's),
  /// never inside async_join itself. A pending wait is outstanding work there.
  ///
  /// @par Thread Safety
  /// May be called from any thread, several waits at once.
  template <asio::completion_token_for<detail::join_signature> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_join(CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return asio::async_initiate<CompletionToken, detail::join_signature>(
        detail::join_initiation{state_}, token);
  }

  /// Shuts the registry down through the ladder of a run: close() (later
  /// spawns are refused), the tasks that wait for a slot or have not begun
  /// are dropped at once, the running ones are told (this_task) and may
  /// finish for options.grace, then they are cancelled (cancel_all with
  /// options.cause), and after options.drain_timeout the ones still running
  /// are given up on: counted `abandoned`, named in the snapshot, left to end
  /// on their own (their callable and state stay alive until then; their
  /// end changes no count). Completes once no task is live.
  ///
  /// @par Completion Signature
  /// @code void(boost::system::error_code ec, graceful::registry_snapshot s) @endcode
  /// `ec` is graceful::error::invalid_argument (nothing done) for a negative
  /// duration, or a zero progress_interval with on_progress set; clear
  /// otherwise. `s` is the registry's snapshot once the shutdown is over,
  /// with abandoned_tasks.
  ///
  /// Several calls share one shutdown: a later call is a second stop
  /// request (it ends the grace at once, as a second signal would), and
  /// every handler completes at the end with the same snapshot; a call after
  /// the shutdown ended completes at once, with the registry's snapshot then.
  /// A cancel_all during the grace (or stop_on's signal, or a failure under
  /// failure_policy::cancel_all) is a second stop request too: the drain
  /// budget counts from it. What the options hold (on_progress's captures)
  /// is released when the shutdown is over.
  ///
  /// @par Per-Operation Cancellation
  /// `terminal`, `partial` and `total`: a second stop request (the grace
  /// ends at once); the operation still completes when the shutdown does.
  ///
  /// @par Executor
  /// The handler runs on its associated executor (by default the
  /// registry's), never inside async_shutdown itself.
  template <asio::completion_token_for<detail::shutdown_signature> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_shutdown(shutdown_options options,
                      CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return asio::async_initiate<CompletionToken, detail::shutdown_signature>(
        detail::shutdown_initiation{state_}, token, std::move(options));
  }

 private:
  std::shared_ptr<detail::registry_state> state_;
};

}  // namespace graceful
