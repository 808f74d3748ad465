#include <graceful/report.hpp>

#include <algorithm>
#include <ostream>

namespace graceful {

std::ostream& operator<<(std::ostream& os, task_outcome o) {
  switch (o) {
    case task_outcome::completed:
      return os << "completed";
    case task_outcome::failed:
      return os << "failed";
    case task_outcome::cancelled_running:
      return os << "cancelled_running";
    case task_outcome::cancelled_queued:
      return os << "cancelled_queued";
    case task_outcome::not_started:
      return os << "not_started";
  }
  return os << "task_outcome(" << static_cast<int>(o) << ")";
}

std::ostream& operator<<(std::ostream& os, stop_cause c) {
  switch (c) {
    case stop_cause::none:
      return os << "none";
    case stop_cause::signal:
      return os << "signal";
    case stop_cause::cancelled:
      return os << "cancelled";
    case stop_cause::failure:
      return os << "failure";
    case stop_cause::deadline:
      return os << "deadline";
    case stop_cause::limiter_closed:
      return os << "limiter_closed";
  }
  return os << "stop_cause(" << static_cast<int>(c) << ")";
}

std::exception_ptr run_report::error(std::size_t i) const {
  auto it = std::lower_bound(errors_.begin(), errors_.end(), i,
                             [](const auto& e, std::size_t idx) { return e.first < idx; });
  return it != errors_.end() && it->first == i ? it->second : nullptr;
}

std::vector<std::size_t> run_report::indices(task_outcome o) const {
  std::vector<std::size_t> out;
  out.reserve(count(o));
  for (std::size_t i = 0; i < outcomes_.size(); ++i) {
    if (outcomes_[i] == o) out.push_back(i);
  }
  return out;
}

int run_report::exit_code() const noexcept {
  if (cause_ == stop_cause::signal && signal_ > 0) return 128 + signal_;
  return count(task_outcome::completed) == size() ? 0 : 1;
}

}  // namespace graceful
