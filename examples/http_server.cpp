// An HTTP/1.1 server (Boost.Beast) that drains on SIGTERM or SIGINT without
// cutting a request off: each connection is a task of a graceful::task_registry.
//
//   http_server [--port P] [--grace-ms MS] [--drain-timeout-ms MS] [--plain]
//
//   GET /work?ms=N   answers "done" after N ms
//   GET /healthz     200 "ok"; 503 "stopping" from the stop request on
//
// Prints "LISTENING port=P" once it accepts (--port 0: a free port). On the
// first signal:
//   - the listening socket closes at once: new connections are refused;
//   - a connection waiting for its next request (idle keep-alive) is closed
//     at once;
//   - a request already being read or handled may finish for --grace-ms; its
//     response says "Connection: close", and the connection closes after it;
//   - then what is left is cancelled (a cancelled request gets no response,
//     never half of one: no cancellation reaches a response's write), and after
//     --drain-timeout-ms the rest is given up on;
//   - every connection closes cleanly (FIN, then what the client still sends
//     is read and dropped, so that a request sent meanwhile meets an end of
//     stream, not a reset; responses still on their way to a slow reader
//     are waited for);
//   - the server prints "served N of M requests read" and "closed N of M
//     connections cleanly" on stdout and the registry's report on stderr,
//     and dies by the signal.
// One race stays, the kernel's: a connect whose handshake completes in the
// microseconds between the last accept and the close of the listening
// socket is reset by the close (it was never accepted).
// A second signal ends the process at once.
// --plain: the same handler in a plain accept loop (co_spawn ... detached,
// no registry, no drain), as the baseline of the throughput benchmark.
#include <graceful/graceful.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <linux/sockios.h>
#include <sys/ioctl.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <iostream>
#include <list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

struct settings {
  unsigned short port = 8080;
  std::chrono::milliseconds grace{5000};
  std::chrono::milliseconds drain_timeout{10000};
  bool plain = false;
};

// The server's state; everything runs on one thread.
struct server {
  bool plain = false;
  bool stopping = false;     // the stop request came
  std::size_t read = 0;      // requests read whole
  std::size_t answered = 0;  // responses written whole
  std::size_t accepted = 0;  // connections
  std::size_t closed = 0;    // connections closed cleanly
  // The connections reading a request: the stop cancels the read of those
  // that have not received a byte of it yet (idle keep-alive connections);
  // the others are answered.
  struct connection {
    beast::tcp_stream* stream;
    beast::flat_buffer* buffer;
    http::request_parser<http::string_body>* parser;
  };
  std::list<connection> waiting;

  void stop() {
    stopping = true;
    for (const connection& c : waiting) {
      boost::system::error_code ignored;
      if (c.buffer->size() == 0 && !c.parser->got_some()) c.stream->socket().cancel(ignored);
    }
  }
};

