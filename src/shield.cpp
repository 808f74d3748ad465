#include <graceful/shield.hpp>

#include "detail/relay_executor.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

namespace graceful::detail {

namespace {

// The relay of the graceful task whose executor `ex` is, while that task
// runs; null for any other executor. A task's executor is one of these two
// (task_frame.hpp): a strand, or a one-thread io_context's own executor.
const relay_ref* relay_of(const asio::any_io_executor& ex) noexcept {
  if (const auto* on_strand = ex.target<relay_executor<asio::strand<asio::any_io_executor>>>()) {
    return &on_strand->relay();
  }
  if (const auto* serial = ex.target<relay_executor<asio::io_context::executor_type>>()) {
    return &serial->relay();
  }
  return nullptr;
}

}  // namespace

// On the task's strand: the coroutine that awaits the shield runs there.
shield_scope::shield_scope(const asio::any_io_executor& ex, const asio::cancellation_slot& slot) noexcept {
  const relay_ref* ref = relay_of(ex);
  if (ref == nullptr || !ref->current() || !ref->relay->live) return;
  if (!slot.is_connected() || ref->relay->task_slot != slot) return;  // not the task's own coroutine
  ++ref->relay->shields;
  relay_ = ref->relay;
  generation_ = ref->generation;
}

shield_scope::~shield_scope() {
  if (relay_ == nullptr) return;
  relay_ref ref{static_cast<cancel_relay*>(relay_), generation_};
  // A frame destroyed after its task's end (its context went first) leaves
  // the relay, by then perhaps another task's, alone.
  if (ref.current()) --ref.relay->shields;
}

}  // namespace graceful::detail
