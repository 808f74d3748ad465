#include <graceful/signals.hpp>

#include "detail/signals_access.hpp"
#include "detail/waiter_list.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

namespace graceful {

std::vector<int> default_shutdown_signals() { return {SIGINT, SIGTERM}; }

namespace detail {

// SIGPIPE ignored while at least one shutdown_signals wants it so; the
// default action restored by the last one, unless somebody else changed it
// meanwhile or a shutdown signal came.
namespace {
namespace sigpipe {

std::mutex mutex;
std::size_t users = 0;  // under mutex
bool ours = false;      // under mutex: SIG_IGN is ours to undo

bool is(void (*handler)(int)) {
  struct sigaction now {};
  ::sigaction(SIGPIPE, nullptr, &now);
  return (now.sa_flags & SA_SIGINFO) == 0 && now.sa_handler == handler;
}

void set(void (*handler)(int)) {
  struct sigaction a {};
  a.sa_handler = handler;
  sigemptyset(&a.sa_mask);
  ::sigaction(SIGPIPE, &a, nullptr);
}

void hold() {
  std::lock_guard lock(mutex);
  if (users++ == 0 && is(SIG_DFL)) {
    set(SIG_IGN);
    ours = true;
  }
}

// `keep`: a shutdown signal came, the process is on its way out; SIGPIPE
// stays ignored so that printing the report to a closed stdout does not
// change how it ends.
void drop(bool keep) {
  std::lock_guard lock(mutex);
  if (keep) ours = false;
  if (--users == 0 && std::exchange(ours, false) && is(SIG_IGN)) set(SIG_DFL);
}

}  // namespace sigpipe
}  // namespace

struct signals_state : std::enable_shared_from_this<signals_state> {
  signals_state(asio::any_io_executor executor, signal_policy p)
      : ex(std::move(executor)), policy(std::move(p)), set(ex) {}

  const asio::any_io_executor ex;
  const signal_policy policy;
  asio::signal_set set;  // one wait at a time, re-armed by its own handler
  std::atomic<std::size_t> received{0};
  std::atomic<int> first{0};

  // Guards `waiters`, `stopped` and the calls on `set` (an I/O object is not
  // safe to use from two threads at once; the destructor may run anywhere).
  std::mutex mutex;
  waiter_list<int> waiters;
  std::function<void(int)> first_signal_hook;  // see signals_access
  bool stopped = false;  // destroyed: no more waits
  bool holds_sigpipe = false;

  // Call with the mutex held.
  void listen() {
    set.async_wait([weak = weak_from_this()](boost::system::error_code ec, int signo) {
      auto self = weak.lock();
      if (!self || ec) return;  // the set was cancelled: the object is going away
      self->on_signal(signo);
      std::lock_guard lock(self->mutex);
      if (!self->stopped) self->listen();
    });
  }

  void on_signal(int signo) {
    std::size_t n = ++received;
    if (n == 1) {
      first = signo;
      waiter_list<int>::batch b;
      std::function<void(int)> hook;
      {
        std::lock_guard lock(mutex);
        b = waiters.take_all();
        hook = std::move(first_signal_hook);  // called once: the first signal
      }
      if (hook) hook(signo);
      // Inside the signal_set's handler: the shutdown starts in this turn of
      // the event loop, not the next one.
      waiter_list<int>::dispatch(b, ex, {}, signo);
    }
    if (policy.force_exit_after == 0) return;
    if (n >= policy.force_exit_after) {
      // What the user asked for: no more waiting for cleanups.
      std::fprintf(stderr, "graceful: signal %d received %zu times, exiting now\n", signo, n);
      std::fflush(nullptr);
      ::_exit(128 + signo);
    }
    // Tell the user at the terminal what the next Ctrl+C will do.
    std::fprintf(stderr, "graceful: signal %d received (%zu of %u): shutting down; %zu more to force exit\n",
                 signo, n, policy.force_exit_after, policy.force_exit_after - n);
    std::fflush(stderr);
  }
};

void signals_access::on_first_signal(shutdown_signals& s, std::function<void(int)> hook) {
  auto& state = *s.state_;
  int first = 0;
  {
    std::lock_guard lock(state.mutex);
    first = state.first.load();
    if (first == 0) state.first_signal_hook = std::move(hook);
  }
  if (first != 0) hook(first);
}

void signals_wait_erased(std::shared_ptr<signals_state> state, signal_wait_handler handler) {
  std::unique_lock lock(state->mutex);
  int first = state->first.load();
  if (first != 0 || state->stopped) {
    lock.unlock();
    boost::system::error_code ec;
    if (first == 0) ec = asio::error::operation_aborted;
    asio::post(state->ex, asio::append(std::move(handler), ec, first));
    return;
  }
  park_waiter<signals_state, int>(state, std::move(lock), std::move(handler));
}

}  // namespace detail

namespace {

void validate(const signal_policy& p) {
  for (int s : p.signals) {
    if (s <= 0 || s >= NSIG) {
      throw std::invalid_argument("graceful::shutdown_signals: " + std::to_string(s) +
                                  " is not a signal number");
    }
    if (s == SIGKILL || s == SIGSTOP) {
      throw std::invalid_argument("graceful::shutdown_signals: signal " + std::to_string(s) +
                                  " (SIGKILL or SIGSTOP) cannot be caught");
    }
  }
  if (p.force_exit_after == 1) {
    throw std::invalid_argument(
        "graceful::shutdown_signals: force_exit_after == 1 would skip every cleanup; use 0 "
        "(never) or at least 2");
  }
  if (p.force_exit_after != 0 && p.signals.empty()) {
    throw std::invalid_argument(
        "graceful::shutdown_signals: force_exit_after is set but no signal is listened to");
  }
}

}  // namespace

shutdown_signals::shutdown_signals(asio::any_io_executor ex, signal_policy policy) {
  validate(policy);
  state_ = std::make_shared<detail::signals_state>(std::move(ex), std::move(policy));
  std::lock_guard lock(state_->mutex);
  for (int s : state_->policy.signals) state_->set.add(s);
  const auto& listened = state_->policy.signals;
  if (state_->policy.ignore_sigpipe && std::find(listened.begin(), listened.end(), SIGPIPE) == listened.end()) {
    detail::sigpipe::hold();
    state_->holds_sigpipe = true;
  }
  state_->listen();
}

shutdown_signals::~shutdown_signals() { close(); }

void shutdown_signals::close() {
  detail::waiter_list<int>::batch b;
  {
    std::lock_guard lock(state_->mutex);
    state_->stopped = true;
    b = state_->waiters.take_all();
    // Removes the handlers now (SIG_DFL once no other set holds the signal);
    // the pending wait completes with operation_aborted and does nothing.
    boost::system::error_code ignored;
    state_->set.clear(ignored);
    state_->set.cancel(ignored);
    if (std::exchange(state_->holds_sigpipe, false)) {
      detail::sigpipe::drop(/*keep=*/state_->first.load() != 0);
    }
  }
  detail::waiter_list<int>::complete(b, state_->ex, asio::error::operation_aborted, 0);
}

shutdown_signals::executor_type shutdown_signals::get_executor() const noexcept {
  return state_->ex;
}

std::size_t shutdown_signals::count() const noexcept { return state_->received.load(); }

int shutdown_signals::first_signal() const noexcept { return state_->first.load(); }

}  // namespace graceful
