// tests/test_idle.cpp: the private idle coordinator (scheduler/idle.{hpp,cpp}): who searches, who
// parks, who wakes whom. Single-threaded, the packed state word through every transition: at most
// half of the workers search, a producer wakes only when nobody searches and somebody sleeps, the
// woken worker counts as a searcher (so one wake-up per burst), the last searcher to find work
// passes the baton, a worker woken for another reason (shutdown) leaves the sleepers list.
// Multi-threaded: concurrent producers against a parked pool wake exactly one worker, and a
// mini-pool that runs the worker loop's protocol (worker.cpp) over a counter of work items never
// loses a wake-up: every item is taken and the pool ends parked.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "idle.hpp"
#include "parker.hpp"
#include "support/stress.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;
using weft::detail::idle;

namespace {

// Parks every worker of `state` (none searching), highest index last.
void park_all(idle& state, std::size_t workers) {
  for (std::size_t i = 0; i < workers; ++i)
    CHECK_FALSE(state.transition_to_parked(i, false));
}

}  // namespace

TEST_CASE("idle: a fresh pool has everyone awake with nobody searching and nobody to wake") {
  idle state(4);
  CHECK(state.searching() == 0);
  CHECK_FALSE(state.all_parked());
  CHECK_FALSE(state.maybe_should_wake_for_local_work());
  CHECK_FALSE(state.worker_to_notify().has_value());
  CHECK_FALSE(state.wake_one().has_value());
}

TEST_CASE("idle: at most half of the workers (rounded up) search at once") {
  for (const std::size_t workers : {1U, 2U, 3U, 4U, 7U, 8U}) {
    CAPTURE(workers);
    idle state(workers);
    std::size_t admitted = 0;
    while (state.transition_to_searching())
      ++admitted;
    CHECK(admitted == (workers + 1) / 2);
    CHECK(state.searching() == admitted);
    // One leaves: one more may come in, and no more.
    CHECK(state.transition_from_searching() == (admitted == 1));
    CHECK(state.transition_to_searching());
    CHECK_FALSE(state.transition_to_searching());
  }
}

TEST_CASE("idle: only the last searcher to stop searching is told it was the last") {
  idle state(8);
  for (int i = 0; i < 3; ++i)
    REQUIRE(state.transition_to_searching());
  CHECK_FALSE(state.transition_from_searching());
  CHECK_FALSE(state.transition_from_searching());
  CHECK(state.transition_from_searching());
  CHECK(state.searching() == 0);
}

TEST_CASE("idle: nobody is woken while every worker is awake even with nobody searching") {
  idle state(3);
  CHECK_FALSE(state.worker_to_notify().has_value());
  CHECK_FALSE(state.maybe_should_wake_for_local_work());
}

TEST_CASE("idle: a producer wakes nobody while somebody searches however many sleep") {
  idle state(4);
  for (std::size_t i = 1; i < 4; ++i)
    CHECK_FALSE(state.transition_to_parked(i, false));
  REQUIRE(state.transition_to_searching());  // worker 0 searches: it will find the work
  CHECK_FALSE(state.maybe_should_wake_for_local_work());
  CHECK_FALSE(state.worker_to_notify().has_value());
  CHECK_FALSE(state.wake_one().has_value());
  // It stops searching (found work, was the last): now a producer must wake someone.
  CHECK(state.transition_from_searching());
  CHECK(state.maybe_should_wake_for_local_work());
  CHECK(state.worker_to_notify().has_value());
}

TEST_CASE("idle: the woken worker counts as a searcher so a burst of pushes wakes one worker") {
  idle state(4);
  park_all(state, 4);
  CHECK(state.all_parked());
  CHECK(state.maybe_should_wake_for_local_work());
  const auto first = state.worker_to_notify();
  REQUIRE(first.has_value());
  CHECK(*first == 3);  // the sleepers are a stack: the most recently parked is warmest
  CHECK(state.searching() == 1);
  CHECK_FALSE(state.all_parked());
  for (int push = 0; push < 10; ++push) {
    CHECK_FALSE(state.maybe_should_wake_for_local_work());
    CHECK_FALSE(state.worker_to_notify().has_value());
  }
  // The woken worker sees it was woken by a producer and stays a searcher.
  CHECK(state.transition_from_parked(3));
  CHECK(state.searching() == 1);
}

