#pragma once

#include <boost/asio/io_context.hpp>  // BOOST_ASIO_CONCURRENCY_HINT_DEFAULT
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>

namespace graceful_test {

// The io_contexts the async tests run on: Asio's default, and one built with
// concurrency hint 1 ("run from a single thread"), where a run's or a
// registry's tasks go on the context's executor directly instead of on
// strands.
inline const auto context_hints =
    boost::unit_test::data::make({BOOST_ASIO_CONCURRENCY_HINT_DEFAULT, 1});

}  // namespace graceful_test
