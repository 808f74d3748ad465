// systemd's notify protocol: graceful::systemd::notify to a real AF_UNIX
// datagram socket (a path and an abstract name), and what the blocking
// run_tasks tells it (run_options::notify_systemd).
#include <graceful/run_tasks.hpp>
#include <graceful/systemd.hpp>

#include "detail/systemd_status.hpp"
#include "task_probe.hpp"

#include <boost/system/errc.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>
#include <mutex>
#include <thread>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace asio = boost::asio;
using graceful::run_phase;
using graceful::run_report;
using graceful::stop_cause;
using graceful::task_outcome;
using namespace std::chrono_literals;
using namespace graceful_test;

namespace {

// A datagram socket like systemd's, bound to a fresh path or abstract name,
// exported as $NOTIFY_SOCKET (and $WATCHDOG_*) for as long as it lives. A
// thread reads it as it fills, as systemd would: a datagram socket queues
// only a few messages (net.unix.max_dgram_qlen) before senders are refused.
class listener {
 public:
  explicit listener(bool abstract) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    BOOST_TEST_REQUIRE(fd_ >= 0);
    static int serial = 0;
    const std::string name = "graceful-test-notify-" + std::to_string(::getpid()) + "-" + std::to_string(++serial);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::size_t used = 0;
    if (abstract) {
      a.sun_path[0] = '\0';
      std::memcpy(a.sun_path + 1, name.data(), name.size());
      used = 1 + name.size();
      env_ = "@" + name;
    } else {
      path_ = "/tmp/" + name;
      std::memcpy(a.sun_path, path_.c_str(), path_.size() + 1);
      used = path_.size() + 1;
      env_ = path_;
    }
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + used);
    BOOST_TEST_REQUIRE(::bind(fd_, reinterpret_cast<const sockaddr*>(&a), len) == 0, std::strerror(errno));
    ::setenv("NOTIFY_SOCKET", env_.c_str(), 1);
    reader_ = std::thread([this] {
      while (!done_.load()) {
        pollfd pfd{fd_, POLLIN, 0};
        ::poll(&pfd, 1, 5);
        drain();
      }
    });
  }
  listener(const listener&) = delete;
  listener& operator=(const listener&) = delete;
  ~listener() {
    stop();
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
    ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }

  // Every datagram sent so far (the senders have returned), in order; the
  // listener reads no more.
  std::vector<std::string> received() {
    stop();
    drain();
    std::lock_guard lock(mutex_);
    return messages_;
  }

 private:
  void stop() {
    done_ = true;
    if (reader_.joinable()) reader_.join();
  }

  void drain() {
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0) return;
      std::lock_guard lock(mutex_);
      messages_.emplace_back(buf, static_cast<std::size_t>(n));
    }
  }

  int fd_ = -1;
  std::string path_;
  std::string env_;
  std::mutex mutex_;
  std::vector<std::string> messages_;
  std::atomic<bool> done_{false};
  std::thread reader_;
};

bool has(const std::string& message, const std::string& line) {
  return ("\n" + message + "\n").find("\n" + line + "\n") != std::string::npos;
}

