// tests/scheduler/test_cancel_message.cpp: cancel("reason") and cancelled_error::message(),
// asyncio's Task.cancel(msg) read back from CancelledError. Ported from the cancel-message cases of
// CPython's Lib/test/test_asyncio/test_tasks.py (test_cancel_with_message_then_future_result,
// _before_starting_task, test_cancel_with_message_then_future_exception) plus weft's own rules:
// the latest message before a delivery wins, uncancel() of the last request drops it, a timeout's
// own cancellation carries none, and messages written from several threads while the task
// awaits are never torn or leaked (a case for TSan and ASan).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "support/stress.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

// How awaiting `h` ends: the cancel message, or "<value>" / "<other>".
template <class T>
weft::task<std::string> message_of(weft::join_handle<T>& h) {
  try {
    (void)co_await h;
    co_return "<value>";
  } catch (const weft::cancelled_error& e) {
    co_return std::string(e.message());
  } catch (...) {
    co_return "<other>";
  }
}

weft::task<int> sleep_long() {
  co_await weft::sleep(10s);
  co_return 1;
}

}  // namespace

TEST_CASE("cancel message: a cancelled_error without a message says so and copies share one") {
  const weft::cancelled_error plain;
  CHECK(plain.message().empty());
  CHECK(std::string_view(plain.what()) == "weft: the task was cancelled");
  const weft::cancelled_error with("shutting down");
  CHECK(with.message() == "shutting down");
  CHECK(std::string_view(with.what()) == "weft: the task was cancelled: shutting down");
  weft::cancelled_error copy = with;
  CHECK(copy.message() == "shutting down");
  copy = plain;
  CHECK(copy.message().empty());
  copy = with;
  const weft::cancelled_error& same = copy;
  copy = same;  // self-assignment keeps the message
  CHECK(copy.message() == "shutting down");
}

