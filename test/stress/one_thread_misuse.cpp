// An io_context built with concurrency hint 1 ("run from a single thread")
// but run by four threads at once, with a run and a registry of 1,000 tasks
// each, cancelled midway: with GRACEFUL_CHECKS, graceful stops the process
// with a message that says why, before any of its state is raced on.
//
//   one_thread_misuse           forks a child that does it; checks that the
//                               child died by SIGABRT and printed the message
//   one_thread_misuse --child   does it
#include <graceful/run_tasks.hpp>
#include <graceful/task_registry.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

// Busy on its thread for a moment at each step, so that the threads overlap.
asio::awaitable<void> task_body() {
  for (int i = 0; i < 20; ++i) {
    std::this_thread::sleep_for(200us);
    asio::steady_timer t(co_await asio::this_coro::executor, 1ms);
    co_await t.async_wait(asio::use_awaitable);
  }
}

int child() {
  asio::io_context ctx(1);
  asio::cancellation_signal stop;
  std::vector<std::function<asio::awaitable<void>()>> tasks(1000, task_body);
  graceful::async_run_tasks(ctx.get_executor(), std::move(tasks), 100,
                            asio::bind_cancellation_slot(stop.slot(), [](auto, auto) {}));
  graceful::task_registry reg(ctx.get_executor());
  for (int i = 0; i < 1000; ++i) reg.spawn([] { return task_body(); });
  asio::steady_timer midway(ctx, 20ms);
  midway.async_wait([&](auto) {
    stop.emit(asio::cancellation_type::terminal);
    reg.cancel_all();
  });
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) threads.emplace_back([&] { ctx.run(); });
  ctx.run();
  for (auto& t : threads) t.join();
  std::puts("one_thread_misuse: the child ran to its end");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--child") == 0) return child();
  int err[2];
  if (::pipe(err) != 0) return 2;
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(err[1], STDERR_FILENO);
    ::close(err[0]);
    ::execl(argv[0], argv[0], "--child", static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(err[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(err[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::fputs(out.c_str(), stderr);
  const bool aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
  const bool said_why = out.find("concurrency hint 1 is run by more than one thread") != std::string::npos;
  if (!aborted || !said_why) {
    std::fprintf(stderr, "one_thread_misuse: FAIL: expected the child to abort with graceful's message "
                         "(aborted: %d, message: %d)\n", aborted, said_why);
    return 1;
  }
  std::puts("one_thread_misuse: the misuse was caught");
  return 0;
}
