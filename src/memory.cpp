#include <graceful/memory.hpp>

#include "detail/cached_memory.hpp"
#include "detail/relay_executor.hpp"

namespace graceful {

namespace {

cached_memory with_bytes(cached_memory m) noexcept {
  m.bytes = m.relays * sizeof(detail::cancel_relay) + m.runners * detail::runner_size();
  return m;
}

}  // namespace

cached_memory cached_memory_usage() {
  cached_memory m;
  m.relays = detail::kept_relays();
  m.runners = detail::kept_runners();
  m.contexts = detail::kept_contexts();
  return with_bytes(m);
}

cached_memory release_cached_memory() noexcept {
  cached_memory m;
  m.contexts = detail::free_idle_contexts();
  m.runners = detail::free_kept_runners();
  m.relays = detail::free_kept_relays();
  return with_bytes(m);
}

}  // namespace graceful
