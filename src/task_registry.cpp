#include <graceful/task_registry.hpp>

#include "detail/one_thread.hpp"
#include "detail/one_thread_check.hpp"
#include "detail/report_text.hpp"
#include "detail/shutdown_ladder.hpp"
#include "detail/signals_access.hpp"
#include "detail/stop_notice.hpp"
#include "detail/task_frame.hpp"
#include "detail/waiter_list.hpp"

#include <boost/asio/any_completion_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include <algorithm>
#include <array>
#include <deque>
#include <list>
#include <limits>
#include <mutex>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <unordered_map>

// How the pieces fit:
//
// - The bookkeeping (ids, states, counts, the wait queue, joins) is guarded by
//   one mutex; its critical sections are a few field updates. Nothing is
//   posted, dispatched or emitted while it is held: each member collects what
//   to do (`actions`) and does it after unlocking.
// - Each task runs on its own strand. Its cancellation (a cancel_relay, see
//   relay_executor.hpp) is requested only there (emits are not thread-safe), by a
//   function dispatched to that strand, and outlives the task. On an
//   io_context run from one thread (one_thread_executor) the context's
//   executor is every task's strand: no strand is made.
// - A task given a slot is `not_started` until its strand runs start(); the
//   co_spawn happens there, so the coroutine has run to its first suspension
//   before any emit can reach it (an earlier emit can throw out of run() in
//   Asio 1.26; emits are queued behind start()).
// - spawn() checks `closed` before it touches the caller's task (so a refused
//   task is handed back), then builds the node outside the lock. A cancel_all
//   in between bumps `epoch`; launch() sees it and drops the task, so a
//   shutdown never waits on a task it did not cancel.

namespace graceful {

namespace detail {

struct registry_node : std::enable_shared_from_this<registry_node> {
  // `serial`: the registry's one-thread executor, or nullptr (a strand each).
  registry_node(task_id i, const asio::any_io_executor& ex,
                const asio::io_context::executor_type* serial, one_thread_check* check,
                stop_notice* notice)
      : id(i) {
    if (serial == nullptr) strand.emplace(asio::make_strand(ex));
    relay->check = check;
    relay->notice = notice;
  }

  const task_id id;
  // Freed as soon as the task is done (its coroutine frame first), never
  // under the registry's mutex: a capture's destructor may call back in.
  std::unique_ptr<registry_task> task;
  std::optional<asio::strand<asio::any_io_executor>> strand;  // none on a one-thread context
  pooled_relay relay;  // on the strand only
  relay_ref relay_of_task = relay->begin();
  std::string name;  // empty: "task #<id>"
  // Under the registry's mutex.
  task_state state = task_state::not_started;
  bool cancel_requested = false;
  bool abandoned = false;  // given up on by a shutdown: counted, no longer live
  steady::time_point started{};
  registry_node* older = nullptr;  // the live tasks in the order they came in
  registry_node* newer = nullptr;
};

using node_ptr = std::shared_ptr<registry_node>;

using join_waiters = waiter_list<>;

struct registry_shutdown;

// What a locked section decided, done once the mutex is released.
struct actions {
  std::vector<std::unique_ptr<registry_task>> released;  // done tasks' callables
  std::vector<node_ptr> start;
  std::vector<node_ptr> emit;
  join_waiters::batch joined;
  bool notify_stop = false;  // the stop notice: a cancel_all came
  std::shared_ptr<registry_shutdown> idle_shutdown;  // it is over: no task is live
  // A cancel came during its grace: the grace ends, the drain budget starts.
  std::shared_ptr<registry_shutdown> hurried_shutdown;
};

struct registry_shutdown;
void shutdown_is_over(const std::shared_ptr<registry_shutdown>& shutdown, registry_snapshot snapshot);
void shutdown_hurried(const std::shared_ptr<registry_shutdown>& shutdown);
registry_snapshot snapshot_of(const registry_state& st);

struct registry_state : std::enable_shared_from_this<registry_state> {
  registry_state(asio::any_io_executor executor, std::size_t max_concurrent, failure_policy policy)
      : ex(std::move(executor)),
        serial(one_thread_executor(ex)),
        check(serial != nullptr ? one_thread_check::of(*serial) : nullptr),
        limit(max_concurrent),
        on_failure(policy),
        notice(std::make_shared<stop_notice>(ex)) {}

