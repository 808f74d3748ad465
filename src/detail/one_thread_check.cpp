#include "one_thread_check.hpp"

#include <cstdio>
#include <cstdlib>

namespace graceful::detail {

boost::asio::execution_context::id one_thread_check::id;

one_thread_check* one_thread_check::of(const boost::asio::io_context::executor_type& ex) {
  if constexpr (!enabled) return nullptr;
  return &boost::asio::use_service<one_thread_check>(ex.context());
}

void one_thread_check::violated() noexcept {
  std::fputs(
      "graceful: an io_context built with concurrency hint 1 is run by more than one thread at "
      "once. Asio documents hint 1 as \"assumes the io_context will be run from a single "
      "thread\", and graceful then runs its tasks on the context's executor without strands. "
      "Build the context with the default hint, or run it from one thread.\n",
      stderr);
  std::abort();
}

}  // namespace graceful::detail
