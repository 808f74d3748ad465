#define BOOST_TEST_MODULE graceful
#ifdef GRACEFUL_BOOST_TEST_INCLUDED
#include <boost/test/included/unit_test.hpp>
#else
#include <boost/test/unit_test.hpp>
#endif

#include <cstdlib>

// The tests never talk to a real service manager: a suite run under systemd
// (a CI runner of Type=notify, say) would otherwise send it READY=1 and
// STOPPING=1. The systemd suite makes sockets of its own.
struct no_service_manager {
  no_service_manager() {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
  }
};
BOOST_TEST_GLOBAL_FIXTURE(no_service_manager);