  const asio::any_io_executor ex;
  const asio::io_context::executor_type* const serial;  // ex's, on a one-thread context
  one_thread_check* const check;  // serial's, with GRACEFUL_CHECKS
  const std::size_t limit;
  const failure_policy on_failure;
  const std::shared_ptr<stop_notice> notice;  // graceful::this_task's: set by the first cancel_all

  mutable std::mutex mutex;
  bool closed = false;
  stop_cause cause = stop_cause::none;
  int signal_number = 0;
  std::weak_ptr<signals_state> stop_signals;  // stop_on's (the hook's key: this)
  std::uint64_t epoch = 0;      // cancel_all calls so far
  task_id last_id = 0;
  std::size_t admitted = 0;     // between registry_admit and registry_launch
  std::size_t not_started = 0;  // not_started + running: the slots in use
  std::size_t queued = 0;
  std::size_t running = 0;
  std::array<std::size_t, outcome_kinds> outcomes{};
  std::unordered_map<task_id, node_ptr> live;  // launched, not done
  registry_node* oldest = nullptr;              // `live` in the order it came in
  registry_node* newest = nullptr;
  std::deque<node_ptr> waiting;                // FIFO; skips nodes already done
  join_waiters waiters;  // async_join
  std::vector<abandoned_task> given_up;  // by async_shutdown, in the order they came in
  // async_shutdown's, until it is over (it holds this state weakly).
  std::shared_ptr<registry_shutdown> shutdown;

  // --- under the mutex ---------------------------------------------------

  bool idle() const noexcept { return admitted == 0 && live.empty(); }

  // No task is live: the joins complete, and a shutdown under way is over.
  void went_idle(actions& act) noexcept {
    act.joined = waiters.take_all();
    act.idle_shutdown = shutdown;
  }

  void take_in(const node_ptr& node) {
    live.emplace(node->id, node);
    node->older = newest;
    (newest != nullptr ? newest->newer : oldest) = node.get();
    newest = node.get();
  }

  void let_go(registry_node& node) {
    (node.older != nullptr ? node.older->newer : oldest) = node.newer;
    (node.newer != nullptr ? node.newer->older : newest) = node.older;
    node.older = node.newer = nullptr;
    live.erase(node.id);
  }

  void finish(registry_node& node, task_outcome outcome, actions& act) {
    if (node.task) act.released.push_back(std::move(node.task));
    node.state = task_state::done;
    ++outcomes[static_cast<std::size_t>(outcome)];
    let_go(node);
    if (idle()) went_idle(act);
  }

  void give_slot(actions& act) {
    while (!waiting.empty()) {
      node_ptr next = std::move(waiting.front());
      waiting.pop_front();
      if (next->state != task_state::queued) continue;  // cancelled while waiting
      --queued;
      next->state = task_state::not_started;
      ++not_started;
      act.start.push_back(std::move(next));
      return;
    }
  }

  void cancel_node(const node_ptr& node, actions& act) {
    switch (node->state) {
      case task_state::queued:
        --queued;
        finish(*node, task_outcome::cancelled_queued, act);
        break;
      case task_state::not_started:
        node->cancel_requested = true;  // start() drops it
        break;
      case task_state::running:
        if (!node->cancel_requested) {
          node->cancel_requested = true;
          act.emit.push_back(node);
        }
        break;
      case task_state::done:
        break;
    }
  }

  void cancel_everything(stop_cause c, actions& act) {
    if (cause == stop_cause::none) cause = c;
    act.notify_stop = true;
    act.hurried_shutdown = shutdown;
    ++epoch;
    // Copy: cancel_node erases queued nodes from `live`. Oldest first, so
    // that on one thread the running tasks clean up in the order they came in.
    std::vector<node_ptr> nodes;
    nodes.reserve(live.size());
    for (registry_node* n = oldest; n != nullptr; n = n->newer) {
      nodes.push_back(n->shared_from_this());
    }
    for (auto& node : nodes) cancel_node(node, act);
    waiting.clear();
  }

