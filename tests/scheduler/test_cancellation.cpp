// tests/test_cancellation.cpp: join_handle::cancel and its cancellation points (patterns.md rows
// 10-12, reliability.md rule 3): a task waiting in sleep, yield_now, an io wait or a join is
// cancelled; a running task sees the cancellation at its next cancellation point and a task that
// never suspends is not interrupted; delivery consumes the request so cleanup can co_await;
// cancelling a task that awaits another cancels that one too; shield and cancel_all; a cancel
// racing with the wake-up never loses the task nor resumes it twice, in every waiter state.
#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "support/outcomes.hpp"
#include "support/sockets.hpp"
#include "support/stress.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

using weft_test::ended;
using weft_test::how_it_ends;
using weft_test::read_some;
using weft_test::result_of;
using weft_test::sleep_then;
using weft_test::socket_pair;

// Busy-waits (no cancellation point) until `flag` is set or `limit` passed.
void spin_until(const std::atomic<bool>& flag, std::chrono::milliseconds limit = 5s) {
  const auto end = steady::now() + limit;
  while (!flag.load() && steady::now() < end)
    std::this_thread::yield();
}

void spin_for(std::chrono::milliseconds d) {
  const auto end = steady::now() + d;
  while (steady::now() < end)
    std::this_thread::yield();
}

}  // namespace

TEST_CASE("cancellation: a sleeping task ends with cancelled_error soon after cancel") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    auto h = weft::spawn(sleep_then(10s, 1));
    co_await weft::sleep(5ms);
    CHECK_FALSE(h.done());
    CHECK_FALSE(h.cancelled());
    const auto start = steady::now();
    h.cancel();
    CHECK(co_await how_it_ends(h) == ended::cancelled);
    CHECK(steady::now() - start < 2s);
    CHECK(h.done());
    CHECK(h.cancelled());
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("cancellation: a yielding task ends with cancelled_error") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::atomic<long> rounds{0};
    auto h = weft::spawn(
        [](std::atomic<long>& r) -> weft::task<> {
          for (;;) {
            ++r;
            co_await weft::yield_now();
          }
        },
        std::ref(rounds));
    while (rounds.load() < 10)
      co_await weft::yield_now();
    h.cancel();
    CHECK(co_await how_it_ends(h) == ended::cancelled);
    CHECK(h.cancelled());
    const long after = rounds.load();
    co_await weft::sleep(5ms);
    CHECK(rounds.load() == after);  // it stopped for good
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("cancellation: a task waiting for readability is cancelled and the source still works") {
  weft_test::watchdog dog(10s);
  socket_pair sp;
  auto main_task = [](int rfd, int wfd) -> weft::task<> {
    weft::io_source src(rfd);
    auto h = weft::spawn([](weft::io_source& s) -> weft::task<> { co_await s.readable(); },
                         std::ref(src));
    co_await weft::sleep(5ms);
    CHECK_FALSE(h.done());
    h.cancel();
    CHECK(co_await how_it_ends(h) == ended::cancelled);
    // The cancelled waiter was taken back: a new reader can wait and is woken by data.
    auto reader = weft::spawn(read_some, std::ref(src));
    co_await weft::sleep(2ms);
    REQUIRE(::write(wfd, "hi", 2) == 2);
    CHECK(co_await reader == "hi");
  };
  weft::run(main_task(sp.fds[0], sp.fds[1]), {.worker_threads = 2});
}

