#define BOOST_TEST_MODULE graceful
#include <boost/test/unit_test.hpp>
