// tests/test_queue.cpp: weft::queue (patterns.md row 16, reliability.md rule 3 and S4): FIFO order
// of items and of waiting getters and putters; bounded put waits; the _nowait forms and their
// exceptions; task_done and join; shutdown with and without immediate; cancellation of a getter,
// a putter and a joiner before it queues, while queued and after it was granted (woken but not
// yet resumed); and stress with many producers and consumers, a foreign thread and random
// cancellations: every item delivered exactly once.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "support/exactly_once.hpp"
#include "support/fifo_rig.hpp"
#include "support/handoff_cancellation.hpp"
#include "support/ledger.hpp"
#include "support/outcomes.hpp"
#include "support/stress.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

using weft_test::ended;
using weft_test::how_it_ends;
using weft_test::let_others_wait;
using weft_test::one_worker;
using weft_test::result_of;

weft::task<int> get_one(weft::queue<int>& q) { co_return co_await q.get(); }
weft::task<> put_one(weft::queue<int>& q, int v) { co_await q.put(v); }

// The queue's adapter for the scenarios and drivers it shares with the channel
// (support/fifo_rig.hpp, support/handoff_cancellation.hpp, support/exactly_once.hpp).
struct queue_ops {
  weft::queue<int> q;
  explicit queue_ops(std::size_t maxsize = 0) : q(maxsize) {}
  auto get() { return q.get(); }
  auto put(int v) { return q.put(v); }
  bool try_put(int v) {
    try {
      q.put_nowait(v);
      return true;
    } catch (const weft::queue_full&) {
      return false;
    }
  }
  std::optional<int> take_now() {
    try {
      return q.get_nowait();
    } catch (const weft::queue_empty&) {
      return std::nullopt;
    }
  }
  std::size_t size() { return q.size(); }
  // For support/exactly_once.hpp (ops_rig):
  void mark_done() { q.task_done(); }
  void end_puts() {}
  void check_settled() { CHECK(q.unfinished_tasks() == 0); }
};

}  // namespace

TEST_CASE("queue: items come out in the order they were put") {
  weft_test::watchdog dog(10s);
  weft::run([]() -> weft::task<> {
    weft::queue<std::string> q;
    for (int i = 0; i < 100; ++i)
      co_await q.put(std::to_string(i));
    CHECK(q.size() == 100);
    for (int i = 0; i < 100; ++i)
      CHECK(co_await q.get() == std::to_string(i));
    CHECK(q.empty());
  }());
}

TEST_CASE("queue: the nowait forms throw queue_full and queue_empty from any thread") {
  weft::queue<int> q(2);  // no runtime: the nowait forms work on any thread
  CHECK(q.maxsize() == 2);
  CHECK_THROWS_AS((void)q.get_nowait(), weft::queue_empty);
  q.put_nowait(1);
  q.put_nowait(2);
  CHECK(q.full());
  CHECK_THROWS_AS(q.put_nowait(3), weft::queue_full);
  CHECK(q.size() == 2);
  CHECK(q.get_nowait() == 1);
  CHECK(q.get_nowait() == 2);
  CHECK(q.empty());
  CHECK_FALSE(q.full());
  weft::queue<int> unbounded;
  for (int i = 0; i < 1000; ++i)
    unbounded.put_nowait(i);
  CHECK_FALSE(unbounded.full());
  for (int i = 0; i < 1000; ++i)
    CHECK(unbounded.get_nowait() == i);
}

TEST_CASE("queue: a bounded put waits until a getter makes room") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        weft::queue<int> q(1);
        co_await q.put(1);
        auto putter = weft::spawn(put_one(q, 2));
        co_await let_others_wait();
        CHECK_FALSE(putter.done());
        CHECK(q.size() == 1);
        CHECK(co_await q.get() == 1);  // the freed place goes to the waiting putter's item
        CHECK(q.size() == 1);
        co_await putter;
        CHECK(co_await q.get() == 2);
      }(),
      one_worker);
}

TEST_CASE("queue: waiting getters are served in the order they came") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        weft::queue<int> q;
        std::vector<weft::join_handle<int>> getters;
        for (int i = 0; i < 5; ++i) {
          getters.push_back(weft::spawn(get_one(q)));
          co_await let_others_wait();
        }
        for (int i = 0; i < 5; ++i)
          q.put_nowait(i);
        for (int i = 0; i < 5; ++i)
          CHECK(co_await getters[static_cast<std::size_t>(i)] == i);
      }(),
      one_worker);
}

