// tests/test_semaphore.cpp: weft::semaphore and weft::bounded_semaphore (patterns.md row 9,
// asyncio.Semaphore and BoundedSemaphore): permits, try_acquire, release(n), FIFO without
// overtaking, the bound, releases from foreign threads, and cancellation in every waiter state
// (reliability rule 3). Stress S4 (semaphore part): permits conserved, never more than N holders.
//
// Deterministic tests use one worker: "entered == k" after a yield means the k-th waiter queued.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "support/fifo_rig.hpp"
#include "support/foreign_thread.hpp"
#include "support/stress.hpp"
#include "support/waiter_log.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

using log_state = weft_test::waiter_log;
using weft_test::until_entered;

weft::task<> take_and_log(weft::semaphore& sem, log_state& s, int id) {
  ++s.entered;
  auto permit = co_await sem.acquire();
  s.order.push_back(id);
}

// The entries order[at], order[at + 1], sorted: two waiters granted by one release run in the
// scheduler's order, not necessarily in their grant order.
std::vector<int> sorted_pair(const std::vector<int>& order, std::size_t at) {
  std::vector<int> pair(order.begin() + static_cast<std::ptrdiff_t>(at),
                        order.begin() + static_cast<std::ptrdiff_t>(at + 2));
  std::sort(pair.begin(), pair.end());
  return pair;
}

}  // namespace

TEST_CASE("semaphore: permits are taken and given back by their destructor") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    weft::semaphore sem(2);
    auto a = co_await sem.acquire();
    CHECK(sem.available() == 1);
    {
      auto b = co_await sem.acquire();
      CHECK(sem.available() == 0);
      CHECK_FALSE(sem.try_acquire().has_value());
    }
    CHECK(sem.available() == 1);
    a.release();
    CHECK_FALSE(a.owns_permit());
    CHECK(sem.available() == 2);
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_CASE("semaphore: try_acquire and release work without a runtime") {
  weft::semaphore sem(1);
  auto p = sem.try_acquire();
  REQUIRE(p.has_value());
  CHECK_FALSE(sem.try_acquire().has_value());
  sem.release(3);  // a plain semaphore may grow
  CHECK(sem.available() == 3);
  p.reset();
  CHECK(sem.available() == 4);
}

TEST_CASE("semaphore: waiters are served in FIFO order and no later acquire overtakes them") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    weft::semaphore sem(0);
    log_state s;
    // Waiters that keep their permit (detach), so each release decides exactly who runs.
    auto keep = [&](int id) -> weft::task<> {
      ++s.entered;
      auto permit = co_await sem.acquire();
      s.order.push_back(id);
      (void)permit.detach();
    };
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < 6; ++i) {
      hs.push_back(weft::spawn(keep(i)));
      co_await until_entered(s, i + 1);
    }
    sem.release(2);  // straight to waiters 0 and 1
    CHECK(sem.available() == 0);
    CHECK_FALSE(sem.try_acquire().has_value());  // no overtaking the queue
    co_await hs[0];
    co_await hs[1];
    REQUIRE(s.order.size() == 2);
    CHECK(sorted_pair(s.order, 0) == std::vector<int>{0, 1});
    sem.release();
    co_await hs[2];
    CHECK(s.order.size() == 3);
    CHECK(s.order.back() == 2);
    sem.release(4);  // 3, 4, 5 and one left over
    for (std::size_t i = 3; i < hs.size(); ++i)
      co_await hs[i];
    CHECK(s.order.size() == 6);
    CHECK(sem.available() == 1);
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_CASE("semaphore: release from a foreign thread wakes the waiters") {
  weft_test::watchdog dog(10s);
  weft::semaphore sem(0);
  weft::runtime rt({.worker_threads = 2});
  auto h = rt.spawn([&sem]() -> weft::task<int> {
    auto p = co_await sem.acquire();
    co_return 7;
  });
  std::thread([&sem] {
    std::this_thread::sleep_for(20ms);
    sem.release();
  }).join();
  CHECK(rt.block_on([&]() -> weft::task<int> { co_return co_await h; }()) == 7);
  CHECK(sem.available() == 1);
}