  // A shutdown's first step: nothing waiting or not yet begun will start
  // (and no spawn admitted before it), the running tasks go on.
  void stop_starts(actions& act) {
    ++epoch;
    act.notify_stop = true;
    std::vector<node_ptr> nodes;
    for (registry_node* n = oldest; n != nullptr; n = n->newer) {
      if (n->state != task_state::running) nodes.push_back(n->shared_from_this());
    }
    for (auto& node : nodes) cancel_node(node, act);
    waiting.clear();
  }

  // The drain budget is spent: every running task is given up on.
  void abandon_running(steady::time_point now, actions& act) {
    std::vector<registry_node*> nodes;
    for (registry_node* n = oldest; n != nullptr; n = n->newer) {
      if (n->state == task_state::running) nodes.push_back(n);
    }
    for (registry_node* n : nodes) {
      n->abandoned = true;
      n->state = task_state::done;
      --running;
      ++outcomes[static_cast<std::size_t>(task_outcome::abandoned)];
      given_up.push_back({n->id, name_of(*n), now - n->started});
      let_go(*n);  // its callable stays: its coroutine still runs
    }
    if (idle()) went_idle(act);
  }

  static std::string name_of(const registry_node& n) {
    return n.name.empty() ? "task #" + std::to_string(n.id) : n.name;
  }

  // --- without the mutex -------------------------------------------------

  // Calls f(the strand `node` runs on): its own, or the one-thread executor.
  template <class F>
  void on_strand_of(registry_node& node, F&& f) {
    if (node.strand) return f(*node.strand);
    f(*serial);
  }

  void perform(actions& act) {
    // Before a join can complete: once it has, nothing of a done task is held.
    act.released.clear();
    if (act.notify_stop) notice->request();
    for (auto& node : act.start) {
      on_strand_of(*node, [&](const auto& strand) {
        asio::post(strand, [self = shared_from_this(), node] {
          one_thread_scope scope(self->check);
          self->start(node);
        });
      });
    }
    if (serial == nullptr) {
      for (auto& node : act.emit) {
        asio::dispatch(*node->strand, [node] { node->relay->request(); });
      }
    } else if (!act.emit.empty()) {
      // One thread runs every task: one function emits them all, in order
      // (a cancel_all of 100,000 tasks then dispatches one function, not
      // 100,000).
      asio::dispatch(*serial, [check = check, nodes = std::move(act.emit)] {
        one_thread_scope scope(check);
        for (const auto& node : nodes) node->relay->request();
      });
    }
    join_waiters::complete(act.joined, ex, {});
    if (act.hurried_shutdown) shutdown_hurried(act.hurried_shutdown);
    if (act.idle_shutdown) shutdown_is_over(act.idle_shutdown, snapshot_of(*this));
  }

  // The post that was to start `node` (given a slot, not_started) threw:
  // the task is taken out again as if it had never come in (its spawn
  // throws), and its slot goes to the next one waiting.
  void unlaunch(const node_ptr& node) {
    actions act;
    {
      std::lock_guard lock(mutex);
      --not_started;
      give_slot(act);
      act.released.push_back(std::move(node->task));
      node->state = task_state::done;
      let_go(*node);
      if (idle()) went_idle(act);
    }
    perform(act);
  }

  // On the node's strand.
  void start(const node_ptr& node) {
    actions act;
    bool run = false;
    {
      std::lock_guard lock(mutex);
      --not_started;
      run = !node->cancel_requested;
      if (run) {
        node->state = task_state::running;
        node->started = steady::now();
        ++running;
      } else {
        give_slot(act);
        finish(*node, task_outcome::not_started, act);
      }
    }
    if (run) launch_coroutine(node);
    perform(act);
  }

