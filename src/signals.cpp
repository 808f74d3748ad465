#include <graceful/signals.hpp>

#include "detail/signals_access.hpp"
#include "detail/waiter_list.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <functional>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

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

// force_exit_after: the Nth signal must end the process exactly when nothing
// else works, every thread that runs the context blocked included, so it is
// counted and acted on in signal context, by a handler installed over Asio's
// that chains to it. The handler touches lock-free atomics and calls write
// and _exit, nothing else.
namespace forced {

constexpr std::size_t max_listeners = 64;
static_assert(NSIG <= 65, "a listener's signals are a 64-bit mask");

// A slot's state: generation << 32 | count. An odd generation is a claimed
// slot. Every claim and release moves the generation on, so a handler whose
// compare-exchange succeeds on a word of generation g read the mask and
// threshold of that same claim, even if the slot was released and claimed
// again by another thread meanwhile.
using word = std::uint64_t;
static_assert(std::atomic<word>::is_always_lock_free);
static_assert(std::atomic<unsigned>::is_always_lock_free);

constexpr std::uint32_t generation(word w) { return static_cast<std::uint32_t>(w >> 32); }
constexpr std::uint32_t count(word w) { return static_cast<std::uint32_t>(w); }
constexpr word make(std::uint32_t gen, std::uint32_t n) { return word{gen} << 32 | n; }
constexpr std::uint64_t bit(int signo) { return std::uint64_t{1} << (signo - 1); }

struct slot {
  std::atomic<word> state{0};
  std::atomic<std::uint64_t> signals{0};  // written before a claim publishes it
  std::atomic<unsigned> threshold{0};
};
slot slots[max_listeners];

// The action ours went over, to chain to. Never freed: a handler may still
// read it on another thread while ours is being removed.
using action_fn = void (*)(int, siginfo_t*, void*);
using handler_fn = void (*)(int);
static_assert(std::atomic<action_fn>::is_always_lock_free);
static_assert(std::atomic<handler_fn>::is_always_lock_free);
struct next_action {
  std::atomic<action_fn> action{nullptr};
  std::atomic<handler_fn> handler{nullptr};
};
next_action next[NSIG];

// Claims, releases, installs and removals, and the signal_set's add and
// clear that go with them (so that no other listener's install or removal
// falls between Asio's sigaction and ours). Never taken in signal context.
std::mutex mutex;
std::size_t listeners[NSIG];     // under mutex: claimed slots listening to the signal
struct sigaction replaced[NSIG];  // under mutex: put back by the last listener

char* put(char* p, const char* s) {
  while (*s != '\0') *p++ = *s++;
  return p;
}

char* put(char* p, std::uint64_t v) {
  char digits[20];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) *p++ = digits[--n];
  return p;
}

void write_stderr(const char* p, const char* end) {
  while (p < end) {
    ssize_t w = ::write(STDERR_FILENO, p, static_cast<std::size_t>(end - p));
    if (w > 0) {
      p += w;
    } else if (w < 0 && errno != EINTR) {
      return;
    }
  }
}

// The same lines as the printf formats "graceful: signal %d received %zu
// times, exiting now" and "graceful: signal %d received (%zu of %u):
// shutting down; %zu more to force exit".
void count_and_chain(int signo, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  const auto sig = static_cast<std::uint64_t>(signo);
  for (slot& s : slots) {
    word w = s.state.load();
    // A failed compare-exchange reloads `w`: claimed, listening and the
    // threshold are then checked again, for what may be another claim.
    while (generation(w) % 2 == 1 && (s.signals.load() & bit(signo)) != 0 &&
           count(w) != UINT32_MAX) {
      const std::uint64_t threshold = s.threshold.load();
      if (!s.state.compare_exchange_weak(w, w + 1)) continue;
      const std::uint64_t n = count(w) + std::uint64_t{1};
      char line[160];
      char* p = put(put(line, "graceful: signal "), sig);
      if (n >= threshold) {
        p = put(put(put(p, " received "), n), " times, exiting now\n");
        write_stderr(line, p);
        ::_exit(128 + signo);
      }
      p = put(put(put(put(p, " received ("), n), " of "), threshold);
      p = put(put(put(p, "): shutting down; "), threshold - n), " more to force exit\n");
      write_stderr(line, p);
      break;
    }
  }
  if (action_fn a = next[signo].action.load()) {
    a(signo, info, context);
  } else if (handler_fn h = next[signo].handler.load()) {
    h(signo);
  }
  errno = saved_errno;
}

bool is_ours(const struct sigaction& a) {
  return (a.sa_flags & SA_SIGINFO) != 0 && a.sa_sigaction == &count_and_chain;
}

