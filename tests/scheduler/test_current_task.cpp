// tests/test_current_task.cpp: weft::current_task() and task_ref's cancel, cancelling and
// uncancel, ported in spirit from test_tasks' current_task, cancelling and uncancel cases:
// current_task names the running task from any depth of awaits; cancel() requests are counted,
// several before delivery give one cancelled_error; uncancel() takes one back and, taking back the
// last, withdraws a cancellation not yet delivered (Python 3.13).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include <weft/weft.hpp>

#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

weft::task<weft::task_ref> who_am_i() { co_return co_await weft::current_task(); }

weft::task<> long_sleep() { co_await weft::sleep(10s); }

}  // namespace

TEST_CASE("current_task: gives the running spawned task from any depth of awaits") {
  weft_test::watchdog dog(10s);
  weft::runtime rt({.worker_threads = 2});
  auto main_task = []() -> weft::task<> {
    weft::task_ref self = co_await weft::current_task();
    CHECK(static_cast<bool>(self));
    CHECK(co_await who_am_i() == self);  // an awaited task runs as part of its awaiter
    auto child = weft::spawn_named("child", []() -> weft::task<weft::task_ref> {
      weft::task_ref me = co_await weft::current_task();
      CHECK(std::string(me.name()) == "child");
      co_return me;
    }());
    CHECK(co_await child != self);
    CHECK(std::string(self.name()).empty());
  };
  rt.block_on(main_task());
}

TEST_CASE("current_task: cancel requests are counted and delivered once") {
  // test_tasks (cancelling): two cancel() calls before the task sees one give cancelling() == 2
  // and a single CancelledError.
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::atomic<int> delivered{0};
    std::atomic<std::uint32_t> seen{0};
    weft::event go;
    auto h = weft::spawn(
        [](weft::event& e, std::atomic<int>& d, std::atomic<std::uint32_t>& s) -> weft::task<> {
          weft::task_ref self = co_await weft::current_task();
          for (int i = 0; i < 2; ++i) {
            try {
              co_await e.wait();  // cancelled twice while here
            } catch (const weft::cancelled_error&) {
              ++d;
              s = self.cancelling();
            }
          }
        },
        std::ref(go), std::ref(delivered), std::ref(seen));
    co_await weft::sleep(2ms);
    h.cancel();
    h.cancel();
    co_await weft::sleep(2ms);
    go.set();  // the second wait returns normally: only one cancellation was delivered
    co_await h;
    CHECK(delivered.load() == 1);
    CHECK(seen.load() == 2);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("current_task: cancelling reads the standing requests and uncancel takes them back") {
  // test_tasks (uncancel): uncancel() decrements cancelling(); taking back the last request
  // withdraws the cancellation that was not delivered yet, so the next await runs normally.
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<int> {
    weft::task_ref self = co_await weft::current_task();
    CHECK(self.cancelling() == 0);
    CHECK(self.uncancel() == 0);  // nothing to take back: no change
    self.cancel();
    self.cancel();
    CHECK(self.cancelling() == 2);
    CHECK(self.uncancel() == 1);
    CHECK(self.cancelling() == 1);
    CHECK(self.uncancel() == 0);
    co_await weft::sleep(1ms);  // no cancellation left to deliver
    // Delivered, then absorbed: the count stays until uncancel, as in asyncio.
    self.cancel();
    bool thrown = false;
    try {
      co_await weft::sleep(1ms);
    } catch (const weft::cancelled_error&) {
      thrown = true;
    }
    CHECK(thrown);
    CHECK(self.cancelling() == 1);
    CHECK(self.uncancel() == 0);
    co_await weft::sleep(1ms);
    co_return 5;
  };
  CHECK(weft::run(main_task(), {.worker_threads = 2}) == 5);
}

TEST_CASE("current_task: a timeout after an uncancelled cancellation still reports timeout_error") {
  // asyncio.timeout compares cancelling() with its value at entry; a cancellation absorbed with
  // uncancel() leaves the count where the timeout expects it.
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    weft::task_ref self = co_await weft::current_task();
    self.cancel();
    try {
      co_await weft::sleep(1ms);
    } catch (const weft::cancelled_error&) {
      self.uncancel();
    }
    CHECK_THROWS_AS(co_await weft::timeout(5ms, long_sleep()), weft::timeout_error);
    CHECK(self.cancelling() == 0);
  };
  weft::run(main_task(), {.worker_threads = 2});
}
