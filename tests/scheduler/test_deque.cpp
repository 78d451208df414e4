// tests/test_deque.cpp: the private Chase-Lev deque (scheduler/deque.hpp). Sequential semantics
// (LIFO for the owner, FIFO for thieves, bounded) and stress S1: every thread owns a deque and
// steals from the others; every item is taken exactly once, including through
// take_half_for_overflow. Light mode (the owner's fence-free pop_if, the thieves' heavy fence) gets
// the same two checks; it needs membarrier, so those cases say so and pass without checking where
// it is unavailable (TSan).
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "deque.hpp"
#include "heavy_fence.hpp"
#include "support/stress.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

void* as_item(std::uintptr_t id) { return reinterpret_cast<void*>(id + 1); }
std::uintptr_t as_id(void* item) { return reinterpret_cast<std::uintptr_t>(item) - 1; }

using small_deque = weft::detail::work_deque<8>;
using stress_deque = weft::detail::work_deque<256>;

// How often each of `total` items was taken, for the S1 stresses.
class ledger {
 public:
  explicit ledger(std::size_t total) : total_(total), seen_(new std::atomic<std::uint8_t>[total]) {
    for (std::size_t i = 0; i < total; ++i)
      seen_[i].store(0, std::memory_order_relaxed);
  }
  void take(void* item) {
    seen_[as_id(item)].fetch_add(1, std::memory_order_relaxed);
    taken_.fetch_add(1, std::memory_order_relaxed);
  }
  [[nodiscard]] bool all_taken() const { return taken_.load(std::memory_order_relaxed) >= total_; }
  // Every item exactly once.
  void check() const {
    std::size_t lost = 0;
    std::size_t duplicated = 0;
    for (std::size_t i = 0; i < total_; ++i) {
      const auto n = seen_[i].load(std::memory_order_relaxed);
      if (n == 0) ++lost;
      if (n > 1) ++duplicated;
    }
    CHECK(lost == 0);
    CHECK(duplicated == 0);
    CHECK(taken_.load() == total_);
  }

 private:
  std::size_t total_;
  std::unique_ptr<std::atomic<std::uint8_t>[]> seen_;
  std::atomic<std::size_t> taken_{0};
};

// A thread's own random numbers (xorshift32), seeded by its index.
struct thread_rng {
  std::uint32_t state;
  explicit thread_rng(std::size_t me) : state(static_cast<std::uint32_t>(me * 2654435761U + 7)) {}
  std::uint32_t operator()() {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
  }
};

// Runs body(i) on `threads` threads, one deque each, and checks the deques are empty at the end.
template <class Body>
void run_owners(std::vector<std::unique_ptr<stress_deque>>& deques, std::size_t threads,
                Body body) {
  for (std::size_t i = 0; i < threads; ++i)
    deques.push_back(std::make_unique<stress_deque>());
  std::vector<std::thread> pool;
  for (std::size_t i = 0; i < threads; ++i)
    pool.emplace_back(body, i);
  for (auto& t : pool)
    t.join();
  for (auto& d : deques)
    CHECK(d->size_estimate() == 0);
}

// `rounds` rounds of a race between the owner and one thief on `d`: each round, `owner_takes(r)`
// pushes and takes back what it can while the thief tries one steal (retrying lost races); once
// the thief has tried, `owner_rest()` takes what is left. Returns what the owner and the thief
// got in all.
template <class OwnerTakes, class OwnerRest>
std::pair<std::size_t, std::size_t> race(small_deque& d, std::size_t rounds, OwnerTakes owner_takes,
                                         OwnerRest owner_rest) {
  std::atomic<std::size_t> round_started{0};
  std::atomic<std::size_t> thief_done{0};
  std::atomic<std::size_t> thief_got{0};
  std::thread thief([&] {
    for (std::size_t r = 1; r <= rounds; ++r) {
      while (round_started.load(std::memory_order_acquire) < r)
        std::this_thread::yield();
      void* out = nullptr;
      small_deque::steal_result res;
      do {
        res = d.steal(out);
      } while (res == small_deque::steal_result::lost_race);
      if (res == small_deque::steal_result::success) thief_got.fetch_add(1);
      thief_done.store(r, std::memory_order_release);
    }
  });
  std::size_t owner_got = 0;
  for (std::size_t r = 1; r <= rounds; ++r) {
    owner_got += owner_takes(r, [&] { round_started.store(r, std::memory_order_release); });
    while (thief_done.load(std::memory_order_acquire) < r)
      std::this_thread::yield();
    owner_got += owner_rest();
  }
  thief.join();
  return {owner_got, thief_got.load()};
}

}  // namespace

