#include <graceful/async_semaphore.hpp>

#include "detail/cancellation.hpp"
#include "detail/handler_work.hpp"
#include "detail/limiter_ref.hpp"

#include <boost/asio/any_completion_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>

// How the pieces fit (the invariants the tests rely on):
//
// - `count` (free slots) is an atomic: try_take() takes one by CAS from any
//   thread, release() adds one from any thread.
// - The FIFO waiter list changes only on the strand.
// - `waiting` counts waiters from the moment their acquire initiates until they
//   leave the list. An acquire takes the lock-free path only while `waiting`
//   is zero, so it can never overtake an older waiter (no barging), even one
//   still on its way to the strand.
// - Lost wake-ups are excluded by a Dekker pair, both sides seq_cst:
//   release() does `count += 1` then reads `waiting`; a new waiter does
//   `waiting += 1` (at initiation) then, once linked on the strand, re-reads
//   `count` (rebalance()). At least one side sees the other and hands the slot
//   to the oldest waiter.

namespace graceful {
namespace detail {

namespace {

enum : int { state_open = 0, state_closed = 1, state_destroyed = 2 };

}  // namespace

struct waiter {
  waiter* prev = nullptr;
  waiter* next = nullptr;
  // The list's own reference: a linked waiter keeps itself alive; dropped when
  // it leaves the list. The cancellation slot's handler holds another one.
  std::shared_ptr<waiter> self;
  acquire_handler handler;
  // Outstanding work on the handler's executor while parked: the context
  // must not run out of work under a waiter.
  asio::any_completion_executor work;
};

struct semaphore_state : std::enable_shared_from_this<semaphore_state> {
  semaphore_state(asio::any_io_executor executor, std::size_t permits)
      : ex(std::move(executor)), strand(ex), count(permits) {}

  ~semaphore_state() {
    // Only reached with waiters still linked when the execution context was
    // destroyed before the strand could fail them: drop their handlers unrun.
    while (head != nullptr) {
      auto keep = unlink(*head);
      acquire_handler dropped(std::move(keep->handler));
    }
  }

  semaphore_state(const semaphore_state&) = delete;
  semaphore_state& operator=(const semaphore_state&) = delete;

  static semaphore_permit permit_for(std::shared_ptr<semaphore_state> state) noexcept {
    return semaphore_permit(std::move(state));
  }

  bool try_take() noexcept {
    std::size_t c = count.load();
    while (c > 0) {
      if (count.compare_exchange_weak(c, c - 1)) return true;
    }
    return false;
  }

  // From any thread (a permit's destructor).
  void release() {
    count.fetch_add(1);
    if (waiting.load() > 0) {
      asio::dispatch(strand, [self = shared_from_this()] { self->rebalance(); });
    }
  }

  boost::system::error_code closed_error() const noexcept {
    return closed.load() == state_closed ? make_error_code(error::semaphore_closed)
                                         : make_error_code(asio::error::operation_aborted);
  }

  // Posts the completion to the semaphore's executor; Asio's work dispatcher
  // then moves it onto the handler's associated executor.
  void complete(acquire_handler handler, boost::system::error_code ec, semaphore_permit permit) {
    asio::post(ex, asio::append(std::move(handler), ec, std::move(permit)));
  }

  void complete(waiter& w, boost::system::error_code ec, semaphore_permit permit) {
    asio::any_completion_executor work(std::move(w.work));
    complete(acquire_handler(std::move(w.handler)), ec, std::move(permit));
  }

  // --- strand only below ---

  void enqueue(std::shared_ptr<waiter> w) {
    if (closed.load() != state_open) {
      waiting.fetch_sub(1);
      complete(*w, closed_error(), {});
      return;
    }
    if (head == nullptr && try_take()) {
      waiting.fetch_sub(1);
      complete(*w, {}, permit_for(shared_from_this()));
      return;
    }
    waiter* raw = w.get();
    raw->prev = tail;
    (tail != nullptr ? tail->next : head) = raw;
    tail = raw;
    raw->self = std::move(w);
    rebalance();
  }

  std::shared_ptr<waiter> unlink(waiter& w) noexcept {
    (w.prev != nullptr ? w.prev->next : head) = w.next;
    (w.next != nullptr ? w.next->prev : tail) = w.prev;
    w.prev = w.next = nullptr;
    return std::move(w.self);
  }

  // Takes a linked waiter out of the queue and completes it.
  void dequeue(waiter& w, boost::system::error_code ec, semaphore_permit permit) {
    auto keep = unlink(w);
    waiting.fetch_sub(1);
    complete(w, ec, std::move(permit));
  }

  void rebalance() {
    while (head != nullptr && try_take()) dequeue(*head, {}, permit_for(shared_from_this()));
  }