  // On the node's strand: the coroutine runs inline up to its first suspension.
  void launch_coroutine(const node_ptr& node) {
    asio::awaitable<void> coroutine;
    try {
      coroutine = node->task->make();
    } catch (...) {  // the callable threw before returning its coroutine
      return on_end(node, task_end{end_kind::threw, std::current_exception()});
    }
    end_of_task on_end_of_task(shared_from_this(), node);
    try {
      on_strand_of(*node, [&](const auto& strand) {
        spawn_task(strand, node->relay_of_task, std::move(coroutine), std::move(on_end_of_task));
      });
    } catch (...) {
      // Thrown after the task ended (on_end's own work) belongs to the caller;
      // before it began (an allocation of its launch), it is the task's end.
      if (!node->relay_of_task.current()) throw;
      node->relay->end();
      on_end(node, task_end{end_kind::threw, std::current_exception()});
    }
  }

  // A running task's completion: on_end. Move-only, it holds the task's
  // callable while the coroutine frame holds it: if the frame is destroyed
  // unfinished (its context was destroyed first), the callable goes with it,
  // since on_end never comes (what it captured may hold the registry).
  class end_of_task {
   public:
    end_of_task(std::shared_ptr<registry_state> self, node_ptr node)
        : self_(std::move(self)),
          node_(std::move(node)),
          // The running task is outstanding work on the registry's context.
          work_(asio::prefer(self_->ex, asio::execution::outstanding_work.tracked)) {}
    end_of_task(end_of_task&&) noexcept = default;
    end_of_task& operator=(end_of_task&&) = delete;
    ~end_of_task() {
      if (node_) node_->task.reset();
    }

    void operator()(task_end end) {
      node_ptr node = std::move(node_);
      self_->on_end(node, std::move(end));
    }

   private:
    std::shared_ptr<registry_state> self_;
    node_ptr node_;
    asio::any_io_executor work_;
  };

