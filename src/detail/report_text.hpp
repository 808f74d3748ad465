#pragma once

#include <graceful/report.hpp>

#include <cstddef>
#include <iosfwd>
#include <string>

namespace graceful::detail {

// The pieces of the text a person reads after a shutdown, shared by a run's
// report and a registry's snapshot.

// How many tasks a summary names per outcome (then "... and N more").
inline constexpr std::size_t names_shown = 20;

// A duration as "2.500 s", "12.3 ms" or "40 us".
std::string human(duration d);

// "ran to its end", "stopped by signal 15 (Terminated)", "stopped (deadline)".
void print_stop(std::ostream& os, stop_cause cause, int signal_number);

}  // namespace graceful::detail