bool starts(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// The value of `key` (KEY=VALUE line) in `message`, if it is there.
std::optional<std::string> value_of(const std::string& message, const std::string& key) {
  const std::string text = "\n" + message + "\n";
  const auto at = text.find("\n" + key + "=");
  if (at == std::string::npos) return std::nullopt;
  const auto from = at + key.size() + 2;
  return text.substr(from, text.find('\n', from) - from);
}

std::vector<std::string> without_watchdog(const std::vector<std::string>& all) {
  std::vector<std::string> out;
  for (const auto& m : all) {
    if (m != "WATCHDOG=1") out.push_back(m);
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(systemd)

BOOST_AUTO_TEST_CASE(notify_reaches_a_path_socket_and_an_abstract_one) {
  for (bool abstract : {false, true}) {
    BOOST_TEST_CONTEXT("abstract " << abstract) {
      listener l(abstract);
      BOOST_TEST(graceful::systemd::enabled());
      BOOST_TEST(!graceful::systemd::notify("READY=1\nSTATUS=up"));
      BOOST_TEST(!graceful::systemd::notify("STOPPING=1"));
      BOOST_TEST(l.received() == (std::vector<std::string>{"READY=1\nSTATUS=up", "STOPPING=1"}));
    }
  }
}

BOOST_AUTO_TEST_CASE(without_a_socket_notify_does_nothing_and_a_bad_address_is_named) {
  ::unsetenv("NOTIFY_SOCKET");
  BOOST_TEST(!graceful::systemd::enabled());
  BOOST_TEST(!graceful::systemd::notify("READY=1"));
  ::setenv("NOTIFY_SOCKET", "", 1);
  BOOST_TEST(!graceful::systemd::enabled());
  ::setenv("NOTIFY_SOCKET", "relative/path", 1);
  BOOST_TEST(graceful::systemd::notify("READY=1") == boost::system::errc::invalid_argument);
  ::setenv("NOTIFY_SOCKET", ("/" + std::string(200, 'x')).c_str(), 1);
  BOOST_TEST(graceful::systemd::notify("READY=1") == boost::system::errc::invalid_argument);
  ::setenv("NOTIFY_SOCKET", "/nonexistent/graceful/notify", 1);
  BOOST_TEST(graceful::systemd::notify("READY=1") == boost::system::errc::no_such_file_or_directory);
  ::unsetenv("NOTIFY_SOCKET");
}

graceful::run_progress report(run_phase phase, stop_cause cause, std::chrono::milliseconds since,
                              std::size_t running, std::size_t ended) {
  graceful::run_progress p;
  p.phase = phase;
  p.cause = cause;
  p.signal_number = cause == stop_cause::signal ? SIGTERM : 0;
  p.since_stop = since;
  p.running = running;
  p.ended = ended;
  return p;
}

// A drain that makes progress asks for more time after each report that saw
// a task end: twice progress_interval, never past the drain budget (during
// the grace: no more than the budget itself, since a second signal may end
// the grace at once).
BOOST_AUTO_TEST_CASE(a_signal_s_drain_is_extended_only_while_tasks_end_and_never_past_its_budget) {
  listener l(false);
  graceful::run_options o;
  o.progress_interval = 20ms;
  o.grace = 1s;
  o.drain_timeout = 30ms;
  graceful::detail::systemd_status st(o);
  const auto sig = stop_cause::signal;
  st.progress(report(run_phase::running, stop_cause::none, 0ms, 3, 0));
  st.progress(report(run_phase::grace, sig, 0ms, 3, 0));
  st.progress(report(run_phase::grace, sig, 20ms, 2, 1));   // an end: the budget, 30 ms
  st.progress(report(run_phase::grace, sig, 40ms, 2, 1));   // none
  st.progress(report(run_phase::cancelling, sig, 50ms, 2, 1));
  st.progress(report(run_phase::cancelling, sig, 60ms, 1, 2));  // 50 + 30 - 60 = 20 ms left
  st.progress(report(run_phase::cancelling, sig, 75ms, 0, 3));  // 5 ms left
  st.progress(report(run_phase::cancelling, sig, 90ms, 0, 4));  // past it: nothing
  st.progress(report(run_phase::done, sig, 95ms, 0, 4));
  const auto m = l.received();
  BOOST_TEST_REQUIRE(m.size() == 9u);
  BOOST_TEST(starts(m[0], "READY=1\nSTATUS=running 3 tasks: "), m[0]);
  BOOST_TEST(starts(m[1], "STOPPING=1\nSTATUS=stopping (signal 15, 0 ms ago): grace: "), m[1]);
  const std::string extended[] = {"none", "none", "30000", "none", "none", "20000", "5000", "none", "none"};
  for (std::size_t k = 0; k < m.size(); ++k) {
    BOOST_TEST_CONTEXT(m[k]) {
      BOOST_TEST(value_of(m[k], "EXTEND_TIMEOUT_USEC").value_or("none") == extended[k]);
      BOOST_TEST(has(m[k], "STOPPING=1") == (k == 1));
    }
  }
  BOOST_TEST(starts(m[8], "STATUS=done: "), m[8]);
}

BOOST_AUTO_TEST_CASE(without_a_drain_budget_or_an_interval_the_extension_is_twice_the_default_interval) {
  listener l(true);
  graceful::run_options o;
  o.progress_interval = {};
  graceful::detail::systemd_status st(o);
  st.progress(report(run_phase::cancelling, stop_cause::signal, 0ms, 2, 0));
  st.progress(report(run_phase::cancelling, stop_cause::signal, 1s, 1, 1));
  const auto m = l.received();
  BOOST_TEST_REQUIRE(m.size() == 2u);
  BOOST_TEST(value_of(m[1], "EXTEND_TIMEOUT_USEC").value_or("none") == "2000000");
}

// A deadline or a failure stops the run, not the service: no STOPPING=1
// (systemd would stop the service and kill it at TimeoutStopSec), no
// EXTEND_TIMEOUT_USEC; the STATUS= lines still say what goes on.
BOOST_AUTO_TEST_CASE(run_tasks_stopped_by_its_deadline_tells_systemd_no_stopping) {
  listener l(false);
  probe p;
  std::vector<task> tasks;
  for (std::size_t i = 0; i < 3; ++i) tasks.push_back(cleans_up_for(p, i, 30ms * (i + 1)));
  graceful::run_options o;
  o.deadline = 30ms;
  o.progress_interval = 10ms;
  o.task_name = [](std::size_t i) { return "job-" + std::to_string(i); };
  run_report r = graceful::run_tasks(std::move(tasks), 3, o);
  BOOST_TEST(r.count(task_outcome::cancelled_running) == 3u);
  const auto m = l.received();
  BOOST_TEST_REQUIRE(m.size() >= 3u);
  BOOST_TEST(starts(m.front(), "READY=1\nSTATUS=running 3 tasks: "), m.front());
  BOOST_TEST(starts(m[1], "STATUS=stopping (deadline, "), m[1]);
  BOOST_TEST(m[1].find("waiting for job-0, job-1, job-2") != std::string::npos, m[1]);
  BOOST_TEST(starts(m.back(), "STATUS=done: "), m.back());
  for (const auto& x : m) {
    BOOST_TEST(!has(x, "STOPPING=1"), x);
    BOOST_TEST(!value_of(x, "EXTEND_TIMEOUT_USEC"), x);
  }
}

BOOST_AUTO_TEST_CASE(an_empty_run_is_ready_and_done) {
  listener l(true);
  graceful::run_tasks(std::vector<task>{}, 1);
  BOOST_TEST(l.received() == (std::vector<std::string>{"READY=1\nSTATUS=done: no tasks"}));
}

BOOST_AUTO_TEST_CASE(run_tasks_pings_the_watchdog_only_when_it_is_meant_for_this_process) {
  for (bool ours : {true, false}) {
    BOOST_TEST_CONTEXT("ours " << ours) {
      listener l(true);
      ::setenv("WATCHDOG_USEC", "20000", 1);
      ::setenv("WATCHDOG_PID", std::to_string(ours ? ::getpid() : ::getpid() + 1).c_str(), 1);
      probe p;
      graceful::run_options o;
      o.deadline = 100ms;
      graceful::run_tasks(sleepers(p, 1, 1h), 1, o);
      const auto m = l.received();
      const auto pings = static_cast<std::size_t>(std::count(m.begin(), m.end(), std::string("WATCHDOG=1")));
      if (ours) {
        BOOST_TEST(pings >= 3u);  // every 10 ms for 100 ms, at the least
      } else {
        BOOST_TEST(pings == 0u);
      }
      BOOST_TEST(without_watchdog(m).size() >= 3u);  // ready, stopping (deadline), done
    }
  }
}

BOOST_AUTO_TEST_CASE(notify_systemd_off_sends_nothing) {
  listener l(false);
  probe p;
  graceful::run_options o;
  o.deadline = 20ms;
  o.notify_systemd = false;
  graceful::run_tasks(sleepers(p, 1, 1h), 1, o);
  BOOST_TEST(l.received().empty());
}

BOOST_AUTO_TEST_SUITE_END()
