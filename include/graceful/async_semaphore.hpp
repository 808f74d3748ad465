// graceful: bounded-concurrency async work with graceful shutdown, on Boost.Asio.
#pragma once

#include <graceful/error.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <utility>

namespace graceful {

namespace asio = boost::asio;

namespace detail {
struct semaphore_state;
class limiter_ref;
}

/// One slot of an async_semaphore, held for as long as the permit lives.
///
/// Move-only. Destroying it (or calling release()) returns the slot, which goes
/// to the oldest waiter if there is one. A default-constructed or moved-from
/// permit is empty and releases nothing. A permit may outlive its semaphore:
/// releasing it then only counts the slot back.
class semaphore_permit {
 public:
  semaphore_permit() noexcept = default;
  semaphore_permit(semaphore_permit&& other) noexcept = default;
  semaphore_permit& operator=(semaphore_permit&& other) noexcept;
  semaphore_permit(const semaphore_permit&) = delete;
  semaphore_permit& operator=(const semaphore_permit&) = delete;
  ~semaphore_permit();

  /// Returns the slot now; the permit is empty afterwards. Thread-safe with
  /// respect to the semaphore (not to concurrent use of the same permit).
  void release() noexcept;

  /// True while the permit holds a slot.
  explicit operator bool() const noexcept { return state_ != nullptr; }

 private:
  friend struct detail::semaphore_state;
  explicit semaphore_permit(std::shared_ptr<detail::semaphore_state> state) noexcept
      : state_(std::move(state)) {}

  std::shared_ptr<detail::semaphore_state> state_;
};

namespace detail {

using acquire_signature = void(boost::system::error_code, semaphore_permit);
using acquire_handler = asio::any_completion_handler<acquire_signature>;

void async_acquire_erased(const std::shared_ptr<semaphore_state>& state, acquire_handler handler);

// Holds the state by value: a deferred operation may be launched after the
// semaphore object was moved from or destroyed.
struct acquire_initiation {
  std::shared_ptr<semaphore_state> state;

  template <class Handler>
  void operator()(Handler&& handler) const {
    async_acquire_erased(state, acquire_handler(std::forward<Handler>(handler)));
  }
};

}  // namespace detail

/// A counting semaphore for asynchronous code: FIFO, cancellable, closable.
///
/// The waiter queue is guarded by a strand on the executor given at
/// construction and changes only there; the permit count is an atomic, so an
/// uncontended acquire and release never hop through the strand. Every member
/// is safe to call from any thread.
///
/// Destroying the semaphore with waiters parked fails each of them with
/// asio::error::operation_aborted (posted to its executor, as for any I/O
/// object's pending operations); permits already granted stay valid. If the
/// execution context is destroyed instead, parked waiters' handlers are
/// destroyed without being invoked. Nothing leaks either way.
class async_semaphore {
 public:
  using executor_type = asio::any_io_executor;

  /// A semaphore with `initial_permits` free slots, whose waiter queue lives on
  /// a strand of `ex`.
  async_semaphore(asio::any_io_executor ex, std::size_t initial_permits);
  async_semaphore(async_semaphore&& other) noexcept = default;
  async_semaphore& operator=(async_semaphore&& other) noexcept;
  async_semaphore(const async_semaphore&) = delete;
  async_semaphore& operator=(const async_semaphore&) = delete;
  ~async_semaphore();

  executor_type get_executor() const noexcept;

  /// Waits for a free slot.
  ///
  /// Slots are granted in the order the acquires were initiated (FIFO): a
  /// released slot goes to the oldest waiter, never to a newcomer (no barging).
  ///
  /// @par Completion Signature
  /// @code void(boost::system::error_code ec, graceful::semaphore_permit permit) @endcode
  /// On success `ec` is clear and `permit` holds the slot. On failure `permit`
  /// is empty and `ec` is graceful::error::semaphore_closed (the semaphore was
  /// closed before or while waiting) or asio::error::operation_aborted
  /// (cancelled, or the semaphore was destroyed).
  ///
  /// @par Per-Operation Cancellation
  /// `terminal`, `partial` and `total`: waiting has no side effect, so every
  /// type removes the waiter from the queue (in O(1)) and completes it with
  /// operation_aborted. A cancellation that arrives after the slot was granted
  /// does nothing: the operation completes successfully and the permit, an RAII
  /// object, returns the slot even if the handler is then destroyed unrun.
  ///
  /// @par Executor
  /// The handler runs on its associated executor (by default the semaphore's
  /// executor), never inside async_acquire itself, even when a slot is free.
  /// A parked waiter counts as outstanding work on the handler's executor.
  ///
  /// @par Thread Safety
  /// May be called from any thread. Emit the cancellation signal from the
  /// handler's executor, as Asio requires.
  template <asio::completion_token_for<detail::acquire_signature> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_acquire(CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return asio::async_initiate<CompletionToken, detail::acquire_signature>(
        detail::acquire_initiation{state_}, token);
  }

  /// Takes a slot at once if one is free and nobody is waiting (no barging).
  /// Returns std::nullopt otherwise, and always after close(). Thread-safe.
  std::optional<semaphore_permit> try_acquire();

  /// Fails every waiter and every later async_acquire with
  /// graceful::error::semaphore_closed. Permits already granted stay valid and
  /// still return their slots. Idempotent; thread-safe.
  void close();

  /// Free slots right now (a snapshot; other threads may change it). Thread-safe.
  std::size_t available() const noexcept;

  /// Waiters parked right now (a snapshot). Thread-safe.
  std::size_t waiting() const noexcept;

  /// True once close() was called.
  bool is_closed() const noexcept;

 private:
  friend class detail::limiter_ref;
  std::shared_ptr<detail::semaphore_state> state_;
};

}  // namespace graceful
