// tests/test_streams.cpp: the comprehension combinators (patterns.md row 14): map, filter, take,
// chunk and collect are lazy and keep order like Python's comprehensions, accept plain and
// awaiting callbacks and hand-written iterators; merge interleaves streams as items arrive and
// never leaves a pump running (end, failure, cancellation, close, drop); as_completed gives the
// handles in finishing order.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <weft/weft.hpp>

#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

weft::runtime_options two_workers() { return {.worker_threads = 2}; }
weft::runtime_options virtual_clock() { return {.worker_threads = 2, .virtual_time = true}; }

// 0..count-1; `produced` counts the items the body has made.
weft::generator<int> numbers(int count, std::atomic<int>& produced) {
  for (int i = 0; i < count; ++i) {
    co_await weft::yield_now();
    ++produced;
    co_yield i;
  }
}

class hand_written {
 public:
  using value_type = int;
  explicit hand_written(int count) : count_(count) {}
  weft::task<std::optional<int>> next() {
    if (current_ >= count_) co_return std::nullopt;
    co_return current_++;
  }

 private:
  int count_;
  int current_ = 0;
};

weft::task<bool> is_even(int v) {
  co_await weft::yield_now();
  co_return v % 2 == 0;
}

// Yields `values` one per `period` (virtual time), counting live bodies.
weft::generator<std::string> ticker(std::string name, int count, std::chrono::milliseconds period,
                                    std::atomic<int>& live) {
  struct alive {
    std::atomic<int>& n;
    explicit alive(std::atomic<int>& c) : n(c) { ++n; }
    ~alive() { --n; }
  } guard(live);
  for (int i = 0; i < count; ++i) {
    co_await weft::sleep(period);
    co_yield name + std::to_string(i);
  }
}

}  // namespace

TEST_CASE("streams: map filter and collect into a vector keep order and await callbacks") {
  weft_test::watchdog dog(10s);
  std::atomic<int> produced{0};
  auto got = weft::run(
      [&]() -> weft::task<std::vector<int>> {
        co_return co_await weft::collect(weft::map(
            weft::filter(numbers(10, produced), is_even),
            [](int v) -> weft::task<int> {
              co_await weft::yield_now();
              co_return v * v;
            }));
      }(),
      two_workers());
  CHECK(got == std::vector<int>{0, 4, 16, 36, 64});
  CHECK(produced == 10);
}

TEST_CASE("streams: combinators are lazy and pull one item at a time") {
  weft_test::watchdog dog(10s);
  std::atomic<int> produced{0};
  weft::run(
      [&]() -> weft::task<> {
        auto s = weft::map(numbers(100, produced), [](int v) { return v + 1; });
        co_await weft::sleep(1ms);
        CHECK(produced == 0);
        CHECK(*(co_await s.next()) == 1);
        CHECK(produced == 1);
        CHECK(*(co_await s.next()) == 2);
        CHECK(produced == 2);
      }(),
      two_workers());
}

TEST_CASE("streams: take never asks the source for more than n items") {
  weft_test::watchdog dog(10s);
  std::atomic<int> produced{0};
  auto got = weft::run(
      [&]() -> weft::task<std::vector<int>> {
        co_return co_await weft::collect(weft::take(numbers(1000, produced), 3));
      }(),
      two_workers());
  CHECK(got == std::vector<int>{0, 1, 2});
  CHECK(produced == 3);
  produced = 0;
  auto none = weft::run(
      [&]() -> weft::task<std::vector<int>> {
        co_return co_await weft::collect(weft::take(numbers(1000, produced), 0));
      }(),
      two_workers());
  CHECK(none.empty());
  CHECK(produced == 0);
}

TEST_CASE("streams: collect builds sets and maps like set and dict comprehensions") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        auto evens = co_await weft::collect<std::set<int>>(
            weft::filter(hand_written(7), [](int v) { return v % 2 == 0; }));
        CHECK(evens == std::set<int>{0, 2, 4, 6});
        auto squares = co_await weft::collect<std::map<int, std::string>>(
            weft::map(hand_written(3), [](int v) {
              return std::pair<int, std::string>(v, std::to_string(v * v));
            }));
        CHECK(squares == std::map<int, std::string>{{0, "0"}, {1, "1"}, {2, "4"}});
        auto last_wins = co_await weft::collect<std::map<int, int>>(
            weft::map(hand_written(4), [](int v) { return std::pair<int, int>(v % 2, v); }));
        CHECK(last_wins == std::map<int, int>{{0, 2}, {1, 3}});
      }(),
      two_workers());
}

TEST_CASE("streams: chunk groups items into vectors and keeps a short last one") {
  weft_test::watchdog dog(10s);
  auto got = weft::run(
      []() -> weft::task<std::vector<std::vector<int>>> {
        co_return co_await weft::collect(weft::chunk(hand_written(7), 3));
      }(),
      two_workers());
  CHECK(got == std::vector<std::vector<int>>{{0, 1, 2}, {3, 4, 5}, {6}});
}

TEST_CASE("streams: an exception in a callback or the source reaches the consumer") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        bool threw = false;
        try {
          (void)co_await weft::collect(weft::map(hand_written(5), [](int v) {
            if (v == 3) throw std::runtime_error("bad item");
            return v;
          }));
        } catch (const std::runtime_error&) {
          threw = true;
        }
        CHECK(threw);
      }(),
      two_workers());
}

