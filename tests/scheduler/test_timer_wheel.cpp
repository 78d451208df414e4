// tests/test_timer_wheel.cpp: the private hierarchical timer wheel (scheduler/timer_wheel.{hpp,cpp}),
// on a simulated clock: entries fire exactly once, never early, in deadline order, cascading works
// across levels, removal is final, next_expiration never skips a deadline, the wheel ends empty
// (an S5-like run: random deadlines, half removed at random moments).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "support/stress.hpp"
#include "support/watchdog.hpp"
#include "timer_wheel.hpp"

using namespace std::chrono_literals;
using weft::detail::timer_entry;
using weft::detail::timer_wheel;

namespace {

struct fired_log {
  std::vector<std::pair<std::uint64_t, timer_entry*>> events;  // (time, entry)
};

// Advances to `now`, firing without a batch limit, and records when each entry fired.
std::size_t advance_to(timer_wheel& wheel, std::uint64_t now, fired_log& log,
                       std::size_t limit = static_cast<std::size_t>(-1)) {
  return wheel.advance(now, limit, [&](timer_entry* e) { log.events.emplace_back(now, e); });
}

}  // namespace

TEST_CASE("timer_wheel: an empty wheel has no next expiration") {
  timer_wheel wheel;
  CHECK(wheel.size() == 0);
  CHECK_FALSE(wheel.next_expiration().has_value());
  fired_log log;
  CHECK(advance_to(wheel, 1000, log) == 0);
  CHECK(wheel.elapsed() == 1000);
}

TEST_CASE("timer_wheel: entries fire at their deadline and not before") {
  weft_test::watchdog dog(30s);
  timer_wheel wheel;
  const std::vector<std::uint64_t> deadlines = {1,    2,    63,   64,    65,     127,     128,
                                                4095, 4096, 4097, 70000, 262143, 262144, 1000000};
  std::vector<timer_entry> entries(deadlines.size());
  for (std::size_t i = 0; i < deadlines.size(); ++i) {
    entries[i].deadline = deadlines[i];
    wheel.insert(&entries[i]);
  }
  CHECK(wheel.size() == deadlines.size());
  fired_log log;
  // Tick by tick around each deadline, in jumps elsewhere: each fires exactly at its deadline.
  std::uint64_t now = 0;
  for (std::uint64_t d : deadlines) {
    if (d - 1 > now) {
      advance_to(wheel, d - 1, log);
      now = d - 1;
    }
    const std::size_t before = log.events.size();
    advance_to(wheel, d, log);
    now = d;
    CHECK(log.events.size() == before + 1);
  }
  REQUIRE(log.events.size() == deadlines.size());
  for (std::size_t i = 0; i < deadlines.size(); ++i) {
    CHECK(log.events[i].second->deadline == deadlines[i]);
    CHECK(log.events[i].first == deadlines[i]);
  }
  CHECK(wheel.size() == 0);
  CHECK_FALSE(wheel.next_expiration().has_value());
}

TEST_CASE("timer_wheel: one big jump fires everything due in deadline order") {
  weft_test::watchdog dog(30s);
  timer_wheel wheel;
  std::mt19937_64 rng(42);
  std::vector<timer_entry> entries(5000);
  for (auto& e : entries) {
    e.deadline = 1 + rng() % 300000;
    wheel.insert(&e);
  }
  fired_log log;
  advance_to(wheel, 150000, log);
  const auto due = static_cast<std::size_t>(std::count_if(
      entries.begin(), entries.end(), [](const timer_entry& e) { return e.deadline <= 150000; }));
  CHECK(log.events.size() == due);
  for (std::size_t i = 1; i < log.events.size(); ++i) {
    CHECK(log.events[i - 1].second->deadline <= log.events[i].second->deadline);
  }
  for (auto& [at, e] : log.events) CHECK(e->deadline <= at);
  advance_to(wheel, 300000, log);
  CHECK(log.events.size() == entries.size());
  CHECK(wheel.size() == 0);
}

TEST_CASE("timer_wheel: the batch limit stops firing and the next call continues") {
  timer_wheel wheel;
  std::vector<timer_entry> entries(100);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    entries[i].deadline = 10 + i % 5;
    wheel.insert(&entries[i]);
  }
  fired_log log;
  CHECK(advance_to(wheel, 50, log, 30) == 30);
  CHECK(advance_to(wheel, 50, log, 30) == 30);
  CHECK(advance_to(wheel, 50, log, 30) == 30);
  CHECK(advance_to(wheel, 50, log, 30) == 10);
  CHECK(log.events.size() == 100);
  for (std::size_t i = 1; i < log.events.size(); ++i) {
    CHECK(log.events[i - 1].second->deadline <= log.events[i].second->deadline);
  }
  CHECK(wheel.elapsed() == 50);
}

TEST_CASE("timer_wheel: a removed entry never fires") {
  timer_wheel wheel;
  timer_entry a;
  timer_entry b;
  timer_entry c;
  a.deadline = 5;
  b.deadline = 5;
  c.deadline = 5000;
  wheel.insert(&a);
  wheel.insert(&b);
  wheel.insert(&c);
  wheel.remove(&a);
  wheel.remove(&c);
  CHECK(wheel.size() == 1);
  fired_log log;
  advance_to(wheel, 10000, log);
  REQUIRE(log.events.size() == 1);
  CHECK(log.events[0].second == &b);
}

