#include "detail/context_lease.hpp"

#include <pthread.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "detail/cached_memory.hpp"

namespace graceful::detail {

namespace asio = boost::asio;

namespace {

struct slot_registry {
  std::mutex mutex;
  std::vector<context_lease::slot*> slots;
};

// Never destroyed: threads may exit during static destruction.
slot_registry& registry() {
  static slot_registry* r = new slot_registry;
  return *r;
}

void before_fork();
void after_fork();

}  // namespace

struct context_lease::slot {
  std::unique_ptr<asio::io_context> ctx;
  bool in_use = false;

  slot() {
    static std::once_flag fork_hook;
    std::call_once(fork_hook, [] { ::pthread_atfork(&before_fork, &after_fork, &after_fork); });
    std::lock_guard lock(registry().mutex);
    registry().slots.push_back(this);
  }
  slot(const slot&) = delete;
  slot& operator=(const slot&) = delete;
  ~slot() {  // at thread exit
    std::unique_ptr<asio::io_context> mine;
    {
      std::lock_guard lock(registry().mutex);
      auto& v = registry().slots;
      v.erase(std::find(v.begin(), v.end(), this));
      mine = std::move(ctx);
    }
  }
};

namespace {

context_lease::slot& this_thread_slot() {
  thread_local context_lease::slot s;
  return s;
}

// Held across the fork, so that the child never inherits it locked by a
// thread it does not have.
void before_fork() {
  registry().mutex.lock();
  for (context_lease::slot* s : registry().slots) {
    if (!s->in_use) s->ctx.reset();
  }
}
void after_fork() { registry().mutex.unlock(); }

}  // namespace

context_lease::context_lease(std::size_t threads) {
  if (threads == 1) {
    slot& mine = this_thread_slot();
    std::lock_guard lock(registry().mutex);
    if (!mine.in_use) {
      if (mine.ctx) {
        mine.ctx->restart();
      } else {
        mine.ctx = std::make_unique<asio::io_context>(1);
      }
      mine.in_use = true;
      slot_ = &mine;
      ctx_ = mine.ctx.get();
      return;
    }
  }
  own_ = std::make_unique<asio::io_context>(static_cast<int>(threads));
  ctx_ = own_.get();
}

context_lease::~context_lease() {
  if (slot_ == nullptr) return;
  std::unique_ptr<asio::io_context> dirty;
  {
    std::lock_guard lock(registry().mutex);
    slot_->in_use = false;
    if (!clean_) dirty = std::move(slot_->ctx);
  }
}

std::size_t kept_contexts() {
  std::lock_guard lock(registry().mutex);
  return static_cast<std::size_t>(
      std::count_if(registry().slots.begin(), registry().slots.end(),
                    [](const context_lease::slot* s) { return s->ctx && !s->in_use; }));
}

// Destroyed under the lock, as before a fork: the thread that owns a slot
// takes the lock to use it.
std::size_t free_idle_contexts() noexcept {
  std::lock_guard lock(registry().mutex);
  std::size_t freed = 0;
  for (context_lease::slot* s : registry().slots) {
    if (s->ctx && !s->in_use) {
      s->ctx.reset();
      ++freed;
    }
  }
  return freed;
}

}  // namespace graceful::detail
