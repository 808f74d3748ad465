// One task per line of a file (or stdin), a bounded number at a time, read
// as the run goes (a task source: memory stays flat however long the input),
// stopped by Ctrl+C and resumed where it stopped: no line lost, none done
// twice.
//
//   crawl_lines [--file F] [--out O] [--from LINE] [--skip L1,L2,...]
//               [--max-concurrent C] [--step-ms MS] [--grace-ms MS]
//
// Each line goes through a simulated asynchronous step (a timer of up to
// --step-ms, different per line), then its number is written to --out
// (stdout by default): a line is done when its number is written, and only
// then. Lines are numbered from 1; --from starts at a later one, --skip
// leaves out lines already done.
//
// On Ctrl+C (or SIGTERM): no line is read any more; the lines in flight may
// finish for --grace-ms (2000 by default; a second Ctrl+C ends the grace),
// then the rest is cancelled. On stderr: the report, then what a rerun needs:
//   resume: --from L [--skip A,B,...]
// (L is the first line not done; the --skip list names the later lines that
// were done all the same, when the grace did not let every line finish), or
//   done: N lines
// when the input was done. Exits as a shell expects (dies by the signal).
#include <graceful/graceful.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace asio = boost::asio;

namespace {

struct settings {
  std::string file;  // empty: stdin
  std::string out;   // empty: stdout
  std::uint64_t from = 1;
  std::set<std::uint64_t> skip;
  std::size_t max_concurrent = 100;
  unsigned step_ms = 5;
  std::chrono::milliseconds grace{2000};
};

// The lines to do, in order: from `from` on, without the skipped ones.
class line_walk {
 public:
  explicit line_walk(const settings& s) : next_(s.from), skip_(&s.skip) {}

  // The number of the next line to do.
  std::uint64_t next() {
    while (skip_->count(next_) > 0) ++next_;
    return next_++;
  }

 private:
  std::uint64_t next_;
  const std::set<std::uint64_t>* skip_;
};

// Reads the input and makes a task of each line to do: the run's source.
struct line_source {
  std::istream* in;
  std::ostream* out;
  const settings* s;
  std::uint64_t read = 0;  // lines read so far
  line_walk walk;

  std::optional<std::function<asio::awaitable<void>()>> operator()() {
    const std::uint64_t number = walk.next();
    std::string line;
    while (read < number) {
      if (!std::getline(*in, line)) return std::nullopt;
      ++read;
    }
    // A step of 0 to step_ms milliseconds, fixed per line.
    const std::chrono::milliseconds step(static_cast<long>((number * 2654435761u) % (s->step_ms + 1u)));
    return [number, step, text = std::move(line), out = out]() -> asio::awaitable<void> {
      asio::steady_timer t(co_await asio::this_coro::executor, step);
      co_await t.async_wait(asio::use_awaitable);  // a cancel ends the line here, not done
      (void)text;                                   // the line's work would use it
      *out << number << '\n';
    };
  }
};

std::set<std::uint64_t> parse_list(std::string_view v) {
  std::set<std::uint64_t> out;
  std::stringstream ss{std::string(v)};
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.insert(std::stoull(item));
  }
  return out;
}

settings parse(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument("missing value after " + std::string(arg));
    const std::string v = argv[++i];
    if (arg == "--file") {
      s.file = v;
    } else if (arg == "--out") {
      s.out = v;
    } else if (arg == "--from") {
      s.from = std::stoull(v);
      if (s.from == 0) throw std::invalid_argument("--from counts lines from 1");
    } else if (arg == "--skip") {
      s.skip = parse_list(v);
    } else if (arg == "--max-concurrent") {
      s.max_concurrent = std::stoul(v);
    } else if (arg == "--step-ms") {
      s.step_ms = static_cast<unsigned>(std::stoul(v));
    } else if (arg == "--grace-ms") {
      s.grace = std::chrono::milliseconds(std::stoul(v));
    } else {
      throw std::invalid_argument("unknown option " + std::string(arg));
    }
  }
  return s;
}

// What a rerun needs: the first line not done, and the later ones done.
void print_resume(const graceful::run_report& r, const settings& s, bool input_ended) {
  line_walk walk(s);
  std::optional<std::uint64_t> first_not_done;
  std::set<std::uint64_t> done_after;
  std::uint64_t line = 0;
  for (std::size_t i = 0; i < r.size(); ++i) {
    line = walk.next();
    const bool done = r.outcome(i) == graceful::task_outcome::completed;
    if (!done && !first_not_done) first_not_done = line;
    if (done && first_not_done) done_after.insert(line);
  }
  if (!first_not_done && input_ended) {
    std::cerr << "done: " << r.size() << " lines\n";
    return;
  }
  const std::uint64_t from = first_not_done ? *first_not_done : walk.next();
  // The old skips past the resume point still hold.
  for (std::uint64_t k : s.skip) {
    if (k > from) done_after.insert(k);
  }
  std::cerr << "resume: --from " << from;
  if (!done_after.empty()) {
    std::cerr << " --skip ";
    bool first = true;
    for (std::uint64_t k : done_after) {
      std::cerr << (first ? "" : ",") << k;
      first = false;
    }
  }
  std::cerr << '\n';
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  try {
    s = parse(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr,
                 "crawl_lines: %s\nusage: crawl_lines [--file F] [--out O] [--from LINE] [--skip L1,L2,...] "
                 "[--max-concurrent C] [--step-ms MS] [--grace-ms MS]\n",
                 e.what());
    return 2;
  }
  std::ifstream file;
  if (!s.file.empty()) {
    file.open(s.file);
    if (!file) {
      std::fprintf(stderr, "crawl_lines: cannot read %s\n", s.file.c_str());
      return 2;
    }
  }
  std::ofstream out_file;
  if (!s.out.empty()) {
    out_file.open(s.out, std::ios::app);
    if (!out_file) {
      std::fprintf(stderr, "crawl_lines: cannot write %s\n", s.out.c_str());
      return 2;
    }
  }
  std::istream& in = s.file.empty() ? std::cin : file;
  std::ostream& out = s.out.empty() ? std::cout : out_file;

  graceful::run_options options;
  options.grace = s.grace;
  options.task_name = [&s](std::size_t i) {
    line_walk walk(s);
    std::uint64_t line = 0;
    for (std::size_t k = 0; k <= i; ++k) line = walk.next();
    return "line " + std::to_string(line);
  };
  graceful::run_report report;
  try {
    report = graceful::run_tasks(line_source{&in, &out, &s, 0, line_walk(s)}, s.max_concurrent, options);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "crawl_lines: %s\n", e.what());
    return 2;
  }
  out.flush();
  std::cerr << report;
  // The input ended if the run pulled until the source had no more.
  print_resume(report, s, report.cause() == graceful::stop_cause::none);
  graceful::exit_process(report);
}