// Call with the mutex held, after the signal_set added `signo`: Asio's
// action is in place (or ours already, for a listener that is not the first).
void install(int signo) {
  if (listeners[signo]++ > 0) return;
  struct sigaction current {};
  ::sigaction(signo, nullptr, &current);
  if (is_ours(current)) return;
  replaced[signo] = current;
  if ((current.sa_flags & SA_SIGINFO) != 0) {
    next[signo].action = current.sa_sigaction;
  } else {
    const bool function = current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN;
    next[signo].handler = function ? current.sa_handler : nullptr;
    next[signo].action = nullptr;
  }
  struct sigaction ours = current;  // Asio's mask and flags (SA_RESTART or not)
  ours.sa_sigaction = &count_and_chain;
  ours.sa_flags |= SA_SIGINFO;
  ::sigaction(signo, &ours, nullptr);
}

// Call with the mutex held, after the signal_set was cleared: Asio restored
// SIG_DFL if that was its last registration of `signo`, which stays;
// otherwise its action comes back.
void remove(int signo) {
  if (--listeners[signo] > 0) return;
  struct sigaction current {};
  ::sigaction(signo, nullptr, &current);
  if (is_ours(current)) ::sigaction(signo, &replaced[signo], nullptr);
}

// A fork()ed child inherits the slots and the handler as it inherits the
// signal dispositions; it must not inherit the mutex locked by a thread it
// does not have.
void lock_for_fork() { mutex.lock(); }
void unlock_after_fork() { mutex.unlock(); }

std::unique_lock<std::mutex> lock() {
  static std::once_flag fork_hook;
  std::call_once(fork_hook,
                 [] { ::pthread_atfork(&lock_for_fork, &unlock_after_fork, &unlock_after_fork); });
  return std::unique_lock(mutex);
}

std::size_t free_slot() {
  for (std::size_t i = 0; i < max_listeners; ++i) {
    if (generation(slots[i].state.load()) % 2 == 0) return i;
  }
  throw std::length_error("graceful::shutdown_signals: at most " +
                          std::to_string(max_listeners) +
                          " listeners with force_exit_after set at once");
}

}  // namespace forced
}  // namespace

struct signals_state : std::enable_shared_from_this<signals_state> {
  signals_state(asio::any_io_executor executor, signal_policy p)
      : ex(std::move(executor)), policy(std::move(p)), set(ex) {}

  const asio::any_io_executor ex;
  const signal_policy policy;
  asio::signal_set set;  // one wait at a time, re-armed by its own handler
  std::atomic<std::size_t> received{0};
  std::atomic<int> first{0};

  // force_exit_after != 0: the forced::slots entry that counts for this
  // object, and the generation of its claim; const once constructed.
  std::size_t slot = forced::max_listeners;
  std::uint32_t generation = 0;
  std::atomic<std::size_t> forced_count{0};  // the slot's count, once released

  // Guards `waiters`, `stopped` and the calls on `set` (an I/O object is not
  // safe to use from two threads at once; the destructor may run anywhere).
  std::mutex mutex;
  waiter_list<int> waiters;
  // See signals_access: run by every signal (at once for the first one when
  // it already came), until forgotten.
  struct hook {
    const void* key;
    std::function<void(int)> fn;
  };
  std::vector<hook> signal_hooks;
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
    waiter_list<int>::batch b;
    std::vector<std::function<void(int)>> hooks;  // copies: a hook may forget itself
    {
      std::lock_guard lock(mutex);
      if (n == 1) {
        first = signo;
        b = waiters.take_all();
      }
      hooks.reserve(signal_hooks.size());
      for (const auto& h : signal_hooks) hooks.push_back(h.fn);
    }
    for (auto& h : hooks) h(signo);
    // Inside the signal_set's handler: the shutdown starts in this turn of
    // the event loop, not the next one.
    if (n == 1) waiter_list<int>::dispatch(b, ex, {}, signo);
  }

  // Signals counted in signal context, where the slot is ours: exact even
  // while no thread runs the context.
  std::size_t slot_count() const noexcept {
    if (slot == forced::max_listeners) return 0;
    forced::word w = forced::slots[slot].state.load();
    return forced::generation(w) == generation ? forced::count(w) : forced_count.load();
  }

  // Call with `mutex` held; the signals are in `set` by then.
  void claim_slot(std::size_t i) {
    std::uint64_t mask = 0;
    for (int s : policy.signals) mask |= forced::bit(s);
    auto& f = forced::slots[i];
    f.signals = mask;
    f.threshold = policy.force_exit_after;
    generation = forced::generation(f.state.load()) + 1;
    f.state = forced::make(generation, 0);
    slot = i;
    for (int s = 1; s < NSIG; ++s) {
      if ((mask & forced::bit(s)) != 0) forced::install(s);
    }
  }

  // Call with `mutex` and forced::mutex held, after set.clear().
  void release_slot() {
    if (slot == forced::max_listeners) return;
    auto& f = forced::slots[slot];
    forced::word w = f.state.load();
    if (forced::generation(w) != generation) return;  // released already
    forced_count = forced::count(w);  // so that count() never goes back meanwhile
    forced_count = forced::count(f.state.exchange(forced::make(generation + 1, 0)));
    const std::uint64_t mask = f.signals.load();
    for (int s = 1; s < NSIG; ++s) {
      if ((mask & forced::bit(s)) != 0) forced::remove(s);
    }
  }
};