namespace {

// The state the cancellation tests start from: a semaphore without permits and waiters 0..n-1
// (take_and_log) queued on it in id order.
struct queued_rig {
  weft::semaphore sem{0};
  log_state s;
  std::vector<weft::join_handle<void>> hs;
};

// Runs scenario(rig) on one worker from a rig with `n` waiters queued; the scenario awaits the
// waiters it lets through. Then they must have got through in `expected` order, and one permit
// must be left over (every scenario releases one that its cancelled waiter must not keep).
template <class Scenario>
void with_queued_waiters(int n, const std::vector<int>& expected, Scenario scenario) {
  weft_test::watchdog dog(10s);
  auto main_task = [&]() -> weft::task<> {
    queued_rig r;
    for (int i = 0; i < n; ++i) {
      r.hs.push_back(weft::spawn(take_and_log(r.sem, r.s, i)));
      co_await until_entered(r.s, i + 1);
    }
    co_await scenario(r);
    CHECK(r.s.order == expected);
    CHECK(r.sem.available() == 1);
  };
  weft::run(main_task(), {.worker_threads = 1});
}

}  // namespace

TEST_CASE("semaphore: a waiter cancelled before it queues throws holding no permit") {
  with_queued_waiters(0, {}, [](queued_rig& r) -> weft::task<> {
    auto h = weft::spawn(take_and_log(r.sem, r.s, 0));
    h.cancel();
    CHECK_THROWS_AS(co_await h, weft::cancelled_error);
    r.sem.release();  // nobody queued to take it
  });
}

TEST_CASE("semaphore: a queued waiter that is cancelled leaves and the permit goes to the next") {
  with_queued_waiters(2, {1}, [](queued_rig& r) -> weft::task<> {
    r.hs[0].cancel();
    CHECK_THROWS_AS(co_await r.hs[0], weft::cancelled_error);
    r.sem.release();
    co_await r.hs[1];
  });
}

TEST_CASE("semaphore: a waiter cancelled after being woken passes the permit on") {
  with_queued_waiters(2, {1}, [](queued_rig& r) -> weft::task<> {
    r.sem.release();  // granted to waiter 0, which cannot run before this task suspends
    r.hs[0].cancel();
    CHECK_THROWS_AS(co_await r.hs[0], weft::cancelled_error);
    co_await r.hs[1];
  });
}

TEST_CASE("semaphore: a woken waiter cancelled with nobody behind gives the permit back") {
  with_queued_waiters(1, {}, [](queued_rig& r) -> weft::task<> {
    r.sem.release();
    r.hs[0].cancel();
    CHECK_THROWS_AS(co_await r.hs[0], weft::cancelled_error);
  });
}

TEST_CASE("bounded_semaphore: releasing beyond the initial count throws and names the limit") {
  weft::bounded_semaphore sem(2);
  CHECK(sem.limit() == 2);
  CHECK_THROWS_AS(sem.release(), std::logic_error);
  try {
    sem.release();
  } catch (const std::logic_error& e) {
    CHECK(std::string(e.what()).find("limit of 2") != std::string::npos);
  }
  CHECK(sem.available() == 2);  // the throwing release changed nothing
  {
    auto p = sem.try_acquire();
    REQUIRE(p.has_value());
    CHECK(sem.available() == 1);
    CHECK_THROWS_AS(sem.release(2), std::logic_error);
  }
  CHECK(sem.available() == 2);
}