  // On the node's strand.
  void on_end(const node_ptr& node, task_end end) {
    task_outcome outcome = outcome_of(end, node->relay->requested);
    node->task.reset();  // its coroutine frame is gone; outside the mutex
    actions act;
    {
      std::lock_guard lock(mutex);
      if (node->abandoned) return;  // counted when it was given up on
      --running;
      give_slot(act);
      finish(*node, outcome, act);
      if (outcome == task_outcome::failed && on_failure == failure_policy::cancel_all) {
        closed = true;
        cancel_everything(stop_cause::failure, act);
      }
    }
    perform(act);
  }
};

admission registry_admit(registry_state& state, boost::system::error_code& ec) {
  std::lock_guard lock(state.mutex);
  if (state.closed) {
    ec = make_error_code(error::registry_closed);
    return {};
  }
  ec.clear();
  ++state.admitted;
  return {++state.last_id, state.epoch};
}

namespace {

// Under the mutex: the admission is given up; a join may complete.
void retract_locked(registry_state& state, actions& act) noexcept {
  --state.admitted;
  if (state.idle()) state.went_idle(act);
}

}  // namespace

void registry_retract(const std::shared_ptr<registry_state>& state) {
  actions act;
  {
    std::lock_guard lock(state->mutex);
    retract_locked(*state, act);
  }
  state->perform(act);
}

// Strong guarantee: if it throws, the task is not in (destroyed with `task`),
// nothing of it is counted, and a join that waited only for it completes.
// Whatever can throw comes before the counts change (the node, its strand
// and relay, room for the action), or is undone (the map and queue inserts,
// the post that starts the task).
void registry_launch(const std::shared_ptr<registry_state>& state, admission a,
                     std::unique_ptr<registry_task> task, std::string name) {
  node_ptr node;
  actions act;
  try {
    node = std::make_shared<registry_node>(a.id, state->ex, state->serial, state->check,
                                           state->notice.get());
    act.start.reserve(1);
    act.released.reserve(1);
  } catch (...) {
    registry_retract(state);
    throw;
  }
  node->task = std::move(task);
  node->name = std::move(name);
  bool starts = false;
  std::exception_ptr failed;  // taking it in threw: undone, the joins go out, then rethrown
  {
    std::lock_guard lock(state->mutex);
    // A cancel_all between admission and now covers this task too.
    const bool cancelled = a.epoch != state->epoch;
    const bool slot_free = state->not_started + state->running < state->limit;
    bool taken_in = false;
    try {
      state->take_in(node);
      taken_in = true;
      if (!cancelled && !slot_free) state->waiting.push_back(node);
    } catch (...) {
      failed = std::current_exception();
      if (taken_in) state->let_go(*node);
      retract_locked(*state, act);
      act.released.push_back(std::move(node->task));  // destroyed after the unlock
    }
    if (!failed) {
      --state->admitted;
      if (cancelled) {
        state->finish(*node, task_outcome::not_started, act);
      } else if (slot_free) {
        ++state->not_started;
        act.start.push_back(node);
        starts = true;
      } else {
        node->state = task_state::queued;
        ++state->queued;
      }
    }
  }
  try {
    state->perform(act);  // after a failure: a join that waited only for this task completes
  } catch (...) {
    if (starts) state->unlaunch(node);
    throw;
  }
  if (failed) std::rethrow_exception(failed);
}

registry_snapshot snapshot_of(const registry_state& st) {
  registry_snapshot s;
  std::lock_guard lock(st.mutex);
  s.not_started = st.not_started;
  s.queued = st.queued;
  s.running = st.running;
  auto count = [&st](task_outcome o) { return st.outcomes[static_cast<std::size_t>(o)]; };
  s.completed = count(task_outcome::completed);
  s.failed = count(task_outcome::failed);
  s.cancelled_running = count(task_outcome::cancelled_running);
  s.cancelled_queued = count(task_outcome::cancelled_queued);
  s.cancelled_not_started = count(task_outcome::not_started);
  s.timed_out = count(task_outcome::timed_out);
  s.abandoned = count(task_outcome::abandoned);
  s.running_ids.reserve(st.running);
  for (const auto& entry : st.live) {
    if (entry.second->state == task_state::running) s.running_ids.push_back(entry.first);
  }
  std::sort(s.running_ids.begin(), s.running_ids.end());
  s.closed = st.closed;
  s.cause = st.cause;
  s.signal_number = st.cause == stop_cause::signal ? st.signal_number : 0;
  s.abandoned_tasks = st.given_up;
  return s;
}

// A registry's shutdown (async_shutdown): the owner of its ladder, on a strand
// of its own (the registry's state is under its mutex; the tasks run on
// theirs). The state holds it until it is over; it holds the state weakly
// (no cycle: a context destroyed in the middle leaks nothing). Its timer's
// pending wait and the hops onto its strand hold it too.
struct registry_shutdown final : std::enable_shared_from_this<registry_shutdown>, ladder_owner {
  registry_shutdown(const std::shared_ptr<registry_state>& st, asio::any_io_executor on,
                    const shutdown_options& o)
      : state(st),
        ex(st->ex),
        check(st->check),
        strand(std::move(on)),
        cause(o.cause),
        ladder(strand, ladder_settings{o.grace, o.drain_timeout, o.on_progress, o.progress_interval, false},
               *this, check) {}

  const std::weak_ptr<registry_state> state;
  const asio::any_io_executor ex;  // the registry's: the handlers' default
  one_thread_check* const check;
  const asio::any_io_executor strand;
  const stop_cause cause;
  shutdown_ladder ladder;
  // On the strand.
  std::list<shutdown_handler> handlers;
  std::optional<registry_snapshot> result;  // once it is over

  // On the strand: a stop request, the first one or a later one (with the
  // handler of its async_shutdown, or none: a cancellation).
  void request(shutdown_handler handler) {
    if (handler) {
      if (result) return complete(std::move(handler), *result);
      handlers.push_back(std::move(handler));
    }
    if (result) return;
    bool running = false;
    if (auto st = state.lock()) {
      std::lock_guard lock(st->mutex);
      running = st->running > 0;
    }
    ladder.request(cause, 0, running);
  }

