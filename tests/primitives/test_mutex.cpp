// tests/test_mutex.cpp: weft::mutex (patterns.md row 9, asyncio.Lock): guards, try_lock, strict
// FIFO among waiters, and cancellation in every waiter state (reliability rule 3): before it
// queues, while queued, granted but not yet resumed, while holding. Stress S4 (mutex part).
//
// Deterministic tests use one worker: a spawned task runs only when the test's main task yields,
// so "entered == k" after a yield means the k-th waiter is queued.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "support/fifo_rig.hpp"
#include "support/stress.hpp"
#include "support/waiter_log.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

using log_state = weft_test::waiter_log;
using weft_test::until_entered;

weft::task<> take_and_log(weft::mutex& m, log_state& s, int id) {
  ++s.entered;
  auto guard = co_await m.lock();
  s.order.push_back(id);
}

// Spawns `n` tasks that lock `m` and log themselves; returns once all of them are queued (one
// worker and `m` held: each waits as soon as it runs).
weft::task<std::vector<weft::join_handle<void>>> queue_waiters(weft::mutex& m, log_state& s,
                                                               int n) {
  std::vector<weft::join_handle<void>> hs;
  for (int i = 0; i < n; ++i) {
    hs.push_back(weft::spawn(take_and_log(m, s, i)));
    co_await until_entered(s, i + 1);
  }
  co_return hs;
}

// The state most deterministic tests start from: the test's task holds `m` through `guard`, and
// waiters 0..n-1 (take_and_log) are queued behind it in id order.
struct queued_rig {
  weft::mutex m;
  log_state s;
  weft::mutex::guard guard;
  std::vector<weft::join_handle<void>> hs;
};

weft::task<> hold_and_queue(queued_rig& r, int n) {
  r.guard = co_await r.m.lock();
  r.hs = co_await queue_waiters(r.m, r.s, n);
}

// Runs scenario(rig) on one worker, from a rig with `n` waiters queued; the scenario awaits the
// waiters it lets through. Then they must have got through in `expected` order, and the mutex must
// be free.
template <class Scenario>
void with_queued_waiters(int n, const std::vector<int>& expected, Scenario scenario) {
  weft_test::watchdog dog(10s);
  auto main_task = [&]() -> weft::task<> {
    queued_rig r;
    co_await hold_and_queue(r, n);
    co_await scenario(r);
    CHECK(r.s.order == expected);
    CHECK_FALSE(r.m.locked());
  };
  weft::run(main_task(), {.worker_threads = 1});
}

weft::task<> await_all(std::vector<weft::join_handle<void>>& hs) {
  for (auto& h : hs)
    co_await h;
}

// The test's task unlocks, which wakes waiter 0, and takes the lock again before waiter 0 can run
// (one worker: barging, it never waited); then it lets waiter 0 run, which finds the lock held and
// requeues at the head. Returns the barging task's guard.
weft::task<weft::mutex::guard> overtake_the_first_waiter(queued_rig& r) {
  r.guard.unlock();
  CHECK_FALSE(r.m.locked());
  auto barged = r.m.try_lock();
  REQUIRE(barged.has_value());
  co_await weft::yield_now();
  co_return std::move(*barged);
}

}  // namespace

TEST_CASE("mutex: lock returns a guard that unlocks on destruction") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    weft::mutex m;
    {
      auto guard = co_await m.lock();
      CHECK(guard.owns_lock());
      CHECK(m.locked());
      CHECK_FALSE(m.try_lock().has_value());
    }
    CHECK_FALSE(m.locked());
    auto guard = co_await m.lock();
    guard.unlock();
    CHECK_FALSE(guard.owns_lock());
    CHECK_FALSE(m.locked());
    auto moved = co_await m.lock();
    weft::mutex::guard other = std::move(moved);
    CHECK_FALSE(moved.owns_lock());
    CHECK(other.owns_lock());
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_CASE("mutex: try_lock takes a free lock and refuses a held one") {
  weft::mutex m;  // try_lock needs no runtime: it never waits
  auto first = m.try_lock();
  REQUIRE(first.has_value());
  CHECK_FALSE(m.try_lock().has_value());
  first.reset();
  CHECK(m.try_lock().has_value());
}

TEST_CASE("mutex: waiters acquire in FIFO order") {
  with_queued_waiters(8, {0, 1, 2, 3, 4, 5, 6, 7}, [](queued_rig& r) -> weft::task<> {
    r.guard.unlock();  // frees the lock and wakes waiter 0
    co_await await_all(r.hs);
  });
}