TEST_CASE("bounded_semaphore: an extra release while a permit is held throws at the call") {
  // Before: the extra release went through (the count was below the limit), and the permit's
  // destructor then threw from a destructor, which terminates the process.
  weft::bounded_semaphore sem(1);
  {
    auto p = sem.try_acquire();
    REQUIRE(p.has_value());
    CHECK_THROWS_AS(sem.release(), std::logic_error);
    try {
      sem.release();
    } catch (const std::logic_error& e) {
      CHECK(std::string(e.what()).find("limit of 1") != std::string::npos);
      CHECK(std::string(e.what()).find("detach") != std::string::npos);
    }
    CHECK(sem.available() == 0);  // unchanged
  }                               // the permit goes back without throwing
  CHECK(sem.available() == 1);
  // The same with a permit taken by a task, given back by permit::release().
  auto main_task = [&]() -> weft::task<> {
    auto p = co_await sem.acquire();
    CHECK_THROWS_AS(sem.release(), std::logic_error);
    CHECK(sem.available() == 0);
    p.release();
    CHECK(sem.available() == 1);
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_CASE("bounded_semaphore: release gives back detached permits once each") {
  weft::bounded_semaphore sem(2);
  auto a = sem.try_acquire();
  auto b = sem.try_acquire();
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  weft::semaphore* owner = a->detach();
  CHECK(owner == &sem);
  CHECK_THROWS_AS(sem.release(2), std::logic_error);  // one detached, b still holds its own
  CHECK(sem.available() == 0);
  sem.release();  // the detached one
  CHECK(sem.available() == 1);
  CHECK_THROWS_AS(sem.release(), std::logic_error);  // released twice
  CHECK(sem.available() == 1);
  b.reset();
  CHECK(sem.available() == 2);
  CHECK_THROWS_AS(sem.release(std::numeric_limits<std::size_t>::max()), std::logic_error);
  CHECK(sem.available() == 2);
}

TEST_CASE("semaphore: a release beyond max_count throws and leaves the count unchanged") {
  constexpr std::size_t max = weft::semaphore::max_count;
  weft::semaphore sem(3);
  // Before: release(SIZE_MAX) wrapped the count (3 + (int64)SIZE_MAX == 2) silently.
  CHECK_THROWS_AS(sem.release(std::numeric_limits<std::size_t>::max()), std::logic_error);
  try {
    sem.release(std::numeric_limits<std::size_t>::max());
  } catch (const std::logic_error& e) {
    CHECK(std::string(e.what()).find("max_count") != std::string::npos);
  }
  CHECK(sem.available() == 3);
  CHECK_THROWS_AS(sem.release(max - 2), std::logic_error);
  CHECK(sem.available() == 3);
  // A permit held while the count reaches max_count comes back without throwing; the count stays
  // at max_count (saturated, documented) instead of wrapping.
  auto p = sem.try_acquire();
  REQUIRE(p.has_value());
  sem.release(max - 2);
  CHECK(sem.available() == max);
  CHECK_THROWS_AS(sem.release(), std::logic_error);
  p.reset();
  CHECK(sem.available() == max);
  CHECK_THROWS_AS(weft::semaphore(max + 1), std::invalid_argument);
  CHECK_THROWS_AS(weft::bounded_semaphore(max + 1), std::invalid_argument);
}

TEST_CASE("semaphore: a release beyond max_count with waiters queued grants nobody") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    weft::semaphore sem(0);
    log_state s;
    auto waiter = [&](int id) -> weft::task<> {
      ++s.entered;
      auto permit = co_await sem.acquire();
      s.order.push_back(id);
    };
    auto h = weft::spawn(waiter(0));
    co_await until_entered(s, 1);
    CHECK_THROWS_AS(sem.release(std::numeric_limits<std::size_t>::max()), std::logic_error);
    for (int i = 0; i < 10; ++i)
      co_await weft::yield_now();
    CHECK(s.order.empty());  // still waiting: the throwing release granted nothing
    CHECK(sem.available() == 0);
    sem.release();
    co_await h;
    CHECK(s.order.size() == 1);
    CHECK(sem.available() == 1);
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_CASE("bounded_semaphore: waiters and cancellations keep the count within the bound") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    weft::bounded_semaphore sem(1);
    auto p = co_await sem.acquire();
    std::atomic<int> entered{0};
    auto waiter = [&]() -> weft::task<> {
      ++entered;
      auto q = co_await sem.acquire();
    };
    auto a = weft::spawn(waiter());
    while (entered.load() < 1)
      co_await weft::yield_now();
    auto b = weft::spawn(waiter());
    while (entered.load() < 2)
      co_await weft::yield_now();
    p.release();  // granted to a
    a.cancel();   // a passes it on to b
    CHECK_THROWS_AS(co_await a, weft::cancelled_error);
    co_await b;
    CHECK(sem.available() == 1);
    CHECK_THROWS_AS(sem.release(), std::logic_error);
  };
  weft::run(main_task(), {.worker_threads = 1});
}

