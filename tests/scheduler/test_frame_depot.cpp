// tests/scheduler/test_frame_depot.cpp: the depot that carries freed frames between threads
// (scheduler/frame_depot.hpp): batches come back whole, the bound holds, trim returns what is held
// above the kept amount, and under concurrent puts, takes and trims every frame is held by exactly
// one owner at a time (run under TSan and ASan: the sanitizer presets build the allocator without
// the depot, so this test is where they see it).
#include <doctest/doctest.h>

#include <atomic>
#include <cstddef>
#include <set>
#include <thread>
#include <vector>

#include "frame_depot.hpp"
#include "support/stress.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;
using weft::detail::free_frame;

namespace {

constexpr std::size_t frame_bytes = 64;

// Frames the test owns, as the allocator's blocks would be.
struct arena {
  explicit arena(std::size_t count) : blocks(count) {}
  struct alignas(16) block {
    unsigned char bytes[frame_bytes];
  };
  std::vector<block> blocks;
  free_frame* at(std::size_t i) { return reinterpret_cast<free_frame*>(&blocks[i]); }
};

// Chains frames [first, first + count) of `a` through free_frame::next.
free_frame* chain(arena& a, std::size_t first, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i)
    a.at(first + i)->next = i + 1 < count ? a.at(first + i + 1) : nullptr;
  return a.at(first);
}

std::size_t length(free_frame* head) {
  std::size_t n = 0;
  for (; head != nullptr; head = head->next)
    ++n;
  return n;
}

}  // namespace

TEST_CASE("frame depot: a batch put on a shelf comes back whole from the same class only") {
  weft::detail::frame_depot<4> depot(1 << 20, 1 << 20);
  arena a(8);
  REQUIRE(depot.put(2, chain(a, 0, 5), 5, frame_bytes));
  CHECK(depot.bytes() == 5 * frame_bytes);
  std::size_t count = 0;
  CHECK(depot.take(1, count, frame_bytes) == nullptr);
  CHECK(depot.take(3, count, frame_bytes) == nullptr);
  free_frame* back = depot.take(2, count, frame_bytes);
  REQUIRE(back != nullptr);
  CHECK(count == 5);
  CHECK(length(back) == 5);
  std::set<free_frame*> seen;
  for (free_frame* f = back; f != nullptr; f = f->next)
    seen.insert(f);
  for (std::size_t i = 0; i < 5; ++i)
    CHECK(seen.count(a.at(i)) == 1);
  CHECK(depot.bytes() == 0);
  CHECK(depot.take(2, count, frame_bytes) == nullptr);
}

TEST_CASE("frame depot: batches of a class come back last in first out") {
  weft::detail::frame_depot<2> depot(1 << 20, 1 << 20);
  arena a(6);
  REQUIRE(depot.put(1, chain(a, 0, 3), 3, frame_bytes));
  REQUIRE(depot.put(1, chain(a, 3, 3), 3, frame_bytes));
  std::size_t count = 0;
  CHECK(depot.take(1, count, frame_bytes) == a.at(3));
  CHECK(depot.take(1, count, frame_bytes) == a.at(0));
}

TEST_CASE("frame depot: a put that would pass the bound is refused and the caller keeps it") {
  weft::detail::frame_depot<2> depot(4 * frame_bytes, 4 * frame_bytes);
  arena a(8);
  REQUIRE(depot.put(0, chain(a, 0, 3), 3, frame_bytes));
  free_frame* refused = chain(a, 3, 2);
  CHECK_FALSE(depot.put(1, refused, 2, frame_bytes));
  CHECK(depot.bytes() == 3 * frame_bytes);
  CHECK(length(refused) == 2);  // untouched: still the caller's chain
  CHECK(depot.put(1, chain(a, 5, 1), 1, frame_bytes));
  CHECK(depot.bytes() == 4 * frame_bytes);
}

