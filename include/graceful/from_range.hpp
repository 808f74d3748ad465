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

template <class V>
inline constexpr bool owns_its_range = false;
template <class R>
inline constexpr bool owns_its_range<std::ranges::owning_view<R>> = true;

// What a range_source over view V takes its tasks from: a moved-out element
// of a range it owns, an element of one it refers to.
template <class V>
using taken_from_t = std::conditional_t<owns_its_range<V>, std::ranges::range_rvalue_reference_t<V>,
                                        std::ranges::range_reference_t<V>>;

}  // namespace detail

/// A task source over a C++20 input range of tasks (see from_range).
template <std::ranges::view V>
class range_source {
 public:
  using task_type = std::ranges::range_value_t<V>;

  explicit range_source(V view) : view_(std::move(view)) {}
  range_source(range_source&&) = default;
  range_source& operator=(range_source&&) = default;
  range_source(const range_source&) = delete;
  range_source& operator=(const range_source&) = delete;

  /// The next task, or std::nullopt at the end of the range.
  std::optional<task_type> operator()() {
    if (!at_) at_.emplace(std::ranges::begin(view_));
    auto& it = *at_;
    if (it == std::ranges::end(view_)) return std::nullopt;
    std::optional<task_type> next;
    if constexpr (detail::owns_its_range<V>) {
      next.emplace(std::ranges::iter_move(it));  // the source's own copy
    } else {
      next.emplace(*it);
    }
    ++it;
    return next;
  }

 private:
  V view_;
  std::optional<std::ranges::iterator_t<V>> at_;  // from the first call on
};

/// A source (for async_run_tasks / run_tasks) that gives the tasks of `r`
/// in order, one per pull, then std::nullopt.
///
/// An rvalue range (a std::vector moved in, a view that produces its tasks)
/// is kept by the source, and its tasks are moved out one by one: move-only
/// tasks are fine. An lvalue range is referred to, not copied: it must
/// outlive the run, and its tasks are copied out as they are pulled (the
/// range itself is left as it was). A view that makes its tasks as it goes
/// (`std::views::iota(0, n) | std::views::transform(make_task)`) keeps the
/// run's memory O(max_concurrent) whatever `n`.
///
/// The source walks the range from its first pull on: do not move it after
/// that (a run never does).
template <std::ranges::viewable_range R>
  requires std::ranges::input_range<R> && run_task<std::ranges::range_value_t<R>> &&
           std::constructible_from<std::ranges::range_value_t<R>,
                                   detail::taken_from_t<std::views::all_t<R>>>
range_source<std::views::all_t<R>> from_range(R&& r) {
  return range_source<std::views::all_t<R>>(std::views::all(std::forward<R>(r)));
}

}  // namespace graceful