TEST_CASE("mutex: a woken waiter overtaken by a barging task keeps its place at the head") {
  with_queued_waiters(3, {0, 1, 2}, [](queued_rig& r) -> weft::task<> {
    auto again = co_await overtake_the_first_waiter(r);
    CHECK(r.s.order.empty());
    again.unlock();  // wakes waiter 0 again
    co_await await_all(r.hs);
  });
}

TEST_CASE("mutex: a waiter cancelled after it was overtaken and requeued strands nobody") {
  with_queued_waiters(2, {1}, [](queued_rig& r) -> weft::task<> {
    auto again = co_await overtake_the_first_waiter(r);
    r.hs[0].cancel();
    CHECK_THROWS_AS(co_await r.hs[0], weft::cancelled_error);
    again.unlock();  // must wake waiter 1, now first
    co_await r.hs[1];
  });
}

TEST_CASE("mutex: a waiter overtaken after the starvation threshold gets the lock handed over") {
  with_queued_waiters(2, {0, 1}, [](queued_rig& r) -> weft::task<> {
    // Real time passes beyond the threshold while both wait (the worker is held on purpose).
    std::this_thread::sleep_for(weft::mutex::starvation_threshold * 3);
    // Waiter 0 loses again, after the threshold: hand-off mode.
    auto barged = co_await overtake_the_first_waiter(r);
    barged.unlock();  // hands the lock to waiter 0: it stays locked
    CHECK(r.m.locked());
    CHECK_FALSE(r.m.try_lock().has_value());  // hand-off mode: nobody barges past the waiters
    co_await await_all(r.hs);
    CHECK(r.m.try_lock().has_value());  // the queue emptied: back to normal mode
  });
}

TEST_CASE("mutex: a waiter cancelled before it queues throws without the lock") {
  with_queued_waiters(0, {}, [](queued_rig& r) -> weft::task<> {
    auto h = weft::spawn(take_and_log(r.m, r.s, 1));
    h.cancel();  // pending before the task even ran
    co_await until_entered(r.s, 1);
    co_await weft::yield_now();
    CHECK(h.done());
    CHECK(h.cancelled());
    r.guard.unlock();  // nobody was queued: the mutex is free after it
  });
}

TEST_CASE("mutex: a queued waiter that is cancelled leaves and the waiters behind move up") {
  with_queued_waiters(3, {0, 2}, [](queued_rig& r) -> weft::task<> {
    r.hs[1].cancel();
    CHECK_THROWS_AS(co_await r.hs[1], weft::cancelled_error);
    CHECK(r.m.locked());
    r.guard.unlock();
    co_await r.hs[0];
    co_await r.hs[2];
  });
}

TEST_CASE("mutex: a waiter cancelled after being woken passes the lock on") {
  with_queued_waiters(2, {1}, [](queued_rig& r) -> weft::task<> {
    // One worker: unlock grants the lock to waiter 0 and schedules it, but it cannot run before
    // this task suspends. Cancelling it now hits the granted state.
    r.guard.unlock();
    r.hs[0].cancel();
    CHECK_THROWS_AS(co_await r.hs[0], weft::cancelled_error);
    co_await r.hs[1];  // waiter 0 passed the lock to waiter 1
  });
}

TEST_CASE("mutex: a task cancelled while holding the lock releases it through its guard") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    weft::mutex m;
    auto holder = weft::spawn([&m]() -> weft::task<> {
      auto guard = co_await m.lock();
      co_await weft::sleep(1h);
    });
    while (!m.locked())
      co_await weft::yield_now();
    holder.cancel();
    CHECK_THROWS_AS(co_await holder, weft::cancelled_error);
    CHECK_FALSE(m.locked());
    auto guard = co_await m.lock();
    CHECK(guard.owns_lock());
  };
  weft::run(main_task(), {.worker_threads = 1, .virtual_time = true});
}

