// graceful: bounded-concurrency async work with graceful shutdown, on Boost.Asio.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace graceful {

/// A span of time in graceful's options and reports; zero means "not set".
using duration = std::chrono::steady_clock::duration;

/// How one task ended (or why it never began).
enum class task_outcome : std::uint8_t {
  completed,          ///< returned normally (even if a cancel came too late to matter)
  failed,             ///< threw; run_report::error(i) holds the exception
  cancelled_running,  ///< ended by operation_aborted after the run asked it to stop
  cancelled_queued,   ///< was waiting for a concurrency slot when the run stopped
  not_started,        ///< the run stopped before this task was reached
  timed_out,          ///< cancelled by its own run_options::task_timeout; its cleanup ran
  /// still running when the drain budget (drain_timeout) was spent: the run
  /// completed without it, and it ends on its own later
  abandoned,
};

namespace detail {
inline constexpr std::size_t outcome_kinds = 7;  // the enumerators of task_outcome
}  // namespace detail

/// What stopped a run early, if anything did.
enum class stop_cause : std::uint8_t {
  none,       ///< nothing: every task was run (failures under the default policy included)
  signal,     ///< a signal (SIGINT, SIGTERM...): signal_number() tells which
  cancelled,  ///< per-operation cancellation of async_run_tasks
  failure,    ///< a task failed under failure_policy::cancel_all
  deadline,   ///< the run's deadline passed
  /// the shared limiter (run_options::limiter) was closed or destroyed: no
  /// task started after that, the running ones ended on their own
  limiter_closed,
};

std::ostream& operator<<(std::ostream& os, task_outcome o);
std::ostream& operator<<(std::ostream& os, stop_cause c);

/// Where a run is in its shutdown:
///
///     running ──stop request──> grace ──grace over, or a second request──> cancelling
///        │                        (skipped without a grace, or on a failure)     │
///        └──────────────── every task ended ──────────> done <── every task ended,
///                                                                or drain_timeout spent
enum class run_phase : std::uint8_t {
  running,     ///< no stop request yet
  grace,       ///< a stop was requested; running tasks may still finish on their own
  cancelling,  ///< running tasks were cancelled; their cleanups run
  done,        ///< the run has completed (its report is on its way)
};

std::ostream& operator<<(std::ostream& os, run_phase p);

/// A run's progress, for a live display or a service manager's status line
/// (run_options::on_progress). The four counts add up to the run's size.
struct run_progress {
  run_phase phase = run_phase::running;
  stop_cause cause = stop_cause::none;
  int signal_number = 0;
  std::size_t running = 0;      ///< started and not ended
  std::size_t queued = 0;       ///< waiting for a concurrency slot
  std::size_t not_started = 0;  ///< not reached yet (or never to be, after a stop)
  std::size_t ended = 0;        ///< started and ended (or failed to start)
  duration since_stop{};        ///< zero before a stop request
  /// The longest-running tasks still running (input indices, at most 8),
  /// oldest first: after a stop, the ones the drain waits for.
  std::vector<std::size_t> blocking;
};

namespace detail {
struct task_source;
struct report_builder;

// The values of a run's completed result tasks, by index (ascending).
struct result_store_base {
  result_store_base() = default;
  result_store_base(const result_store_base&) = delete;
  result_store_base& operator=(const result_store_base&) = delete;
  virtual ~result_store_base() = default;
  virtual const std::type_info& type() const noexcept = 0;
};

template <class T>
struct result_store final : result_store_base {
  const std::type_info& type() const noexcept override { return typeid(T); }
  std::vector<std::pair<std::size_t, std::optional<T>>> values;  // empty once taken
};
}  // namespace detail

/// The result of a run: one outcome per input task, in input order.
///
/// Every task appears exactly once. The tasks that never started can be taken
/// back (take_unstarted) to run them later: nothing is silently dropped.
///
/// The report owns those never-started tasks and nothing else of the run: a
/// task's callable, and what it captured, was destroyed as soon as that task
/// ended. Since it owns them (and they may be move-only), a report is
/// move-only too: no two reports ever share the tasks that take_unstarted
/// moves out.
class run_report {
 public:
  run_report() = default;
  run_report(run_report&&) noexcept = default;
  run_report& operator=(run_report&&) noexcept = default;
  run_report(const run_report&) = delete;
  run_report& operator=(const run_report&) = delete;

  /// Number of tasks the run was given (a source run: the tasks it pulled).
  std::size_t size() const noexcept { return outcomes_.size(); }

  /// How task `i` (input order) ended. Throws std::out_of_range past size().
  task_outcome outcome(std::size_t i) const { return outcomes_.at(i); }

  /// The exception of a failed task; null for every other outcome.
  std::exception_ptr error(std::size_t i) const;

  /// How many tasks ended with `o`.
  std::size_t count(task_outcome o) const noexcept {
    return counts_[static_cast<std::size_t>(o)];
  }

  /// Tasks that began running: completed + failed + cancelled_running +
  /// timed_out + abandoned.
  std::size_t started() const noexcept {
    return count(task_outcome::completed) + count(task_outcome::failed) +
           count(task_outcome::cancelled_running) + count(task_outcome::timed_out) +
           count(task_outcome::abandoned);
  }

