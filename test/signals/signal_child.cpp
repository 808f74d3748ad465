// A child process for the real-signal tests of what the seed program does not
// show:
//   signal_child twice     two run_tasks in a row, each interrupted: the second
//                          run's signals must work as the first's did
//   signal_child restored  after run_tasks returns, SIGINT has its default
//                          action again (the child dies by it)
#include <graceful/graceful.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <string_view>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using task = std::function<asio::awaitable<void>()>;

namespace {

void say(const char* line) {
  std::puts(line);
  std::fflush(stdout);
}

std::vector<task> sleepers(std::size_t n, std::chrono::milliseconds d) {
  return std::vector<task>(n, [d]() -> asio::awaitable<void> {
    say("Task started.");
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(asio::use_awaitable);
    say("Task finished.");
  });
}

void print_report(const char* name, const graceful::run_report& r) {
  std::printf("%s: cause=%d signal=%d cancelled_running=%zu\n", name, static_cast<int>(r.cause()),
              r.signal_number(), r.count(graceful::task_outcome::cancelled_running));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::string_view mode = argc > 1 ? argv[1] : "";
  if (mode == "twice") {
    auto first = graceful::run_tasks(sleepers(2, 1h), 2);
    print_report("first", first);
    auto second = graceful::run_tasks(sleepers(2, 1h), 2);
    print_report("second", second);
    graceful::exit_process(second);
  }
  if (mode == "restored") {
    auto r = graceful::run_tasks(sleepers(1, 1ms), 1);
    print_report("run", r);
    say("returned.");
    ::pause();  // SIGINT's default action ends the process here
    say("SIGINT was caught after run_tasks returned");
    return 3;
  }
  std::fprintf(stderr, "usage: signal_child twice|restored\n");
  return 2;
}
