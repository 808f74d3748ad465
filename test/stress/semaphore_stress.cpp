// Many threads, many clients, random cancels: the semaphore never grants more
// than its slots, never loses one, and accounts for every acquire.
#define BOOST_TEST_MODULE graceful_stress
#include <graceful/async_semaphore.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#ifdef GRACEFUL_BOOST_TEST_INCLUDED
#include <boost/test/included/unit_test.hpp>
#else
#include <boost/test/unit_test.hpp>
#endif

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

namespace asio = boost::asio;
using boost::system::error_code;
using graceful::async_semaphore;
using graceful::semaphore_permit;

namespace {

struct totals {
  std::atomic<std::uint64_t> granted{0}, aborted{0}, other_errors{0}, tried{0}, try_granted{0};
  std::atomic<int> in_use{0}, peak{0}, clients_left{0};
};

// A client loops acquire -> hold briefly -> release on its own strand, and
// sometimes cancels its pending acquire: at once, or a hop later so that the
// cancel races the grant.
class client {
 public:
  client(asio::thread_pool& pool, async_semaphore& sem, totals& t, int acquires, std::uint32_t seed)
      : strand_(asio::make_strand(pool)), sem_(sem), t_(t), left_(acquires), rng_(seed) {}

  void start() {
    asio::post(strand_, [this] { next(); });
  }

 private:
  void next() {
    if (left_ == 0) {
      t_.clients_left.fetch_sub(1);
      return;
    }
    --left_;
    if (rng_() % 8 == 0) {  // the synchronous path, from a pool thread
      t_.tried.fetch_add(1);
      if (auto p = sem_.try_acquire()) {
        t_.try_granted.fetch_add(1);
        hold(std::move(*p));
        return;
      }
    }
    sem_.async_acquire(asio::bind_cancellation_slot(
        sig_.slot(), asio::bind_executor(strand_, [this](error_code ec, semaphore_permit p) {
          on_acquire(ec, std::move(p));
        })));
    static constexpr asio::cancellation_type types[] = {asio::cancellation_type::terminal,
                                                        asio::cancellation_type::partial,
                                                        asio::cancellation_type::total};
    switch (rng_() % 6) {
      case 0:
        sig_.emit(types[rng_() % 3]);
        break;
      case 1:
        asio::post(strand_, [this, type = types[rng_() % 3]] { sig_.emit(type); });
        break;
      default:
        break;
    }
  }

  void on_acquire(error_code ec, semaphore_permit p) {
    if (!ec && p) {
      t_.granted.fetch_add(1);
      hold(std::move(p));
    } else if (ec == asio::error::operation_aborted && !p) {
      t_.aborted.fetch_add(1);
      next();
    } else {
      t_.other_errors.fetch_add(1);
      next();
    }
  }

  void hold(semaphore_permit p) {
    int now = t_.in_use.fetch_add(1) + 1;
    int peak = t_.peak.load();
    while (now > peak && !t_.peak.compare_exchange_weak(peak, now)) {
    }
    asio::post(strand_, [this, p = std::move(p)]() mutable {
      t_.in_use.fetch_sub(1);
      // Release from this thread or let the destructor do it on another hop.
      if (rng_() % 2 == 0) p.release();
      asio::post(strand_, [this, p = std::move(p)] { next(); });
    });
  }

  asio::strand<asio::thread_pool::executor_type> strand_;
  async_semaphore& sem_;
  totals& t_;
  int left_;
  std::minstd_rand rng_;
  asio::cancellation_signal sig_;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(semaphore_stress)

BOOST_AUTO_TEST_CASE(four_threads_100000_acquires_with_random_cancels) {
  constexpr int threads = 4, clients = 32, per_client = 100'000 / clients;
  constexpr std::size_t slots = 3;
  asio::thread_pool pool(threads);
  async_semaphore sem(pool.get_executor(), slots);
  totals t;
  t.clients_left = clients;
  std::vector<std::unique_ptr<client>> cs;
  for (int i = 0; i < clients; ++i) {
    cs.push_back(std::make_unique<client>(pool, sem, t, per_client, 1234u + static_cast<std::uint32_t>(i)));
  }
  for (auto& c : cs) c->start();
  pool.join();  // returns when every client has finished and nothing is parked

  BOOST_TEST(t.clients_left.load() == 0);
  BOOST_TEST(t.other_errors.load() == 0u);
  const auto async_acquires = std::uint64_t{clients} * per_client - t.try_granted.load();
  BOOST_TEST(t.granted.load() + t.aborted.load() == async_acquires);
  BOOST_TEST(t.aborted.load() > 0u);  // the cancels did reach parked waiters
  BOOST_TEST(t.peak.load() <= static_cast<int>(slots));
  BOOST_TEST(t.peak.load() == static_cast<int>(slots));  // and the slots were all used
  BOOST_TEST(sem.available() == slots);
  BOOST_TEST(sem.waiting() == 0u);
  BOOST_TEST_MESSAGE("granted " << t.granted.load() << ", aborted " << t.aborted.load()
                                << ", try_acquire " << t.try_granted.load() << "/" << t.tried.load());
}

BOOST_AUTO_TEST_SUITE_END()
