#pragma once

// Checks on a run's report shared by the run tests.

#include <graceful/report.hpp>

#include <boost/test/unit_test.hpp>

#include <cstddef>

namespace graceful_test {

// Every task accounted for exactly once, over all the outcomes.
inline void check_accounting(const graceful::run_report& r) {
  std::size_t sum = 0;
  for (std::size_t k = 0; k < graceful::detail::outcome_kinds; ++k) {
    auto o = static_cast<graceful::task_outcome>(k);
    BOOST_TEST(r.indices(o).size() == r.count(o));
    sum += r.count(o);
  }
  BOOST_TEST(sum == r.size());
}

}  // namespace graceful_test