  // On the strand: no task is live any more.
  void over(registry_snapshot snapshot) {
    if (result) return;
    result = std::move(snapshot);
    ladder.finish();
    for (auto& h : std::exchange(handlers, {})) complete(std::move(h), *result);
    // The registry lets go of it: a later async_shutdown finds the registry
    // idle and completes with a snapshot of its own.
    if (auto st = state.lock()) {
      std::lock_guard lock(st->mutex);
      if (st->shutdown.get() == this) st->shutdown.reset();
    }
  }

  void complete(shutdown_handler handler, const registry_snapshot& snapshot) {
    asio::any_completion_executor work = tracked_work(handler, ex);
    asio::post(ex, asio::append(std::move(handler), boost::system::error_code{}, snapshot));
  }

  void ladder_cancel() override {
    auto st = state.lock();
    if (!st) return;
    actions act;
    {
      std::lock_guard lock(st->mutex);
      st->cancel_everything(cause, act);
    }
    act.hurried_shutdown.reset();  // its own cancel
    st->perform(act);
  }

  void ladder_abandon(steady::time_point now) override {
    auto st = state.lock();
    if (!st) return;
    actions act;
    {
      std::lock_guard lock(st->mutex);
      st->abandon_running(now, act);
    }
    st->perform(act);  // idle now: over() follows
  }

  void ladder_fill(run_progress& p) override {
    auto st = state.lock();
    if (!st) return;
    std::lock_guard lock(st->mutex);
    p.running = st->running;
    p.queued = st->queued;
    p.not_started = st->not_started;
    for (std::size_t n : st->outcomes) p.ended += n;
    constexpr std::size_t blocking_shown = 8;
    for (registry_node* n = st->oldest; n != nullptr && p.blocking.size() < blocking_shown; n = n->newer) {
      if (n->state == task_state::running) p.blocking.push_back(static_cast<std::size_t>(n->id));
    }
  }
};

void shutdown_is_over(const std::shared_ptr<registry_shutdown>& shutdown, registry_snapshot snapshot) {
  asio::post(shutdown->strand, [shutdown, snap = std::move(snapshot)]() mutable {
    one_thread_scope scope(shutdown->check);
    shutdown->over(std::move(snap));
  });
}

void shutdown_hurried(const std::shared_ptr<registry_shutdown>& shutdown) {
  asio::post(shutdown->strand, [shutdown] {
    one_thread_scope scope(shutdown->check);
    shutdown->request({});
  });
}

// Bad shutdown options, described; empty if none.
std::string find_bad_shutdown_options(const shutdown_options& o) {
  if (o.grace < duration{}) return "shutdown_options::grace must not be negative";
  if (o.drain_timeout < duration{}) return "shutdown_options::drain_timeout must not be negative";
  if (o.on_progress && o.progress_interval <= duration{}) {
    return "shutdown_options::progress_interval must be positive when on_progress is set";
  }
  return {};
}

// Lives in the caller's cancellation slot: a second stop request.
struct cancel_shutdown {
  std::weak_ptr<registry_shutdown> shutdown;

