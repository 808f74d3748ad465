// Built against the installed package only: find_package(graceful) + graceful::graceful.
#include <graceful/graceful.hpp>

#include <boost/asio/io_context.hpp>

#include <cstdio>
#include <vector>

int main() {
  boost::asio::io_context ctx;
  graceful::async_semaphore sem(ctx.get_executor(), 1);
  std::vector<int> order;
  std::vector<graceful::semaphore_permit> held;
  for (int i = 0; i < 3; ++i) {
    sem.async_acquire([&, i](boost::system::error_code ec, graceful::semaphore_permit p) {
      if (ec) return;
      order.push_back(i);
      p.release();  // hands the slot to the next waiter
    });
  }
  ctx.run();
  bool in_order = order == std::vector<int>{0, 1, 2};
  sem.close();
  boost::system::error_code after_close;
  sem.async_acquire([&](boost::system::error_code ec, graceful::semaphore_permit) { after_close = ec; });
  ctx.restart();
  ctx.run();
  bool closed_ok = after_close == graceful::error::semaphore_closed;
  std::printf("consumer: granted %zu of 3%s, closed %s\n", order.size(),
              in_order ? " in order" : " OUT OF ORDER", closed_ok ? "ok" : "WRONG");
  return in_order && closed_ok ? 0 : 1;
}
