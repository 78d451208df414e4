// tests/scheduler/test_deterministic.cpp: runtime_options::deterministic_seed and
// weft::testing::explore. One seed gives one order of task events, bit for bit, on every run;
// different seeds give different orders of a racy program (ready tasks and simultaneous timers);
// explore finds the seed under which a race breaks an invariant and names it for the replay.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <weft/scheduler/testing.hpp>
#include <weft/weft.hpp>

#include "support/stress.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

weft::runtime_options seeded(std::uint64_t seed) {
  weft::runtime_options options;
  options.deterministic_seed = seed;
  return options;
}

// Seeds per test: 1,000 in release (the figure), fewer under the sanitizers.
std::uint64_t seed_count() { return weft_test::sanitized() ? 100 : 1000; }

// A racy program: four tasks that each yield a few times and then note their number. The order
// of the notes is whatever order the scheduler chose.
weft::task<std::vector<int>> racing_tasks() {
  std::vector<int> order;
  std::vector<weft::join_handle<void>> handles;
  for (int i = 0; i < 4; ++i) {
    handles.push_back(weft::spawn(
        [](int id, std::vector<int>& out) -> weft::task<void> {
          for (int y = 0; y < id % 3; ++y)
            co_await weft::yield_now();
          out.push_back(id);
        },
        i, std::ref(order)));
  }
  for (auto& h : handles)
    co_await h;
  co_return order;
}

// Sleepers due at the same instant, and at different ones, and a timeout that expires among
// them: the order of the wake-ups is the scheduler's choice.
weft::task<std::vector<int>> sleeping_tasks() {
  std::vector<int> order;
  std::vector<weft::join_handle<void>> handles;
  for (int i = 0; i < 4; ++i) {
    handles.push_back(weft::spawn(
        [](int id, std::vector<int>& out) -> weft::task<void> {
          co_await weft::sleep(id < 3 ? 10ms : 20ms);  // three of them at the same instant
          out.push_back(id);
        },
        i, std::ref(order)));
  }
  handles.push_back(weft::spawn(
      [](std::vector<int>& out) -> weft::task<void> {
        try {
          co_await weft::timeout(10ms, []() -> weft::task<void> { co_await weft::sleep(1h); }());
        } catch (const weft::timeout_error&) {
          out.push_back(9);
        }
      },
      std::ref(order)));
  for (auto& h : handles)
    co_await h;
  co_return order;
}

// Primitives: two consumers of a bounded queue, each taking a mutex around a read-yield-write;
// which consumer gets which item is the scheduler's choice.
weft::task<std::vector<int>> queue_and_mutex() {
  weft::queue<int> q(2);
  weft::mutex m;
  std::vector<int> taken;
  auto consumer = [](int id, weft::queue<int>& items, weft::mutex& lock,
                     std::vector<int>& out) -> weft::task<void> {
    for (int i = 0; i < 3; ++i) {
      const int item = co_await items.get();
      auto held = co_await lock.lock();
      co_await weft::yield_now();
      out.push_back(id * 100 + item);
    }
  };
  auto a = weft::spawn(consumer, 1, std::ref(q), std::ref(m), std::ref(taken));
  auto b = weft::spawn(consumer, 2, std::ref(q), std::ref(m), std::ref(taken));
  for (int item = 0; item < 6; ++item)
    co_await q.put(item);
  co_await a;
  co_await b;
  co_return taken;
}

// A lost update: read, yield, write. Two of these on one counter lose an increment whenever the
// scheduler runs the second read between the first read and its write.
weft::task<void> two_unlocked_increments() {
  int counter = 0;
  auto increment = [](int& c) -> weft::task<void> {
    const int seen = c;
    co_await weft::yield_now();
    c = seen + 1;
  };
  auto a = weft::spawn(increment, std::ref(counter));
  auto b = weft::spawn(increment, std::ref(counter));
  co_await a;
  co_await b;
  if (counter != 2) throw std::runtime_error("lost update: counter is " + std::to_string(counter));
}

struct scoped_env {
  scoped_env(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~scoped_env() { ::unsetenv(name_); }
  scoped_env(const scoped_env&) = delete;
  scoped_env& operator=(const scoped_env&) = delete;
  const char* name_;
};

}  // namespace

