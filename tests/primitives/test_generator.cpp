// tests/test_generator.cpp: weft::generator<T> and the async_iterator concept (patterns.md row
// 13): back-pressure (the body runs only when asked), order, laziness, exceptions, early exit
// destroys the body and runs its RAII cleanup, close() runs cleanup that co_awaits, cancelling
// the consumer while the body awaits, and for_each over generators and hand-written iterators.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

// Counts the steps the body has taken, so a test can see how far it ran.
weft::generator<int> counted(int count, std::vector<std::string>& log) {
  for (int i = 0; i < count; ++i) {
    log.push_back("produce " + std::to_string(i));
    co_await weft::yield_now();
    co_yield i;
  }
  log.push_back("end");
}

struct on_destroy {
  std::atomic<int>& counter;
  ~on_destroy() { ++counter; }
};

weft::generator<int> with_raii(std::atomic<int>& destroyed) {
  on_destroy guard{destroyed};
  for (int i = 0;; ++i) co_yield i;
}

// A body whose cleanup co_awaits, run by close() (or by the end of the loop).
weft::generator<int> with_async_cleanup(std::atomic<int>& cleaned, std::atomic<bool>& saw_exit) {
  std::exception_ptr stop;
  try {
    for (int i = 0;; ++i) co_yield i;
  } catch (const weft::generator_exit&) {
    saw_exit = true;
    stop = std::current_exception();
  }
  co_await weft::sleep(2ms);  // the cleanup awaits
  ++cleaned;
  std::rethrow_exception(stop);
}

weft::generator<int> failing_after(int good) {
  for (int i = 0; i < good; ++i) co_yield i;
  throw std::runtime_error("boom");
}

// The seed's AsyncIterator, hand-written: next() -> task<optional<int>>.
class countdown {
 public:
  using value_type = int;
  explicit countdown(int count) : count_(count) {}
  weft::task<std::optional<int>> next() {
    if (current_ >= count_) co_return std::nullopt;
    co_await weft::yield_now();
    co_return current_++;
  }

 private:
  int count_;
  int current_ = 0;
};

static_assert(weft::async_iterator<countdown>);
static_assert(weft::async_iterator<weft::generator<int>>);
static_assert(!weft::async_iterator<int>);
static_assert(!weft::async_iterator<std::vector<int>>);

weft::runtime_options two_workers() { return {.worker_threads = 2}; }

}  // namespace

TEST_CASE("generator: items come in order and next gives nullopt at the end") {
  weft_test::watchdog dog(10s);
  std::vector<std::string> log;
  auto got = weft::run(
      [&]() -> weft::task<std::vector<int>> {
        auto g = counted(3, log);
        std::vector<int> out;
        while (auto v = co_await g.next()) out.push_back(*v);
        CHECK_FALSE((co_await g.next()).has_value());  // stays at the end
        CHECK(g.done());
        co_return out;
      }(),
      two_workers());
  CHECK(got == std::vector<int>{0, 1, 2});
  CHECK(log.back() == "end");
}

TEST_CASE("generator: nothing runs until the first next and the body never runs ahead") {
  weft_test::watchdog dog(10s);
  std::vector<std::string> log;
  weft::run(
      [&]() -> weft::task<> {
        auto g = counted(5, log);
        co_await weft::sleep(2ms);
        CHECK(log.empty());  // lazy
        auto a = co_await g.next();
        CHECK(*a == 0);
        CHECK(log == std::vector<std::string>{"produce 0"});
        co_await weft::sleep(2ms);
        CHECK(log.size() == 1);  // back-pressure: no item produced while nobody asks
        auto b = co_await g.next();
        CHECK(*b == 1);
        CHECK(log.size() == 2);
      }(),
      two_workers());
}

TEST_CASE("generator: an exception in the body comes out of next and the stream then ends") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        auto g = failing_after(2);
        CHECK(*(co_await g.next()) == 0);
        CHECK(*(co_await g.next()) == 1);
        bool threw = false;
        try {
          (void)co_await g.next();
        } catch (const std::runtime_error& e) {
          threw = std::string(e.what()) == "boom";
        }
        CHECK(threw);
        CHECK_FALSE((co_await g.next()).has_value());
      }(),
      two_workers());
}

TEST_CASE("generator: dropping it early destroys the body and runs its destructors") {
  weft_test::watchdog dog(10s);
  std::atomic<int> destroyed{0};
  weft::run(
      [&]() -> weft::task<> {
        {
          auto g = with_raii(destroyed);
          for (int i = 0; i < 3; ++i) CHECK(*(co_await g.next()) == i);
          CHECK(destroyed == 0);
        }
        CHECK(destroyed == 1);
        {
          auto never_started = with_raii(destroyed);
        }
        CHECK(destroyed == 1);  // the body never ran: no local was constructed
      }(),
      two_workers());
}

