#pragma once

#include <graceful/report.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace graceful::detail {

// Every task's outcome, with the count per outcome kept as they are set, so
// that the report costs no pass over a million entries at the end of a run.
class outcome_table {
 public:
  explicit outcome_table(std::size_t n) : outcomes_(n, task_outcome::not_started) {
    counts_[index(task_outcome::not_started)] = n;
  }

  // One more task (a source's, pulled), not ended yet.
  void add() {
    outcomes_.push_back(task_outcome::not_started);
    ++counts_[index(task_outcome::not_started)];
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
  std::array<std::size_t, outcome_kinds> counts_{};
};

// The only writer of run_report's fields.
struct report_builder {
  static run_report make(outcome_table outcomes,
                         std::vector<std::pair<std::size_t, std::exception_ptr>> errors,
                         stop_cause cause, int signal, std::shared_ptr<task_source> tasks,
                         std::vector<std::pair<std::size_t, duration>> ran = {},
                         std::function<std::string(std::size_t)> names = {},
                         std::exception_ptr source_error = nullptr,
                         std::shared_ptr<result_store_base> results = nullptr,
                         bool source_left = false) {
    run_report r;
    r.counts_ = outcomes.counts_;
    auto by_index = [](const auto& a, const auto& b) { return a.first < b.first; };
    std::sort(errors.begin(), errors.end(), by_index);
    std::sort(ran.begin(), ran.end(), by_index);
    r.outcomes_ = std::move(outcomes.outcomes_);
    r.errors_ = std::move(errors);
    r.ran_ = std::move(ran);
    r.names_ = std::move(names);
    r.cause_ = cause;
    r.signal_ = signal;
    r.tasks_ = std::move(tasks);
    r.source_error_ = std::move(source_error);
    r.results_ = std::move(results);
    r.source_left_ = source_left;
    return r;
  }
};

}  // namespace graceful::detail