TEST_CASE("cancellation: cancelling a task that awaits a spawned task cancels that task too") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::atomic<bool> child_cleaned{false};
    auto child = weft::spawn(
        [](std::atomic<bool>& cleaned) -> weft::task<int> {
          std::exception_ptr cancelled;
          try {
            co_await weft::sleep(10s);
          } catch (const weft::cancelled_error&) {
            cancelled = std::current_exception();
          }
          if (cancelled) {
            co_await weft::sleep(2ms);  // cleanup that waits
            cleaned = true;
            std::rethrow_exception(cancelled);
          }
          co_return 1;
        },
        std::ref(child_cleaned));
    auto parent = weft::spawn(
        [](weft::join_handle<int>& c, std::atomic<bool>& cleaned) -> weft::task<> {
          co_await c;
          // Unreachable: the await throws. Checked below through how the parent ended.
          (void)cleaned;
        },
        std::ref(child), std::ref(child_cleaned));
    co_await weft::sleep(5ms);
    parent.cancel();
    CHECK(co_await how_it_ends(parent) == ended::cancelled);
    // The parent waited for the child to finish its cleanup before it ended.
    CHECK(child_cleaned.load());
    CHECK(child.done());
    CHECK(child.cancelled());
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE(
    "cancellation: the awaited task's result stays in the handle after the awaiter was cancelled") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<int> {
    auto parent = weft::spawn([]() -> weft::task<int> {
      // The child swallows its cancellation and returns a value.
      auto child = weft::spawn([]() -> weft::task<int> {
        try {
          co_await weft::sleep(10s);
        } catch (const weft::cancelled_error&) {
        }
        co_return 42;
      });
      std::exception_ptr cancelled;
      try {
        (void)co_await child;
      } catch (const weft::cancelled_error&) {
        cancelled = std::current_exception();
      }
      REQUIRE(cancelled);
      CHECK(child.done());
      CHECK_FALSE(child.cancelled());
      co_return child.take_result();  // the await did not consume it
    });
    co_await weft::sleep(5ms);
    parent.cancel();
    co_return co_await parent;
  };
  CHECK(weft::run(main_task(), {.worker_threads = 2}) == 42);
}