  /// The input indices of the tasks that ended with `o`, ascending.
  std::vector<std::size_t> indices(task_outcome o) const;

  stop_cause cause() const noexcept { return cause_; }

  /// What the source of a source run threw (the run then stopped, cause
  /// stop_cause::failure); null otherwise.
  std::exception_ptr source_error() const noexcept { return source_error_; }

  /// The signal that stopped the run; 0 unless cause() == stop_cause::signal.
  int signal_number() const noexcept { return signal_; }

  /// 0 when every task completed; 128+n after signal n; 1 otherwise (a task
  /// failed, timed out, was abandoned, or never ran; or a source run stopped
  /// before its source ran out, or its source threw).
  int exit_code() const noexcept;

  /// Task `i`'s name: run_options::task_name(i) if the run had one, else
  /// "task #i".
  std::string name(std::size_t i) const;

  /// How long task `i` ran, for a task that failed, timed out or was
  /// abandoned (to its end, or to the moment it was given up on) in a run
  /// that kept time (any of run_options' time options or on_progress set);
  /// zero otherwise.
  duration ran_for(std::size_t i) const noexcept;

  /// Moves out the tasks that never started (cancelled_queued and
  /// not_started), in input order; afterwards the report holds nothing of
  /// the run's tasks (a second call returns an empty vector). `Task` must be
  /// the element type of the vector the run was given (std::invalid_argument
  /// otherwise).
  template <class Task>
  std::vector<Task> take_unstarted();

  /// Moves out the value that task `i` returned, for a run of tasks that
  /// return asio::awaitable<T> (result_task): a value if the task
  /// completed, std::nullopt if it did not (any other outcome) or its value
  /// was taken already. The report keeps only the completed tasks' values.
  /// Throws std::out_of_range past size(), and std::invalid_argument if T
  /// is not the tasks' result type (or the tasks return nothing).
  template <class T>
  std::optional<T> take_result(std::size_t i);

 private:
  friend struct detail::report_builder;

  std::vector<task_outcome> outcomes_;
  std::vector<std::pair<std::size_t, std::exception_ptr>> errors_;  // by index
  std::vector<std::pair<std::size_t, duration>> ran_;  // by index
  std::array<std::size_t, detail::outcome_kinds> counts_{};
  stop_cause cause_ = stop_cause::none;
  int signal_ = 0;
  std::function<std::string(std::size_t)> names_;
  std::shared_ptr<detail::task_source> tasks_;  // the run's tasks, for take_unstarted
  std::exception_ptr source_error_;
  std::shared_ptr<detail::result_store_base> results_;  // result tasks' values
  bool source_left_ = false;  // a source run stopped before its source ran out
};

/// The summary a person reads after a shutdown, one item a line: the cause,
/// the counts, then the failed (with their exception's message), timed-out
/// and abandoned tasks by name, with how long each ran; at most 20 names of
/// each, then how many more. A task whose name throws is shown as "task #i".
std::ostream& operator<<(std::ostream& os, const run_report& report);

namespace detail {

// Type-erased access to the std::vector<Task> a run was given.
struct task_source {
  task_source() = default;
  task_source(const task_source&) = delete;
  task_source& operator=(const task_source&) = delete;
  virtual ~task_source() = default;
  virtual std::size_t size() const noexcept = 0;
  virtual const std::type_info& task_type() const noexcept = 0;
  void* tasks;  // the std::vector<Task>
};

}  // namespace detail

template <class Task>
std::vector<Task> run_report::take_unstarted() {
  std::vector<Task> out;
  if (!tasks_) return out;
  if (tasks_->task_type() != typeid(Task)) {
    throw std::invalid_argument(
        "graceful::run_report::take_unstarted: Task is not the task type the run was given");
  }
  auto& all = *static_cast<std::vector<Task>*>(tasks_->tasks);
  for (std::size_t i = 0; i < outcomes_.size(); ++i) {
    if (outcomes_[i] == task_outcome::cancelled_queued || outcomes_[i] == task_outcome::not_started) {
      out.push_back(std::move(all[i]));
    }
  }
  tasks_.reset();
  return out;
}

template <class T>
std::optional<T> run_report::take_result(std::size_t i) {
  static_assert(std::is_same_v<T, std::remove_cvref_t<T>>, "take_result<T>: T is the tasks' value type");
  if (i >= size()) throw std::out_of_range("graceful::run_report::take_result: no such task");
  if (!results_ || results_->type() != typeid(T)) {
    throw std::invalid_argument(
        "graceful::run_report::take_result: T is not the result type of the run's tasks");
  }
  auto& values = static_cast<detail::result_store<T>&>(*results_).values;
  auto it = std::lower_bound(values.begin(), values.end(), i,
                             [](const auto& v, std::size_t idx) { return v.first < idx; });
  if (it == values.end() || it->first != i) return std::nullopt;
  return std::exchange(it->second, std::nullopt);
}

}  // namespace graceful
