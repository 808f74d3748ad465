#include <graceful/async_semaphore.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <future>
#include <optional>
#include <vector>

namespace asio = boost::asio;
using boost::system::error_code;
using semaphore = graceful::async_semaphore;
using graceful::semaphore_permit;

namespace {

// What one async_acquire produced, filled in by its completion handler.
struct outcome {
  bool done = false;
  error_code ec;
  semaphore_permit permit;

  auto handler() {
    return [this](error_code e, semaphore_permit p) {
      BOOST_TEST_REQUIRE(!done);  // a handler runs once
      done = true;
      ec = e;
      permit = std::move(p);
    };
  }
};

// Runs every ready handler. An io_context stops when it runs out of work, and
// a stopped one runs nothing until restarted, so every step restarts it.
std::size_t drain(asio::io_context& ctx) {
  ctx.restart();
  return ctx.poll();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(async_semaphore)

BOOST_AUTO_TEST_CASE(grants_a_free_slot_and_counts_it) {
  asio::io_context ctx;
  semaphore sem(ctx.get_executor(), 2);
  BOOST_TEST(sem.available() == 2u);
  outcome a;
  sem.async_acquire(a.handler());
  ctx.run();
  BOOST_TEST(a.done);
  BOOST_TEST(!a.ec);
  BOOST_TEST(static_cast<bool>(a.permit));
  BOOST_TEST(sem.available() == 1u);
  a.permit.release();
  BOOST_TEST(!a.permit);
  BOOST_TEST(sem.available() == 2u);
}

BOOST_AUTO_TEST_CASE(never_completes_inside_the_initiating_call) {
  asio::io_context ctx;
  semaphore sem(ctx.get_executor(), 1);
  outcome free_slot, queued, after_close;
  sem.async_acquire(free_slot.handler());
  BOOST_TEST(!free_slot.done);
  ctx.run();
  BOOST_TEST(free_slot.done);

  sem.async_acquire(queued.handler());
  free_slot.permit.release();  // the hand-over is posted, not run here
  BOOST_TEST(!queued.done);
  ctx.restart();
  ctx.run();
  BOOST_TEST(queued.done);

  sem.close();
  sem.async_acquire(after_close.handler());
  BOOST_TEST(!after_close.done);
  ctx.restart();
  ctx.run();
  BOOST_TEST(after_close.ec == graceful::error::semaphore_closed);
}

BOOST_AUTO_TEST_CASE(grants_in_fifo_order) {
  asio::io_context ctx;
  semaphore sem(ctx.get_executor(), 1);
  auto first = sem.try_acquire();
  BOOST_TEST_REQUIRE(first.has_value());
  std::vector<int> order;
  std::vector<semaphore_permit> held;
  for (int i = 0; i < 8; ++i) {
    sem.async_acquire([&, i](error_code ec, semaphore_permit p) {
      BOOST_TEST(!ec);
      order.push_back(i);
      held.push_back(std::move(p));
    });
  }
  drain(ctx);
  BOOST_TEST(sem.waiting() == 8u);
  first->release();
  for (int i = 0; i < 8; ++i) {
    drain(ctx);
    BOOST_TEST_REQUIRE(order.size() == static_cast<std::size_t>(i + 1));
    BOOST_TEST(order.back() == i);
    held.back().release();
  }
  drain(ctx);
  BOOST_TEST(sem.available() == 1u);
  BOOST_TEST(sem.waiting() == 0u);
}

BOOST_AUTO_TEST_CASE(a_released_slot_goes_to_the_oldest_waiter_not_a_newcomer) {
  asio::io_context ctx;
  semaphore sem(ctx.get_executor(), 1);
  auto holder = sem.try_acquire();
  outcome old_waiter, newcomer;
  sem.async_acquire(old_waiter.handler());  // parked (or on its way to the strand)
  holder->release();
  // Both the lock-free and the queued path must see the older waiter.
  BOOST_TEST(!sem.try_acquire().has_value());
  sem.async_acquire(newcomer.handler());
  drain(ctx);
  BOOST_TEST(old_waiter.done);
  BOOST_TEST(static_cast<bool>(old_waiter.permit));
  BOOST_TEST(!newcomer.done);
  old_waiter.permit.release();
  drain(ctx);
  BOOST_TEST(newcomer.done);
  BOOST_TEST(static_cast<bool>(newcomer.permit));
}

BOOST_AUTO_TEST_CASE(try_acquire_takes_free_slots_only) {
  asio::io_context ctx;
  semaphore sem(ctx.get_executor(), 2);
  auto a = sem.try_acquire();
  auto b = sem.try_acquire();
  BOOST_TEST(a.has_value());
  BOOST_TEST(b.has_value());
  BOOST_TEST(!sem.try_acquire().has_value());
  BOOST_TEST(sem.available() == 0u);
  a.reset();
  BOOST_TEST(sem.available() == 1u);
  sem.close();
  BOOST_TEST(!sem.try_acquire().has_value());
}

BOOST_AUTO_TEST_CASE(permit_is_move_only_raii) {
  asio::io_context ctx;
  semaphore sem(ctx.get_executor(), 1);
  semaphore_permit empty;
  BOOST_TEST(!empty);
  {
    semaphore_permit p = std::move(*sem.try_acquire());
    BOOST_TEST(sem.available() == 0u);
    semaphore_permit q(std::move(p));
    BOOST_TEST(!p);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
    BOOST_TEST(static_cast<bool>(q));
    BOOST_TEST(sem.available() == 0u);
    q = semaphore_permit();  // assigning over a held permit releases it
    BOOST_TEST(sem.available() == 1u);
    p = std::move(*sem.try_acquire());
  }
  BOOST_TEST(sem.available() == 1u);
}

BOOST_AUTO_TEST_CASE(each_cancellation_type_removes_a_queued_waiter) {
  for (auto type : {asio::cancellation_type::terminal, asio::cancellation_type::partial,
                    asio::cancellation_type::total}) {
    BOOST_TEST_CONTEXT("cancellation type " << static_cast<int>(type)) {
      asio::io_context ctx;
      semaphore sem(ctx.get_executor(), 1);
      auto holder = sem.try_acquire();
      asio::cancellation_signal sig;
      outcome before, cancelled, after;
      sem.async_acquire(before.handler());
      sem.async_acquire(asio::bind_cancellation_slot(sig.slot(), cancelled.handler()));
      sem.async_acquire(after.handler());
      drain(ctx);
      BOOST_TEST(sem.waiting() == 3u);
      sig.emit(type);
      drain(ctx);
      BOOST_TEST(cancelled.done);
      BOOST_TEST(cancelled.ec == asio::error::operation_aborted);
      BOOST_TEST(!cancelled.permit);
      BOOST_TEST(sem.waiting() == 2u);
      // The rest of the queue is intact and keeps its order.
      holder.reset();
      drain(ctx);
      BOOST_TEST(before.done);
      BOOST_TEST(!after.done);
      before.permit.release();
      drain(ctx);
      BOOST_TEST(after.done);
      BOOST_TEST(!after.ec);
      after.permit.release();
      BOOST_TEST(sem.available() == 1u);
    }
  }
}

BOOST_AUTO_TEST_CASE(cancelling_before_the_waiter_reaches_the_strand_still_cancels) {
  asio::io_context ctx;
  semaphore sem(ctx.get_executor(), 0);
  asio::cancellation_signal sig;
  outcome w;
  sem.async_acquire(asio::bind_cancellation_slot(sig.slot(), w.handler()));
  sig.emit(asio::cancellation_type::terminal);  // nothing has run yet
  ctx.run();
  BOOST_TEST(w.done);
  BOOST_TEST(w.ec == asio::error::operation_aborted);
  BOOST_TEST(sem.waiting() == 0u);
}

BOOST_AUTO_TEST_CASE(emit_after_completion_is_harmless) {
  asio::io_context ctx;
  semaphore sem(ctx.get_executor(), 1);
  auto holder = sem.try_acquire();
  asio::cancellation_signal sig;
  outcome w;
  sem.async_acquire(asio::bind_cancellation_slot(sig.slot(), w.handler()));
  drain(ctx);
  holder.reset();
  drain(ctx);
  BOOST_TEST_REQUIRE(w.done);
  BOOST_TEST(!w.ec);
  sig.emit(asio::cancellation_type::terminal);
  sig.emit(asio::cancellation_type::total);
  drain(ctx);
  BOOST_TEST(static_cast<bool>(w.permit));
  BOOST_TEST(sem.available() == 0u);
  w.permit.release();
  BOOST_TEST(sem.available() == 1u);
}

BOOST_AUTO_TEST_CASE(a_grant_racing_a_cancel_never_loses_the_slot) {
  // Both orders of "release" and "cancel" back to back, and completions whose
  // handler is destroyed unrun (its executor's context goes away): the slot
  // always comes back, through the permit inside the dropped completion.
  for (int round = 0; round < 300; ++round) {
    BOOST_TEST_CONTEXT("round " << round) {
      asio::io_context ctx;
      semaphore sem(ctx.get_executor(), 1);
      auto holder = sem.try_acquire();
      asio::cancellation_signal sig;
      outcome w;
      const bool drop_unrun = round % 3 == 0;
      std::optional<asio::io_context> handler_ctx(std::in_place);
      if (drop_unrun) {
        sem.async_acquire(asio::bind_cancellation_slot(
            sig.slot(), asio::bind_executor(handler_ctx->get_executor(), w.handler())));
      } else {
        sem.async_acquire(asio::bind_cancellation_slot(sig.slot(), w.handler()));
      }
      drain(ctx);
      if (round % 2 == 0) {
        holder.reset();
        sig.emit(asio::cancellation_type::terminal);
      } else {
        sig.emit(asio::cancellation_type::terminal);
        holder.reset();
      }
      drain(ctx);
      if (drop_unrun) {
        handler_ctx.reset();
        BOOST_TEST(!w.done);
      } else {
        BOOST_TEST(w.done);
        BOOST_TEST((w.ec ? !w.permit : static_cast<bool>(w.permit)));
        w.permit.release();
      }
      drain(ctx);
      BOOST_TEST(sem.available() == 1u);
      BOOST_TEST(sem.waiting() == 0u);
    }
  }
}

BOOST_AUTO_TEST_CASE(close_fails_every_waiter_and_later_acquires) {
  asio::io_context ctx;
  semaphore sem(ctx.get_executor(), 1);
  auto holder = sem.try_acquire();
  std::vector<outcome> waiters(5);
  for (auto& w : waiters) sem.async_acquire(w.handler());
  drain(ctx);
  BOOST_TEST(sem.waiting() == 5u);
  sem.close();
  BOOST_TEST(sem.is_closed());
  sem.close();  // idempotent
  drain(ctx);
  for (auto& w : waiters) {
    BOOST_TEST(w.done);
    BOOST_TEST(w.ec == graceful::error::semaphore_closed);
    BOOST_TEST(!w.permit);
  }
  BOOST_TEST(sem.waiting() == 0u);
  outcome later;
  sem.async_acquire(later.handler());
  drain(ctx);
  BOOST_TEST(later.ec == graceful::error::semaphore_closed);
  // A permit granted before close still returns its slot.
  holder.reset();
  BOOST_TEST(sem.available() == 1u);
  BOOST_TEST(!sem.try_acquire().has_value());
}

BOOST_AUTO_TEST_CASE(destroying_the_semaphore_aborts_parked_waiters) {
  asio::io_context ctx;
  std::optional<semaphore_permit> survivor;
  std::vector<outcome> waiters(3);
  {
    semaphore sem(ctx.get_executor(), 1);
    survivor = sem.try_acquire();
    for (auto& w : waiters) sem.async_acquire(w.handler());
    drain(ctx);
  }
  drain(ctx);
  for (auto& w : waiters) {
    BOOST_TEST(w.done);
    BOOST_TEST(w.ec == asio::error::operation_aborted);
  }
  survivor.reset();  // releasing after the semaphore is gone is harmless
  BOOST_TEST(drain(ctx) == 0u);
}

BOOST_AUTO_TEST_CASE(destroying_the_context_with_parked_waiters_leaks_nothing) {
  // ASan's leak check is the assertion here; the handler's captured object
  // counts its own destruction.
  auto alive = std::make_shared<int>(0);
  std::weak_ptr<int> watch = alive;
  {
    asio::io_context ctx;
    semaphore sem(ctx.get_executor(), 0);
    sem.async_acquire([keep = std::move(alive)](error_code, semaphore_permit) {});
    drain(ctx);
    BOOST_TEST(!watch.expired());
  }
  BOOST_TEST(watch.expired());
}

BOOST_AUTO_TEST_CASE(a_parked_waiter_is_outstanding_work) {
  asio::io_context ctx;
  semaphore sem(ctx.get_executor(), 0);
  asio::cancellation_signal sig;
  outcome w;
  sem.async_acquire(asio::bind_cancellation_slot(sig.slot(), w.handler()));
  drain(ctx);
  BOOST_TEST(!ctx.stopped());  // run() would block, not return with the waiter lost
  sig.emit(asio::cancellation_type::terminal);
  drain(ctx);
  BOOST_TEST(w.done);
  BOOST_TEST(ctx.stopped());  // and once it completed nothing is left behind
}

BOOST_AUTO_TEST_CASE(completes_on_the_handlers_associated_executor) {
  asio::io_context ctx;
  auto strand = asio::make_strand(ctx);
  semaphore sem(ctx.get_executor(), 1);
  bool on_strand = false;
  sem.async_acquire(asio::bind_executor(strand, [&](error_code, semaphore_permit) {
    on_strand = strand.running_in_this_thread();
  }));
  ctx.run();
  BOOST_TEST(on_strand);
}

BOOST_AUTO_TEST_CASE(token_use_awaitable) {
  asio::io_context ctx;
  semaphore sem(ctx.get_executor(), 1);
  int granted = 0;
  auto task = [&]() -> asio::awaitable<void> {
    auto p = co_await sem.async_acquire(asio::use_awaitable);
    BOOST_TEST(static_cast<bool>(p));
    ++granted;
  };
  asio::co_spawn(ctx, task, asio::detached);
  asio::co_spawn(ctx, task, asio::detached);
  ctx.run();
  BOOST_TEST(granted == 2);
  BOOST_TEST(sem.available() == 1u);

  // After close() the awaitable form throws system_error(semaphore_closed).
  sem.close();
  error_code thrown;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        try {
          co_await sem.async_acquire(asio::use_awaitable);
        } catch (const boost::system::system_error& e) {
          thrown = e.code();
        }
      },
      asio::detached);
  ctx.restart();
  ctx.run();
  BOOST_TEST(thrown == graceful::error::semaphore_closed);
}