namespace {

enum waiter_state : int { waiting, holding, ended_cancelled };

struct fifo_round {
  explicit fifo_round(std::size_t n) : state(n), held(n) {}
  weft::semaphore sem{0};  // no permit: every waiter queues
  std::atomic<std::size_t> entered{0};
  std::vector<std::atomic<int>> state;                       // waiter_state, set by the waiter
  std::vector<std::optional<weft::semaphore::permit>> held;  // slot i: waiter i's, until the end
  std::atomic<std::size_t> holders{0};
  weft_test::progress progress;
};

// Waiter `id` keeps its permit (in its slot) until the round ends, so the permits held show who
// was granted.
//
// The state is published BEFORE the holder count. The test's thread decides that a batch has
// settled from the count (holders + available == released) and then reads every state, so a
// waiter counted as a holder must already show `holding`. The order used to be the reverse, and
// this interleaving failed CHECK(fifo) once in CI on a loaded machine: waiters i < j are both
// granted in a batch; the single waiter worker resumes j first (state[j] = holding), then i,
// which increments `holders` and is preempted before its state store; the test's thread sees
// the count complete, reads state[i] == waiting and state[j] == holding, and reports waiter i
// as overtaken by j, although the semaphore granted them in order. (A 2 ms sleep between the
// two stores made the old order fail in every run; this order passes with the same sleep.)
// Both are seq_cst: the load of `holders` that counts this waiter reads from (or after) its
// increment, which is sequenced after the state store, so the state load that follows sees it.
weft::task<> fifo_waiter(fifo_round& r, std::size_t id) {
  weft_test::bump_on_exit bump{r.progress};
  try {
    weft_test::announce(r.entered);
    r.held[id] = co_await r.sem.acquire();
    r.state[id] = holding;
    ++r.holders;
  } catch (const weft::cancelled_error&) {
    r.state[id] = ended_cancelled;
  }
}

weft::task<> release_from_task(weft::semaphore& sem, std::vector<std::size_t> ns) {
  for (std::size_t n : ns) {
    sem.release(n);
    co_await weft::yield_now();
  }
}

}  // namespace