TEST_CASE("cancellation: a running task sees the cancellation at its next cancellation point") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::atomic<bool> running{false};
    std::atomic<bool> go_on{false};
    std::atomic<int> progress{0};
    auto h = weft::spawn(
        [](std::atomic<bool>& run, std::atomic<bool>& go, std::atomic<int>& prog) -> weft::task<> {
          run = true;
          spin_until(go);              // cancelled while here: no cancellation point
          prog = 1;                    // still runs: nothing interrupts plain code
          co_await weft::yield_now();  // the cancellation is delivered here
          prog = 2;
        },
        std::ref(running), std::ref(go_on), std::ref(progress));
    spin_until(running);
    h.cancel();
    go_on = true;
    CHECK(co_await how_it_ends(h) == ended::cancelled);
    CHECK(progress.load() == 1);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("cancellation: a task that never suspends is not interrupted") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::atomic<bool> running{false};
    std::atomic<bool> go_on{false};
    auto h = weft::spawn(
        [](std::atomic<bool>& run, std::atomic<bool>& go) -> weft::task<int> {
          run = true;
          spin_until(go);
          co_return 7;
        },
        std::ref(running), std::ref(go_on));
    spin_until(running);
    h.cancel();
    h.cancel();
    go_on = true;
    CHECK(co_await how_it_ends(h) == ended::value);
    CHECK(h.done());
    CHECK_FALSE(h.cancelled());
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("cancellation: delivery consumes the request so cleanup can co_await") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::atomic<int> cleanup_steps{0};
    auto h = weft::spawn(
        [](std::atomic<int>& steps) -> weft::task<> {
          std::exception_ptr cancelled;
          try {
            co_await weft::sleep(10s);
          } catch (const weft::cancelled_error&) {
            cancelled = std::current_exception();
          }
          if (cancelled) {
            co_await weft::sleep(2ms);
            ++steps;
            co_await weft::yield_now();
            ++steps;
            auto helper = weft::spawn(sleep_then(1ms, 1));
            steps += co_await helper;
            std::rethrow_exception(cancelled);
          }
        },
        std::ref(cleanup_steps));
    co_await weft::sleep(5ms);
    // Requested twice before delivery: still one delivery.
    h.cancel();
    h.cancel();
    CHECK(co_await how_it_ends(h) == ended::cancelled);
    CHECK(cleanup_steps.load() == 3);
    CHECK(h.cancelled());
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("cancellation: cancelled reports only tasks that ended with cancelled_error") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    auto failing = weft::spawn([]() -> weft::task<int> {
      co_await weft::sleep(1ms);
      throw std::runtime_error("boom");
    });
    auto swallowing = weft::spawn([]() -> weft::task<int> {
      try {
        co_await weft::sleep(10s);
      } catch (const weft::cancelled_error&) {
      }
      co_return 3;
    });
    auto finished = weft::spawn(sleep_then(0ms, 4));
    CHECK(co_await how_it_ends(failing) == ended::failed);
    CHECK(failing.done());
    CHECK_FALSE(failing.cancelled());
    co_await weft::sleep(2ms);
    swallowing.cancel();
    CHECK(co_await swallowing == 3);
    CHECK_FALSE(swallowing.cancelled());
    while (!finished.done())
      co_await weft::yield_now();
    finished.cancel();  // does nothing to a finished task
    CHECK_FALSE(finished.cancelled());
    CHECK(co_await finished == 4);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE(
    "cancellation: a cancellation requested before the wait is delivered without suspending") {
  // Waiter state "before it queues": the task is running when cancel() comes, so its next wait
  // must throw at once instead of sleeping.
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    for (int kind = 0; kind < 3; ++kind) {
      std::atomic<bool> running{false};
      std::atomic<bool> go_on{false};
      auto h = weft::spawn(
          [](int k, std::atomic<bool>& run, std::atomic<bool>& go) -> weft::task<> {
            run = true;
            spin_until(go);
            if (k == 0) co_await weft::sleep(10s);
            if (k == 1) co_await weft::spawn(sleep_then(10s, 1));  // cancels that child too
            if (k == 2) co_await weft::yield_now();
          },
          kind, std::ref(running), std::ref(go_on));
      spin_until(running);
      h.cancel();
      go_on = true;
      const auto start = steady::now();
      CHECK(co_await how_it_ends(h) == ended::cancelled);
      CHECK(steady::now() - start < 5s);
    }
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE(
    "cancellation: a sleeper woken by its timer but not yet resumed is cancelled exactly once") {
  // Waiter state "woken but not yet resumed": one worker, busy with the main task while the
  // sleeper's timer fires, so the sleeper sits in the run queue when cancel() comes.
  weft_test::watchdog dog(20s);
  weft::runtime rt({.worker_threads = 1});
  auto main_task = [](weft::runtime& r) -> weft::task<> {
    for (int round = 0; round < 20; ++round) {
      std::atomic<int> resumed{0};
      auto h = weft::spawn(
          [](std::atomic<int>& n) -> weft::task<> {
            try {
              co_await weft::sleep(1ms);
            } catch (const weft::cancelled_error&) {
              ++n;
              throw;
            }
            ++n;
          },
          std::ref(resumed));
      co_await weft::yield_now();  // the sleeper arms its timer
      // Busy: the timer fires and queues the sleeper behind us.
      const auto end = steady::now() + 2s;
      while (r.stats().timers != 0 && steady::now() < end)
        std::this_thread::yield();
      CHECK(r.stats().timers == 0);
      h.cancel();
      // A cancellation requested before the task resumed is delivered at that await.
      CHECK(co_await how_it_ends(h) == ended::cancelled);
      CHECK(resumed.load() == 1);
    }
  };
  rt.block_on(main_task(rt));
}

TEST_CASE(
    "cancellation: a reader woken by readiness but not yet resumed is cancelled and the data "
    "stays") {
  weft_test::watchdog dog(20s);
  socket_pair sp;
  auto main_task = [](int rfd, int wfd) -> weft::task<> {
    weft::io_source src(rfd);
    for (int round = 0; round < 10; ++round) {
      // The documented "try, then wait on EAGAIN" loop, so a spurious wake is only a retry.
      auto h = weft::spawn(read_some, std::ref(src));
      co_await weft::yield_now();  // the reader parks
      co_await weft::sleep(1ms);
      REQUIRE(::write(wfd, "x", 1) == 1);
      spin_for(10ms);  // busy: the poller queues the reader behind us
      h.cancel();
      CHECK(co_await how_it_ends(h) == ended::cancelled);
      // Nothing was read: the byte is still there for the next reader.
      CHECK(co_await read_some(src) == "x");
    }
  };
  weft::run(main_task(sp.fds[0], sp.fds[1]), {.worker_threads = 1});
}

TEST_CASE("cancellation: shield lets the shielded task finish and its result be awaited") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    auto inner = weft::spawn(sleep_then(50ms, 5));
    std::atomic<bool> inner_done_at_cancel{true};
    auto outer = weft::spawn(
        [](weft::join_handle<int>& in, std::atomic<bool>& done_at) -> weft::task<int> {
          std::exception_ptr cancelled;
          try {
            co_return co_await weft::shield(in);
          } catch (const weft::cancelled_error&) {
            cancelled = std::current_exception();
          }
          done_at = in.done();
          const int value = co_await in;  // the shielded task ran on
          (void)value;
          CHECK(value == 5);
          std::rethrow_exception(cancelled);
        },
        std::ref(inner), std::ref(inner_done_at_cancel));
    co_await weft::sleep(5ms);
    outer.cancel();
    CHECK(co_await how_it_ends(outer) == ended::cancelled);
    CHECK_FALSE(inner_done_at_cancel.load());  // the shielded await threw at once
    CHECK(inner.done());
    CHECK_FALSE(inner.cancelled());
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("cancellation: shield of an uncancelled awaiter gives the result") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<int> {
    auto h = weft::spawn(sleep_then(2ms, 9));
    co_return co_await weft::shield(h);
  };
  CHECK(weft::run(main_task(), {.worker_threads = 2}) == 9);
}