TEST_CASE("timer_wheel: next_expiration never lies beyond the earliest deadline") {
  weft_test::watchdog dog(30s);
  timer_wheel wheel;
  std::mt19937_64 rng(7);
  std::vector<timer_entry> entries(2000);
  for (auto& e : entries) {
    e.deadline = 1 + rng() % 1'000'000;
    wheel.insert(&e);
  }
  fired_log log;
  // Jump from expiration to expiration, as the poller does.
  std::size_t steps = 0;
  std::size_t seen = 0;
  std::vector<bool> done(entries.size(), false);
  while (auto next = wheel.next_expiration()) {
    for (; seen < log.events.size(); ++seen) {
      done[static_cast<std::size_t>(log.events[seen].second - entries.data())] = true;
    }
    std::uint64_t earliest = UINT64_MAX;
    for (std::size_t i = 0; i < entries.size(); ++i) {
      if (!done[i]) earliest = std::min(earliest, entries[i].deadline);
    }
    REQUIRE(*next <= earliest);
    REQUIRE(*next >= wheel.elapsed());
    advance_to(wheel, *next, log);
    REQUIRE(++steps < 100000);
  }
  CHECK(log.events.size() == entries.size());
  for (auto& [at, e] : log.events) CHECK(e->deadline == at);  // fired exactly on time
}

TEST_CASE("timer_wheel: deadlines beyond the top level span fire on time") {
  weft_test::watchdog dog(20s, "advancing past a deadline beyond 2^36 ticks");
  timer_wheel wheel;
  timer_entry far;
  far.deadline = timer_wheel::max_span + 5;
  wheel.insert(&far);
  fired_log log;
  advance_to(wheel, timer_wheel::max_span + 4, log);
  CHECK(log.events.empty());
  advance_to(wheel, timer_wheel::max_span + 10, log);
  REQUIRE(log.events.size() == 1);
  CHECK(log.events[0].second == &far);

  // Several spans ahead, filed from various points of the top level, followed by expiration
  // jumps as the poller makes them: each fires exactly at its deadline.
  const std::uint64_t span = timer_wheel::max_span;
  const std::uint64_t base = wheel.elapsed();
  std::vector<std::uint64_t> deadlines = {base + 3 * span + 7, base + span - 1, base + 2 * span,
                                          base + 5 * span + (63ULL << 30) + 1};
  std::vector<timer_entry> entries(deadlines.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    entries[i].deadline = deadlines[i];
    wheel.insert(&entries[i]);
  }
  log.events.clear();
  std::size_t steps = 0;
  while (auto next = wheel.next_expiration()) {
    REQUIRE(*next >= wheel.elapsed());
    advance_to(wheel, *next, log);
    REQUIRE(++steps < 10000);
  }
  REQUIRE(log.events.size() == entries.size());
  for (auto& [at, e] : log.events) CHECK(e->deadline == at);
}

TEST_SUITE("stress") {
  TEST_CASE("timer_wheel: S5 random timers with half removed fire exactly once and never early") {
    const std::size_t count = weft_test::stress_count(100'000, 1'000'000);
    weft_test::watchdog dog(280s);
    timer_wheel wheel;
    std::mt19937_64 rng(2024);
    std::vector<timer_entry> entries(count);
    std::vector<std::uint8_t> fired(count, 0);
    std::vector<std::uint8_t> removed(count, 0);
    std::vector<std::uint64_t> remove_at(count, UINT64_MAX);
    std::vector<std::uint64_t> insert_at(count, 0);
    // Timers are armed over the first 100 ms of simulated time, each 0-100 ms ahead; half of them
    // are removed at a random moment before their deadline.
    for (std::size_t i = 0; i < count; ++i) {
      insert_at[i] = rng() % 100;
      entries[i].deadline = insert_at[i] + 1 + rng() % 100;
      if (rng() % 2 == 0) remove_at[i] = insert_at[i] + rng() % (entries[i].deadline - insert_at[i]);
    }
    std::vector<std::size_t> order(count);
    for (std::size_t i = 0; i < count; ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](std::size_t a, std::size_t b) { return insert_at[a] < insert_at[b]; });
    std::vector<std::vector<std::size_t>> removals(200);
    for (std::size_t i = 0; i < count; ++i) {
      if (remove_at[i] != UINT64_MAX) removals[remove_at[i]].push_back(i);
    }
    std::size_t next_insert = 0;
    std::size_t early = 0;
    std::size_t twice = 0;
    auto* base = entries.data();
    for (std::uint64_t now = 0; now < 200; ++now) {
      wheel.advance(now, static_cast<std::size_t>(-1), [&](timer_entry* e) {
        const auto i = static_cast<std::size_t>(e - base);
        if (e->deadline > now) ++early;
        if (fired[i]++ != 0) ++twice;
      });
      while (next_insert < count && insert_at[order[next_insert]] == now) {
        wheel.insert(&entries[order[next_insert]]);
        ++next_insert;
      }
      for (std::size_t i : removals[now]) {
        if (fired[i] == 0 && insert_at[i] <= now) {
          wheel.remove(&entries[i]);
          removed[i] = 1;
        }
      }
    }
    std::size_t missing = 0;
    std::size_t fired_removed = 0;
    for (std::size_t i = 0; i < count; ++i) {
      if (removed[i] == 0 && fired[i] == 0) ++missing;
      if (removed[i] != 0 && fired[i] != 0) ++fired_removed;
    }
    CHECK(early == 0);
    CHECK(twice == 0);
    CHECK(missing == 0);
    CHECK(fired_removed == 0);
    CHECK(wheel.size() == 0);
    CHECK_FALSE(wheel.next_expiration().has_value());
  }
}