TEST_CASE("generator: close resumes the body with generator_exit so its awaiting cleanup runs") {
  weft_test::watchdog dog(10s);
  std::atomic<int> cleaned{0};
  std::atomic<bool> saw_exit{false};
  weft::run(
      [&]() -> weft::task<> {
        auto g = with_async_cleanup(cleaned, saw_exit);
        CHECK(*(co_await g.next()) == 0);
        CHECK(*(co_await g.next()) == 1);
        co_await g.close();
        CHECK(saw_exit);
        CHECK(cleaned == 1);
        CHECK(g.done());
        CHECK_FALSE((co_await g.next()).has_value());
        co_await g.close();  // closing twice does nothing
        CHECK(cleaned == 1);

        auto unstarted = with_async_cleanup(cleaned, saw_exit);
        co_await unstarted.close();  // never started: nothing to clean up
        CHECK(cleaned == 1);
        CHECK_FALSE((co_await unstarted.next()).has_value());
      }(),
      two_workers());
}

TEST_CASE("generator: a body that yields after generator_exit makes close throw logic_error") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        auto stubborn = []() -> weft::generator<int> {
          for (;;) {
            try {
              co_yield 1;
            } catch (const weft::generator_exit&) {
            }
          }
        };
        auto g = stubborn();
        CHECK(*(co_await g.next()) == 1);
        bool threw = false;
        try {
          co_await g.close();
        } catch (const std::logic_error&) {
          threw = true;
        }
        CHECK(threw);
      }(),
      two_workers());
}

TEST_CASE("generator: cancelling the consumer reaches the await inside the body") {
  weft_test::watchdog dog(10s);
  std::atomic<int> destroyed{0};
  std::atomic<bool> body_saw_cancel{false};
  std::atomic<bool> consumer_saw_cancel{false};
  weft::runtime rt(two_workers());
  auto slow = [&]() -> weft::generator<int> {
    on_destroy guard{destroyed};
    co_yield 1;
    try {
      co_await weft::sleep(60s);
    } catch (const weft::cancelled_error&) {
      body_saw_cancel = true;
      throw;
    }
    co_yield 2;
  };
  // Named: the lambda (and its captures) must outlive the spawned coroutine.
  auto body = [&]() -> weft::task<int> {
    auto g = slow();
    int sum = 0;
    try {
      while (auto v = co_await g.next()) sum += *v;
    } catch (const weft::cancelled_error&) {
      consumer_saw_cancel = true;
      throw;
    }
    co_return sum;
  };
  auto consumer = rt.spawn(body());
  std::this_thread::sleep_for(20ms);
  consumer.cancel();
  rt.block_on([&]() -> weft::task<> {
    try {
      (void)co_await consumer;
    } catch (const weft::cancelled_error&) {
    }
  }());
  CHECK(consumer.cancelled());
  CHECK(body_saw_cancel);
  CHECK(consumer_saw_cancel);
  CHECK(destroyed == 1);
}

TEST_CASE("generator: next while the body runs throws logic_error") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        auto g = []() -> weft::generator<int> {
          co_await weft::sleep(20ms);
          co_yield 1;
        }();
        auto first = weft::spawn([&]() -> weft::task<int> { co_return *(co_await g.next()); });
        co_await weft::sleep(5ms);
        bool threw = false;
        try {
          (void)co_await g.next();
        } catch (const std::logic_error&) {
          threw = true;
        }
        CHECK(threw);
        CHECK(co_await first == 1);
      }(),
      two_workers());
}

TEST_CASE("generator: for_each runs a plain or an awaiting callback over every item") {
  weft_test::watchdog dog(10s);
  std::vector<std::string> log;
  weft::run(
      [&]() -> weft::task<> {
        std::vector<int> seen;
        co_await weft::for_each(counted(3, log), [&](int v) { seen.push_back(v); });
        CHECK(seen == std::vector<int>{0, 1, 2});
        seen.clear();
        co_await weft::for_each(countdown(4), [&](int v) -> weft::task<> {
          co_await weft::yield_now();
          seen.push_back(v * 10);
        });
        CHECK(seen == std::vector<int>{0, 10, 20, 30});
        countdown borrowed(2);  // an lvalue is borrowed: the helper advances it in place
        co_await weft::for_each(borrowed, [](int) {});
        CHECK_FALSE((co_await borrowed.next()).has_value());
      }(),
      two_workers());
}

TEST_CASE("generator: a generator can yield move-only values and strings") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        auto g = []() -> weft::generator<std::unique_ptr<int>> {
          for (int i = 0; i < 3; ++i) co_yield std::make_unique<int>(i);
        }();
        int sum = 0;
        while (auto p = co_await g.next()) sum += **p;
        CHECK(sum == 3);
        auto words = []() -> weft::generator<std::string> {
          std::string w = "kept";
          co_yield w;  // copies the lvalue
          co_yield std::string("moved");
          CHECK(w == "kept");
        }();
        CHECK(*(co_await words.next()) == "kept");
        CHECK(*(co_await words.next()) == "moved");
        CHECK_FALSE((co_await words.next()).has_value());
      }(),
      two_workers());
}
