#pragma once

#include "one_thread_check.hpp"

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/execution.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/require.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

// Why tasks run on a relay_executor
// ---------------------------------
// graceful runs every task with throw_if_cancelled(false), so that a cancelled
// task can still `co_await shield(cleanup())`. The price, in Asio 1.26: a
// cancellation emitted while the task has no operation pending (its last
// operation already completed, its resumption queued; or the task cancels
// itself) only sets the coroutine's sticky flag, which nothing checks any
// more, and the task would run on as if never cancelled.
//
// The relay makes cancellation level-triggered instead, as Asio's default
// flag is: every handler that runs through the task's executor (every
// resumption of the task, of its own frames and of the cleanups it spawns
// there) is followed by a re-emit while a cancel is requested and the task
// has not ended. Whatever the task awaits next is cancelled as soon as it is
// pending; a shielded await is not, because its slot is not connected.

namespace graceful::detail {

namespace asio = boost::asio;

struct stop_notice;

// The relay pool's era, in a generation's top bits: it moves on each time
// the pool frees its relays.
inline constexpr int relay_era_shift = 40;
inline constexpr std::uint64_t relay_count_mask = (std::uint64_t{1} << relay_era_shift) - 1;
inline std::atomic<std::uint64_t> relay_era{0};  // era << relay_era_shift

// A task's cancellation, emitted only on the task's strand: emitting a
// cancellation_signal is not thread-safe, and Asio 1.26's co_spawn forwards an
// emit through a dispatched lambda that must run inline to be safe.
//
// Relays live in a process-wide pool (relay_pool.cpp) and are not freed when
// their task ends. A task's executor and every copy of it, which may outlive
// the task (a handler the task posted, a coroutine it spawned and detached),
// hold a relay_ref: the relay plus the generation it had when the task began.
// The generation moves on when a task begins and when it ends, so a copy that
// outlives its task finds it changed and leaves the relay, by then perhaps
// another task's, alone. Copies are plain copies: no reference count to
// update on every executor copy, prefer() and handler hop (an atomic
// read-modify-write each, 10% of a mass cancel's time on one thread).
//
// The pool frees its relays only on graceful::release_cached_memory(), and
// only while none is in use. A generation carries the pool's era in its top
// bits and the era moves on with every such release: a copy from before it
// sees the era changed and never looks at the relay, which is gone.
struct cancel_relay {
  std::atomic<std::uint64_t> generation{0};
  asio::cancellation_signal signal;
  bool live = false;        // between begin() and end()
  bool requested = false;   // a stop reached this task
  bool delivering = false;  // inside emit: a handler that the emit runs inline
                            // through the task's executor must not re-deliver
  std::uint32_t shields = 0;  // shielded steps running (graceful::shield): while
                              // any runs, nothing is emitted; the next step after
                              // the last one re-delivers
  // The cancellation slot that the task's own coroutine thread hands to what
  // it awaits (its cancellation state's): a shield awaited there holds the
  // task's cancellation back; one in another coroutine (a helper the task
  // spawned) does not touch it.
  asio::cancellation_slot task_slot;
  cancel_relay* next_free = nullptr;  // the pool's
  // The stop request of the run or registry the task belongs to, for
  // graceful::this_task; outlives the task.
  stop_notice* notice = nullptr;
  one_thread_check* check = nullptr;  // the one-thread path's, with GRACEFUL_CHECKS

  // A new task takes the relay, on its strand. The handler the last task's
  // thread left in the signal's slot stays until the new thread's replaces
  // it (and reuses its memory).
  struct relay_ref begin() noexcept;

  // The task's coroutine has completed, on its strand.
  void end() noexcept;

  // The generation after this one, in the pool's era now.
  std::uint64_t next_generation() const noexcept {
    std::uint64_t count = (generation.load(std::memory_order_relaxed) + 1) & relay_count_mask;
    return relay_era.load(std::memory_order_relaxed) | count;
  }

  void request() {
    requested = true;
    redeliver();
  }

  void redeliver() {
    if (!requested || !live || delivering || shields != 0) return;
    delivering = true;
    signal.emit(asio::cancellation_type::terminal);
    delivering = false;
  }
};

// A relay as one task sees it: valid for as long as that task runs.
struct relay_ref {
  cancel_relay* relay = nullptr;
  std::uint64_t generation = 0;

