// Runs 20 one-hour tasks, 4 at a time, until Ctrl+C (or SIGTERM), then prints
// what became of each task and exits as the shell expects.
#include <graceful/graceful.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;

int main() {
  std::vector<std::function<asio::awaitable<void>()>> tasks;
  for (int i = 0; i < 20; ++i) {
    tasks.push_back([i]() -> asio::awaitable<void> {
      std::printf("task %d running\n", i);
      std::fflush(stdout);
      asio::steady_timer t(co_await asio::this_coro::executor, 1h);
      co_await t.async_wait(asio::use_awaitable);
    });
  }
  graceful::run_report r = graceful::run_tasks(std::move(tasks), 4);

  std::cout << "stopped by " << r.cause() << " (signal " << r.signal_number() << ")\n";
  for (auto o : {graceful::task_outcome::completed, graceful::task_outcome::failed,
                 graceful::task_outcome::cancelled_running, graceful::task_outcome::cancelled_queued,
                 graceful::task_outcome::not_started}) {
    std::cout << "  " << o << ": " << r.count(o) << '\n';
  }
  auto rest = r.take_unstarted<std::function<asio::awaitable<void>()>>();
  std::cout << rest.size() << " tasks never started and can be run later\n";
  graceful::exit_process(r);  // dies by the signal, as a shell expects
}