TEST_CASE("queue: waiting putters insert in the order they came") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        weft::queue<int> q(1);
        q.put_nowait(-1);
        std::vector<weft::join_handle<void>> putters;
        for (int i = 0; i < 5; ++i) {
          putters.push_back(weft::spawn(put_one(q, i)));
          co_await let_others_wait();
        }
        CHECK(co_await q.get() == -1);
        for (int i = 0; i < 5; ++i)
          CHECK(co_await q.get() == i);
        for (auto& p : putters)
          co_await p;
      }(),
      one_worker);
}

TEST_CASE("queue: join returns once every item was marked done") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        weft::queue<int> q;
        co_await q.join();  // nothing unfinished: at once
        q.put_nowait(1);
        q.put_nowait(2);
        CHECK(q.unfinished_tasks() == 2);
        auto joiner = weft::spawn(
            [](weft::queue<int>& queue) -> weft::task<> { co_await queue.join(); }, std::ref(q));
        co_await let_others_wait();
        (void)q.get_nowait();
        (void)q.get_nowait();
        q.task_done();
        co_await let_others_wait();
        CHECK_FALSE(joiner.done());  // taking items is not finishing them
        q.task_done();
        co_await joiner;
        CHECK(q.unfinished_tasks() == 0);
        CHECK_THROWS_AS(q.task_done(), std::logic_error);  // asyncio: ValueError
      }(),
      one_worker);
}

TEST_CASE("queue: after shutdown put throws and get drains the items then throws") {
  weft_test::watchdog dog(10s);
  weft::run([]() -> weft::task<> {
    weft::queue<int> q;
    q.put_nowait(1);
    q.put_nowait(2);
    q.shutdown();
    CHECK(q.is_shut_down());
    CHECK_THROWS_AS(q.put_nowait(3), weft::queue_shut_down);
    CHECK(co_await how_it_ends(q.put(3)) == ended::shut_down);
    CHECK(co_await q.get() == 1);
    CHECK(q.get_nowait() == 2);
    CHECK(co_await how_it_ends(q.get()) == ended::shut_down);
    CHECK_THROWS_AS((void)q.get_nowait(), weft::queue_shut_down);
  }());
}

TEST_CASE("queue: shutdown wakes the waiting getters and putters with queue_shut_down") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        weft::queue<int> empty;
        auto g1 = weft::spawn(get_one(empty));
        auto g2 = weft::spawn(get_one(empty));
        weft::queue<int> full(1);
        full.put_nowait(0);
        auto p1 = weft::spawn(put_one(full, 1));
        co_await let_others_wait();
        empty.shutdown();
        full.shutdown();
        CHECK(co_await how_it_ends(g1) == ended::shut_down);
        CHECK(co_await how_it_ends(g2) == ended::shut_down);
        CHECK(co_await how_it_ends(p1) == ended::shut_down);
        CHECK(full.size() == 1);  // the putter's item was not inserted
        CHECK(full.get_nowait() == 0);
      }(),
      one_worker);
}

TEST_CASE("queue: an immediate shutdown drops the items and releases join") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        weft::queue<std::shared_ptr<int>> q;
        auto item = std::make_shared<int>(7);
        q.put_nowait(item);
        q.put_nowait(item);
        auto joiner = weft::spawn(
            [](weft::queue<std::shared_ptr<int>>& queue) -> weft::task<> { co_await queue.join(); },
            std::ref(q));
        co_await let_others_wait();
        CHECK(item.use_count() == 3);
        q.shutdown(true);
        CHECK(item.use_count() == 1);  // dropped
        CHECK(q.empty());
        co_await joiner;
        CHECK(q.unfinished_tasks() == 0);
        CHECK(co_await how_it_ends(q.get()) == ended::shut_down);
      }(),
      one_worker);
}

// The cancellation scenarios queue and channel share: support/handoff_cancellation.hpp.
TEST_CASE("queue: a getter cancelled before it waits throws and takes no item") {
  weft_test::getter_cancelled_before_it_waits<queue_ops>();
}

TEST_CASE(
    "queue: a getter cancelled while queued throws and the next item goes to the next getter") {
  weft_test::getter_cancelled_while_queued<queue_ops>();
}

TEST_CASE("queue: a getter cancelled after it was handed an item keeps the item") {
  weft_test::getter_cancelled_after_it_was_handed_an_item<queue_ops>();
}

TEST_CASE("queue: a putter cancelled while queued throws and inserts nothing") {
  weft_test::putter_cancelled_while_queued<queue_ops>([](queue_ops& ops) {
    CHECK(ops.q.unfinished_tasks() == 2);  // 0 and 2; the cancelled 1 was never put
  });
}

TEST_CASE("queue: a putter cancelled before it waits throws and inserts nothing") {
  weft_test::putter_cancelled_before_it_waits<queue_ops>();
}

