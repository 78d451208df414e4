// tests/test_injector.cpp: the private injection queue (scheduler/injector.hpp): bulk push and pop,
// the exact length that parking relies on, and stress S1: producers and consumers move every item
// exactly once.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "injector.hpp"
#include "support/stress.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {
// Items are addresses of bytes the test owns, as tasks are frames: under TSan the queue marks its
// happens-before edge on the item's address (injector.hpp), which must be real memory.
constexpr std::size_t max_items = std::size_t{1} << 24;
char* arena() {
  static const std::unique_ptr<char[]> bytes(new char[max_items]);
  return bytes.get();
}
void* as_item(std::uintptr_t id) {
  if (id >= max_items) std::abort();  // (called from the stress test's threads too)
  return arena() + id;
}
std::uintptr_t as_id(void* item) {
  return static_cast<std::uintptr_t>(static_cast<char*>(item) - arena());
}
}  // namespace

TEST_CASE("injector: items pushed singly and in bulk come out and the length follows") {
  weft::detail::injector q;
  auto token = q.make_token();
  void* out[64] = {};
  CHECK(q.length() == 0);
  CHECK(q.pop_bulk(token, out, 64) == 0);
  q.push(as_item(0));
  void* batch[10];
  for (std::uintptr_t i = 0; i < 10; ++i)
    batch[i] = as_item(i + 1);
  q.push_bulk(batch, 10);
  q.push_bulk(batch, 0);
  CHECK(q.length() == 11);
  std::vector<bool> seen(11, false);
  std::size_t got = 0;
  while (got < 11) {
    const std::size_t n = q.pop_bulk(token, out, 4);
    REQUIRE(n > 0);
    CHECK(n <= 4);
    for (std::size_t i = 0; i < n; ++i) {
      CHECK_FALSE(seen[as_id(out[i])]);
      seen[as_id(out[i])] = true;
    }
    got += n;
  }
  CHECK(q.length() == 0);
  CHECK(q.pop_bulk(token, out, 64) == 0);
}

TEST_CASE("injector: clear shows every item once and drops them all") {
  weft::detail::injector q;
  for (std::uintptr_t i = 0; i < 100; ++i)
    q.push(as_item(i));
  std::vector<int> seen(100, 0);
  q.clear([&](void* item) { ++seen[as_id(item)]; });
  CHECK(std::count(seen.begin(), seen.end(), 1) == 100);
  CHECK(q.length() == 0);
  auto token = q.make_token();
  void* out[8];
  CHECK(q.pop_bulk(token, out, 8) == 0);
}

TEST_SUITE("stress") {
  TEST_CASE("injector: S1 producers and consumers move every item exactly once") {
    const std::size_t producers = 4;
    const std::size_t consumers = 2;
    const std::size_t per_producer =
        weft_test::stress_count(weft_test::sanitized() ? 20'000 : 100'000, 500'000);
    const std::size_t total = producers * per_producer;
    weft_test::watchdog dog(280s);
    weft::detail::injector q;
    std::unique_ptr<std::atomic<std::uint8_t>[]> seen(new std::atomic<std::uint8_t>[total]);
    for (std::size_t i = 0; i < total; ++i)
      seen[i].store(0, std::memory_order_relaxed);
    std::atomic<std::size_t> taken{0};
    std::vector<std::thread> threads;
    for (std::size_t p = 0; p < producers; ++p) {
      threads.emplace_back([&, p] {
        std::size_t i = 0;
        void* batch[16];
        while (i < per_producer) {
          // Alternate single and bulk pushes, as runtime::spawn and the poller do.
          if ((i / 16) % 2 == 0) {
            q.push(as_item(p * per_producer + i));
            ++i;
          } else {
            std::size_t n = 0;
            while (n < 16 && i < per_producer)
              batch[n++] = as_item(p * per_producer + i++);
            q.push_bulk(batch, n);
          }
        }
      });
    }
    for (std::size_t c = 0; c < consumers; ++c) {
      threads.emplace_back([&] {
        auto token = q.make_token();
        void* out[32];
        while (taken.load(std::memory_order_relaxed) < total) {
          const std::size_t n = q.pop_bulk(token, out, 32);
          for (std::size_t i = 0; i < n; ++i)
            seen[as_id(out[i])].fetch_add(1);
          taken.fetch_add(n, std::memory_order_relaxed);
          if (n == 0) std::this_thread::yield();
        }
      });
    }
    for (auto& t : threads)
      t.join();
    std::size_t lost = 0;
    std::size_t duplicated = 0;
    for (std::size_t i = 0; i < total; ++i) {
      const auto n = seen[i].load();
      if (n == 0) ++lost;
      if (n > 1) ++duplicated;
    }
    CHECK(lost == 0);
    CHECK(duplicated == 0);
    CHECK(taken.load() == total);
    CHECK(q.length() == 0);
  }
}
