// graceful: bounded-concurrency async work with graceful shutdown, on Boost.Asio.
#pragma once

#include <graceful/task.hpp>

#include <concepts>
#include <optional>
#include <ranges>
#include <type_traits>
#include <utility>

namespace graceful {

namespace detail {

// How a range_source holds what from_range was given (R as deduced there):
// an rvalue is kept, an lvalue referred to. The std views that would do it
// (std::views::all) are out of reach of clang 14 over libstdc++ 12.
template <class R>
struct range_hold {
  R range;
  explicit range_hold(R&& r) : range(std::move(r)) {}
  R& get() noexcept { return range; }
  // A range kept that is not a view owns its tasks: they are moved out.
  static constexpr bool moves_out = !std::ranges::view<R>;
};

template <class R>
struct range_hold<R&> {
  R* range;
  explicit range_hold(R& r) noexcept : range(&r) {}
  R& get() const noexcept { return *range; }
  static constexpr bool moves_out = false;
};

template <class R>
using held_range_t = std::remove_reference_t<R>;

// What a range_source over R takes its tasks from.
template <class R>
using taken_from_t = std::conditional_t<range_hold<R>::moves_out,
                                        std::ranges::range_rvalue_reference_t<held_range_t<R>>,
                                        std::ranges::range_reference_t<held_range_t<R>>>;

}  // namespace detail

/// A task source over a C++20 input range of tasks (see from_range); R is
/// the range's type as from_range was given it (an lvalue reference when
/// the range is referred to).
template <class R>
class range_source {
 public:
  using task_type = std::ranges::range_value_t<detail::held_range_t<R>>;

  explicit range_source(R&& r) : hold_(std::forward<R>(r)) {}
  range_source(range_source&&) = default;
  range_source& operator=(range_source&&) = default;
  range_source(const range_source&) = delete;
  range_source& operator=(const range_source&) = delete;

  /// The next task, or std::nullopt at the end of the range.
  std::optional<task_type> operator()() {
    auto& range = hold_.get();
    if (!at_) at_.emplace(std::ranges::begin(range));
    auto& it = *at_;
    if (it == std::ranges::end(range)) return std::nullopt;
    std::optional<task_type> next;
    if constexpr (detail::range_hold<R>::moves_out) {
      next.emplace(std::ranges::iter_move(it));  // the source's own copy
    } else {
      next.emplace(*it);
    }
    ++it;
    return next;
  }

 private:
  detail::range_hold<R> hold_;
  std::optional<std::ranges::iterator_t<detail::held_range_t<R>>> at_;  // from the first pull on
};

/// A source (for async_run_tasks / run_tasks) that gives the tasks of `r`
/// in order, one per pull, then std::nullopt.
///
/// A container moved in (`from_range(std::move(v))`) is kept by the source,
/// and its tasks are moved out one by one: move-only tasks are fine. An
/// lvalue range is referred to, not copied: it must outlive the run, and its
/// tasks are copied out as they are pulled (the range itself is left as it
/// was). A view moved in is kept; the tasks it refers to are copied out, the
/// tasks it makes (a transform) handed over as it makes them. A view that
/// makes its tasks as it goes (`std::views::iota(0, n) |
/// std::views::transform(make_task)`) keeps the run's memory
/// O(max_concurrent) whatever `n`.
///
/// The source walks the range from its first pull on: do not move it after
/// that (a run never does).
template <class R>
  requires std::ranges::input_range<detail::held_range_t<R>> &&
           (std::is_lvalue_reference_v<R> || std::move_constructible<R>) &&
           run_task<std::ranges::range_value_t<detail::held_range_t<R>>> &&
           std::constructible_from<std::ranges::range_value_t<detail::held_range_t<R>>,
                                   detail::taken_from_t<R>>
range_source<R> from_range(R&& r) {
  return range_source<R>(std::forward<R>(r));
}

}  // namespace graceful