TEST_CASE("mutex: an uncontended lock keeps a pending cancellation for the next point") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    weft::mutex m;
    std::atomic<bool> got_guard{false};
    auto h = weft::spawn([&]() -> weft::task<> {
      auto guard = co_await m.lock();  // free: does not suspend, keeps the cancellation pending
      got_guard = true;
      co_await weft::yield_now();  // delivered here; the guard unlocks during unwinding
    });
    h.cancel();
    CHECK_THROWS_AS(co_await h, weft::cancelled_error);
    CHECK(got_guard.load());
    CHECK_FALSE(m.locked());
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_CASE("mutex: FIFO holds among uncancelled waiters under random cancellations") {
  weft_test::watchdog dog(30s);
  auto main_task = []() -> weft::task<> {
    std::mt19937 rng(12345);
    for (int round = 0; round < 50; ++round) {
      queued_rig r;
      const int n = 12;
      co_await hold_and_queue(r, n);
      auto& hs = r.hs;
      std::vector<int> expected;
      std::vector<bool> cancel(n);
      for (int i = 0; i < n; ++i) {
        cancel[i] = rng() % 3 == 0;
        if (!cancel[i]) expected.push_back(i);
      }
      // Half of the cancellations before the unlock (queued), half after (some of them granted).
      for (int i = 0; i < n; i += 2)
        if (cancel[i]) hs[i].cancel();
      r.guard.unlock();
      for (int i = 1; i < n; i += 2)
        if (cancel[i]) hs[i].cancel();
      for (int i = 0; i < n; ++i) {
        try {
          co_await hs[i];
        } catch (const weft::cancelled_error&) {
        }
      }
      // A waiter cancelled after the unlock may have got the lock before the cancel arrived
      // (only the first can, with one worker it has not run yet): its entry is then in `order`.
      std::vector<int> uncancelled;
      for (int id : r.s.order)
        if (!cancel[id]) uncancelled.push_back(id);
      CHECK(uncancelled == expected);
      CHECK_FALSE(r.m.locked());
    }
  };
  weft::run(main_task(), {.worker_threads = 1});
}

namespace {

// Guards handed to a foreign thread, which unlocks them: the hand-over to the next waiter then
// happens on that thread.
class unlocker_thread {
 public:
  unlocker_thread()
      : thread_([this] {
          std::unique_lock lock(mutex_);
          for (;;) {
            cv_.wait(lock, [this] { return stop_ || !guards_.empty(); });
            if (guards_.empty()) return;  // stop_, and nothing left
            weft::mutex::guard g = std::move(guards_.front());
            guards_.pop_front();
            lock.unlock();
            g.unlock();
            lock.lock();
          }
        }) {}
  unlocker_thread(const unlocker_thread&) = delete;
  unlocker_thread& operator=(const unlocker_thread&) = delete;
  ~unlocker_thread() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  void post(weft::mutex::guard g) {
    {
      std::lock_guard lock(mutex_);
      guards_.push_back(std::move(g));
    }
    cv_.notify_one();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<weft::mutex::guard> guards_;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the rest is constructed
};

struct fifo_round {
  weft::mutex m;
  std::atomic<std::size_t> entered{0};
  std::vector<std::size_t> log;  // guarded by m: the grant order
  std::optional<unlocker_thread> unlocker{std::in_place};
  std::atomic<std::size_t> ended_cancelled{0};  // waiters that threw without ever holding
};

// Waiter `id`: takes the lock, logs itself, and then, as `how` says, unlocks at once, yields
// while holding (a cancellation there unlocks through the guard) or hands the guard to the
// foreign unlocker.
weft::task<> fifo_waiter(fifo_round& r, std::size_t id, unsigned how) {
  bool held = false;
  try {
    weft_test::announce(r.entered);
    auto guard = co_await r.m.lock();
    r.log.push_back(id);
    held = true;
    if (how == 1) co_await weft::yield_now();
    if (how == 2) r.unlocker->post(std::move(guard));
  } catch (const weft::cancelled_error&) {
    if (!held) ++r.ended_cancelled;
  }
}

// How many tasks and threads run critical code at once; the most ever seen must stay 1.
class overlap_meter {
 public:
  void enter() {
    const int now = inside_.fetch_add(1) + 1;
    int seen = most_.load();
    while (now > seen && !most_.compare_exchange_weak(seen, now)) {
    }
  }
  void leave() { inside_.fetch_sub(1); }
  int most() const { return most_.load(); }

