#include "detail/thread_runner.hpp"

#include <future>
#include <thread>
#include <vector>

namespace graceful::detail {

namespace asio = boost::asio;

void run_on_threads(asio::io_context& ctx, std::size_t threads) {
  if (threads == 1) {  // nothing to start, nothing to join on the way out
    ctx.run();
    return;
  }
  std::promise<bool> start;  // true: run; false: a thread could not be made
  std::shared_future<bool> go = start.get_future().share();
  std::vector<std::thread> pool;
  auto join_all = [&pool] {
    for (auto& t : pool) t.join();
  };
  try {
    pool.reserve(threads - 1);
    for (std::size_t i = 1; i < threads; ++i) {
      pool.emplace_back([&ctx, go] {
        if (go.get()) ctx.run();
      });
    }
  } catch (...) {
    start.set_value(false);
    join_all();
    throw;
  }
  start.set_value(true);
  try {
    ctx.run();
  } catch (...) {  // a task's handler threw out of run: stop the others too
    ctx.stop();
    join_all();
    throw;
  }
  join_all();
}

}  // namespace graceful::detail