TEST_CASE("deque: the owner pops in LIFO order and thieves steal in FIFO order") {
  small_deque d;
  for (std::uintptr_t i = 0; i < 6; ++i)
    REQUIRE(d.push(as_item(i)));
  CHECK(d.size_estimate() == 6);
  void* out = nullptr;
  REQUIRE(d.steal(out) == small_deque::steal_result::success);
  CHECK(as_id(out) == 0);
  REQUIRE(d.steal(out) == small_deque::steal_result::success);
  CHECK(as_id(out) == 1);
  CHECK(as_id(d.pop()) == 5);
  CHECK(as_id(d.pop()) == 4);
  CHECK(as_id(d.pop()) == 3);
  CHECK(as_id(d.pop()) == 2);
  CHECK(d.pop() == nullptr);
  CHECK(d.steal(out) == small_deque::steal_result::empty);
  CHECK(d.size_estimate() == 0);
}

TEST_CASE("deque: a full deque refuses a push and wraps around after pops") {
  small_deque d;
  for (std::uintptr_t i = 0; i < 8; ++i)
    REQUIRE(d.push(as_item(i)));
  CHECK_FALSE(d.push(as_item(99)));
  void* out = nullptr;
  REQUIRE(d.steal(out) == small_deque::steal_result::success);
  CHECK(as_id(out) == 0);
  CHECK(d.push(as_item(8)));  // reuses the slot of item 0
  CHECK_FALSE(d.push(as_item(99)));
  for (std::uintptr_t expect = 8; expect >= 1; --expect)
    CHECK(as_id(d.pop()) == expect);
  CHECK(d.pop() == nullptr);
}

TEST_CASE("deque: take_half_for_overflow moves the oldest half") {
  small_deque d;
  for (std::uintptr_t i = 0; i < 8; ++i)
    REQUIRE(d.push(as_item(i)));
  void* out[4] = {};
  REQUIRE(d.take_half_for_overflow(out) == 4);
  for (std::uintptr_t i = 0; i < 4; ++i)
    CHECK(as_id(out[i]) == i);
  CHECK(d.size_estimate() == 4);
  for (std::uintptr_t expect = 7; expect >= 4; --expect)
    CHECK(as_id(d.pop()) == expect);
  CHECK(d.take_half_for_overflow(out) == 0);
}

TEST_CASE("deque: the last item goes to exactly one of owner and thief") {
  weft_test::watchdog dog(60s);
  const std::size_t rounds = weft_test::stress_count(20'000, 200'000);
  small_deque d;
  const auto [owner_got, thief_got] = race(
      d, rounds,
      [&](std::size_t r, auto start) -> std::size_t {
        REQUIRE(d.push(as_item(r)));
        start();
        return d.pop() != nullptr ? 1 : 0;
      },
      [&]() -> std::size_t {
        REQUIRE(d.pop() == nullptr);
        return 0;
      });
  CHECK(owner_got + thief_got == rounds);
}

TEST_CASE("deque: in light mode the last item goes to exactly one of owner and thief") {
  if (!weft::detail::heavy_fence_available()) {
    MESSAGE("membarrier is unavailable here (or this is a TSan build): light mode is never used");
    return;
  }
  weft_test::watchdog dog(60s);
  const std::size_t rounds = weft_test::stress_count(20'000, 200'000);
  small_deque d;
  d.enter_light();
  const auto [owner_got, thief_got] = race(
      d, rounds,
      [&](std::size_t r, auto start) -> std::size_t {
        // Two items, so that the owner's light pop of the newer one is the fence-free path (the
        // last item goes through the CAS either way), then the older one through the same call.
        REQUIRE(d.push(as_item(2 * r)));
        REQUIRE(d.push(as_item(2 * r + 1)));
        start();
        std::size_t got = d.pop_if(as_item(2 * r + 1)) ? 1 : 0;
        if (d.pop_if(as_item(2 * r))) ++got;
        return got;
      },
      [&]() -> std::size_t {
        // The thief took at most one item this round; whatever is left is the owner's.
        std::size_t got = 0;
        while (d.pop() != nullptr)
          ++got;
        return got;
      });
  CHECK(owner_got + thief_got == 2 * rounds);
  d.leave_light();
}

