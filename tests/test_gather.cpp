// tests/test_gather.cpp: weft::gather (patterns.md row 3): tuple, vector and return_exceptions forms,
// results in argument order, children run concurrently, gather waits for all children and then
// rethrows the first failure in time, void children give std::monostate.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include <weft/weft.hpp>

#include "support/watchdog.hpp"

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

weft::task<int> after(std::chrono::milliseconds delay, int v) {
  co_await weft::sleep(delay);
  co_return v;
}

weft::task<std::string> text_after(std::chrono::milliseconds delay, std::string v) {
  co_await weft::sleep(delay);
  co_return v;
}

weft::task<int> fail_after(std::chrono::milliseconds delay, std::string what) {
  co_await weft::sleep(delay);
  throw std::runtime_error(what);
}

weft::task<> count_after(std::chrono::milliseconds delay, std::atomic<int>& counter) {
  co_await weft::sleep(delay);
  ++counter;
}

}  // namespace

TEST_CASE("gather: results come back in argument order") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    // The later arguments finish first.
    auto [a, b, c] = co_await weft::gather(after(30ms, 1), text_after(15ms, "two"), after(0ms, 3));
    CHECK(a == 1);
    CHECK(b == "two");
    CHECK(c == 3);
    std::vector<weft::task<int>> children;
    for (int i = 0; i < 50; ++i) children.push_back(after(std::chrono::milliseconds(50 - i), i));
    const std::vector<int> values = co_await weft::gather(std::move(children));
    REQUIRE(values.size() == 50);
    for (int i = 0; i < 50; ++i) CHECK(values[static_cast<std::size_t>(i)] == i);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("gather: children run concurrently") {
  weft_test::watchdog dog(20s);
  auto main_task = []() -> weft::task<std::chrono::nanoseconds> {
    const auto start = steady::now();
    std::vector<weft::task<int>> children;
    for (int i = 0; i < 20; ++i) children.push_back(after(200ms, i));
    (void)co_await weft::gather(std::move(children));
    (void)co_await weft::gather(after(200ms, 1), after(200ms, 2), after(200ms, 3));
    co_return steady::now() - start;
  };
  const auto elapsed = weft::run(main_task(), {.worker_threads = 1});
  CHECK(elapsed >= 400ms);
  CHECK(elapsed < 1500ms);  // sequential would be 4.6 s
}

TEST_CASE("gather: an empty vector gives an empty result") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<std::size_t> {
    const auto values = co_await weft::gather(std::vector<weft::task<int>>{});
    const auto outcomes =
        co_await weft::gather(weft::return_exceptions, std::vector<weft::task<int>>{});
    co_return values.size() + outcomes.size();
  };
  CHECK(weft::run(main_task(), {.worker_threads = 1}) == 0);
}

TEST_CASE("gather: void children give monostate") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<int> {
    std::atomic<int> counter{0};
    auto [a, b] = co_await weft::gather(count_after(1ms, counter), after(1ms, 5));
    static_assert(std::is_same_v<decltype(a), std::monostate>);
    std::vector<weft::task<>> children;
    for (int i = 0; i < 10; ++i) children.push_back(count_after(1ms, counter));
    const auto units = co_await weft::gather(std::move(children));
    static_assert(std::is_same_v<std::decay_t<decltype(units)>, std::vector<std::monostate>>);
    CHECK(units.size() == 10);
    co_return counter.load() + b;
  };
  CHECK(weft::run(main_task(), {.worker_threads = 2}) == 16);
}

TEST_CASE("gather: waits for every child then rethrows the first failure in time") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::atomic<int> finished{0};
    auto slow_ok = [](std::atomic<int>& f) -> weft::task<int> {
      co_await weft::sleep(100ms);
      ++f;
      co_return 1;
    };
    const auto start = steady::now();
    std::string message;
    try {
      // The second argument fails later than the third: the third's error is the one rethrown.
      (void)co_await weft::gather(slow_ok(finished), fail_after(40ms, "second"),
                                  fail_after(5ms, "third"));
    } catch (const std::runtime_error& e) {
      message = e.what();
    }
    CHECK(message == "third");
    CHECK(finished == 1);  // the slow sibling finished before gather threw
    CHECK(steady::now() - start >= 100ms);

    std::vector<weft::task<int>> children;
    children.push_back(fail_after(30ms, "late"));
    children.push_back(slow_ok(finished));
    children.push_back(fail_after(1ms, "early"));
    message.clear();
    try {
      (void)co_await weft::gather(std::move(children));
    } catch (const std::runtime_error& e) {
      message = e.what();
    }
    CHECK(message == "early");
    CHECK(finished == 2);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("gather: return_exceptions gives an outcome per child in order") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::atomic<int> counter{0};
    auto [a, b, c] = co_await weft::gather(weft::return_exceptions, after(5ms, 1),
                                           fail_after(1ms, "bad"), count_after(1ms, counter));
    CHECK(a.has_value());
    CHECK(a.value() == 1);
    CHECK_FALSE(b.has_value());
    CHECK(b.has_error());
    CHECK(b.error() != nullptr);
    CHECK_THROWS_WITH_AS((void)b.value(), "bad", std::runtime_error);
    CHECK(c.has_value());

    std::vector<weft::task<int>> children;
    for (int i = 0; i < 6; ++i) {
      children.push_back(i % 2 == 0 ? after(std::chrono::milliseconds(6 - i), i)
                                    : fail_after(std::chrono::milliseconds(i), std::to_string(i)));
    }
    auto outcomes = co_await weft::gather(weft::return_exceptions, std::move(children));
    REQUIRE(outcomes.size() == 6);
    for (int i = 0; i < 6; ++i) {
      auto& o = outcomes[static_cast<std::size_t>(i)];
      if (i % 2 == 0) {
        REQUIRE(o.has_value());
        CHECK(o.value() == i);
      } else {
        REQUIRE(o.has_error());
        CHECK_THROWS_WITH((void)o.value(), std::to_string(i).c_str());
      }
    }
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("gather: children may borrow from the caller's frame") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<int> {
    std::vector<int> local(100, 1);
    auto reader = [](const std::vector<int>& v, std::size_t from) -> weft::task<int> {
      co_await weft::sleep(2ms);
      int s = 0;
      for (std::size_t i = from; i < from + 50; ++i) s += v[i];
      co_return s;
    };
    auto [x, y] = co_await weft::gather(reader(local, 0), reader(local, 50));
    co_return x + y;
  };
  CHECK(weft::run(main_task(), {.worker_threads = 2}) == 100);
}

TEST_CASE("gather: nested gathers and many children") {
  weft_test::watchdog dog(30s);
  auto main_task = []() -> weft::task<long> {
    auto inner = [](int base) -> weft::task<long> {
      std::vector<weft::task<int>> children;
      for (int i = 0; i < 100; ++i) children.push_back(after(std::chrono::milliseconds(i % 3), base + i));
      long sum = 0;
      for (int v : co_await weft::gather(std::move(children))) sum += v;
      co_return sum;
    };
    std::vector<weft::task<long>> groups;
    for (int g = 0; g < 20; ++g) groups.push_back(inner(g * 100));
    long total = 0;
    for (long v : co_await weft::gather(std::move(groups))) total += v;
    co_return total;
  };
  CHECK(weft::run(main_task(), {.worker_threads = 2}) == 1999L * 2000 / 2);
}