TEST_CASE("frame depot: trim returns every batch above the kept amount and counts no take") {
  weft::detail::frame_depot<3> depot(4 * frame_bytes, 1 << 20);
  arena a(24);
  REQUIRE(depot.put(1, chain(a, 0, 8), 8, frame_bytes));
  REQUIRE(depot.put(2, chain(a, 8, 8), 8, frame_bytes));
  REQUIRE(depot.put(2, chain(a, 16, 8), 8, frame_bytes));
  CHECK(depot.takes() == 0);
  std::size_t count = 0;
  REQUIRE(depot.take(2, count, frame_bytes) != nullptr);  // frames 16..23
  CHECK(depot.takes() == 1);
  std::set<free_frame*> released;
  std::set<std::size_t> classes;
  const std::size_t n = depot.trim(
      [&](std::size_t c) {
        classes.insert(c);
        return frame_bytes;
      },
      [&](void* frame) { released.insert(static_cast<free_frame*>(frame)); });
  // 16 frames held, 4 kept: whole batches go until at most 4 frames' bytes are left, so both.
  CHECK(n == 16);
  CHECK(released.size() == 16);
  for (std::size_t i = 0; i < 16; ++i)
    CHECK(released.count(a.at(i)) == 1);
  CHECK(depot.bytes() == 0);
  CHECK(depot.takes() == 1);  // trimming is not reuse
  CHECK(classes.count(1) == 1);
}

TEST_CASE("frame depot: trim leaves a depot within its kept amount alone") {
  weft::detail::frame_depot<2> depot(8 * frame_bytes, 1 << 20);
  arena a(8);
  REQUIRE(depot.put(1, chain(a, 0, 8), 8, frame_bytes));
  std::size_t calls = 0;
  CHECK(depot.trim([](std::size_t) { return frame_bytes; }, [&](void*) { ++calls; }) == 0);
  CHECK(calls == 0);
  CHECK(depot.bytes() == 8 * frame_bytes);
}

TEST_CASE("frame depot: a put is held to a limit below the bound when the caller gives one") {
  weft::detail::frame_depot<2> depot(2 * frame_bytes, 1 << 20);
  arena a(8);
  REQUIRE(depot.put(1, chain(a, 0, 2), 2, frame_bytes, 2 * frame_bytes));
  free_frame* refused = chain(a, 2, 2);
  CHECK_FALSE(depot.put(1, refused, 2, frame_bytes, 2 * frame_bytes));
  CHECK(length(refused) == 2);
  CHECK(depot.put(1, refused, 2, frame_bytes));  // the bound itself: room
  CHECK(depot.bytes() == 4 * frame_bytes);
}