TEST_CASE("streams: an lvalue source is borrowed and advanced in place") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        hand_written source(5);
        auto first_two = co_await weft::collect(weft::take(source, 2));
        auto rest = co_await weft::collect(source);
        CHECK(first_two == std::vector<int>{0, 1});
        CHECK(rest == std::vector<int>{2, 3, 4});
      }(),
      two_workers());
}

TEST_CASE("merge: items come in arrival order and every source keeps its own order") {
  weft_test::watchdog dog(10s);
  std::atomic<int> live{0};
  auto got = weft::run(
      [&]() -> weft::task<std::vector<std::string>> {
        co_return co_await weft::collect(weft::merge(ticker("a", 3, 10ms, live),
                                                     ticker("b", 2, 15ms, live)));
      }(),
      virtual_clock());
  // a at 10 20 30, b at 15 30: the tie at 30 may go either way.
  REQUIRE(got.size() == 5);
  CHECK(got[0] == "a0");
  CHECK(got[1] == "b0");
  CHECK(got[2] == "a1");
  CHECK(((got[3] == "a2" && got[4] == "b1") || (got[3] == "b1" && got[4] == "a2")));
  CHECK(live == 0);
}

TEST_CASE("merge: a failing source ends the stream and the other pumps are joined") {
  weft_test::watchdog dog(10s);
  std::atomic<int> live{0};
  weft::run(
      [&]() -> weft::task<> {
        auto failing = []() -> weft::generator<std::string> {
          co_await weft::sleep(25ms);
          throw std::runtime_error("source failed");
          co_yield std::string("never");
        };
        auto m = weft::merge(ticker("a", 100, 10ms, live), failing());
        std::vector<std::string> got;
        bool threw = false;
        try {
          while (auto v = co_await m.next()) got.push_back(*v);
        } catch (const std::runtime_error&) {
          threw = true;
        }
        CHECK(threw);
        CHECK(got == std::vector<std::string>{"a0", "a1"});
        CHECK(live == 0);  // the ticker's pump was cancelled and joined before next threw
      }(),
      virtual_clock());
}

TEST_CASE("merge: cancelling the consumer cancels and joins the pumps") {
  weft_test::watchdog dog(10s);
  std::atomic<int> live{0};
  std::atomic<int> live_when_cancelled{-1};
  weft::runtime rt(two_workers());
  // Named: the lambda (and its captures) must outlive the spawned coroutine.
  auto body = [&]() -> weft::task<> {
    auto m = weft::merge(ticker("a", 1000, 50ms, live), ticker("b", 1000, 70ms, live));
    try {
      while (auto v = co_await m.next()) {
      }
    } catch (const weft::cancelled_error&) {
      live_when_cancelled = live.load();
      throw;
    }
  };
  auto consumer = rt.spawn(body());
  std::this_thread::sleep_for(120ms);
  consumer.cancel();
  rt.block_on([&]() -> weft::task<> {
    try {
      co_await consumer;
    } catch (const weft::cancelled_error&) {
    }
  }());
  CHECK(consumer.cancelled());
  CHECK(live_when_cancelled == 0);
}

TEST_CASE("merge: close joins the pumps and dropping the stream cancels them") {
  weft_test::watchdog dog(10s);
  std::atomic<int> live{0};
  weft::runtime rt(two_workers());
  rt.block_on([&]() -> weft::task<> {
    auto m = weft::merge(ticker("a", 1000, 1ms, live), ticker("b", 1000, 1ms, live));
    CHECK((co_await m.next()).has_value());
    co_await m.close();
    CHECK(live == 0);
    {
      auto dropped = weft::merge(ticker("c", 1000, 1ms, live), ticker("d", 1000, 1ms, live));
      CHECK((co_await dropped.next()).has_value());
    }
    // Dropped: the pumps were cancelled and finish on their own at their next point.
    for (int i = 0; i < 1000 && live != 0; ++i) co_await weft::sleep(1ms);
    CHECK(live == 0);
  }());
  for (int i = 0; i < 1000 && rt.stats().live_tasks != 0; ++i) std::this_thread::sleep_for(1ms);
  CHECK(rt.stats().live_tasks == 0);
}

TEST_CASE("merge: hand-written iterators and generators mix") {
  weft_test::watchdog dog(10s);
  auto got = weft::run(
      []() -> weft::task<std::multiset<int>> {
        auto gen = []() -> weft::generator<int> {
          for (int i = 10; i < 13; ++i) co_yield i;
        };
        co_return co_await weft::collect<std::multiset<int>>(
            weft::merge(hand_written(3), gen()));
      }(),
      two_workers());
  CHECK(got == std::multiset<int>{0, 1, 2, 10, 11, 12});
}

TEST_CASE("as_completed: handles come back in the order their tasks finish") {
  weft_test::watchdog dog(10s);
  auto got = weft::run(
      []() -> weft::task<std::vector<int>> {
        auto after = [](int ms) -> weft::task<int> {
          co_await weft::sleep(std::chrono::milliseconds(ms));
          co_return ms;
        };
        std::vector<weft::join_handle<int>> handles;
        for (int ms : {30, 10, 20}) handles.push_back(weft::spawn(after, ms));
        std::vector<int> order;
        auto done = weft::as_completed(std::move(handles));
        while (auto h = co_await done.next()) {
          CHECK(h->done());
          order.push_back(co_await *h);
        }
        co_return order;
      }(),
      virtual_clock());
  CHECK(got == std::vector<int>{10, 20, 30});
}