// The milliseconds of "/work?ms=N", if that is the target.
std::optional<long> work_ms(std::string_view target) {
  constexpr std::string_view prefix = "/work?ms=";
  if (target.substr(0, prefix.size()) != prefix) return std::nullopt;
  try {
    std::size_t used = 0;
    const std::string n(target.substr(prefix.size()));
    const long ms = std::stol(n, &used);
    if (used != n.size() || ms < 0 || ms > 60000) return std::nullopt;
    return ms;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

asio::awaitable<http::response<http::string_body>> handle(const http::request<http::string_body>& req,
                                                          const server& srv) {
  http::response<http::string_body> res{http::status::ok, req.version()};
  res.set(http::field::content_type, "text/plain");
  if (req.target() == "/healthz") {
    res.result(srv.stopping ? http::status::service_unavailable : http::status::ok);
    res.body() = srv.stopping ? "stopping\n" : "ok\n";
  } else if (auto ms = work_ms(req.target())) {
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(*ms));
    co_await t.async_wait(asio::use_awaitable);  // the cancel after the grace ends it here
    res.body() = "done\n";
  } else {
    res.result(http::status::not_found);
    res.body() = "not found\n";
  }
  co_return res;
}

// The bytes written to `socket` that its peer has not acknowledged yet
// (Linux: SIOCOUTQ); 0 where that cannot be read.
int unacknowledged(tcp::socket& socket) {
  int n = 0;
  if (::ioctl(socket.native_handle(), SIOCOUTQ, &n) != 0) return 0;
  return n;
}

// Closes cleanly: FIN first, then what the client still sends is read and
// dropped until it closes too. A close with unread data sends a reset, and
// a reset throws away what the server's kernel has not delivered yet: so
// the wait is 500 ms for the client's end, and longer while a response
// written before is still on its way (a client that pipelines requests and
// reads slowly), up to 30 s in all (a connection task's wait ends earlier if
// the drain's budget does). A window ends when its timer cancels the read,
// or at the first read completed after it, whichever comes first: a client
// that keeps sending completes every read at once, ahead of the timer. (The
// stream's own timeout would close the socket, with a reset.)
asio::awaitable<void> close_cleanly(beast::tcp_stream& stream, server& srv) {
  using clock = std::chrono::steady_clock;
  tcp::socket& socket = stream.socket();
  boost::system::error_code ec;
  socket.shutdown(tcp::socket::shutdown_send, ec);
  stream.expires_never();
  const auto give_up = clock::now() + 30s;
  asio::steady_timer window(socket.get_executor());
  // Which read the window's end is for: a timer handler already queued when
  // its read completed finds the count moved on (each completed read moves
  // it first) and leaves the next read, or a socket gone, alone.
  auto reading = std::make_shared<std::uint64_t>(0);
  char sink[4096];
  boost::system::error_code end;
  window.expires_after(500ms);
  while (!end) {
    window.async_wait([&socket, reading, read = *reading](boost::system::error_code e) {
      if (!e && *reading == read) socket.cancel();
    });
    auto [e, n] = co_await socket.async_read_some(asio::buffer(sink), asio::as_tuple(asio::use_awaitable));
    ++*reading;
    window.cancel();
    end = e;
    const auto now = clock::now();
    const bool window_over = end == asio::error::operation_aborted || (!end && now >= window.expiry());
    if (!window_over) continue;
    if (unacknowledged(socket) > 0 && now < give_up) {
      end = {};  // still delivering: another 500 ms
      window.expires_after(500ms);
    } else if (!end) {
      end = asio::error::timed_out;  // the client is still sending
    }
  }
  socket.close(ec);
  // Clean only if the client closed too: otherwise the close may have had
  // unread data to reset.
  if (end == asio::error::eof) ++srv.closed;
}

// Awaits `op` shielded from the task's cancellation; as is in the plain loop
// (not a task of graceful's).
template <class T>
asio::awaitable<T> shielded(asio::awaitable<T> op, const server& srv) {
  if (srv.plain) co_return co_await std::move(op);
  co_return co_await graceful::shield(std::move(op));
}

// The connection's requests, one after the other, until the client goes, the
// stop finds the connection idle, or a cancel ends the request in progress.
// Nothing can cancel it before its first read has suspended it (the task
// starts it inline in its first step, and the registry drops a task that has
// not begun when the stop comes): co_spawn's entry point in Boost 1.81 and
// 1.83 awaits a post after a coroutine that never suspended, which would
// throw out of io_context::run() had that coroutine been cancelled.
asio::awaitable<void> serve(beast::tcp_stream& stream, beast::flat_buffer& buffer, server& srv) {
  while (!srv.stopping) {
    http::request_parser<http::string_body> parser;
    {
      // Reading the next request: the stop may cancel the read.
      auto self = srv.waiting.insert(srv.waiting.end(), server::connection{&stream, &buffer, &parser});
      struct leave {
        server& srv;
        std::list<server::connection>::iterator self;
        ~leave() { srv.waiting.erase(self); }
      } on_exit{srv, self};
      // A co_await of this coroutine's own for each step of Beast's read, not
      // one http::async_read: between two of its steps (a post, after a part
      // parsed from the buffer) nothing of the read is pending, and a cancel
      // that comes then is seen only at this coroutine's next co_await.
      parser.eager(true);
      do {
        co_await http::async_read_some(stream, buffer, parser, asio::use_awaitable);
      } while (!parser.is_done());
    }
    http::request<http::string_body> req = parser.release();
    ++srv.read;
    http::response<http::string_body> res = co_await handle(req, srv);
    const bool close = !req.keep_alive() || srv.stopping;
    res.keep_alive(!close);
    res.prepare_payload();
    // Out of the cancellation's reach: the write's operations get a
    // cancellation slot connected to nothing, so a cancel never cuts a
    // response in half. One operation needs no graceful::shield (no frame,
    // no hand-over); a coroutine of several, as close_cleanly, does.
    // Bounded all the same: a client that reads nothing does not hold it
    // for ever.
    stream.expires_after(30s);
    co_await http::async_write(stream, res, asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable));
    stream.expires_never();
    ++srv.answered;
    if (close) break;
  }
}

