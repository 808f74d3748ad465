#include <graceful/report.hpp>

#include "detail/report_text.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <ostream>
#include <string>

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
    case task_outcome::timed_out:
      return os << "timed_out";
    case task_outcome::abandoned:
      return os << "abandoned";
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
  return count(task_outcome::completed) == size() && !source_error_ && !source_left_ ? 0 : 1;
}

std::ostream& operator<<(std::ostream& os, run_phase p) {
  switch (p) {
    case run_phase::running:
      return os << "running";
    case run_phase::grace:
      return os << "grace";
    case run_phase::cancelling:
      return os << "cancelling";
    case run_phase::done:
      return os << "done";
  }
  return os << "run_phase(" << static_cast<int>(p) << ")";
}

std::string run_report::name(std::size_t i) const {
  if (names_) return names_(i);
  return "task #" + std::to_string(i);
}

duration run_report::ran_for(std::size_t i) const noexcept {
  auto it = std::lower_bound(ran_.begin(), ran_.end(), i,
                             [](const auto& e, std::size_t idx) { return e.first < idx; });
  return it != ran_.end() && it->first == i ? it->second : duration{};
}

namespace {

// "1.234 s", "12.5 ms", "830 us": three significant digits or so.

// What a failed task threw, in a few words.
std::string what_of(const std::exception_ptr& e) {
  if (!e) return {};
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}

// A report is printed where nothing may throw (a blocking run prints it on
// its way out): a task_name that throws names that task as if there were none.
std::string printed_name(const run_report& r, std::size_t i) {
  try {
    return r.name(i);
  } catch (...) {
    return "task #" + std::to_string(i);
  }
}

}  // namespace

namespace detail {

std::string human(duration d) {
  const double us = std::chrono::duration<double, std::micro>(d).count();
  char buf[32];
  if (us >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.3f s", us / 1e6);
  } else if (us >= 1e3) {
    std::snprintf(buf, sizeof buf, "%.1f ms", us / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f us", us);
  }
  return buf;
}

void print_stop(std::ostream& os, stop_cause cause, int signal_number) {
  switch (cause) {
    case stop_cause::none:
      os << "ran to its end";
      break;
    case stop_cause::signal: {
      os << "stopped by signal " << signal_number;
      const char* name = signal_number > 0 ? ::strsignal(signal_number) : nullptr;
      if (name != nullptr) os << " (" << name << ")";
      break;
    }
    default:
      os << "stopped (" << cause << ")";
      break;
  }
}

}  // namespace detail

std::ostream& operator<<(std::ostream& os, const run_report& r) {
  os << "graceful run of " << r.size() << " task" << (r.size() == 1 ? "" : "s") << ": ";
  detail::print_stop(os, r.cause(), r.signal_number());
  os << ", exit code " << r.exit_code() << "\n ";
  for (std::size_t k = 0; k < detail::outcome_kinds; ++k) {
    auto o = static_cast<task_outcome>(k);
    os << ' ' << o << ' ' << r.count(o);
  }
  os << '\n';
  for (task_outcome o : {task_outcome::failed, task_outcome::timed_out, task_outcome::abandoned}) {
    const std::size_t n = r.count(o);
    if (n == 0) continue;
    os << "  " << o << ":\n";
    std::size_t shown = 0;
    for (std::size_t i = 0; i < r.size() && shown < detail::names_shown; ++i) {
      if (r.outcome(i) != o) continue;
      ++shown;
      os << "    " << printed_name(r, i);
      if (duration d = r.ran_for(i); d != duration{}) os << " (ran " << detail::human(d) << ")";
      if (o == task_outcome::failed) os << ": " << what_of(r.error(i));
      os << '\n';
    }
    if (n > shown) os << "    ... and " << (n - shown) << " more\n";
  }
  if (r.source_error()) os << "  the source threw: " << what_of(r.source_error()) << '\n';
  return os;
}

}  // namespace graceful