 private:
  std::atomic<int> inside_{0};
  std::atomic<int> most_{0};
};

// Two foreign threads that take `m` with try_lock (they cannot co_await) whenever they can, and
// run critical() while holding it, until this object is destroyed.
class foreign_bargers {
 public:
  template <class Critical>
  foreign_bargers(weft::mutex& m, Critical critical) {
    for (int t = 0; t < 2; ++t) {
      threads_.emplace_back([this, &m, critical] {
        while (!stop_.load()) {
          if (auto guard = m.try_lock()) critical();
          std::this_thread::yield();
        }
      });
    }
  }
  foreign_bargers(const foreign_bargers&) = delete;
  foreign_bargers& operator=(const foreign_bargers&) = delete;
  ~foreign_bargers() {
    stop_ = true;
    for (auto& t : threads_)
      t.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

// Spawns worker(i) for each i < tasks, then, turn after turn with a yield in between, cancels one
// of them at random with a chance of 1 in `one_in`, until all of them finished. Returns how many
// ended cancelled (a cancellation requested after a task's last suspension point stays pending and
// ends it so).
template <class Worker>
weft::task<std::size_t> cancel_at_random_until_done(std::size_t tasks, Worker& worker,
                                                    unsigned seed, unsigned one_in) {
  std::vector<weft::join_handle<void>> hs;
  for (std::size_t i = 0; i < tasks; ++i)
    hs.push_back(weft::spawn(worker(i)));
  std::mt19937 rng(seed);
  for (;;) {
    std::size_t finished = 0;
    for (auto& h : hs)
      finished += h.done() ? 1 : 0;
    if (finished == hs.size()) break;
    if (rng() % one_in == 0) hs[rng() % hs.size()].cancel();
    co_await weft::yield_now();
  }
  std::size_t ended_cancelled = 0;
  for (auto& h : hs) {
    try {
      co_await h;
    } catch (const weft::cancelled_error&) {
      ++ended_cancelled;
    }
  }
  co_return ended_cancelled;
}

}  // namespace

TEST_SUITE("stress") {
  TEST_CASE("mutex: stress with random lock unlock and cancel from workers and foreign threads") {
    const std::size_t tasks = weft_test::stress_count(64, 1000);
    const std::size_t rounds = weft_test::stress_count(200, 1000);  // tasks x rounds >= 1e6 full
    weft_test::watchdog dog(weft_test::stress_scaled_up() ? 900s : 120s);
    weft::mutex m;
    overlap_meter holders;
    std::atomic<std::size_t> acquired{0};
    std::atomic<std::size_t> cancelled{0};
    auto hold = [&holders] {
      holders.enter();
      holders.leave();
    };
    weft::runtime rt({.worker_threads = 2});
    auto worker = [&](std::size_t id) -> weft::task<> {
      std::mt19937 rng(static_cast<unsigned>(id));
      for (std::size_t r = 0; r < rounds; ++r) {
        try {
          auto guard = co_await m.lock();
          hold();
          ++acquired;
          if (rng() % 4 == 0) co_await weft::yield_now();
        } catch (const weft::cancelled_error&) {
          ++cancelled;
        }
      }
    };
    {
      foreign_bargers bargers(m, hold);
      // A delivered cancel ends one lock, and the task may catch it; one delivered at the yield
      // inside the critical section ends the task.
      cancelled += rt.block_on(cancel_at_random_until_done(tasks, worker, 7, 1));
    }
    CHECK(holders.most() == 1);
    CHECK_FALSE(m.locked());  // no leaked lock, no stranded waiter (all tasks finished)
    CHECK(m.try_lock().has_value());
    MESSAGE("acquired ", acquired.load(), ", cancelled ", cancelled.load());
    weft_test::stress_summary(
        "tasks " + std::to_string(tasks) + " x rounds " + std::to_string(rounds) + ": acquired " +
        std::to_string(acquired.load()) + ", cancelled " + std::to_string(cancelled.load()));
  }

  // The contended paths: every task keeps coming back for the lock (so unlocks wake waiters that
  // running tasks then overtake), critical sections often suspend (so waiters queue), some sleep
  // past the starvation threshold (so overtaken waiters switch the mutex to hand-off mode), two
  // foreign threads barge with try_lock, and the main task cancels at random (woken, granted and
  // queued waiters alike). Each round of each task ends once, holders never overlap, and nothing is
  // left locked or waiting.
  TEST_CASE("mutex: stress with barging wake-ups and hand-off mode under heavy contention") {
    const std::size_t tasks = 32;
    const std::size_t rounds = weft_test::stress_count(1000, 30000);  // ~1e6 acquisitions full
    weft_test::watchdog dog(weft_test::stress_scaled_up() ? 900s : 120s);
    weft::mutex m;
    overlap_meter holders;
    std::atomic<std::size_t> acquired{0};
    std::atomic<std::size_t> cancelled{0};
    std::atomic<std::size_t> rounds_ended{0};
    std::atomic<std::size_t> foreign_acquired{0};
    weft::runtime rt({.worker_threads = 2});
    auto worker = [&](std::size_t id) -> weft::task<> {
      std::mt19937 rng(static_cast<unsigned>(id) + 1000);
      for (std::size_t r = 0; r < rounds; ++r) {
        try {
          auto guard = co_await m.lock();
          holders.enter();
          ++acquired;
          const unsigned dice = rng() % 1000;
          if (dice < 10) {
            holders
                .leave();  // suspended holders still hold; the count tracks running critical code
            co_await weft::sleep(std::chrono::milliseconds(2));
            holders.enter();
          } else if (dice < 500) {
            holders.leave();
            co_await weft::yield_now();
            holders.enter();
          }
          holders.leave();
        } catch (const weft::cancelled_error&) {
          ++cancelled;
        }
        ++rounds_ended;
      }
    };
    {
      foreign_bargers bargers(m, [&] {
        holders.enter();
        ++foreign_acquired;
        holders.leave();
      });
      // A task that ends cancelled had the cancellation requested after its last suspension point:
      // every round of it ended all the same.
      (void)rt.block_on(cancel_at_random_until_done(tasks, worker, 11, 8));
    }
    CHECK(holders.most() == 1);
    CHECK(rounds_ended.load() == tasks * rounds);
    CHECK_FALSE(m.locked());
    CHECK(m.try_lock().has_value());
    weft_test::stress_summary(
        "tasks " + std::to_string(tasks) + " x rounds " + std::to_string(rounds) + ": acquired " +
        std::to_string(acquired.load()) + ", cancelled " + std::to_string(cancelled.load()) +
        ", foreign try_lock " + std::to_string(foreign_acquired.load()));
  }

  // FIFO under concurrency (support/fifo_rig.hpp explains what is checkable and why): the waiters
  // queue in index order on a one-worker runtime while a foreign thread holds the lock; then that
  // thread unlocks, holders unlock on their worker or through another foreign thread, and a task on
  // a two-worker runtime and a foreign thread cancel a random third of the waiters, all at once.
  // The mutex serializes holders and each logs itself while holding, so the log is the grant order:
  // it must be increasing (FIFO, whoever was cancelled in between) and hold every waiter whose
  // cancellation was never requested (none stranded, none skipped).
  TEST_CASE("mutex: stress keeps FIFO among uncancelled waiters while others unlock and cancel") {
    const std::size_t rounds = weft_test::stress_count(10, 1000);
    const std::size_t n = weft_test::stress_count(64, 1000);  // rounds x n = 1e6 waits full
    weft_test::watchdog dog(weft_test::stress_scaled_up() ? 900s : 120s);
    weft::runtime waiters_rt({.worker_threads = 1});
    weft::runtime others_rt({.worker_threads = 2});
    REQUIRE(waiters_rt.worker_count() == 1);
    std::size_t granted = 0, requested_total = 0, cancelled_total = 0;
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t round = 0; round < rounds; ++round) {
      std::mt19937 rng(static_cast<unsigned>(round) * 7919u + 1);
      fifo_round r;
      std::vector<std::atomic<bool>> requested(n);
      std::vector<unsigned> how(n);
      for (auto& h : how)
        h = rng() % 3;
      auto first = r.m.try_lock();  // held by this (foreign) thread: every waiter queues
      REQUIRE(first.has_value());
      auto handles = weft_test::arrive_in_order(
          waiters_rt, n, r.entered, [&](std::size_t i) { return fifo_waiter(r, i, how[i]); });
      {
        weft_test::cancel_storm storm(others_rt, handles, weft_test::pick_some(n, 3, rng),
                                      requested, static_cast<unsigned>(round));
        first.reset();  // hands the lock to waiter 0 while the cancellations fly
        storm.wait();
      }
      weft_test::join_all(waiters_rt, std::move(handles));  // the log is complete (and ours) now
      r.unlocker.reset();  // unlocks what it still holds (the last holder's guard, maybe)
      CHECK_FALSE(r.m.locked());
      const std::vector<std::size_t>& log = r.log;
      bool increasing = true;
      for (std::size_t k = 1; k < log.size(); ++k)
        increasing = increasing && log[k - 1] < log[k];
      CHECK(increasing);
      std::vector<bool> logged(n);
      for (std::size_t id : log)
        logged[id] = true;
      std::size_t missing = 0;
      for (std::size_t i = 0; i < n; ++i) {
        if (requested[i]) ++requested_total;
        if (!requested[i] && !logged[i]) ++missing;
      }
      CHECK(missing == 0);
      CHECK(log.size() + r.ended_cancelled.load() == n);
      granted += log.size();
      cancelled_total += r.ended_cancelled.load();
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    weft_test::stress_summary(
        std::to_string(rounds) + " rounds x " + std::to_string(n) + " waiters: granted " +
        std::to_string(granted) + ", cancellations requested " + std::to_string(requested_total) +
        ", ended cancelled " + std::to_string(cancelled_total) + ", " + std::to_string(ms) + " ms");
  }
}  // TEST_SUITE("stress")