  void cancel(waiter& w) {
    if (!w.self) return;  // granted, failed or cancelled already
    dequeue(w, make_error_code(asio::error::operation_aborted), {});
  }

  void fail_all() {
    auto ec = closed_error();
    while (head != nullptr) dequeue(*head, ec, {});
  }

  // Nothing to fail when nobody waits, and nothing allocated then (a run's own
  // semaphore is shut at its very end): the same Dekker pair as above, with
  // `closed` for `count`. A waiter that initiates after the check reads
  // `closed` in enqueue() and fails itself.
  void shut(int how) {
    int expected = state_open;
    if (closed.compare_exchange_strong(expected, how) && waiting.load() > 0) {
      asio::dispatch(strand, [self = shared_from_this()] { self->fail_all(); });
    }
  }

  asio::any_io_executor ex;
  asio::strand<asio::any_io_executor> strand;
  std::atomic<std::size_t> count;
  std::atomic<std::size_t> waiting{0};
  std::atomic<int> closed{state_open};
  waiter* head = nullptr;  // strand only
  waiter* tail = nullptr;  // strand only
};

namespace {

// Lives in the handler's cancellation slot. It only hops onto the strand; the
// waiter's `self` tells there whether it is still parked.
struct cancel_waiter {
  std::weak_ptr<semaphore_state> state;
  std::shared_ptr<waiter> w;

  void operator()(asio::cancellation_type_t type) const {
    if (!is_cancellation_request(type)) return;
    if (auto s = state.lock()) {
      asio::dispatch(s->strand, [s, w = w] { s->cancel(*w); });
    }
  }
};

}  // namespace

void async_acquire_erased(const std::shared_ptr<semaphore_state>& state, acquire_handler handler) {
  if (state->closed.load() != state_open) {
    state->complete(std::move(handler), state->closed_error(), {});
    return;
  }
  if (state->waiting.load() == 0 && state->try_take()) {
    state->complete(std::move(handler), {}, semaphore_state::permit_for(state));
    return;
  }
  // What can throw (allocations) comes before the waiter is counted, or is
  // undone: a failed acquire throws out of async_acquire and leaves nothing.
  auto w = std::make_shared<waiter>();
  w->work = tracked_work(handler, state->ex);
  // The slot belongs to the initiating side: connect it here, not on the strand.
  auto slot = handler.get_cancellation_slot();
  if (slot.is_connected()) {
    slot.template emplace<cancel_waiter>(cancel_waiter{state, w});
  }
  w->handler.swap(handler);
  state->waiting.fetch_add(1);
  try {
    asio::dispatch(state->strand, [state, w]() mutable { state->enqueue(std::move(w)); });
  } catch (...) {
    state->waiting.fetch_sub(1);
    if (slot.is_connected()) slot.clear();
    throw;
  }
}

namespace {

std::optional<semaphore_permit> try_acquire_from(const std::shared_ptr<semaphore_state>& state) {
  if (state->closed.load() != state_open || state->waiting.load() != 0 || !state->try_take()) {
    return std::nullopt;
  }
  return semaphore_state::permit_for(state);
}

}  // namespace

bool limiter_ref::is_open() const noexcept { return state_->closed.load() == state_open; }

std::optional<semaphore_permit> limiter_ref::try_acquire() const { return try_acquire_from(state_); }

std::size_t limiter_ref::waiting() const noexcept { return state_->waiting.load(); }

}  // namespace detail

semaphore_permit& semaphore_permit::operator=(semaphore_permit&& other) noexcept {
  if (this != &other) {
    release();
    state_ = std::move(other.state_);
  }
  return *this;
}

semaphore_permit::~semaphore_permit() { release(); }

void semaphore_permit::release() noexcept {
  if (auto state = std::move(state_)) {
    state->release();
  }
}

async_semaphore::async_semaphore(asio::any_io_executor ex, std::size_t initial_permits)
    : state_(new detail::semaphore_state(std::move(ex), initial_permits)) {}

async_semaphore& async_semaphore::operator=(async_semaphore&& other) noexcept {
  if (this != &other) {
    if (state_) state_->shut(detail::state_destroyed);
    state_ = std::move(other.state_);
  }
  return *this;
}

async_semaphore::~async_semaphore() {
  if (state_) state_->shut(detail::state_destroyed);
}

async_semaphore::executor_type async_semaphore::get_executor() const noexcept { return state_->ex; }

std::optional<semaphore_permit> async_semaphore::try_acquire() {
  return detail::try_acquire_from(state_);
}

void async_semaphore::close() { state_->shut(detail::state_closed); }

std::size_t async_semaphore::available() const noexcept { return state_->count.load(); }

std::size_t async_semaphore::waiting() const noexcept { return state_->waiting.load(); }

bool async_semaphore::is_closed() const noexcept {
  return state_->closed.load() != detail::state_open;
}

}  // namespace graceful
