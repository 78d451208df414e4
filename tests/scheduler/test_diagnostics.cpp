// tests/test_diagnostics.cpp: the debug checks (runtime_options::debug, WEFT_DEBUG=1) and
// runtime::tasks(). Debug mode reports a handle dropped while its task runs (not an explicit
// detach), a task that swallowed a delivered cancellation, and a resumption that held a worker
// for more than 100 ms; tasks() lists live tasks by name and state.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <thread>

#include <weft/weft.hpp>

#include "support/captured_log.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

// The runtime's log lines (support/captured_log.hpp), with the options these tests run under.
struct log_capture : weft_test::captured_log {
  weft::runtime_options options(bool debug) {
    weft::runtime_options opts;
    opts.worker_threads = 2;
    opts.debug = debug;
    opts.log = hook();
    return opts;
  }
};

weft::task<> nap(std::chrono::milliseconds d) { co_await weft::sleep(d); }

weft::task<int> swallower() {
  try {
    co_await weft::sleep(1h);
  } catch (const weft::cancelled_error&) {
  }
  co_return 1;
}

}  // namespace

TEST_CASE("diagnostics: debug mode reports a handle dropped while its task runs") {
  weft_test::watchdog dog(10s);
  log_capture log;
  {
    weft::runtime rt(log.options(true));
    rt.block_on([]() -> weft::task<> {
      { auto dropped = weft::spawn_named("dropped", nap(20ms)); }
      auto detached = weft::spawn_named("detached", nap(20ms));
      detached.detach();
      co_await weft::sleep(40ms);
    }());
  }
  CHECK(log.count("'dropped' was dropped") == 1);
  CHECK(log.count("'detached'") == 0);
}

TEST_CASE("diagnostics: without debug mode a dropped handle is not reported") {
  weft_test::watchdog dog(10s);
  log_capture log;
  {
    weft::runtime rt(log.options(false));
    rt.block_on([]() -> weft::task<> {
      { auto dropped = weft::spawn_named("dropped", nap(20ms)); }
      co_await weft::sleep(40ms);
    }());
  }
  CHECK(log.count("dropped") == 0);
}

TEST_CASE("diagnostics: debug mode reports a task that swallowed its cancellation") {
  weft_test::watchdog dog(10s);
  log_capture log;
  {
    weft::runtime rt(log.options(true));
    const int value = rt.block_on([]() -> weft::task<int> {
      auto task = weft::spawn_named("swallower", swallower());
      co_await weft::sleep(5ms);
      task.cancel();
      co_return co_await task;
    }());
    CHECK(value == 1);
  }
  CHECK(log.count("'swallower' finished normally after a cancellation") == 1);
}

TEST_CASE("diagnostics: a timeout that fired is not reported as a swallowed cancellation") {
  weft_test::watchdog dog(10s);
  log_capture log;
  {
    weft::runtime rt(log.options(true));
    rt.block_on([]() -> weft::task<> {
      auto task = weft::spawn_named("patient", []() -> weft::task<> {
        try {
          co_await weft::timeout(5ms, nap(1h));
        } catch (const weft::timeout_error&) {
        }
      }());
      co_await task;
    }());
  }
  CHECK(log.count("swallowed") == 0);
}

TEST_CASE("diagnostics: debug mode reports a task that blocks its worker for over 100 ms") {
  weft_test::watchdog dog(10s);
  log_capture log;
  {
    weft::runtime rt(log.options(true));
    rt.block_on([]() -> weft::task<> {
      std::this_thread::sleep_for(150ms);  // the mistake being detected
      co_return;
    }());
  }
  CHECK(log.count("without suspending") == 1);
}

TEST_CASE("diagnostics: tasks lists live tasks with their names and states") {
  weft_test::watchdog dog(10s);
  weft::runtime rt({.worker_threads = 2});
  auto waiting = rt.spawn_named("waiting", nap(1h));
  std::this_thread::sleep_for(20ms);
  const auto tasks = rt.tasks();
  const auto it = std::find_if(tasks.begin(), tasks.end(),
                               [](const weft::task_info& t) { return t.name == "waiting"; });
  REQUIRE(it != tasks.end());
  CHECK(it->state == weft::task_info::state_type::waiting);
}

TEST_CASE("diagnostics: a log hook that throws loses no report and stops nothing") {
  weft_test::watchdog dog(20s);
  std::atomic<int> calls{0};
  weft::runtime_options opts;
  opts.worker_threads = 2;
  opts.log = [&calls](std::string_view) {
    ++calls;
    throw std::runtime_error("the log hook failed");
  };
  weft::runtime rt(std::move(opts));
  auto fail = []() -> weft::task<> {
    throw std::runtime_error("nobody retrieves this");
    co_return;
  };
  // Reported from a task's completion and from a handle's release, both noexcept paths: before,
  // the hook's exception terminated the process there.
  rt.spawn(fail()).detach();
  {
    auto handle = rt.spawn(fail());
    while (!handle.done())
      std::this_thread::sleep_for(1ms);
  }
  for (int i = 0; i < 2000 && calls < 2; ++i)
    std::this_thread::sleep_for(1ms);
  CHECK(calls == 2);
  CHECK(rt.block_on([]() -> weft::task<int> { co_return 7; }()) == 7);
}

TEST_CASE("diagnostics: a log hook that drops another failed task's handle does not deadlock") {
  weft_test::watchdog dog(20s);
  std::optional<weft::join_handle<void>> second;
  std::atomic<int> calls{0};
  weft::runtime_options opts;
  opts.worker_threads = 1;
  opts.log = [&](std::string_view) {
    ++calls;
    second.reset();  // reports again from inside this report (it held a global lock: deadlock)
  };
  weft::runtime rt(std::move(opts));
  auto fail = []() -> weft::task<> {
    throw std::runtime_error("nobody retrieves this");
    co_return;
  };
  auto first = rt.spawn(fail());
  second.emplace(rt.spawn(fail()));
  while (!first.done() || !second->done())
    std::this_thread::sleep_for(1ms);
  { auto dropped = std::move(first); }  // reports; the hook drops `second`, which reports too
  CHECK(calls == 2);
}