  void operator()(asio::cancellation_type_t type) const {
    if (!is_cancellation_request(type)) return;
    auto s = shutdown.lock();
    if (!s) return;
    asio::dispatch(s->strand, [s] {
      one_thread_scope scope(s->check);
      s->request({});
    });
  }
};

void registry_shutdown_erased(std::shared_ptr<registry_state> state, shutdown_options options,
                              shutdown_handler handler) {
  if (!find_bad_shutdown_options(options).empty()) {
    asio::any_completion_executor work = tracked_work(handler, state->ex);
    asio::post(state->ex, asio::append(std::move(handler), make_error_code(error::invalid_argument),
                                       registry_snapshot{}));
    return;
  }
  auto slot = handler.get_cancellation_slot();
  std::shared_ptr<registry_shutdown> shutdown;
  actions act;
  {
    std::lock_guard lock(state->mutex);
    state->closed = true;
    if (!state->shutdown) {
      asio::any_io_executor on = state->serial != nullptr ? asio::any_io_executor(*state->serial)
                                                          : asio::any_io_executor(asio::make_strand(state->ex));
      state->shutdown = std::make_shared<registry_shutdown>(state, std::move(on), options);
      state->shutdown->ladder.hold(state->shutdown);
      if (state->cause == stop_cause::none) {
        state->cause = options.cause;
        if (options.cause == stop_cause::signal) state->signal_number = options.signal_number;
      }
      state->stop_starts(act);
      if (state->idle()) state->went_idle(act);  // nothing to wait for
    }
    shutdown = state->shutdown;
  }
  // The request goes first: over() (from perform, or from the last task's
  // end) is posted behind it on the same strand.
  asio::post(shutdown->strand, [shutdown, h = std::move(handler)]() mutable {
    one_thread_scope scope(shutdown->check);
    shutdown->request(std::move(h));
  });
  state->perform(act);
  if (slot.is_connected()) slot.template emplace<cancel_shutdown>(cancel_shutdown{shutdown});
}

void registry_join_erased(std::shared_ptr<registry_state> state, join_handler handler) {
  std::unique_lock lock(state->mutex);
  if (state->idle()) {
    lock.unlock();
    asio::post(state->ex, asio::append(std::move(handler), boost::system::error_code{}));
    return;
  }
  park_waiter<registry_state>(state, std::move(lock), std::move(handler));
}

}  // namespace detail

task_registry::task_registry(asio::any_io_executor ex)
    : task_registry(std::move(ex), std::numeric_limits<std::size_t>::max()) {}

task_registry::task_registry(asio::any_io_executor ex, std::size_t max_concurrent,
                             failure_policy on_failure) {
  if (max_concurrent == 0) {
    throw std::invalid_argument("graceful::task_registry: max_concurrent must be at least 1");
  }
  state_ = std::make_shared<detail::registry_state>(std::move(ex), max_concurrent, on_failure);
}

task_registry::~task_registry() {
  std::weak_ptr<detail::signals_state> signals;
  {
    std::lock_guard lock(state_->mutex);
    signals = std::move(state_->stop_signals);
  }
  detail::signals_access::forget(signals, state_.get());
  close();
  cancel_all(stop_cause::cancelled);
}

void task_registry::stop_on(shutdown_signals& signals) {
  auto state = detail::signals_access::state_of(signals);
  std::weak_ptr<detail::signals_state> previous;
  {
    std::lock_guard lock(state_->mutex);
    previous = std::exchange(state_->stop_signals, state);
  }
  detail::signals_access::forget(previous, state_.get());
  auto hook = [weak = std::weak_ptr<detail::registry_state>(state_)](int signo) {
    auto st = weak.lock();
    if (!st) return;
    detail::actions act;
    {
      std::lock_guard lock(st->mutex);
      st->closed = true;
      if (st->cause == stop_cause::none) st->signal_number = signo;
      st->cancel_everything(stop_cause::signal, act);
    }
    st->perform(act);
  };
  detail::signals_access::on_signals(state, state_.get(), std::move(hook));
}

task_registry::executor_type task_registry::get_executor() const noexcept { return state_->ex; }

bool task_registry::cancel(task_id id) {
  detail::actions act;
  {
    std::lock_guard lock(state_->mutex);
    auto it = state_->live.find(id);
    if (it == state_->live.end()) return false;
    detail::node_ptr node = it->second;
    state_->cancel_node(node, act);
  }
  state_->perform(act);
  return true;
}

void task_registry::cancel_all(stop_cause cause) {
  detail::actions act;
  {
    std::lock_guard lock(state_->mutex);
    state_->cancel_everything(cause, act);
  }
  state_->perform(act);
}

void task_registry::close() {
  std::lock_guard lock(state_->mutex);
  state_->closed = true;
}

bool task_registry::is_closed() const noexcept {
  std::lock_guard lock(state_->mutex);
  return state_->closed;
}

registry_snapshot task_registry::snapshot() const { return detail::snapshot_of(*state_); }

}  // namespace graceful