void signals_access::on_signals(const std::shared_ptr<signals_state>& state, const void* key,
                                 std::function<void(int)> hook) {
  int first = 0;
  std::function<void(int)> now;
  {
    std::lock_guard lock(state->mutex);
    first = state->first.load();
    if (first != 0) now = hook;
    state->signal_hooks.push_back({key, std::move(hook)});
  }
  if (first != 0) now(first);
}

void signals_access::forget(const std::weak_ptr<signals_state>& weak, const void* key) noexcept {
  auto state = weak.lock();
  if (!state) return;
  std::function<void(int)> gone;  // destroyed outside the lock
  std::lock_guard lock(state->mutex);
  auto& hooks = state->signal_hooks;
  auto it = std::find_if(hooks.begin(), hooks.end(), [key](const auto& h) { return h.key == key; });
  if (it == hooks.end()) return;
  gone = std::move(it->fn);
  hooks.erase(it);
}

std::shared_ptr<signals_state> signals_access::state_of(const shutdown_signals& s) { return s.state_; }

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

// Made once, before the first signal, the calls that the signal's path
// through Asio and graceful makes through the program's procedure linkage
// table: with lazy binding (the default unless the program is linked with
// -z now or built with -fno-plt) the dynamic linker resolves a function at
// its first call, and for these that is inside the signal handler (Asio's
// saves errno), on the way to the shutdown (the read of Asio's signal pipe)
// or at the run's end (the scheduler's wake when it runs out of work, a
// source's slot blocks): tens of microseconds on the first signal's way.
// Each call here fails or does nothing (a replaced operator delete[] sees a
// null pointer). What the tasks themselves call first on their way out (the
// C++ runtime's exception machinery, for a task cancelled by exception) is
// theirs: -z now binds everything at start-up.
void bind_signal_path() noexcept {
  static const bool bound = [] {
    const int saved = errno;
    char byte = 0;
    (void)!::read(-1, &byte, 0);  // EBADF
    pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
    ::pthread_cond_broadcast(&cond);  // no waiter
    ::pthread_cond_destroy(&cond);
    // A task source's slot blocks, freed as the run ends.
    ::operator delete[](nullptr);
#if defined(__cpp_sized_deallocation)
    ::operator delete[](nullptr, std::size_t{0});
#endif
    errno = saved;
    return true;
  }();
  (void)bound;
}

}  // namespace

shutdown_signals::shutdown_signals(asio::any_io_executor ex, signal_policy policy) {
  validate(policy);
  state_ = std::make_shared<detail::signals_state>(std::move(ex), std::move(policy));
  try {
    std::lock_guard lock(state_->mutex);
    if (state_->policy.force_exit_after != 0) {
      auto forced_lock = detail::forced::lock();
      std::size_t slot = detail::forced::free_slot();  // throws before anything is added
      for (int s : state_->policy.signals) state_->set.add(s);
      state_->claim_slot(slot);
    } else {
      for (int s : state_->policy.signals) state_->set.add(s);
    }
    const auto& listened = state_->policy.signals;
    if (state_->policy.ignore_sigpipe &&
        std::find(listened.begin(), listened.end(), SIGPIPE) == listened.end()) {
      detail::sigpipe::hold();
      state_->holds_sigpipe = true;
    }
    bind_signal_path();
    state_->listen();
  } catch (...) {
    // No destructor will run: a claimed slot would go on counting, and could
    // end the process, for an object that never was.
    close();
    throw;
  }
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
    if (state_->slot != detail::forced::max_listeners) {
      auto forced_lock = detail::forced::lock();
      state_->set.clear(ignored);
      state_->release_slot();
    } else {
      state_->set.clear(ignored);
    }
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

std::size_t shutdown_signals::count() const noexcept {
  return std::max(state_->received.load(), state_->slot_count());
}

int shutdown_signals::first_signal() const noexcept { return state_->first.load(); }

}  // namespace graceful
