#include <graceful/error.hpp>

#include <boost/system/errc.hpp>
#include <boost/test/unit_test.hpp>

#include <sstream>
#include <string>

BOOST_AUTO_TEST_SUITE(error)

BOOST_AUTO_TEST_CASE(codes_compare_with_the_enum_and_carry_the_category) {
  boost::system::error_code ec = graceful::error::semaphore_closed;
  BOOST_TEST(ec == graceful::error::semaphore_closed);
  BOOST_TEST(ec != graceful::error::registry_closed);
  BOOST_TEST(std::string(ec.category().name()) == "graceful");
  BOOST_TEST(&ec.category() == &graceful::error_category());
  BOOST_TEST(ec.failed());
}

BOOST_AUTO_TEST_CASE(messages_name_the_problem) {
  using graceful::error;
  BOOST_TEST(make_error_code(error::semaphore_closed).message().find("semaphore closed") == 0u);
  BOOST_TEST(make_error_code(error::registry_closed).message().find("registry closed") !=
             std::string::npos);
  BOOST_TEST(make_error_code(error::invalid_argument).message().find("invalid argument") == 0u);
  auto unknown = boost::system::error_code(99, graceful::error_category()).message();
  BOOST_TEST(unknown.find("unknown error 99") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(invalid_argument_is_equivalent_to_the_generic_condition) {
  boost::system::error_code ec = graceful::error::invalid_argument;
  BOOST_TEST((ec == boost::system::errc::invalid_argument));
  boost::system::error_code closed = graceful::error::semaphore_closed;
  BOOST_TEST((closed != boost::system::errc::invalid_argument));
}

BOOST_AUTO_TEST_CASE(enumerators_print_their_names) {
  std::ostringstream os;
  os << graceful::error::registry_closed << ' ' << static_cast<graceful::error>(42);
  BOOST_TEST(os.str() == "registry_closed graceful::error(42)");
}

BOOST_AUTO_TEST_SUITE_END()
