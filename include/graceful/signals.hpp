// graceful: bounded-concurrency async work with graceful shutdown, on Boost.Asio.
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/system/error_code.hpp>

#include <csignal>
#include <cstddef>
#include <memory>
#include <vector>

namespace graceful {

namespace asio = boost::asio;

/// The signals that request a shutdown unless told otherwise: SIGINT, SIGTERM.
std::vector<int> default_shutdown_signals();

/// What to do with the signals that arrive after the first one.
struct signal_policy {
  /// The signals listened to. Each must be a valid, catchable signal number.
  std::vector<int> signals = default_shutdown_signals();
  /// 0 (default): repeated signals are counted and otherwise ignored, so they
  /// never cut a cleanup short. N >= 2: the Nth signal ends the process at
  /// once with `_exit(128 + signal)` ("press Ctrl+C three times to kill"),
  /// cleanups or not; each signal before it prints on stderr how many more
  /// would force the exit.
  ///
  /// The counting, the lines on stderr and the exit happen in signal context,
  /// in a handler installed over the signal_set's own (which it then calls),
  /// with async-signal-safe calls only: the Nth signal works even while every
  /// thread that runs the context is blocked (a cleanup stuck in a
  /// synchronous call, a sleep) and nothing else is handled. For the same
  /// reason the exit flushes no stdio buffer. Each listener counts on its
  /// own: with several at once (two runs that listen to SIGINT), a signal
  /// counts for every one that listens to it, and the first to reach its N
  /// ends the process. At most 64 shutdown_signals with force_exit_after set
  /// may listen at once in one process. A fork()ed child inherits them, with
  /// their counts, as it inherits the signal handlers; from then on each
  /// process counts its own signals. (Signals of one kind sent faster than
  /// the process handles them merge into one: the kernel keeps one pending
  /// of each.)
  unsigned force_exit_after = 0;
  /// true (default): while listening, SIGPIPE is ignored (if its action was
  /// the default one), so that a write to a closed pipe (the reader of
  /// `prog | head` gone, a closed stdout) fails with EPIPE instead of killing
  /// the process in the middle of a shutdown, its cleanups unrun. Once
  /// nothing listens any more, the default action is back, unless a shutdown
  /// signal came: the process is then on its way out, and SIGPIPE stays
  /// ignored so that printing the report to a closed stdout does not turn
  /// "killed by SIGINT" into "killed by SIGPIPE" (graceful::exit_process
  /// ignores it too while it flushes). false: SIGPIPE is left alone.
  bool ignore_sigpipe = true;

  friend bool operator==(const signal_policy&, const signal_policy&) = default;
};

namespace detail {
struct signals_state;
class signals_access;
using signal_wait_signature = void(boost::system::error_code, int);
using signal_wait_handler = asio::any_completion_handler<signal_wait_signature>;
void signals_wait_erased(std::shared_ptr<signals_state> state, signal_wait_handler handler);

struct signal_wait_initiation {
  std::shared_ptr<signals_state> state;

  template <class Handler>
  void operator()(Handler&& handler) const {
    signals_wait_erased(state, signal_wait_handler(std::forward<Handler>(handler)));
  }
};
}  // namespace detail

/// Listens for shutdown signals, on an asio::signal_set, from construction
/// to destruction.
///
/// The first signal is the shutdown request: async_wait completes with its
/// number. Later ones follow the signal_policy. Signals that arrive before
/// async_wait is called are not lost. Destroying the object removes its
/// handlers; once no other asio::signal_set holds a signal, its default action
/// (SIG_DFL) is back, so a later signal behaves normally.
///
/// A signal the process started with ignored (SIG_IGN survives exec: a
/// non-interactive shell starts `prog &` with SIGINT ignored) is listened to
/// all the same, so that the script's `kill -INT $!` stops the run; until
/// listening starts it stays ignored, and afterwards it has the default action,
/// as above, not the inherited SIG_IGN.
///
/// @par Thread Safety
/// Every member may be called from any thread.
class shutdown_signals {
 public:
  using executor_type = asio::any_io_executor;

  /// Starts listening now. Throws std::invalid_argument for a policy that
  /// makes no sense (an invalid or uncatchable signal number, no signals with
  /// force_exit_after set, force_exit_after == 1), std::length_error with
  /// force_exit_after set if 64 such objects listen already, and
  /// boost::system::system_error if a handler cannot be installed.
  explicit shutdown_signals(asio::any_io_executor ex, signal_policy policy = {});
  shutdown_signals(const shutdown_signals&) = delete;
  shutdown_signals& operator=(const shutdown_signals&) = delete;
  ~shutdown_signals();

  executor_type get_executor() const noexcept;

  /// Waits for the first signal.
  ///
  /// @par Completion Signature
  /// @code void(boost::system::error_code ec, int signal_number) @endcode
  /// With the first signal's number; at once (posted) if it already came.
  /// operation_aborted if the wait was cancelled or the object destroyed.
  ///
  /// @par Per-Operation Cancellation
  /// `terminal`, `partial` and `total`: the wait ends with operation_aborted;
  /// the object goes on listening.
  ///
  /// @par Executor
  /// The handler runs on its associated executor (by default the object's),
  /// never inside async_wait. A pending wait is outstanding work there.
  template <asio::completion_token_for<detail::signal_wait_signature> CompletionToken =
                asio::default_completion_token_t<executor_type>>
  auto async_wait(CompletionToken&& token = asio::default_completion_token_t<executor_type>()) {
    return asio::async_initiate<CompletionToken, detail::signal_wait_signature>(
        detail::signal_wait_initiation{state_}, token);
  }

  /// Stops listening: removes the handlers (SIG_DFL once no other
  /// asio::signal_set holds the signal) and ends a pending async_wait with
  /// operation_aborted. Idempotent; the destructor calls it.
  void close();

  /// Signals received so far (the first one included). With
  /// force_exit_after set they are counted in signal context, so the count
  /// is exact even while no thread runs the context; otherwise they are
  /// counted as the context handles them.
  std::size_t count() const noexcept;

  /// The first signal's number; 0 if none came yet.
  int first_signal() const noexcept;

 private:
  friend class detail::signals_access;
  std::shared_ptr<detail::signals_state> state_;
};

}  // namespace graceful