TEST_CASE("queue: a putter cancelled after its item was inserted completes normally") {
  weft_test::putter_cancelled_after_its_item_was_inserted<queue_ops>();
}

TEST_CASE("queue: a joiner cancelled while queued or after release behaves as the rule says") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        weft::queue<int> q;
        q.put_nowait(1);
        auto queued = weft::spawn(
            [](weft::queue<int>& queue) -> weft::task<> { co_await queue.join(); }, std::ref(q));
        co_await let_others_wait();
        queued.cancel();
        CHECK(co_await how_it_ends(queued) == ended::cancelled);

        std::atomic<bool> returned{false};
        auto released = weft::spawn(
            [](weft::queue<int>& queue, std::atomic<bool>& r) -> weft::task<> {
              co_await queue.join();
              r = true;
              co_await weft::yield_now();
            },
            std::ref(q), std::ref(returned));
        co_await let_others_wait();
        (void)q.get_nowait();
        q.task_done();      // releases the joiner
        released.cancel();  // released, not yet resumed
        CHECK(co_await how_it_ends(released) == ended::cancelled);
        CHECK(returned.load());
      }(),
      one_worker);
}

TEST_CASE("queue: the seed's producer and consumers finish every item and join") {
  weft_test::watchdog dog(20s);
  weft::run(
      []() -> weft::task<> {
        weft::queue<int> q(10);
        std::atomic<int> consumed{0};
        auto producer = weft::spawn(
            [](weft::queue<int>& queue) -> weft::task<> {
              for (int i = 0; i < 20; ++i) {
                co_await weft::sleep(1ms);
                co_await queue.put(i);
              }
            },
            std::ref(q));
        std::vector<weft::join_handle<void>> consumers;
        for (int c = 0; c < 3; ++c) {
          consumers.push_back(weft::spawn(
              [](weft::queue<int>& queue, std::atomic<int>& n) -> weft::task<> {
                for (;;) {
                  (void)co_await queue.get();
                  co_await weft::sleep(2ms);
                  ++n;
                  queue.task_done();
                }
              },
              std::ref(q), std::ref(consumed)));
        }
        co_await producer;
        co_await q.join();
        CHECK(consumed.load() == 20);
        co_await weft::cancel_all(consumers);
        for (auto& c : consumers)
          CHECK(c.cancelled());
      }(),
      {.worker_threads = 2});
}

TEST_SUITE("stress") {
  // S4, queue part (driven by support/exactly_once.hpp): 6 producer tasks, 4 consumer tasks and a
  // foreign thread (put_nowait and get_nowait) on 3 workers; consumers are cancelled (and replaced)
  // at random all the time the producers run, and a few producers are cancelled, each at its put.
  // Every item put comes out exactly once, none comes out that was not put, and every item is
  // marked done. Full scale: 200 rounds x 35,000 items per bound, that is 7e6 puts and 7e6 gets. A
  // TEST_CASE_TEMPLATE would put the type's comma into the test's name, and CTest's discovery then
  // loses its stress label: two plain cases instead.
  void many_producers_and_consumers(std::size_t bound) {
    weft_test::watchdog dog(weft_test::stress_scaled_up() ? 900s : 120s);
    const std::size_t rounds = weft_test::stress_count(4, 200);
    const auto totals = weft_test::exactly_once_rounds(
        rounds, 17, [bound](std::size_t) { return weft_test::ops_rig<queue_ops>(bound, 7); });
    weft_test::stress_summary(
        "maxsize " + std::to_string(bound) + ", " +
        weft_test::describe(totals, rounds, {"items put", "taken", "consumers", "producers"}));
  }

  TEST_CASE(
      "queue: many producers and consumers with random cancellations lose and duplicate nothing "
      "when bounded") {
    many_producers_and_consumers(4);
  }

  TEST_CASE(
      "queue: many producers and consumers with random cancellations lose and duplicate nothing "
      "when unbounded") {
    many_producers_and_consumers(0);
  }

  // FIFO of waiting getters under concurrency: support/fifo_rig.hpp (getter_fifo_round) says what
  // is checked and why that is free of races in the test itself.
  TEST_CASE(
      "queue: stress keeps getters FIFO while producers and cancellations race from everywhere") {
    const std::size_t rounds = weft_test::stress_count(10, 1000);
    const std::size_t n = weft_test::stress_count(64, 1000);
    weft_test::watchdog dog(weft_test::stress_scaled_up() ? 900s : 120s);
    weft_test::stress_summary(
        weft_test::getter_fifo_rounds(rounds, n, 11, [] { return queue_ops(); }));
  }
}  // TEST_SUITE("stress")