TEST_CASE("cancellation: cancel_all cancels every task and waits without taking results") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::vector<weft::join_handle<int>> handles;
    for (int i = 0; i < 8; ++i)
      handles.push_back(weft::spawn(sleep_then(10s, i)));
    handles.push_back(weft::spawn([]() -> weft::task<int> {  // swallows its cancellation
      try {
        co_await weft::sleep(10s);
      } catch (const weft::cancelled_error&) {
      }
      co_await weft::sleep(2ms);
      co_return 100;
    }));
    handles.push_back(weft::spawn(sleep_then(0ms, 200)));
    while (!handles.back().done())
      co_await weft::yield_now();
    co_await weft::sleep(2ms);
    const auto start = steady::now();
    co_await weft::cancel_all(handles);
    CHECK(steady::now() - start < 5s);
    for (int i = 0; i < 8; ++i) {
      auto& h = handles[static_cast<std::size_t>(i)];
      CHECK(h.done());
      CHECK(h.cancelled());
      CHECK(result_of(h) == ended::cancelled);
    }
    CHECK(handles[8].done());
    CHECK_FALSE(handles[8].cancelled());
    CHECK(handles[8].take_result() == 100);
    CHECK_FALSE(handles[9].cancelled());
    CHECK(handles[9].take_result() == 200);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE(
    "cancellation: a cancel racing with the timer never loses the task nor resumes it twice") {
  weft_test::watchdog dog(60s);
  weft::runtime rt({.worker_threads = 2});
  const int rounds = static_cast<int>(weft_test::stress_count(300, 20000));
  std::mt19937 rng(12345);
  int values = 0;
  int cancels = 0;
  for (int i = 0; i < rounds; ++i) {
    std::atomic<int> resumed{0};
    auto h = rt.spawn([](std::atomic<int>& n) -> weft::task<int> {
      try {
        co_await weft::sleep(1ms);
      } catch (const weft::cancelled_error&) {
        ++n;
        throw;
      }
      ++n;
      co_return 1;
    }(resumed));
    // Cancel from this foreign thread at about the moment the timer fires.
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2500));
    h.cancel();
    const ended e = rt.block_on(how_it_ends(h));
    REQUIRE_MESSAGE((e == ended::value || e == ended::cancelled), describe(e));
    (e == ended::value ? values : cancels)++;
    REQUIRE(resumed.load() == 1);
  }
  MESSAGE(values << " woke first, " << cancels << " cancelled");
  CHECK(values + cancels == rounds);
}

TEST_CASE("cancellation: a cancel racing with the child's completion never loses the awaiter") {
  weft_test::watchdog dog(60s);
  weft::runtime rt({.worker_threads = 2});
  const int rounds = static_cast<int>(weft_test::stress_count(300, 20000));
  std::mt19937 rng(777);
  int values = 0;
  int cancels = 0;
  for (int i = 0; i < rounds; ++i) {
    std::atomic<int> parent_resumed{0};
    const int child_yields = static_cast<int>(rng() % 4);
    auto parent = rt.spawn([](std::atomic<int>& n, int yields) -> weft::task<int> {
      auto child = weft::spawn([](int y) -> weft::task<int> {
        for (int k = 0; k < y; ++k)
          co_await weft::yield_now();
        co_return 1;
      }(yields));
      try {
        const int v = co_await child;
        ++n;
        co_return v;
      } catch (const weft::cancelled_error&) {
        ++n;
        // Either the child saw the cancellation or it had finished: it is done now.
        CHECK(child.done());
        throw;
      }
    }(parent_resumed, child_yields));
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 60));
    parent.cancel();
    const ended e = rt.block_on(how_it_ends(parent));
    REQUIRE_MESSAGE((e == ended::value || e == ended::cancelled), describe(e));
    (e == ended::value ? values : cancels)++;
    REQUIRE(parent_resumed.load() == 1);
  }
  MESSAGE(values << " completed first, " << cancels << " cancelled");
  CHECK(values + cancels == rounds);
}