TEST_CASE("cancel message: awaiting a task cancelled with a message throws that message") {
  // test_cancel_with_message_then_future_result
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    auto h = weft::spawn(sleep_long());
    co_await weft::sleep(1ms);
    h.cancel("my message");
    CHECK(co_await message_of(h) == "my message");
    CHECK(h.cancelled());
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("cancel message: a task cancelled before it starts carries the message") {
  // test_cancel_with_message_before_starting_task
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    auto h = weft::spawn(sleep_long());
    h.cancel("my message");  // most likely before it first runs; the outcome is the same
    CHECK(co_await message_of(h) == "my message");
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_CASE("cancel message: the task sees the message at its cancellation point and in what") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    auto h = weft::spawn([]() -> weft::task<std::string> {
      try {
        co_await weft::sleep(10s);
      } catch (const weft::cancelled_error& e) {
        co_return std::string(e.what());  // swallowed on purpose, to return what it saw
      }
      co_return "";
    }());
    co_await weft::sleep(1ms);
    h.cancel("deadline moved");
    CHECK(co_await h == "weft: the task was cancelled: deadline moved");
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("cancel message: of two cancels before the delivery the latest message wins") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    auto h = weft::spawn(sleep_long());
    co_await weft::sleep(1ms);
    h.cancel("first");
    h.cancel("second");
    h.cancel();  // no message: leaves "second" in place
    CHECK(co_await message_of(h) == "second");
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_CASE("cancel message: current_task cancel with a message reaches the task itself") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    auto h = weft::spawn([]() -> weft::task<int> {
      (co_await weft::current_task()).cancel("by myself");
      co_await weft::yield_now();
      co_return 1;
    }());
    CHECK(co_await message_of(h) == "by myself");
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("cancel message: uncancel of the last request drops its message") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    auto h = weft::spawn([]() -> weft::task<std::string> {
      weft::task_ref self = co_await weft::current_task();
      self.cancel("absorbed");
      CHECK(self.uncancel() == 0);  // withdrawn before delivery, message and all
      co_await weft::yield_now();   // nothing is delivered here
      self.cancel();                // a later cancellation without a message
      try {
        co_await weft::yield_now();
      } catch (const weft::cancelled_error& e) {
        co_return std::string(e.message());
      }
      co_return "<not cancelled>";
    }());
    CHECK(co_await h == "");
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("cancel message: cancel with a message on a finished task does nothing") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    auto h = weft::spawn([]() -> weft::task<int> { co_return 5; }());
    co_await weft::sleep(5ms);
    CHECK(h.done());
    h.cancel("too late");
    CHECK_FALSE(h.cancelled());
    CHECK(co_await h == 5);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE(
    "cancel message: a timeout's own cancellation carries none and an outside one keeps its") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    // The timeout's expiry: timeout_error, and the work's cancelled_error had no message.
    std::string inner_saw = "<none>";
    bool timed_out = false;
    try {
      co_await weft::timeout(1ms, [](std::string& saw) -> weft::task<int> {
        try {
          co_await weft::sleep(10s);
        } catch (const weft::cancelled_error& e) {
          saw = std::string(e.message());
          throw;
        }
        co_return 1;
      }(inner_saw));
    } catch (const weft::timeout_error&) {
      timed_out = true;
    }
    CHECK(timed_out);
    CHECK(inner_saw.empty());
    // An outside cancel("stop") inside a timeout stays cancelled_error with its message.
    auto h = weft::spawn(
        []() -> weft::task<int> { co_return co_await weft::timeout(10s, sleep_long()); }());
    co_await weft::sleep(1ms);
    h.cancel("stop");
    CHECK(co_await message_of(h) == "stop");
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("cancel message: a group child cancelled through its handle carries the message") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::string seen;
    co_await weft::with_task_group([&seen](weft::task_group& g) -> weft::task<> {
      auto child = g.spawn([](std::string& s) -> weft::task<> {
        try {
          co_await weft::sleep(10s);
        } catch (const weft::cancelled_error& e) {
          s = std::string(e.message());
          throw;
        }
      }(seen));
      co_await weft::sleep(1ms);
      child.cancel("not needed");
    });
    CHECK(seen == "not needed");
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_SUITE("stress") {
  TEST_CASE("cancel message: messages from several threads reach a task that keeps awaiting") {
    // Four threads cancel with messages while the task sleeps, catches, checks the message and
    // uncancels, in a loop: every message it sees is whole (TSan: the text is published by the
    // exchange; ASan: no message is freed twice or leaked), and some deliveries carry one.
    weft_test::watchdog dog(120s);
    const auto rounds = weft_test::stress_count(2'000, 50'000);
    weft::runtime rt({.worker_threads = 2});
    std::atomic<bool> stop{false};
    std::atomic<int> torn{0};
    std::atomic<int> with_message{0};
    std::atomic<int> deliveries{0};
    auto h = rt.spawn([](std::atomic<bool>& st, std::atomic<int>& bad, std::atomic<int>& with,
                         std::atomic<int>& delivered) -> weft::task<> {
      weft::task_ref self = co_await weft::current_task();
      while (!st.load(std::memory_order_acquire)) {
        try {
          co_await weft::sleep(1ms);
        } catch (const weft::cancelled_error& e) {
          delivered.fetch_add(1, std::memory_order_relaxed);
          const std::string_view m = e.message();
          if (!m.empty()) {
            with.fetch_add(1, std::memory_order_relaxed);
            if (m.substr(0, 7) != "thread " || m.size() < 9) bad.fetch_add(1);
          }
        }
        while (self.uncancel() > 0) {
        }
      }
    }(stop, torn, with_message, deliveries));
    std::vector<std::thread> cancellers;
    for (int t = 0; t < 4; ++t) {
      cancellers.emplace_back([&h, t, rounds] {
        for (std::size_t i = 0; i < rounds; ++i) {
          h.cancel("thread " + std::to_string(t) + " round " + std::to_string(i));
          if (i % 64 == 0) std::this_thread::yield();
        }
      });
    }
    for (auto& c : cancellers)
      c.join();
    stop.store(true, std::memory_order_release);
    h.cancel("thread 9 last");  // wakes the sleep at once
    rt.block_on([](weft::join_handle<void>& handle) -> weft::task<> {
      try {
        co_await handle;
      } catch (const weft::cancelled_error&) {
      }
    }(h));
    CHECK(torn.load() == 0);
    CHECK(deliveries.load() > 0);
    CHECK(with_message.load() > 0);
  }
}
