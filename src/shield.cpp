#include <graceful/shield.hpp>

#include "detail/relay_executor.hpp"

namespace graceful::detail {

// On the task's strand: the coroutine that awaits the shield runs there.
shield_scope::shield_scope(const asio::cancellation_state& state) noexcept {
  const relay_ref* ref = &current_step;
  if (ref->relay == nullptr || !ref->current() || !ref->relay->live) return;
  const asio::cancellation_slot slot = state.slot();
  if (!slot.is_connected() || ref->relay->task_slot != slot) return;  // not the task's own coroutine
  ++ref->relay->shields;
  relay_ = ref->relay;
}

// The shielded step ends inside a step of its task (the coroutine resumes
// there). A frame destroyed anywhere else (its context went first) leaves the
// relay, by then perhaps another task's, alone.
shield_scope::~shield_scope() {
  if (relay_ == nullptr) return;
  const relay_ref& ref = current_step;
  if (ref.relay == relay_ && ref.current()) --ref.relay->shields;
}

}  // namespace graceful::detail