TEST_SUITE("stress") {
  TEST_CASE(
      "frame depot: concurrent puts takes and trims move every frame exactly once within the "
      "bound") {
    // Four threads each own frames; each round a thread puts a batch and takes one (maybe someone
    // else's). A fifth trims the depot to its kept amount, keeping what trim releases, and puts it
    // back now and then. Every frame carries its owner's mark while held; a frame handed out twice,
    // or a batch whose length is wrong, shows up as a mark that does not match or a count that
    // drifts.
    weft_test::watchdog dog(120s);
    constexpr std::size_t threads = 4;
    constexpr std::size_t per_thread = 256;
    constexpr std::size_t batch = 8;
    constexpr std::size_t bound = 40 * batch * frame_bytes;
    const std::size_t rounds = weft_test::stress_count(20'000, 1'000'000);
    weft::detail::frame_depot<3> depot(bound / 4, bound);
    arena a(threads * per_thread);
    std::atomic<bool> bad{false};
    std::atomic<std::size_t> over_bound{0};
    std::vector<std::thread> workers;
    std::vector<std::vector<free_frame*>> held(threads);
    for (std::size_t t = 0; t < threads; ++t) {
      for (std::size_t i = 0; i < per_thread; ++i)
        held[t].push_back(a.at(t * per_thread + i));
    }
    for (std::size_t t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        auto& mine = held[t];
        // Marks: the word after `next` holds the owner's number while the thread holds the frame.
        auto mark = [&](free_frame* f) { reinterpret_cast<std::size_t*>(f)[3] = t; };
        auto check_mark = [&](free_frame* f) {
          if (reinterpret_cast<std::size_t*>(f)[3] != t) bad.store(true);
        };
        for (free_frame* f : mine)
          mark(f);
        for (std::size_t round = 0; round < rounds; ++round) {
          const std::size_t c = round % 3;
          if (mine.size() >= batch) {
            for (std::size_t i = 0; i < batch; ++i) {
              free_frame* f = mine[mine.size() - 1 - i];
              f->next = i + 1 < batch ? mine[mine.size() - 2 - i] : nullptr;
            }
            free_frame* head = mine[mine.size() - 1];
            if (depot.put(c, head, batch, frame_bytes)) mine.resize(mine.size() - batch);
          }
          if (depot.bytes() > bound) over_bound.fetch_add(1);
          std::size_t count = 0;
          if (free_frame* got = depot.take(c, count, frame_bytes)) {
            std::size_t n = 0;
            for (free_frame* f = got; f != nullptr;) {
              free_frame* next = f->next;
              mark(f);
              mine.push_back(f);
              f = next;
              ++n;
            }
            if (n != count) bad.store(true);
          }
          for (std::size_t i = 0; i < mine.size(); i += 17)
            check_mark(mine[i]);
        }
      });
    }
    std::atomic<bool> owners_done{false};
    std::vector<free_frame*> trimmed;  // the trimmer's frames
    std::thread trimmer([&] {
      const std::size_t me = threads;
      auto mark = [&](free_frame* f) { reinterpret_cast<std::size_t*>(f)[3] = me; };
      while (!owners_done.load()) {
        (void)depot.trim([](std::size_t) { return frame_bytes; },
                         [&](void* frame) {
                           mark(static_cast<free_frame*>(frame));
                           trimmed.push_back(static_cast<free_frame*>(frame));
                         });
        for (std::size_t i = 0; i < trimmed.size(); i += 7) {
          if (reinterpret_cast<std::size_t*>(trimmed[i])[3] != me) bad.store(true);
        }
        if (depot.bytes() > bound) over_bound.fetch_add(1);
        // Back into circulation, a batch at a time, while there is room.
        while (trimmed.size() >= batch) {
          for (std::size_t i = 0; i < batch; ++i) {
            free_frame* f = trimmed[trimmed.size() - 1 - i];
            f->next = i + 1 < batch ? trimmed[trimmed.size() - 2 - i] : nullptr;
          }
          if (!depot.put(0, trimmed[trimmed.size() - 1], batch, frame_bytes)) break;
          trimmed.resize(trimmed.size() - batch);
        }
        std::this_thread::yield();
      }
    });
    for (auto& w : workers)
      w.join();
    owners_done.store(true);
    trimmer.join();
    held.push_back(trimmed);
    CHECK_FALSE(bad.load());
    CHECK(over_bound.load() == 0);
    // Drain: every frame is with one thread or on a shelf, and none twice.
    std::set<free_frame*> all;
    std::size_t total = 0;
    for (auto& mine : held) {
      for (free_frame* f : mine) {
        all.insert(f);
        ++total;
      }
    }
    for (std::size_t c = 0; c < 3; ++c) {
      std::size_t count = 0;
      while (free_frame* got = depot.take(c, count, frame_bytes)) {
        for (free_frame* f = got; f != nullptr; f = f->next) {
          all.insert(f);
          ++total;
        }
      }
    }
    CHECK(total == threads * per_thread);
    CHECK(all.size() == threads * per_thread);
    CHECK(depot.bytes() == 0);
  }
}  // TEST_SUITE("stress")
