// In-process tests of shutdown_signals that need no signal; the behaviour on
// real signals is tested with child processes (test/signals).
#include <graceful/signals.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <stdexcept>
#include <string>

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

struct wait_result {
  int calls = 0;
  error_code ec;
  int signo = -1;
  auto handler() {
    return [this](error_code e, int s) {
      ++calls;
      ec = e;
      signo = s;
    };
  }
};

// The message of the std::invalid_argument that constructing with `p` throws.
std::string refusal(graceful::signal_policy p) {
  asio::io_context ctx;
  try {
    graceful::shutdown_signals s(ctx.get_executor(), std::move(p));
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(shutdown_signals_suite)

BOOST_AUTO_TEST_CASE(a_policy_that_makes_no_sense_is_refused_with_a_message_naming_it) {
  BOOST_TEST(refusal({{SIGINT, 0}, 0}).find("0 is not a signal number") != std::string::npos);
  BOOST_TEST(refusal({{SIGKILL}, 0}).find("cannot be caught") != std::string::npos);
  BOOST_TEST(refusal({{SIGINT}, 1}).find("force_exit_after == 1") != std::string::npos);
  BOOST_TEST(refusal({{}, 3}).find("no signal is listened to") != std::string::npos);
  BOOST_TEST(refusal({{SIGINT, SIGTERM, SIGHUP}, 3}).empty());  // fine
}

BOOST_AUTO_TEST_CASE(defaults_are_sigint_and_sigterm) {
  BOOST_TEST(graceful::default_shutdown_signals() == (std::vector<int>{SIGINT, SIGTERM}),
             boost::test_tools::per_element());
  graceful::signal_policy p;
  BOOST_TEST(p.force_exit_after == 0u);
}

BOOST_AUTO_TEST_CASE(close_ends_a_pending_wait_and_the_context_runs_out_of_work) {
  asio::io_context ctx;
  graceful::shutdown_signals s(ctx.get_executor());
  wait_result w;
  s.async_wait(w.handler());
  asio::post(ctx, [&] { s.close(); });
  ctx.run();  // returns: neither the wait nor the listening keeps work
  BOOST_TEST(w.calls == 1);
  BOOST_TEST(w.ec == asio::error::operation_aborted);
  BOOST_TEST(s.count() == 0u);
  BOOST_TEST(s.first_signal() == 0);
  s.close();  // idempotent
  wait_result late;
  s.async_wait(late.handler());  // after close: aborted, never inline
  BOOST_TEST(late.calls == 0);
  ctx.restart();
  ctx.run();
  BOOST_TEST(late.calls == 1);
  BOOST_TEST(late.ec == asio::error::operation_aborted);
}

BOOST_AUTO_TEST_CASE(a_wait_is_cancellable_and_listening_goes_on) {
  for (auto type : {asio::cancellation_type::terminal, asio::cancellation_type::partial,
                    asio::cancellation_type::total}) {
    asio::io_context ctx;
    graceful::shutdown_signals s(ctx.get_executor());
    asio::cancellation_signal sig;
    wait_result w, other;
    s.async_wait(asio::bind_cancellation_slot(sig.slot(), w.handler()));
    s.async_wait(other.handler());
    asio::post(ctx, [&] { sig.emit(type); });
    asio::post(ctx, [&] { asio::post(ctx, [&] { s.close(); }); });
    ctx.run();
    BOOST_TEST(w.calls == 1);
    BOOST_TEST(w.ec == asio::error::operation_aborted);
    BOOST_TEST(other.calls == 1);  // ended by close, not by the other's cancel
  }
}

namespace {
void (*sigpipe_action())(int) {
  struct sigaction now {};
  ::sigaction(SIGPIPE, nullptr, &now);
  return now.sa_handler;
}
}  // namespace

BOOST_AUTO_TEST_CASE(sigpipe_is_ignored_while_anyone_listens_and_restored_after) {
  BOOST_TEST_REQUIRE((sigpipe_action() == SIG_DFL));
  asio::io_context ctx;
  {
    graceful::shutdown_signals first(ctx.get_executor());
    BOOST_TEST((sigpipe_action() == SIG_IGN));
    {
      graceful::shutdown_signals second(ctx.get_executor());
      BOOST_TEST((sigpipe_action() == SIG_IGN));
    }
    BOOST_TEST((sigpipe_action() == SIG_IGN));  // the first one still listens
    first.close();
    BOOST_TEST((sigpipe_action() == SIG_DFL));
  }
  BOOST_TEST((sigpipe_action() == SIG_DFL));  // close, then destruction: dropped once
  graceful::signal_policy leave_it;
  leave_it.ignore_sigpipe = false;
  {
    graceful::shutdown_signals s(ctx.get_executor(), leave_it);
    BOOST_TEST((sigpipe_action() == SIG_DFL));
  }
  // A disposition the program chose itself is never touched.
  std::signal(SIGPIPE, SIG_IGN);
  {
    graceful::shutdown_signals s(ctx.get_executor());
  }
  BOOST_TEST((sigpipe_action() == SIG_IGN));
  std::signal(SIGPIPE, SIG_DFL);
}

BOOST_AUTO_TEST_SUITE_END()
