// tests/test_priority_queue.cpp: weft::priority_queue<T, Compare> (asyncio.PriorityQueue),
// ported in spirit from test_queues' PriorityQueue cases: the smallest item comes out first
// whatever the order of the puts, Compare reverses it, a bounded queue's waiting putter inserts
// when a get makes room, waiting getters receive items in FIFO order, and many producers and
// consumers on two workers lose and duplicate nothing.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <weft/weft.hpp>

#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {
const weft::runtime_options one_worker{.worker_threads = 1};
}  // namespace

TEST_CASE("priority_queue: the smallest item comes out first") {
  weft::priority_queue<std::pair<int, std::string>> q;
  for (int p : {5, 1, 4, 2, 3})
    q.put_nowait({p, "job" + std::to_string(p)});
  for (int p = 1; p <= 5; ++p)
    CHECK(q.get_nowait() == std::pair<int, std::string>{p, "job" + std::to_string(p)});
  CHECK(q.empty());
}

TEST_CASE("priority_queue: std::greater gives the largest first") {
  weft::priority_queue<int, std::greater<int>> q(10);
  for (int v : {3, 9, 1, 7})
    q.put_nowait(v);
  CHECK(q.get_nowait() == 9);
  CHECK(q.get_nowait() == 7);
  CHECK(q.get_nowait() == 3);
  CHECK(q.get_nowait() == 1);
}

TEST_CASE("priority_queue: a bounded put waits and its item is ordered when it enters") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        weft::priority_queue<int> q(2);
        co_await q.put(5);
        co_await q.put(3);
        auto putter = weft::spawn(
            [](weft::priority_queue<int>& pq) -> weft::task<> { co_await pq.put(1); }, std::ref(q));
        co_await weft::sleep(2ms);
        CHECK_FALSE(putter.done());
        CHECK(co_await q.get() == 3);
        co_await putter;
        CHECK(co_await q.get() == 1);
        CHECK(co_await q.get() == 5);
        CHECK(q.unfinished_tasks() == 3);
      }(),
      one_worker);
}

TEST_CASE("priority_queue: many producers and consumers lose and duplicate nothing") {
  weft_test::watchdog dog(30s);
  constexpr int producers = 4;
  constexpr int per_producer = 5000;
  auto main_task = []() -> weft::task<std::vector<int>> {
    weft::priority_queue<int> q(64);
    std::vector<int> got;
    std::atomic<int> taken{0};
    std::vector<weft::join_handle<void>> hs;
    for (int p = 0; p < producers; ++p) {
      hs.push_back(weft::spawn(
          [](weft::priority_queue<int>& pq, int base) -> weft::task<> {
            for (int i = 0; i < per_producer; ++i)
              co_await pq.put(base + i);
          },
          std::ref(q), p* per_producer));
    }
    weft::mutex m;
    for (int c = 0; c < 2; ++c) {
      hs.push_back(weft::spawn(
          [](weft::priority_queue<int>& pq, std::vector<int>& out, weft::mutex& mu,
             std::atomic<int>& n) -> weft::task<> {
            while (n.fetch_add(1) < producers * per_producer) {
              const int v = co_await pq.get();
              auto guard = co_await mu.lock();
              out.push_back(v);
            }
          },
          std::ref(q), std::ref(got), std::ref(m), std::ref(taken)));
    }
    for (auto& h : hs)
      co_await h;
    co_return got;
  };
  auto got = weft::run(main_task(), {.worker_threads = 2});
  std::sort(got.begin(), got.end());
  std::vector<int> expected(producers * per_producer);
  for (std::size_t i = 0; i < expected.size(); ++i)
    expected[i] = static_cast<int>(i);
  CHECK(got == expected);
}