TEST_CASE("idle: the last searcher to find work wakes one parked worker and so on up the pool") {
  idle state(3);
  park_all(state, 3);
  std::set<std::size_t> woken;
  for (int step = 0; step < 3; ++step) {
    const auto next = state.worker_to_notify();
    REQUIRE(next.has_value());
    CHECK(woken.insert(*next).second);  // never the same worker twice
    CHECK(state.transition_from_parked(*next));
    CHECK(state.searching() == 1);
    // It finds work; being the last searcher it must notify, which wakes the next sleeper.
    CHECK(state.transition_from_searching());
  }
  // Everyone is up and busy: nobody left to wake.
  CHECK_FALSE(state.worker_to_notify().has_value());
  CHECK(woken == std::set<std::size_t>{0, 1, 2});
}

TEST_CASE("idle: parking reports the last searcher and only a searching one") {
  idle state(4);
  REQUIRE(state.transition_to_searching());
  REQUIRE(state.transition_to_searching());
  CHECK_FALSE(state.transition_to_parked(0, true));  // another searcher remains
  CHECK(state.searching() == 1);
  CHECK_FALSE(state.transition_to_parked(2, false));  // was not searching: never "the last"
  CHECK(state.searching() == 1);
  CHECK(state.transition_to_parked(1, true));  // the last searcher goes to sleep
  CHECK(state.searching() == 0);
  CHECK_FALSE(state.all_parked());  // worker 3 is still up
  CHECK_FALSE(state.transition_to_parked(3, false));
  CHECK(state.all_parked());
}

TEST_CASE(
    "idle: a worker woken for another reason leaves the sleepers list, awake, not searching") {
  idle state(2);
  park_all(state, 2);
  // Shutdown unparks worker 1 directly, not through worker_to_notify.
  CHECK_FALSE(state.transition_from_parked(1));
  CHECK(state.searching() == 0);
  CHECK_FALSE(state.all_parked());
  // Worker 1 is no longer a sleeper: the next wake-up goes to worker 0, and only once.
  const auto next = state.worker_to_notify();
  REQUIRE(next.has_value());
  CHECK(*next == 0);
  CHECK(state.transition_from_parked(0));
  CHECK_FALSE(state.worker_to_notify().has_value());
  CHECK_FALSE(state.wake_one().has_value());
}

TEST_CASE("idle: the local-work check and the slow path agree with worker_to_notify") {
  idle state(2);
  CHECK_FALSE(state.transition_to_parked(1, false));
  REQUIRE(state.maybe_should_wake_for_local_work());
  const auto woken = state.wake_one();
  REQUIRE(woken.has_value());
  CHECK(*woken == 1);
  CHECK(state.searching() == 1);
  CHECK_FALSE(state.maybe_should_wake_for_local_work());
  // The slow path re-checks: with nobody asleep there is nobody to wake, whatever the caller saw.
  CHECK(state.transition_from_parked(1));
  CHECK(state.transition_from_searching());
  CHECK_FALSE(state.maybe_should_wake_for_local_work());
  CHECK_FALSE(state.wake_one().has_value());
}

TEST_CASE("idle: a pool of one parks and is woken and parks again") {
  idle state(1);
  CHECK(state.transition_to_searching());
  CHECK_FALSE(state.transition_to_searching());
  CHECK(state.transition_to_parked(0, true));
  CHECK(state.all_parked());
  for (int round = 0; round < 3; ++round) {
    const auto woken = state.worker_to_notify();
    REQUIRE(woken.has_value());
    CHECK(*woken == 0);
    CHECK_FALSE(state.all_parked());
    CHECK(state.transition_from_parked(0));
    CHECK(state.transition_to_parked(0, true));  // still the (only) searcher
    CHECK(state.all_parked());
    CHECK(state.searching() == 0);
  }
}