BOOST_AUTO_TEST_CASE(token_deferred) {
  asio::io_context ctx;
  semaphore sem(ctx.get_executor(), 1);
  auto op = sem.async_acquire(asio::deferred);
  drain(ctx);
  BOOST_TEST(sem.available() == 1u);  // nothing happens until launched
  outcome w;
  std::move(op)(w.handler());
  drain(ctx);
  BOOST_TEST(w.done);
  BOOST_TEST(static_cast<bool>(w.permit));
  BOOST_TEST(sem.available() == 0u);
}

BOOST_AUTO_TEST_CASE(token_deferred_outlives_the_semaphore) {
  asio::io_context ctx;
  std::optional<semaphore> sem(std::in_place, ctx.get_executor(), 1);
  auto op = sem->async_acquire(asio::deferred);
  sem.reset();
  outcome w;
  std::move(op)(w.handler());
  drain(ctx);
  BOOST_TEST(w.done);
  BOOST_TEST(w.ec == asio::error::operation_aborted);
}

BOOST_AUTO_TEST_CASE(token_use_future_on_a_thread_pool) {
  asio::thread_pool pool(2);
  semaphore sem(pool.get_executor(), 1);
  std::future<semaphore_permit> first = sem.async_acquire(asio::use_future);
  semaphore_permit p = first.get();
  BOOST_TEST(static_cast<bool>(p));
  std::future<semaphore_permit> second = sem.async_acquire(asio::use_future);
  // The slot is held, so the second cannot be ready whatever the timing.
  BOOST_TEST((second.wait_for(std::chrono::milliseconds(0)) == std::future_status::timeout));
  p.release();
  semaphore_permit q = second.get();
  BOOST_TEST(static_cast<bool>(q));
  sem.close();
  std::future<semaphore_permit> third = sem.async_acquire(asio::use_future);
  BOOST_CHECK_THROW(third.get(), boost::system::system_error);
  q.release();
  pool.join();
  BOOST_TEST(sem.available() == 1u);
}

BOOST_AUTO_TEST_CASE(cancelling_many_queued_waiters_frees_them_all) {
  asio::io_context ctx;
  semaphore sem(ctx.get_executor(), 0);
  constexpr int n = 10'000;
  std::vector<asio::cancellation_signal> sigs(n);
  int aborted = 0;
  for (auto& s : sigs) {
    sem.async_acquire(asio::bind_cancellation_slot(s.slot(), [&](error_code ec, semaphore_permit) {
      if (ec == asio::error::operation_aborted) ++aborted;
    }));
  }
  drain(ctx);
  BOOST_TEST(sem.waiting() == static_cast<std::size_t>(n));
  // Cancel from the back, the middle and the front: removal is by identity.
  for (int i = n - 1; i >= 0; i -= 2) sigs[static_cast<std::size_t>(i)].emit(asio::cancellation_type::terminal);
  for (int i = 0; i < n; i += 2) sigs[static_cast<std::size_t>(i)].emit(asio::cancellation_type::partial);
  drain(ctx);
  BOOST_TEST(aborted == n);
  BOOST_TEST(sem.waiting() == 0u);
  BOOST_TEST(ctx.stopped());
}

BOOST_AUTO_TEST_SUITE_END()