// A connection's task. Its requests run in a coroutine of their own on the
// socket's executor (the io_context's), which the task awaits: each of their
// operations then completes straight into that coroutine, where on the
// task's own executor each would go through graceful's relay (the README's
// "Performance" has what that costs this server). The task's cancellation
// reaches the coroutine through co_spawn, and Asio's default for a
// co_spawned coroutine (throw_if_cancelled) ends it at its next co_await if
// the cancel came between two of its operations. The shielded close runs in
// the task, where graceful holds the cancellation back. Safe here because
// one thread runs the io_context: Asio forwards the cancel into the
// coroutine through a dispatch to its executor, which must run inline.
asio::awaitable<void> connection(tcp::socket socket, server& srv) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  try {
    if (srv.plain) {
      co_await serve(stream, buffer, srv);
    } else {
      co_await asio::co_spawn(stream.get_executor(), serve(stream, buffer, srv), asio::use_awaitable);
    }
  } catch (const boost::system::system_error&) {
    // The client went (end of stream, a reset), the stop found the
    // connection idle, or the request was cancelled after the grace: no
    // response, a clean close.
  }
  co_await shielded(close_cleanly(stream, srv), srv);
}

// A connection that will not be served (accepted as the stop came): closed
// cleanly all the same, on a coroutine of its own. A socket destroyed with
// a request unread would send a reset.
asio::awaitable<void> close_socket_cleanly(tcp::socket socket, server& srv) {
  beast::tcp_stream stream(std::move(socket));
  co_await close_cleanly(stream, srv);
}

void close_later(tcp::socket socket, server& srv) {
  if (!socket.is_open()) return;
  auto ex = socket.get_executor();
  asio::co_spawn(ex, close_socket_cleanly(std::move(socket), srv), asio::detached);
}

// A connection's task: the registry may drop it before it begins (the stop
// came first) or refuse it (after the stop); its socket is then closed
// cleanly, not destroyed.
struct connection_task {
  tcp::socket socket;
  server* srv;

  connection_task(tcp::socket s, server& sv) : socket(std::move(s)), srv(&sv) {}
  connection_task(connection_task&&) noexcept = default;
  connection_task& operator=(connection_task&&) = delete;
  ~connection_task() { close_later(std::move(socket), *srv); }

  asio::awaitable<void> operator()() { return connection(std::move(socket), *srv); }
};

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, graceful::task_registry& registry, server& srv) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) {
      if (!acceptor.is_open()) co_return;  // closed by the stop
      // Out of descriptors, say: wait a little rather than spin.
      asio::steady_timer pause(acceptor.get_executor(), 50ms);
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    ++srv.accepted;
    if (srv.plain) {
      asio::co_spawn(acceptor.get_executor(), connection(std::move(socket), srv), asio::detached);
      continue;
    }
    boost::system::error_code refused;  // registry_closed, after the stop: the task closes its socket
    registry.spawn(connection_task(std::move(socket), srv), refused);
  }
}

