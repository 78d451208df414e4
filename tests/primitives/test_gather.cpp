// tests/test_gather.cpp: weft::gather (patterns.md row 3): tuple, vector and return_exceptions forms,
// results in argument order, children run concurrently, gather waits for all children and then
// rethrows the first failure in time, void children give std::monostate. Cancellation: the first
// failure cancels the siblings and waits for them, cancelling the gathering task cancels every
// child, return_exceptions cancels nobody, and join_handles of running tasks are accepted.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <exception>
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
  // Since cancellation exists the first failure cancels the siblings (see the tests below); what
  // stays is that every child has finished, its cleanup included, before gather rethrows.
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::atomic<int> finished{0};
    auto slow_ok = [](std::atomic<int>& f) -> weft::task<int> {
      std::exception_ptr cancelled;
      try {
        co_await weft::sleep(10s);
      } catch (const weft::cancelled_error&) {
        cancelled = std::current_exception();
      }
      co_await weft::sleep(20ms);  // cleanup (or the rest of the work) that waits
      ++f;
      if (cancelled) std::rethrow_exception(cancelled);
      co_return 1;
    };
    const auto start = steady::now();
    std::string message;
    try {
      // The second argument would fail later than the third: the third's error is rethrown.
      (void)co_await weft::gather(slow_ok(finished), fail_after(40ms, "second"),
                                  fail_after(5ms, "third"));
    } catch (const std::runtime_error& e) {
      message = e.what();
    }
    CHECK(message == "third");
    CHECK(finished == 1);  // the slow sibling finished its cleanup before gather threw
    CHECK(steady::now() - start >= 25ms);
    CHECK(steady::now() - start < 5s);

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

namespace {

// Sleeps long; on cancellation counts it in `cancelled` after a cleanup that waits, and rethrows.
weft::task<int> cancellable_sleeper(std::atomic<int>& cancelled, std::atomic<int>& cleaned_up) {
  std::exception_ptr error;
  try {
    co_await weft::sleep(10s);
  } catch (const weft::cancelled_error&) {
    error = std::current_exception();
  }
  if (error) {
    ++cancelled;
    co_await weft::sleep(5ms);
    ++cleaned_up;
    std::rethrow_exception(error);
  }
  co_return 0;
}

}  // namespace

TEST_CASE("gather: the first failure cancels the siblings and waits for their cleanup") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::atomic<int> cancelled{0};
    std::atomic<int> cleaned{0};
    const auto start = steady::now();
    std::string message;
    try {
      (void)co_await weft::gather(cancellable_sleeper(cancelled, cleaned), fail_after(5ms, "x"),
                                  cancellable_sleeper(cancelled, cleaned));
    } catch (const std::runtime_error& e) {
      message = e.what();
      CHECK(cleaned.load() == 2);  // both siblings had finished their cleanup
    }
    CHECK(message == "x");
    CHECK(steady::now() - start < 5s);

    std::vector<weft::task<int>> children;
    for (int i = 0; i < 10; ++i) children.push_back(cancellable_sleeper(cancelled, cleaned));
    children.push_back(fail_after(2ms, "y"));
    message.clear();
    try {
      (void)co_await weft::gather(std::move(children));
    } catch (const std::runtime_error& e) {
      message = e.what();
      CHECK(cleaned.load() == 12);
    }
    CHECK(message == "y");
    CHECK(cancelled.load() == 12);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("gather: cancelling the gathering task cancels every child then throws cancelled_error") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::atomic<int> cancelled{0};
    std::atomic<int> cleaned{0};
    for (int form = 0; form < 3; ++form) {
      cancelled = 0;
      cleaned = 0;
      auto gatherer = weft::spawn([](int f, std::atomic<int>& c, std::atomic<int>& d) -> weft::task<int> {
        std::exception_ptr error;
        try {
          if (f == 0) {
            (void)co_await weft::gather(cancellable_sleeper(c, d), cancellable_sleeper(c, d),
                                        cancellable_sleeper(c, d));
          } else {
            std::vector<weft::task<int>> children;
            for (int i = 0; i < 3; ++i) children.push_back(cancellable_sleeper(c, d));
            if (f == 1) {
              (void)co_await weft::gather(std::move(children));
            } else {
              (void)co_await weft::gather(weft::return_exceptions, std::move(children));
            }
          }
        } catch (const weft::cancelled_error&) {
          error = std::current_exception();
        }
        REQUIRE(error);
        co_return d.load();  // the children's cleanups, seen when gather threw
      }, form, std::ref(cancelled), std::ref(cleaned));
      co_await weft::sleep(5ms);
      gatherer.cancel();
      // No INFO here: doctest's captures are thread-local and a coroutine resumes elsewhere.
      const int cleaned_when_thrown = co_await gatherer;
      CHECK_MESSAGE(cleaned_when_thrown == 3, "form " << form);
      CHECK_MESSAGE(cancelled.load() == 3, "form " << form);
    }
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("gather: return_exceptions cancels nobody when a child fails") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    auto [a, b, c] = co_await weft::gather(weft::return_exceptions, fail_after(1ms, "bad"),
                                           after(30ms, 2), after(30ms, 3));
    CHECK(a.has_error());
    REQUIRE(b.has_value());
    CHECK(b.value() == 2);
    REQUIRE(c.has_value());
    CHECK(c.value() == 3);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("gather: join_handles of running tasks are accepted") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    auto h1 = weft::spawn(after(3ms, 1));
    auto h2 = weft::spawn(text_after(1ms, "two"));
    auto [a, b, c] = co_await weft::gather(std::move(h1), std::move(h2), after(2ms, 3));
    CHECK(a == 1);
    CHECK(b == "two");
    CHECK(c == 3);

    std::vector<weft::join_handle<int>> handles;
    for (int i = 0; i < 5; ++i) handles.push_back(weft::spawn(after(std::chrono::milliseconds(5 - i), i)));
    const auto values = co_await weft::gather(std::move(handles));
    CHECK(values == std::vector<int>{0, 1, 2, 3, 4});

    // A failing handle cancels the other handles' tasks too.
    std::atomic<int> cancelled{0};
    std::atomic<int> cleaned{0};
    std::vector<weft::join_handle<int>> mixed;
    mixed.push_back(weft::spawn(cancellable_sleeper(cancelled, cleaned)));
    mixed.push_back(weft::spawn(fail_after(2ms, "z")));
    std::string message;
    try {
      (void)co_await weft::gather(std::move(mixed));
    } catch (const std::runtime_error& e) {
      message = e.what();
    }
    CHECK(message == "z");
    CHECK(cleaned.load() == 1);
  };
  weft::run(main_task(), {.worker_threads = 2});
}
