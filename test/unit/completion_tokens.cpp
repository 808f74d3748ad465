// Every async operation of graceful takes Asio's default completion token as
// a default argument, as Asio's own operations do, and its token parameter is
// constrained: something that is not a completion token for the operation's
// signature is not a candidate (no error from deep inside async_initiate).
#include <graceful/graceful.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include <functional>
#include <type_traits>
#include <vector>

namespace asio = boost::asio;

namespace {

using task = std::function<asio::awaitable<void>()>;

// Asio 1.26 (Boost 1.81) has no default token for any_io_executor (void);
// later versions make it asio::deferred. A call without a token compiles
// exactly when Asio has one.
constexpr bool asio_has_default_token =
    !std::is_void_v<asio::default_completion_token_t<asio::any_io_executor>>;

template <class Semaphore>
concept acquire_without_token = requires(Semaphore& s) { s.async_acquire(); };
template <class Semaphore, class Token>
concept acquire_with = requires(Semaphore& s, Token t) { s.async_acquire(t); };
template <class Registry>
concept join_without_token = requires(Registry& r) { r.async_join(); };
template <class Registry, class Token>
concept join_with = requires(Registry& r, Token t) { r.async_join(t); };
template <class Signals>
concept wait_without_token = requires(Signals& s) { s.async_wait(); };
template <class Signals, class Token>
concept wait_with = requires(Signals& s, Token t) { s.async_wait(t); };
template <class Task>
concept run_without_token = requires(asio::any_io_executor ex, std::vector<Task> v) {
  graceful::async_run_tasks(ex, std::move(v), 1);
  graceful::async_run_tasks(ex, std::move(v), 1, graceful::run_options{});
};
template <class Task, class Token>
concept run_with = requires(asio::any_io_executor ex, std::vector<Task> v, Token t) {
  graceful::async_run_tasks(ex, std::move(v), 1, t);
  graceful::async_run_tasks(ex, std::move(v), 1, graceful::run_options{}, t);
};

static_assert(acquire_without_token<graceful::async_semaphore> == asio_has_default_token);
static_assert(join_without_token<graceful::task_registry> == asio_has_default_token);
static_assert(wait_without_token<graceful::shutdown_signals> == asio_has_default_token);
static_assert(run_without_token<task> == asio_has_default_token);

// Real tokens are taken...
static_assert(acquire_with<graceful::async_semaphore, asio::deferred_t>);
static_assert(acquire_with<graceful::async_semaphore, asio::use_future_t<>>);
static_assert(join_with<graceful::task_registry, asio::use_awaitable_t<>>);
static_assert(wait_with<graceful::shutdown_signals, asio::deferred_t>);
static_assert(run_with<task, asio::deferred_t>);
static_assert(run_with<task, asio::use_awaitable_t<>>);
// ... and a handler of the wrong signature, or something that is no token, is not.
static_assert(!acquire_with<graceful::async_semaphore, int>);
static_assert(!acquire_with<graceful::async_semaphore, std::function<void(int)>>);
static_assert(!join_with<graceful::task_registry, int>);
static_assert(!wait_with<graceful::shutdown_signals, int>);
static_assert(!run_with<task, int>);
static_assert(!run_with<task, std::function<void(boost::system::error_code, int)>>);

}  // namespace

BOOST_AUTO_TEST_SUITE(completion_tokens)

// Launches the acquire with Asio's default token where there is one (a
// template, so that the branch for the other Boost versions is discarded).
template <class Semaphore, class Handler>
void acquire_by_default(Semaphore& sem, Handler handler) {
  if constexpr (acquire_without_token<Semaphore>) {
    sem.async_acquire()(std::move(handler));
  } else {
    sem.async_acquire(asio::deferred)(std::move(handler));
  }
}

BOOST_AUTO_TEST_CASE(the_default_token_is_asio_s) {
  asio::io_context ctx;
  graceful::async_semaphore sem(ctx.get_executor(), 1);
  bool granted = false;
  acquire_by_default(sem, [&](boost::system::error_code ec, graceful::semaphore_permit p) {
    granted = !ec && static_cast<bool>(p);
  });
  ctx.run();
  BOOST_TEST(granted);
}

BOOST_AUTO_TEST_SUITE_END()
