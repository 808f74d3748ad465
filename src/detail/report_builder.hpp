#pragma once

#include <graceful/report.hpp>

#include <algorithm>

namespace graceful::detail {

// The only writer of run_report's fields.
struct report_builder {
  static run_report make(std::vector<task_outcome> outcomes,
                         std::vector<std::pair<std::size_t, std::exception_ptr>> errors,
                         stop_cause cause, int signal, std::shared_ptr<task_source> tasks) {
    run_report r;
    for (auto o : outcomes) ++r.counts_[static_cast<std::size_t>(o)];
    std::sort(errors.begin(), errors.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    r.outcomes_ = std::move(outcomes);
    r.errors_ = std::move(errors);
    r.cause_ = cause;
    r.signal_ = signal;
    r.tasks_ = std::move(tasks);
    return r;
  }
};

}  // namespace graceful::detail