TEST_SUITE("stress") {
  TEST_CASE("idle: concurrent producers against a parked pool wake exactly one worker") {
    weft_test::watchdog dog(60s);
    constexpr std::size_t workers = 4;
    const std::size_t rounds = weft_test::stress_count(200, 20000);
    const std::size_t producers = 3;
    for (std::size_t round = 0; round < rounds; ++round) {
      idle state(workers);
      park_all(state, workers);
      std::atomic<std::size_t> go{0};
      std::atomic<std::size_t> wakes{0};
      std::vector<std::thread> threads;
      for (std::size_t p = 0; p < producers; ++p) {
        threads.emplace_back([&, p] {
          go.fetch_add(1);
          while (go.load() < producers) {
          }
          for (int push = 0; push < 4; ++push) {
            // Half the producers take the local-work path, as a worker's own spawn does.
            std::optional<std::size_t> woken;
            if (p % 2 == 0) {
              woken = state.worker_to_notify();
            } else if (state.maybe_should_wake_for_local_work()) {
              woken = state.wake_one();
            }
            if (woken) wakes.fetch_add(1);
          }
        });
      }
      for (auto& t : threads)
        t.join();
      REQUIRE(wakes.load() == 1);
      REQUIRE(state.searching() == 1);
    }
  }

  // A mini-pool that follows worker.cpp's protocol: take work, else search (if admitted), else
  // park, re-check after the seq_cst transition, and sleep on a real parker. Producers publish an
  // item with a seq_cst RMW and then call worker_to_notify(), as inject() does. Nothing else ever
  // wakes a worker, so a lost wake-up leaves items untaken and the pool asleep.
  TEST_CASE("idle: a mini-pool never loses a wake-up: every item is taken and the pool parks") {
    weft_test::watchdog dog(120s);
    constexpr std::size_t workers = 3;
    constexpr std::size_t producers = 2;
    const std::size_t rounds = weft_test::stress_count(20, 500);
    const std::size_t per_round = weft_test::stress_count(200, 2000);
    idle state(workers);
    std::vector<std::unique_ptr<weft::detail::parker>> parkers;
    for (std::size_t i = 0; i < workers; ++i)
      parkers.push_back(std::make_unique<weft::detail::parker>());
    std::atomic<std::int64_t> pending{0};
    std::atomic<std::uint64_t> taken{0};
    std::atomic<bool> stop{false};

    auto notify = [&] {
      if (const auto index = state.worker_to_notify()) parkers[*index]->unpark();
    };
    auto try_take = [&] {
      std::int64_t n = pending.load(std::memory_order_relaxed);
      while (n > 0) {
        if (pending.compare_exchange_weak(n, n - 1, std::memory_order_seq_cst)) return true;
      }
      return false;
    };

    std::vector<std::thread> pool;
    for (std::size_t index = 0; index < workers; ++index) {
      pool.emplace_back([&, index] {
        bool searching = false;
        while (!stop.load(std::memory_order_acquire)) {
          bool found = try_take();
          if (!found) {
            if (searching || state.transition_to_searching()) {
              searching = true;
              for (int spin = 0; spin < 64 && !found; ++spin)
                found = try_take();
            }
          }
          if (!found) {
            state.transition_to_parked(index, searching);
            searching = false;
            if (pending.load(std::memory_order_seq_cst) > 0 ||
                stop.load(std::memory_order_seq_cst)) {
              notify();
            }
            if (!stop.load(std::memory_order_acquire)) parkers[index]->park();
            searching = state.transition_from_parked(index);
            continue;
          }
          if (searching) {
            searching = false;
            if (state.transition_from_searching()) notify();
          }
          taken.fetch_add(1, std::memory_order_relaxed);
        }
      });
    }

    std::uint64_t expected = 0;
    bool all_taken = true;
    bool all_parked = true;
    for (std::size_t round = 0; round < rounds && all_taken && all_parked; ++round) {
      std::vector<std::thread> threads;
      for (std::size_t p = 0; p < producers; ++p) {
        threads.emplace_back([&] {
          for (std::size_t i = 0; i < per_round; ++i) {
            pending.fetch_add(1, std::memory_order_seq_cst);
            notify();
            if (i % 16 == 0) std::this_thread::yield();  // let the pool drain and park
          }
        });
      }
      for (auto& t : threads)
        t.join();
      expected += producers * per_round;
      // Every item must be taken without any further help; then the pool must go back to sleep.
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      while (taken.load() != expected && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(100us);
      all_taken = taken.load() == expected;
      while (!state.all_parked() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(100us);
      all_parked = state.all_parked();
      CHECK(state.searching() == 0);
    }

    // Stopped before checking, so that a failure does not leave threads running.
    stop.store(true, std::memory_order_seq_cst);
    for (auto& p : parkers)
      p->unpark();
    for (auto& t : pool)
      t.join();
    CHECK(all_taken);
    CHECK(all_parked);
    CHECK(pending.load() == 0);
    weft_test::stress_summary(std::to_string(expected) + " items, " + std::to_string(rounds) +
                              " rounds");
  }
}
