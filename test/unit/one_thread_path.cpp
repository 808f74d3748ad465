// The one-thread path (tasks on the io_context's executor, no strands) is
// taken exactly for an io_context built with concurrency hint 1, on every
// Boost: the hint is read through a different API before and after Asio's
// configuration service, and a silent "no hint" would only cost speed.
// (stress/one_thread_misuse shows through behaviour that runs take it.)
#include "detail/one_thread.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/test/unit_test.hpp>
#include <boost/version.hpp>

BOOST_AUTO_TEST_SUITE(one_thread_path)

BOOST_AUTO_TEST_CASE(hint_one_is_seen_and_nothing_else_is) {
  BOOST_TEST_MESSAGE("Boost " << BOOST_VERSION / 100000 << '.' << BOOST_VERSION / 100 % 1000);
  boost::asio::io_context one(1);
  boost::asio::any_io_executor one_ex = one.get_executor();
#if defined(GRACEFUL_DETAIL_HINT_FROM_CONFIG) || defined(GRACEFUL_DETAIL_HINT_FROM_SCHEDULER)
  BOOST_TEST(graceful::detail::concurrency_hint(one) == 1);
  BOOST_TEST_REQUIRE(graceful::detail::one_thread_executor(one_ex) != nullptr);
  BOOST_TEST((*graceful::detail::one_thread_executor(one_ex) == one.get_executor()));
#else
  // Boost 1.87 and 1.88: the hint is not read (strands always).
  BOOST_TEST(graceful::detail::one_thread_executor(one_ex) == nullptr);
#endif

  // "Safe" asks for every lock: several threads may run it.
  boost::asio::io_context safe(BOOST_ASIO_CONCURRENCY_HINT_SAFE);
  BOOST_TEST(graceful::detail::one_thread_executor(safe.get_executor()) == nullptr);

  boost::asio::io_context two(2);
#if defined(GRACEFUL_DETAIL_HINT_FROM_CONFIG) || defined(GRACEFUL_DETAIL_HINT_FROM_SCHEDULER)
  BOOST_TEST(graceful::detail::concurrency_hint(two) == 2);
#endif
  BOOST_TEST(graceful::detail::one_thread_executor(two.get_executor()) == nullptr);

  boost::asio::io_context by_default;
  BOOST_TEST(graceful::detail::one_thread_executor(by_default.get_executor()) == nullptr);
}

BOOST_AUTO_TEST_CASE(a_strand_or_another_executor_is_not_the_one_thread_path) {
  boost::asio::io_context one(1);
  BOOST_TEST(graceful::detail::one_thread_executor(boost::asio::make_strand(one)) == nullptr);
  boost::asio::thread_pool pool(1);
  BOOST_TEST(graceful::detail::one_thread_executor(pool.get_executor()) == nullptr);
  pool.join();
}

BOOST_AUTO_TEST_SUITE_END()
