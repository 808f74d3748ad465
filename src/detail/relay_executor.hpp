#pragma once

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/execution.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/require.hpp>

#include <atomic>
#include <cstddef>
#include <utility>
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

// A task's cancellation: emitted only on the task's strand (Asio facts 1-2),
// alive as long as the task's executor or node is.
struct cancel_relay {
  std::atomic<std::size_t> refs{0};  // relay_ptr's count
  asio::cancellation_signal signal;
  bool requested = false;   // a stop reached this task
  bool ended = false;       // its coroutine has completed
  bool delivering = false;  // inside emit: a handler that the emit runs inline
                            // through the task's executor must not re-deliver

  void request() {
    requested = true;
    redeliver();
  }

  void redeliver() {
    if (!requested || ended || delivering) return;
    delivering = true;
    signal.emit(asio::cancellation_type::terminal);
    delivering = false;
  }
};

// An intrusive reference: one pointer, so that a relay_executor around an
// io_context executor fits in any_io_executor's inline buffer (no shared
// target allocated and reference-counted on every copy and prefer()).
class relay_ptr {
 public:
  relay_ptr() = default;
  explicit relay_ptr(cancel_relay* p) noexcept : p_(p) {
    if (p_ != nullptr) p_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  relay_ptr(const relay_ptr& o) noexcept : relay_ptr(o.p_) {}
  relay_ptr(relay_ptr&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  relay_ptr& operator=(relay_ptr o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~relay_ptr() {
    if (p_ != nullptr && p_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete p_;
  }

  cancel_relay* operator->() const noexcept { return p_; }
  cancel_relay& operator*() const noexcept { return *p_; }
  friend bool operator==(const relay_ptr& a, const relay_ptr& b) noexcept { return a.p_ == b.p_; }

 private:
  cancel_relay* p_ = nullptr;
};

inline relay_ptr make_relay() { return relay_ptr(new cancel_relay); }

// Runs f, then re-delivers a pending cancellation to whatever the task now awaits.
template <class F>
struct relay_step {
  F f;
  relay_ptr relay;

  void operator()() {
    std::move(f)();
    relay->redeliver();
  }
};

// The executor of a task: its strand (Inner), plus the relay. Every property
// is forwarded to the strand.
template <class Inner>
class relay_executor {
 public:
  relay_executor(Inner inner, relay_ptr relay) noexcept
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
  relay_ptr relay_;
};

}  // namespace graceful::detail