// The stop: no connection is accepted any more. Those that completed their
// handshake and wait in the listen backlog are taken and closed cleanly
// first (closing the listening socket would reset them).
void stop_accepting(tcp::acceptor& acceptor, server& srv) {
  boost::system::error_code ec;
  acceptor.non_blocking(true, ec);
  for (int errors = 0; !ec && errors < 16;) {
    tcp::socket socket(acceptor.get_executor());
    boost::system::error_code accept_ec;
    acceptor.accept(socket, accept_ec);
    if (!accept_ec) {
      ++srv.accepted;
      close_later(std::move(socket), srv);
    } else if (accept_ec == asio::error::would_block || accept_ec == asio::error::try_again) {
      break;  // the backlog is empty
    } else {
      ++errors;  // a connection reset before its accept, out of descriptors: a few more tries
    }
  }
  acceptor.close(ec);
}

settings parse(int argc, char** argv) {
  settings s;
  auto ms = [](const char* v) { return std::chrono::milliseconds(std::stoul(v)); };
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--plain") {
      s.plain = true;
      continue;
    }
    if (i + 1 >= argc) throw std::invalid_argument("missing value after " + std::string(arg));
    const char* value = argv[++i];
    if (arg == "--port") {
      const unsigned long p = std::stoul(value);
      if (p > 65535) throw std::invalid_argument("--port out of range");
      s.port = static_cast<unsigned short>(p);
    } else if (arg == "--grace-ms") {
      s.grace = ms(value);
    } else if (arg == "--drain-timeout-ms") {
      s.drain_timeout = ms(value);
    } else {
      throw std::invalid_argument("unknown option " + std::string(arg));
    }
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  try {
    s = parse(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr,
                 "http_server: %s\nusage: http_server [--port P] [--grace-ms MS] "
                 "[--drain-timeout-ms MS] [--plain]\n",
                 e.what());
    return 2;
  }
  server srv;  // first: what the tasks and the loop refer to outlives them
  srv.plain = s.plain;
  asio::io_context ctx(1);
  // A second signal ends the process at once (as a person's second Ctrl+C).
  graceful::signal_policy policy;
  policy.force_exit_after = 2;
  graceful::shutdown_signals signals(ctx.get_executor(), policy);
  graceful::task_registry registry(ctx.get_executor());
  tcp::acceptor acceptor(ctx, tcp::endpoint(asio::ip::address_v4::loopback(), s.port));
  std::printf("LISTENING port=%u\n", static_cast<unsigned>(acceptor.local_endpoint().port()));
  std::fflush(stdout);
  asio::co_spawn(ctx, accept_loop(acceptor, registry, srv), asio::detached);

  std::optional<graceful::registry_snapshot> result;
  signals.async_wait([&](boost::system::error_code ec, int signal_number) {
    if (ec) return;
    stop_accepting(acceptor, srv);  // new connections are refused from now on
    srv.stop();                // idle connections close now
    graceful::shutdown_options o;
    o.signal_number = signal_number;
    o.grace = s.grace;
    o.drain_timeout = s.drain_timeout;
    registry.async_shutdown(o, [&](boost::system::error_code, graceful::registry_snapshot snapshot) {
      result = std::move(snapshot);
      if (srv.plain || result->abandoned > 0) {
        ctx.stop();  // what was given up on stays behind
      } else {
        signals.close();  // the last clean closes finish, then the loop runs out
      }
    });
  });
  ctx.run();
  std::printf("served %zu of %zu requests read\n", srv.answered, srv.read);
  std::printf("closed %zu of %zu connections cleanly\n", srv.closed, srv.accepted);
  if (!result) return 1;  // --plain, or the loop ended without a signal
  std::cerr << *result;
  graceful::exit_process(*result);
}