TEST_SUITE("stress") {
  TEST_CASE("semaphore: stress with random acquire release and cancel from workers and threads") {
    const std::size_t tasks = weft_test::stress_count(64, 1000);
    const std::size_t rounds = weft_test::stress_count(200, 1000);
    constexpr int limit = 3;
    weft_test::watchdog dog(weft_test::stress_scaled_up() ? 900s : 120s);
    weft::bounded_semaphore sem(limit);
    std::atomic<int> holders{0};
    std::atomic<int> max_holders{0};
    std::atomic<bool> stop{false};
    std::atomic<std::size_t> acquired{0};
    auto hold = [&]() {
      const int now = holders.fetch_add(1) + 1;
      int seen = max_holders.load();
      while (now > seen && !max_holders.compare_exchange_weak(seen, now)) {
      }
    };
    weft::runtime rt({.worker_threads = 2});
    // Foreign threads cannot co_await; they take permits with try_acquire and release them.
    std::vector<std::thread> foreign;
    for (int t = 0; t < 2; ++t) {
      foreign.emplace_back([&] {
        while (!stop.load()) {
          if (auto p = sem.try_acquire()) {
            hold();
            holders.fetch_sub(1);
          }
          std::this_thread::yield();
        }
      });
    }
    auto worker = [&](std::size_t id) -> weft::task<> {
      std::mt19937 rng(static_cast<unsigned>(id));
      for (std::size_t r = 0; r < rounds; ++r) {
        try {
          auto permit = co_await sem.acquire();
          hold();
          ++acquired;
          if (rng() % 4 == 0) {
            try {
              co_await weft::yield_now();
            } catch (...) {
              holders.fetch_sub(1);
              throw;
            }
          }
          holders.fetch_sub(1);
        } catch (const weft::cancelled_error&) {
        }
      }
    };
    auto main_task = [&]() -> weft::task<> {
      std::vector<weft::join_handle<void>> hs;
      for (std::size_t i = 0; i < tasks; ++i)
        hs.push_back(weft::spawn(worker(i)));
      std::mt19937 rng(7);
      std::size_t finished = 0;
      while (finished < hs.size()) {
        hs[rng() % hs.size()].cancel();
        co_await weft::yield_now();
        finished = 0;
        for (auto& h : hs)
          finished += h.done() ? 1 : 0;
      }
      for (auto& h : hs)
        co_await h;
    };
    rt.block_on(main_task());
    stop = true;
    for (auto& t : foreign)
      t.join();
    CHECK(max_holders.load() <= limit);
    CHECK(holders.load() == 0);
    CHECK(sem.available() == static_cast<std::size_t>(limit));  // every permit came back
    MESSAGE("acquired ", acquired.load(), ", max holders ", max_holders.load());
    weft_test::stress_summary(
        "tasks " + std::to_string(tasks) + " x rounds " + std::to_string(rounds) + ": acquired " +
        std::to_string(acquired.load()) + ", max holders " + std::to_string(max_holders.load()));
  }

  // FIFO under concurrency (support/fifo_rig.hpp explains what is checkable and why): the waiters
  // queue in index order on a one-worker runtime; then, batch after batch, a task on a two-worker
  // runtime and a foreign thread release a few permits (release(1) and release(2)) while another
  // task there and another foreign thread cancel a random few waiters, all at once. Granted waiters
  // keep their permits. Woken waiters may run in any order, so the order of grants is not
  // observable; what is, once a batch has settled (every released permit is held or back in the
  // count, every waiter whose cancellation was requested has ended), is the set: with FIFO the
  // waiters still waiting all come after every waiter holding a permit, and permits are conserved.
  TEST_CASE(
      "semaphore: stress keeps FIFO among uncancelled waiters while others release and cancel") {
    const std::size_t rounds = weft_test::stress_count(10, 1000);
    const std::size_t n = weft_test::stress_count(64, 1000);  // rounds x n = 1e6 waits full
    weft_test::watchdog dog(weft_test::stress_scaled_up() ? 900s : 120s);
    weft::runtime waiters_rt({.worker_threads = 1});
    weft::runtime others_rt({.worker_threads = 2});
    REQUIRE(waiters_rt.worker_count() == 1);
    // The two foreign threads, kept from batch to batch (threads started per batch took about half
    // the time of a full-scale run): one releases, the other cancels (the storm's foreign half).
    weft_test::foreign_thread release_thread, storm_thread;
    std::size_t batches = 0, released_total = 0, requested_total = 0, cancelled_total = 0;
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t round = 0; round < rounds; ++round) {
      std::mt19937 rng(static_cast<unsigned>(round) * 104729u + 3);
      fifo_round r(n);
      std::vector<std::atomic<bool>> requested(n);
      auto handles = weft_test::arrive_in_order(waiters_rt, n, r.entered,
                                                [&](std::size_t i) { return fifo_waiter(r, i); });
      std::size_t released = 0;
      bool fifo = true, conserved = true;
      for (;;) {
        std::size_t still_waiting = 0;
        for (auto& st : r.state)
          still_waiting += st.load() == waiting ? 1 : 0;
        if (still_waiting == 0) break;
        ++batches;
        // Up to 3 cancellations of waiters still waiting, against 1 to 8 permits released.
        std::vector<std::size_t> cancel_ids;
        for (std::size_t k = rng() % 4; k > 0; --k) {
          const std::size_t i = rng() % n;
          if (!requested[i] && r.state[i].load() == waiting) cancel_ids.push_back(i);
        }
        std::vector<std::size_t> from_task, from_thread;
        for (std::size_t k = rng() % 3; k > 0; --k) {
          from_task.push_back(1 + rng() % 2);
          released += from_task.back();
        }
        for (std::size_t k = 1 + rng() % 2; k > 0; --k) {
          from_thread.push_back(1 + rng() % 2);
          released += from_thread.back();
        }
        {
          weft_test::cancel_storm storm(others_rt, handles, std::move(cancel_ids), requested,
                                        static_cast<unsigned>(rng()), storm_thread);
          auto releaser = others_rt.spawn(release_from_task(r.sem, std::move(from_task)));
          release_thread.start([&r, ns = std::move(from_thread)] {
            for (std::size_t k : ns)
              r.sem.release(k);
          });
          release_thread.wait();
          storm.wait();
          std::vector<weft::join_handle<void>> one;
          one.push_back(std::move(releaser));
          weft_test::join_all(others_rt, std::move(one));
        }
        // Settled: every released permit is held or in the count (none in flight to a waiter that
        // has not resumed, or being passed on by one granted and then cancelled), and every waiter
        // whose cancellation was requested has ended. Each of these changes bumps r.progress.
        r.progress.wait_until([&] {
          for (std::size_t i = 0; i < n; ++i)
            if (requested[i] && r.state[i].load() == waiting) return false;
          return r.holders.load() + r.sem.available() == released;
        });
        std::size_t last_holder = 0, first_waiter = n;
        bool any_holder = false;
        for (std::size_t i = 0; i < n; ++i) {
          const int st = r.state[i].load();
          if (st == holding) {
            last_holder = i;
            any_holder = true;
          }
          if (st == waiting && first_waiter == n) first_waiter = i;
        }
        fifo = fifo && (!any_holder || first_waiter == n || last_holder < first_waiter);
        conserved = conserved && r.holders.load() + r.sem.available() == released;
      }
      CHECK(fifo);
      CHECK(conserved);
      weft_test::join_all(waiters_rt, std::move(handles));  // 0 stranded: every waiter ended
      std::size_t cancelled = 0;
      for (auto& st : r.state)
        cancelled += st.load() == ended_cancelled ? 1 : 0;
      for (auto& p : r.held)
        p.reset();
      CHECK(r.sem.available() == released);  // every permit released came back
      released_total += released;
      cancelled_total += cancelled;
      for (auto& q : requested)
        requested_total += q.load() ? 1 : 0;
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    weft_test::stress_summary(std::to_string(rounds) + " rounds x " + std::to_string(n) +
                              " waiters, " + std::to_string(batches) + " batches: released " +
                              std::to_string(released_total) + ", cancellations requested " +
                              std::to_string(requested_total) + ", ended cancelled " +
                              std::to_string(cancelled_total) + ", " + std::to_string(ms) + " ms");
  }
}  // TEST_SUITE("stress")