TEST_SUITE("deterministic") {
  TEST_CASE("deterministic: a racy program runs its tasks in at least two orders over many seeds") {
    weft_test::watchdog dog(120s);
    std::set<std::vector<int>> orders;
    for (std::uint64_t seed = 0; seed < seed_count(); ++seed) {
      weft::runtime rt(seeded(seed));
      const auto order = rt.block_on(racing_tasks());
      REQUIRE(order.size() == 4);
      orders.insert(order);
    }
    // 4! = 24 orders are possible; a seeded choice among the ready tasks reaches many of them.
    CHECK(orders.size() >= 2);
    MESSAGE("distinct orders over " << seed_count() << " seeds: " << orders.size());
  }

  TEST_CASE("deterministic: each seed run twice gives identical event logs") {
    weft_test::watchdog dog(120s);
    std::vector<weft::task_event> first_log;
    bool some_differ = false;
    const std::uint64_t seeds = weft_test::sanitized() ? 20 : 100;
    for (std::uint64_t seed = 0; seed < seeds; ++seed) {
      std::vector<weft::task_event> logs[2];
      std::vector<int> orders[2];
      for (int run = 0; run < 2; ++run) {
        weft::runtime rt(seeded(seed));
        orders[run] = rt.block_on([]() -> weft::task<std::vector<int>> {
          auto a = co_await racing_tasks();
          auto b = co_await sleeping_tasks();
          auto c = co_await queue_and_mutex();
          a.insert(a.end(), b.begin(), b.end());
          a.insert(a.end(), c.begin(), c.end());
          co_return a;
        }());
        logs[run] = rt.event_log();
      }
      REQUIRE(!logs[0].empty());
      CHECK(orders[0] == orders[1]);
      CHECK(logs[0] == logs[1]);
      if (seed == 0) first_log = logs[0];
      some_differ = some_differ || logs[0] != first_log;
    }
    CHECK(some_differ);  // and the seed matters
  }

  TEST_CASE("deterministic: timers due at the same instant fire in an order the seed chooses") {
    weft_test::watchdog dog(60s);
    std::set<std::vector<int>> orders;
    const std::uint64_t seeds = weft_test::sanitized() ? 50 : 200;
    for (std::uint64_t seed = 0; seed < seeds; ++seed) {
      weft::runtime rt(seeded(seed));
      const auto start = std::chrono::steady_clock::now();
      const auto order = rt.block_on(sleeping_tasks());
      CHECK(std::chrono::steady_clock::now() - start < 5s);  // an hour of virtual time, at once
      REQUIRE(order.size() == 5);
      // The 20 ms sleeper wakes after every task due at 10 ms (virtual time keeps deadlines).
      CHECK(order.back() == 3);
      orders.insert(order);
    }
    CHECK(orders.size() >= 2);
  }

  TEST_CASE("deterministic: the event log names spawns resumptions and completions in order") {
    weft_test::watchdog dog(10s);
    weft::runtime rt(seeded(7));
    CHECK(rt.seed() == 7u);
    CHECK(rt.worker_count() == 1);
    rt.block_on([]() -> weft::task<void> {
      auto child = weft::spawn([]() -> weft::task<void> { co_await weft::sleep(5ms); });
      co_await child;
    }());
    const auto log = rt.event_log();
    using kind = weft::task_event::kind;
    // The main task (1) from outside, its child (2) spawned by it; each completes once, after it
    // was resumed; the child's completion comes after 5 ms of virtual time.
    REQUIRE(log.size() >= 5);
    CHECK(log[0] == weft::task_event{kind::spawned, 1, 0, 0});
    CHECK(log[1] == weft::task_event{kind::resumed, 1, 0, 0});
    CHECK(log[2] == weft::task_event{kind::spawned, 2, 1, 0});
    int completions = 0;
    for (const auto& e : log) {
      if (e.what != kind::completed) continue;
      ++completions;
      if (e.task == 2) CHECK(e.time_ms == 5);
    }
    CHECK(completions == 2);
    CHECK(log.back().what == kind::completed);
    CHECK(log.back().task == 1);
  }

  TEST_CASE("deterministic: a runtime without a seed has no seed and an empty event log") {
    weft::runtime_options options;
    options.worker_threads = 2;
    weft::runtime rt(options);
    rt.block_on([]() -> weft::task<void> { co_return; }());
    CHECK(!rt.seed().has_value());
    CHECK(rt.event_log().empty());
    CHECK(rt.worker_count() == 2);
  }

  TEST_CASE("explore: finds a lost update and names the seed to replay") {
    weft_test::watchdog dog(60s);
    std::uint64_t failing = 0;
    std::string message;
    try {
      weft::testing::explore(seed_count(), two_unlocked_increments);
      FAIL("no seed lost the update");
    } catch (const weft::testing::seed_failure& failure) {
      failing = failure.seed();
      message = failure.what();
    }
    INFO(message);
    CHECK(message.find("seed " + std::to_string(failing)) != std::string::npos);
    CHECK(message.find("WEFT_SEED=" + std::to_string(failing)) != std::string::npos);
    CHECK(message.find("lost update: counter is 1") != std::string::npos);
    // The seed replays: the same failure, every time, on a plain deterministic runtime.
    for (int run = 0; run < 3; ++run) {
      weft::runtime rt(seeded(failing));
      CHECK_THROWS_WITH_AS(rt.block_on(two_unlocked_increments()), "lost update: counter is 1",
                           std::runtime_error);
    }
    // And an earlier seed passes (explore stops at the first that fails).
    if (failing > 0) {
      weft::runtime rt(seeded(failing - 1));
      CHECK_NOTHROW(rt.block_on(two_unlocked_increments()));
    }
  }

  TEST_CASE("explore: runs every seed of a correct body and returns the count") {
    weft_test::watchdog dog(60s);
    const auto ran = weft::testing::explore({5, 20}, []() -> weft::task<void> {
      auto order = co_await racing_tasks();
      if (order.size() != 4) throw std::runtime_error("a task went missing");
    });
    CHECK(ran == 20);
  }

  TEST_CASE("deterministic: WEFT_SEED replays one seed in explore and in every seeded runtime") {
    weft_test::watchdog dog(60s);
    // Find a failing seed first, then replay it through the environment.
    std::uint64_t failing = 0;
    try {
      weft::testing::explore(seed_count(), two_unlocked_increments);
    } catch (const weft::testing::seed_failure& failure) {
      failing = failure.seed();
    }
    const std::string value = std::to_string(failing);
    scoped_env env("WEFT_SEED", value.c_str());
    {
      weft::runtime rt(seeded(failing + 12345));  // overridden
      CHECK(rt.seed() == failing);
    }
    int runs = 0;
    try {
      weft::testing::explore(1000, [&runs] {
        ++runs;
        return two_unlocked_increments();
      });
    } catch (const weft::testing::seed_failure& failure) {
      CHECK(failure.seed() == failing);
    }
    CHECK(runs == 1);
  }

  TEST_CASE("deterministic: an invalid WEFT_SEED is refused with a clear error") {
    scoped_env env("WEFT_SEED", "twelve");
    CHECK_THROWS_WITH_AS(weft::runtime(seeded(1)),
                         doctest::Contains("WEFT_SEED='twelve' is not a seed"),
                         std::invalid_argument);
  }

  TEST_CASE("deterministic: reports name the seed to replay") {
    weft_test::watchdog dog(10s);
    std::vector<std::string> reports;
    std::mutex mutex;
    auto options = seeded(42);
    options.log = [&](std::string_view line) {
      std::lock_guard lock(mutex);
      reports.emplace_back(line);
    };
    {
      weft::runtime rt(options);
      rt.block_on([]() -> weft::task<void> {
        weft::spawn([]() -> weft::task<void> {
          throw std::runtime_error("nobody looks");
          co_return;
        }).detach();
        co_await weft::sleep(1ms);
      }());
    }
    std::lock_guard lock(mutex);
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].find("deterministic seed 42; replay with WEFT_SEED=42") != std::string::npos);
    CHECK(reports[0].find("nobody looks") != std::string::npos);
  }

}  // TEST_SUITE