TEST_CASE("cancellation: a cancel racing with readiness never loses the reader") {
  weft_test::watchdog dog(60s);
  weft::runtime rt({.worker_threads = 2});
  socket_pair sp;
  weft::io_source src(rt, sp.fds[0]);
  const int rounds = static_cast<int>(weft_test::stress_count(200, 10000));
  std::mt19937 rng(99);
  for (int i = 0; i < rounds; ++i) {
    std::atomic<int> resumed{0};
    auto h = rt.spawn([](weft::io_source& s, std::atomic<int>& n) -> weft::task<> {
      try {
        co_await s.readable();
      } catch (const weft::cancelled_error&) {
        ++n;
        throw;
      }
      ++n;
    }(src, resumed));
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 100));
    REQUIRE(::write(sp.fds[1], "y", 1) == 1);
    if (rng() % 2 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 50));
    h.cancel();
    const ended e = rt.block_on(how_it_ends(h));
    REQUIRE_MESSAGE((e == ended::value || e == ended::cancelled), describe(e));
    REQUIRE(resumed.load() == 1);
    char c = 0;
    REQUIRE(::read(sp.fds[0], &c, 1) == 1);  // drain, so the next round waits again
    CHECK(c == 'y');
  }
}

TEST_SUITE("stress") {
  TEST_CASE("cancellation: random cancel and timeout storms resolve every operation") {
    // S4-style: random sleeps, yields, joins, shields, timeouts, waits and gathers, cancelled at
    // random moments from workers and from a foreign thread. Every operation must end in exactly
    // one of its allowed ways and the runtime must go back to no tasks and no timers.
    weft_test::watchdog dog(weft_test::stress_scaled_up() ? 3600s : 120s);
    const std::size_t ops = weft_test::stress_count(4000, 1000000);
    constexpr std::size_t drivers = 32;
    weft::runtime rt({.worker_threads = 2});
    std::atomic<std::size_t> next_op{0};
    std::atomic<std::size_t> outcomes[weft_test::ended_kinds] = {};
    std::atomic<std::size_t> wrong{0};

    struct shared_state {
      std::atomic<std::size_t>* next_op;
      std::size_t ops;
      std::atomic<std::size_t>* outcomes;
      std::atomic<std::size_t>* wrong;
    } state{&next_op, ops, outcomes, &wrong};

    auto child = [](std::uint32_t seed) -> weft::task<int> {
      std::mt19937 r(seed);
      const int steps = static_cast<int>(r() % 3);
      for (int k = 0; k < steps; ++k) {
        if (r() % 2 == 0) {
          co_await weft::yield_now();
        } else {
          co_await weft::sleep(std::chrono::microseconds(r() % 1500));
        }
      }
      co_return 1;
    };

    auto driver = [](shared_state s, std::uint32_t seed, auto make_child) -> weft::task<> {
      std::mt19937 r(seed);
      // Counts the outcome; anything not allowed is wrong (a stale cancellation, say).
      auto record = [&](ended e, bool timeout_allowed, bool cancel_allowed) {
        const bool allowed = e == ended::value || (e == ended::timed_out && timeout_allowed) ||
                             (e == ended::cancelled && cancel_allowed);
        if (!allowed) ++*s.wrong;
        ++s.outcomes[static_cast<int>(e)];
      };
      while (s.next_op->fetch_add(1) < s.ops) {
        switch (r() % 6) {
          case 0: {  // spawn, maybe cancel after a moment, await
            auto h = weft::spawn(make_child(r()));
            if (r() % 2 == 0) co_await weft::yield_now();
            const bool cancel = r() % 3 != 0;
            if (cancel) h.cancel();
            record(co_await how_it_ends(h), false, cancel);
            break;
          }
          case 1: {  // timeout over a task
            const auto limit = std::chrono::microseconds(r() % 2000);
            record(co_await how_it_ends(weft::timeout(limit, make_child(r()))), true, false);
            break;
          }
          case 2: {  // wait_for over a handle that may have been cancelled already
            auto h = weft::spawn(make_child(r()));
            if (r() % 2 == 0) h.cancel();
            record(co_await how_it_ends(
                       weft::wait_for(std::move(h), std::chrono::microseconds(r() % 2000))),
                   true, true);
            break;
          }
          case 3: {  // a parent awaiting a child, cancelled; shielded or not
            const bool shielded = r() % 2 == 0;
            auto parent = weft::spawn([](bool sh, std::uint32_t sd, auto mk) -> weft::task<int> {
              auto c = weft::spawn(mk(sd));
              std::exception_ptr cancelled;
              int v = 0;
              try {
                v = sh ? co_await weft::shield(c) : co_await c;
              } catch (const weft::cancelled_error&) {
                cancelled = std::current_exception();
              }
              if (cancelled) {
                if (sh) (void)co_await how_it_ends(c);  // still finishes normally or cancelled
                std::rethrow_exception(cancelled);
              }
              co_return v;
            }(shielded, static_cast<std::uint32_t>(r()), make_child));
            if (r() % 2 == 0) co_await weft::yield_now();
            parent.cancel();
            record(co_await how_it_ends(parent), false, true);
            break;
          }
          case 4: {  // wait with a timeout, then cancel the rest
            std::vector<weft::join_handle<int>> hs;
            for (int k = 0; k < 3; ++k)
              hs.push_back(weft::spawn(make_child(r())));
            auto [done, pending] = co_await weft::wait(std::move(hs), weft::first_completed,
                                                       std::chrono::microseconds(r() % 1500));
            co_await weft::cancel_all(pending);
            for (auto& h : done)
              record(result_of(h), false, false);
            for (auto& h : pending)
              record(result_of(h), false, true);
            break;
          }
          default: {  // a gather cancelled by a timeout
            std::vector<weft::task<int>> cs;
            for (int k = 0; k < 3; ++k)
              cs.push_back(make_child(r()));
            record(co_await how_it_ends(weft::timeout(std::chrono::microseconds(r() % 2000),
                                                      weft::gather(std::move(cs)))),
                   true, false);
            break;
          }
        }
      }
    };

    // A foreign thread spawns sleepers and cancels them at random moments meanwhile.
    std::atomic<bool> stop{false};
    std::atomic<std::size_t> foreign_rounds{0};
    std::thread foreign([&] {
      std::mt19937 r(4242);
      while (!stop.load()) {
        auto h = rt.spawn(child(static_cast<std::uint32_t>(r())));
        std::this_thread::sleep_for(std::chrono::microseconds(r() % 300));
        h.cancel();
        const ended e = rt.block_on(how_it_ends(h));
        if (e != ended::value && e != ended::cancelled) ++wrong;
        ++foreign_rounds;
      }
    });

    std::vector<weft::join_handle<void>> running;
    for (std::size_t d = 0; d < drivers; ++d) {
      running.push_back(rt.spawn(driver(state, static_cast<std::uint32_t>(d * 7919 + 1), child)));
    }
    for (auto& h : running)
      rt.block_on(how_it_ends(h));
    stop = true;
    foreign.join();
    for (auto& h : running)
      CHECK_FALSE(h.cancelled());

    std::size_t total = 0;
    for (auto& o : outcomes)
      total += o.load();
    MESSAGE("values " << outcomes[0].load() << ", cancelled " << outcomes[1].load()
                      << ", timed out " << outcomes[2].load() << ", foreign rounds "
                      << foreign_rounds.load());
    CHECK(wrong.load() == 0);
    CHECK(total >= ops);  // case 4 records three per operation
    weft::runtime_stats s{};
    for (int i = 0; i < 2000; ++i) {
      s = rt.stats();
      if (s.live_tasks == 0 && s.timers == 0) break;
      std::this_thread::sleep_for(1ms);
    }
    CHECK(s.live_tasks == 0);
    CHECK(s.timers == 0);
  }
}