TEST_CASE("semaphore: waiters granted by releases one after another resume in FIFO order") {
  // test_locks (Semaphore: releases wake the waiters in the order they acquired): three releases
  // from one task resume the waiters 1 2 3 (the worker runs a batch of wake-ups in order).
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<std::vector<int>> {
    weft::semaphore sem(0);
    std::vector<int> order;
    std::vector<weft::join_handle<void>> waiters;
    for (int i = 1; i <= 3; ++i) {
      waiters.push_back(weft::spawn(
          [](weft::semaphore& s, std::vector<int>& out, int id) -> weft::task<> {
            auto permit = co_await s.acquire();
            out.push_back(id);
          },
          std::ref(sem), std::ref(order), i));
      co_await weft::sleep(1ms);  // queued in this order
    }
    CHECK(sem.locked());
    sem.release();
    sem.release();
    sem.release();
    for (auto& w : waiters)
      co_await w;
    CHECK_FALSE(sem.locked());
    co_return order;
  };
  CHECK(weft::run(main_task(), {.worker_threads = 1}) == std::vector<int>{1, 2, 3});
}

TEST_CASE("semaphore: locked tells whether an acquire would wait") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    weft::semaphore sem(2);
    CHECK_FALSE(sem.locked());
    auto a = co_await sem.acquire();
    CHECK_FALSE(sem.locked());
    auto b = co_await sem.acquire();
    CHECK(sem.locked());
    b.release();
    CHECK_FALSE(sem.locked());
  };
  weft::run(main_task(), {.worker_threads = 1});
}
