#pragma once

#include <graceful/report.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <vector>

namespace graceful::detail {

// Every task's outcome, with the count per outcome kept as they are set, so
// that the report costs no pass over a million entries at the end of a run.
class outcome_table {
 public:
  explicit outcome_table(std::size_t n) : outcomes_(n, task_outcome::not_started) {
    counts_[index(task_outcome::not_started)] = n;
  }

  void set(std::size_t i, task_outcome o) noexcept {
    --counts_[index(outcomes_[i])];
    ++counts_[index(o)];
    outcomes_[i] = o;
  }

 private:
  friend struct report_builder;
  static std::size_t index(task_outcome o) noexcept { return static_cast<std::size_t>(o); }

  std::vector<task_outcome> outcomes_;
  std::array<std::size_t, 5> counts_{};
};

// The only writer of run_report's fields.
struct report_builder {
  static run_report make(outcome_table outcomes,
                         std::vector<std::pair<std::size_t, std::exception_ptr>> errors,
                         stop_cause cause, int signal, std::shared_ptr<task_source> tasks) {
    run_report r;
    r.counts_ = outcomes.counts_;
    std::sort(errors.begin(), errors.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    r.outcomes_ = std::move(outcomes.outcomes_);
    r.errors_ = std::move(errors);
    r.cause_ = cause;
    r.signal_ = signal;
    r.tasks_ = std::move(tasks);
    return r;
  }
};

}  // namespace graceful::detail
