// registry_snapshot on its own: exit_process(const registry_snapshot&) and
// printing a snapshot need none of the registry, and a program that links
// exit_process for a run_report alone does not take the registry's code with it.
#include <graceful/task_registry.hpp>

#include "detail/report_text.hpp"

#include <ostream>

namespace graceful {

std::ostream& operator<<(std::ostream& os, task_state s) {
  switch (s) {
    case task_state::not_started:
      return os << "not_started";
    case task_state::queued:
      return os << "queued";
    case task_state::running:
      return os << "running";
    case task_state::done:
      return os << "done";
  }
  return os << "task_state(" << static_cast<int>(s) << ")";
}

std::size_t registry_snapshot::count(task_state s) const noexcept {
  switch (s) {
    case task_state::not_started:
      return not_started;
    case task_state::queued:
      return queued;
    case task_state::running:
      return running;
    case task_state::done:
      return completed + failed + cancelled_running + cancelled_queued + cancelled_not_started +
             timed_out + abandoned;
  }
  return 0;
}

std::size_t registry_snapshot::count(task_outcome o) const noexcept {
  switch (o) {
    case task_outcome::completed:
      return completed;
    case task_outcome::failed:
      return failed;
    case task_outcome::cancelled_running:
      return cancelled_running;
    case task_outcome::cancelled_queued:
      return cancelled_queued;
    case task_outcome::not_started:
      return cancelled_not_started;
    case task_outcome::timed_out:
      return timed_out;
    case task_outcome::abandoned:
      return abandoned;
  }
  return 0;
}

int registry_snapshot::exit_code() const noexcept {
  if (cause == stop_cause::signal && signal_number > 0) return 128 + signal_number;
  return failed + timed_out + abandoned == 0 ? 0 : 1;
}

std::ostream& operator<<(std::ostream& os, const registry_snapshot& s) {
  os << "graceful registry: ";
  detail::print_stop(os, s.cause, s.signal_number);
  os << (s.closed ? ", closed" : "") << ", exit code " << s.exit_code() << "\n ";
  for (task_state st : {task_state::not_started, task_state::queued, task_state::running}) {
    os << ' ' << st << ' ' << s.count(st);
  }
  os << "\n ";
  for (std::size_t k = 0; k < detail::outcome_kinds; ++k) {
    auto o = static_cast<task_outcome>(k);
    os << ' ' << o << ' ' << s.count(o);
  }
  os << '\n';
  if (!s.abandoned_tasks.empty()) {
    const std::size_t shown = detail::names_shown;
    os << "  abandoned:\n";
    for (std::size_t i = 0; i < s.abandoned_tasks.size() && i < shown; ++i) {
      const abandoned_task& t = s.abandoned_tasks[i];
      os << "    " << t.name << " (ran " << detail::human(t.ran_for) << ")\n";
    }
    if (s.abandoned_tasks.size() > shown) os << "    ... and " << (s.abandoned_tasks.size() - shown) << " more\n";
  }
  return os;
}

}  // namespace graceful
