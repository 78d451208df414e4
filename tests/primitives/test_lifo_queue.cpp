// tests/test_lifo_queue.cpp: weft::lifo_queue<T> (asyncio.LifoQueue), ported in spirit from
// test_queues' LifoQueue cases: the last item put comes out first; a waiting putter's item takes
// the place a get frees (and so comes out next); waiting getters are served in FIFO order and an
// item put while they wait goes to the first; task_done/join and shutdown behave as weft::queue's.
#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <weft/weft.hpp>

#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {
const weft::runtime_options one_worker{.worker_threads = 1};
}  // namespace

TEST_CASE("lifo_queue: the item put last comes out first") {
  weft::lifo_queue<std::string> q;  // the nowait forms work on any thread
  for (int i = 0; i < 5; ++i)
    q.put_nowait(std::to_string(i));
  CHECK(q.size() == 5);
  for (int i = 4; i >= 0; --i)
    CHECK(q.get_nowait() == std::to_string(i));
  CHECK(q.empty());
  CHECK_THROWS_AS((void)q.get_nowait(), weft::queue_empty);
}

TEST_CASE("lifo_queue: a waiting putter's item is the next out after a get makes room") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        weft::lifo_queue<int> q(2);
        co_await q.put(1);
        co_await q.put(2);
        CHECK(q.full());
        CHECK_THROWS_AS(q.put_nowait(9), weft::queue_full);
        auto putter = weft::spawn(
            [](weft::lifo_queue<int>& lq) -> weft::task<> { co_await lq.put(3); }, std::ref(q));
        co_await weft::sleep(2ms);
        CHECK_FALSE(putter.done());
        CHECK(co_await q.get() == 2);
        co_await putter;
        CHECK(co_await q.get() == 3);
        CHECK(co_await q.get() == 1);
      }(),
      one_worker);
}

TEST_CASE("lifo_queue: waiting getters are served in the order they came") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        weft::lifo_queue<int> q;
        std::vector<int> got;
        std::vector<weft::join_handle<void>> getters;
        for (int i = 0; i < 3; ++i) {
          getters.push_back(weft::spawn(
              [](weft::lifo_queue<int>& lq, std::vector<int>& out, int id) -> weft::task<> {
                out.push_back(id * 10 + co_await lq.get());
              },
              std::ref(q), std::ref(got), i));
          co_await weft::sleep(1ms);
        }
        q.put_nowait(1);
        q.put_nowait(2);
        q.put_nowait(3);
        for (auto& g : getters)
          co_await g;
        CHECK(got == std::vector<int>{1, 12, 23});
      }(),
      one_worker);
}

TEST_CASE("lifo_queue: join waits for task_done and shutdown releases getters") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        weft::lifo_queue<int> q;
        co_await q.put(1);
        co_await q.put(2);
        auto joiner = weft::spawn(
            [](weft::lifo_queue<int>& lq) -> weft::task<> { co_await lq.join(); }, std::ref(q));
        CHECK(co_await q.get() == 2);
        q.task_done();
        co_await weft::sleep(2ms);
        CHECK_FALSE(joiner.done());
        CHECK(co_await q.get() == 1);
        q.task_done();
        co_await joiner;
        CHECK_THROWS_AS(q.task_done(), std::logic_error);
        auto getter = weft::spawn(
            [](weft::lifo_queue<int>& lq) -> weft::task<int> { co_return co_await lq.get(); },
            std::ref(q));
        co_await weft::sleep(2ms);
        q.shutdown();
        CHECK_THROWS_AS(co_await getter, weft::queue_shut_down);
        CHECK_THROWS_AS(co_await q.put(5), weft::queue_shut_down);
      }(),
      one_worker);
}