TEST_SUITE("stress") {
  TEST_CASE("deque: S1 in light mode owners and thieves take every item exactly once") {
    if (!weft::detail::heavy_fence_available()) {
      MESSAGE("membarrier is unavailable here (or this is a TSan build): light mode is never used");
      return;
    }
    // As S1 below, with the owners popping through pop_if (light mode's fence-free take), going
    // in and out of light mode now and then, while the others steal.
    const std::size_t threads = 4;
    const std::size_t per_thread =
        weft_test::stress_count(weft_test::sanitized() ? 20'000 : 100'000, 1'000'000);
    weft_test::watchdog dog(280s);
    std::vector<std::unique_ptr<stress_deque>> deques;
    ledger items(threads * per_thread);
    std::atomic<std::size_t> stolen{0};
    std::atomic<std::size_t> mode_changes{0};
    auto body = [&](std::size_t me) {
      stress_deque& own = *deques[me];
      thread_rng next(me);
      // What this owner pushed and has not seen taken, oldest first. pop_if(newest) failing means
      // a thief took it, and thieves take the oldest first: everything older went the same way.
      std::vector<void*> mine;
      std::size_t pushed = 0;
      auto pop_own = [&]() -> bool {
        if (mine.empty()) return false;
        void* newest = mine.back();
        mine.pop_back();
        if (own.pop_if(newest)) {
          items.take(newest);
          return true;
        }
        mine.clear();
        return false;
      };
      while (!items.all_taken()) {
        if (next() % 512 == 0) {
          if (own.light()) {
            own.leave_light();
          } else {
            own.enter_light();
          }
          mode_changes.fetch_add(1, std::memory_order_relaxed);
        }
        if (pushed < per_thread) {
          const std::uint32_t burst = next() % 64 + 1;
          for (std::uint32_t i = 0; i < burst && pushed < per_thread; ++i) {
            void* item = as_item(me * per_thread + pushed);
            if (!own.push(item)) break;  // full: pop below first
            mine.push_back(item);
            ++pushed;
          }
          const std::uint32_t pops = next() % 72;
          for (std::uint32_t i = 0; i < pops; ++i) {
            if (!pop_own()) break;
          }
          continue;
        }
        if (pop_own()) continue;
        const std::size_t victim = next() % threads;
        if (victim == me) continue;
        void* out = nullptr;
        if (deques[victim]->steal(out) == stress_deque::steal_result::success) {
          stolen.fetch_add(1, std::memory_order_relaxed);
          items.take(out);
        }
      }
      if (own.light()) own.leave_light();
    };
    run_owners(deques, threads, body);
    MESSAGE(threads << " threads x " << per_thread << " items: " << stolen.load() << " stolen, "
                    << mode_changes.load() << " mode changes");
    items.check();
  }

  TEST_CASE("deque: S1 owners and thieves take every item exactly once") {
    // Every thread owns one deque: it pushes its own items (moving half to an overflow list when
    // full, as a worker does), pops some, and steals from the other deques when it has nothing.
    const std::size_t threads = weft_test::stress_scaled_up() ? 8 : 4;
    const std::size_t per_thread =
        weft_test::stress_count(weft_test::sanitized() ? 20'000 : 100'000, 1'000'000);
    weft_test::watchdog dog(280s);
    std::vector<std::unique_ptr<stress_deque>> deques;
    ledger items(threads * per_thread);
    std::atomic<std::size_t> stolen{0};
    std::atomic<std::size_t> overflowed{0};
    auto body = [&](std::size_t me) {
      stress_deque& own = *deques[me];
      thread_rng next(me);
      std::size_t pushed = 0;
      void* overflow[stress_deque::capacity / 2];
      while (!items.all_taken()) {
        if (pushed < per_thread) {
          // Bursts of pushes with occasional pops, so the deques fill, overflow and drain.
          const std::uint32_t burst = next() % 64 + 1;
          for (std::uint32_t i = 0; i < burst && pushed < per_thread; ++i) {
            void* item = as_item(me * per_thread + pushed);
            while (!own.push(item)) {
              const std::size_t moved = own.take_half_for_overflow(overflow);
              overflowed.fetch_add(moved, std::memory_order_relaxed);
              for (std::size_t k = 0; k < moved; ++k)
                items.take(overflow[k]);
            }
            ++pushed;
          }
          const std::uint32_t pops = next() % 48;
          for (std::uint32_t i = 0; i < pops; ++i) {
            void* item = own.pop();
            if (item == nullptr) break;
            items.take(item);
          }
          continue;
        }
        if (void* item = own.pop()) {
          items.take(item);
          continue;
        }
        const std::size_t victim = next() % threads;
        if (victim == me) continue;
        void* out = nullptr;
        if (deques[victim]->steal(out) == stress_deque::steal_result::success) {
          stolen.fetch_add(1, std::memory_order_relaxed);
          items.take(out);
        }
      }
    };
    run_owners(deques, threads, body);
    MESSAGE(threads << " threads x " << per_thread << " items: " << stolen.load() << " stolen, "
                    << overflowed.load() << " overflowed");
    items.check();
  }
}