  // Still the task's (it has not ended). On the task's strand, or on any
  // thread for a copy that outlived it: its end happened before on that strand.
  // A copy from an era before the pool's last release finds its relay freed
  // and does not read it.
  bool current() const noexcept {
    return (generation & ~relay_count_mask) == relay_era.load(std::memory_order_acquire) &&
           relay->generation.load(std::memory_order_acquire) == generation;
  }
  void redeliver() const {
    if (current()) relay->redeliver();
  }
  friend bool operator==(const relay_ref&, const relay_ref&) = default;
};

// A new generation at the start too: a task whose frame was destroyed
// unfinished (its context destroyed under it) never reached end(), and its
// executor's copies must not match the next task either.
inline relay_ref cancel_relay::begin() noexcept {
  live = true;
  requested = false;
  delivering = false;
  shields = 0;
  task_slot = {};
  std::uint64_t g = next_generation();
  generation.store(g, std::memory_order_release);
  return {this, g};
}

// Relays from the process-wide pool, `size` of them linked through next_free
// from `first` to `last`; they stay linked while in use, so that they go back
// in one step. The pool keeps what comes back for the next taker.
struct relay_chain {
  cancel_relay* first = nullptr;
  cancel_relay* last = nullptr;
  std::size_t size = 0;
};
relay_chain acquire_relays(std::size_t n);
void release_relays(relay_chain relays) noexcept;

// One relay from the pool, given back on destruction.
class pooled_relay {
 public:
  pooled_relay() : chain_(acquire_relays(1)) {}
  pooled_relay(const pooled_relay&) = delete;
  pooled_relay& operator=(const pooled_relay&) = delete;
  ~pooled_relay() {
    if (chain_.first->live) chain_.first->end();
    release_relays(chain_);
  }
  cancel_relay* operator->() const noexcept { return chain_.first; }
  cancel_relay& operator*() const noexcept { return *chain_.first; }

 private:
  relay_chain chain_;
};

// The task whose step runs on this thread now (none: an empty ref), for
// graceful::shield, which then needs no executor of its own.
inline thread_local relay_ref current_step{};
// That task ended during the step: its relay may be back in the pool, and
// even freed by another thread, before the step returns.
inline thread_local bool current_step_ended = false;

inline void cancel_relay::end() noexcept {
  live = false;
  generation.store(next_generation(), std::memory_order_release);
  if (current_step.relay == this) current_step_ended = true;
}

// Makes `relay` the current step for a scope; the outer one comes back after.
class step_scope {
 public:
  explicit step_scope(const relay_ref& relay) noexcept
      : outer_(std::exchange(current_step, relay)), outer_ended_(std::exchange(current_step_ended, false)) {}
  step_scope(const step_scope&) = delete;
  step_scope& operator=(const step_scope&) = delete;
  // A step of the same task nested in this one (a handler dispatched
  // inline through the task's executor, as co_spawn does with its
  // completion) that ended the task ended it for this step too.
  ~step_scope() {
    bool ended_here = current_step_ended && current_step.relay == outer_.relay;
    current_step = outer_;
    current_step_ended = outer_ended_ || ended_here;
  }

 private:
  relay_ref outer_;
  bool outer_ended_;
};

// Runs f as a step of relay's task, then re-delivers a pending cancellation
// to whatever the task now awaits, unless the task ended during f (its relay
// is not its own any more, and may be gone).
template <class F>
void run_step(const relay_ref& relay, F&& f) {
  bool ended = false;
  {
    step_scope step(relay);
    std::forward<F>(f)();
    ended = current_step_ended;
  }
  if (!ended) relay.redeliver();
}

// A handler that runs through a task's executor: a step of the task.
template <class F>
struct relay_step {
  F f;
  relay_ref relay;

  void operator()() {
    if constexpr (one_thread_check::enabled) {
      one_thread_scope scope(relay.current() ? relay.relay->check : nullptr);
      run_step(relay, std::move(f));
    } else {
      run_step(relay, std::move(f));
    }
  }
};

// The executor of a task: its strand (Inner), plus the relay. Every property
// is forwarded to the strand.
template <class Inner>
class relay_executor {
 public:
  relay_executor(Inner inner, relay_ref relay) noexcept
      : inner_(std::move(inner)), relay_(std::move(relay)) {}

  template <class Property>
    requires asio::can_query<const Inner&, Property>::value
  decltype(auto) query(const Property& p) const
      noexcept(asio::is_nothrow_query<const Inner&, Property>::value) {
    return asio::query(inner_, p);
  }

  template <class Property>
    requires(asio::can_require<const Inner&, Property>::value &&
             !std::is_convertible_v<Property, asio::execution::blocking_t::always_t>)
  auto require(const Property& p) const {
    return rewrap(asio::require(inner_, p));
  }

  template <class Property>
    requires(asio::can_prefer<const Inner&, Property>::value &&
             !std::is_convertible_v<Property, asio::execution::blocking_t::always_t>)
  auto prefer(const Property& p) const {
    return rewrap(asio::prefer(inner_, p));
  }

  template <class F>
  void execute(F&& f) const {
    inner_.execute(relay_step<std::decay_t<F>>{std::forward<F>(f), relay_});
  }

  friend bool operator==(const relay_executor& a, const relay_executor& b) noexcept {
    return a.inner_ == b.inner_ && a.relay_ == b.relay_;
  }
  friend bool operator!=(const relay_executor& a, const relay_executor& b) noexcept {
    return !(a == b);
  }

 private:
  template <class Other>
  relay_executor<std::decay_t<Other>> rewrap(Other&& other) const {
    return relay_executor<std::decay_t<Other>>(std::forward<Other>(other), relay_);
  }

  template <class>
  friend class relay_executor;

  Inner inner_;
  relay_ref relay_;
};

}  // namespace graceful::detail
