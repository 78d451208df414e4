// tests/test_parking.cpp: parking liveness (stress S3). Work that arrives at an idle pool from
// outside is picked up promptly, round after round (a lost wake-up would leave it waiting for
// ever), and runtimes started and stopped under a spawning load never hang and leak nothing.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "support/stress.hpp"
#include "support/tracker.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using weft_test::tracker;

namespace {

weft::task<steady::time_point> now_on_pool() { co_return steady::now(); }

}  // namespace

TEST_SUITE("stress") {
  TEST_CASE("parking: S3 one task from outside reaches an idle pool within 100 ms every round") {
    const std::size_t rounds = weft_test::stress_count(weft_test::sanitized() ? 300 : 1000, 100'000);
    weft_test::watchdog dog(std::chrono::minutes(weft_test::stress_scaled_up() ? 30 : 3));
    weft::runtime rt({.worker_threads = 2});
    std::size_t slow = 0;
    std::chrono::nanoseconds worst{0};
    std::mt19937 rng(1);
    std::uint64_t parked_at_send = rt.stats().parked;
    for (std::size_t r = 0; r < rounds; ++r) {
      // Let the pool go idle: searching lasts about 50 us, then the workers park. Vary the pause
      // so that the task arrives at every stage of going to sleep, not only after it.
      if (r % 4 == 0) {
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 100));
      } else {
        // The worker that ran the previous task parks again (the other may never have woken).
        for (int i = 0; i < 1000 && rt.stats().parked <= parked_at_send; ++i) {
          std::this_thread::sleep_for(50us);
        }
      }
      parked_at_send = rt.stats().parked;
      const auto sent = steady::now();
      auto handle = rt.spawn(now_on_pool());
      // Wait by polling, not by block_on, so the test does not depend on the join path.
      while (!handle.done()) {
        if (steady::now() - sent > 10s) break;
        std::this_thread::yield();
      }
      REQUIRE_MESSAGE(handle.done(), "round " << r << ": task not picked up within 10 s");
      const auto latency = handle.take_result() - sent;
      worst = std::max(worst, std::chrono::duration_cast<std::chrono::nanoseconds>(latency));
      if (latency > 100ms) ++slow;
    }
    MESSAGE(rounds << " rounds, worst pick-up latency "
                   << std::chrono::duration_cast<std::chrono::microseconds>(worst).count()
                   << " us");
    CHECK(slow == 0);
  }

  TEST_CASE("parking: a timer firing on an idle pool wakes it every round") {
    const std::size_t rounds = weft_test::stress_count(weft_test::sanitized() ? 200 : 500, 10'000);
    weft_test::watchdog dog(std::chrono::minutes(weft_test::stress_scaled_up() ? 30 : 3));
    auto main_task = [](std::size_t n) -> weft::task<std::size_t> {
      std::size_t late = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const auto deadline = weft::clock::now() + 2ms;
        co_await weft::sleep_until(deadline);
        if (weft::clock::now() - deadline > 100ms) ++late;
      }
      co_return late;
    };
    CHECK(weft::run(main_task(rounds), {.worker_threads = 2}) == 0);
  }

  TEST_CASE("parking: S3 runtimes started and stopped under a spawning load never hang") {
    const std::size_t cycles = weft_test::stress_count(weft_test::sanitized() ? 40 : 100, 1000);
    weft_test::watchdog dog(std::chrono::minutes(weft_test::stress_scaled_up() ? 30 : 3));
    std::mt19937 rng(3);
    std::atomic<std::size_t> reports{0};
    for (std::size_t c = 0; c < cycles; ++c) {
      {
        weft::runtime_options options;
        options.worker_threads = 2;
        // Spawns that lose the race with shutdown end in runtime_stopped; they are reported here.
        options.log = [&reports](std::string_view) { reports.fetch_add(1); };
        weft::runtime rt(std::move(options));
        // A load that keeps spawning: each generation spawns two children and awaits one.
        struct load {
          static weft::task<> grow(int depth) {
            tracker t;
            if (depth == 0) {
              co_await weft::yield_now();
              co_return;
            }
            weft::spawn(grow(depth - 1)).detach();
            auto other = weft::spawn(grow(depth - 1));
            co_await weft::yield_now();
            co_await other;
          }
          static weft::task<> forever() {
            tracker t;
            for (;;) {
              weft::spawn(grow(3)).detach();
              co_await weft::sleep(std::chrono::microseconds(500));
            }
          }
        };
        for (int i = 0; i < 4; ++i) rt.spawn(load::forever()).detach();
        auto kept = rt.spawn(load::grow(6));
        std::thread foreign([&rt] {
          for (int i = 0; i < 50; ++i) rt.spawn(load::grow(2)).detach();
        });
        foreign.join();
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
        // Destroyed here with the load running: kept, detached and queued tasks alike.
      }
      REQUIRE(tracker::live == 0);
    }
    MESSAGE(cycles << " start/stop cycles; " << reports.load() << " spawns refused at shutdown");
  }
}
