// tests/test_barrier.cpp: weft::barrier (asyncio.Barrier): arrival indices, cyclic reuse, the
// completion function (once per round, before the release, never overlapping), reset and abort,
// and cancellation in every waiter state: before it arrives, while the barrier fills, after its
// round completed. Stress: many tasks over many rounds with random cancellations release only
// full rounds and strand no waiter.
//
// Deterministic tests use one worker: "entered == k" after a yield means the k-th task queued.
#include <doctest/doctest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "support/stress.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

weft::task<std::size_t> arrive(weft::barrier& b, std::atomic<int>& entered) {
  ++entered;
  co_return co_await b.wait();
}

weft::task<> until(std::atomic<int>& counter, int k) {
  while (counter.load() < k)
    co_await weft::yield_now();
}

// Spawns `n` tasks that arrive at `b` one after the other (each queued before the next starts).
weft::task<std::vector<weft::join_handle<std::size_t>>> queue_up(weft::barrier& b,
                                                                 std::atomic<int>& entered, int n) {
  std::vector<weft::join_handle<std::size_t>> hs;
  for (int i = 0; i < n; ++i) {
    const int before = entered.load();
    hs.push_back(weft::spawn(arrive(b, entered)));
    co_await until(entered, before + 1);
  }
  co_return hs;
}

// One full round of `b`: parties - 1 spawned tasks queue, then this task arrives last. True if
// the indices came out 0, 1, ..., parties - 1 in arrival order.
weft::task<bool> full_round(weft::barrier& b, std::atomic<int>& entered) {
  auto hs = co_await queue_up(b, entered, static_cast<int>(b.parties()) - 1);
  bool ok = co_await b.wait() == b.parties() - 1;
  for (std::size_t i = 0; i < hs.size(); ++i) {
    const std::size_t index = co_await hs[i];
    ok = ok && index == i;
  }
  co_return ok;
}

// Awaits every task of `hs`: how many threw broken_barrier with `word` in the message.
weft::task<std::size_t> broken_with(std::vector<weft::join_handle<std::size_t>>& hs,
                                    const char* word) {
  std::size_t n = 0;
  for (auto& h : hs) {
    try {
      co_await h;
    } catch (const weft::broken_barrier& e) {
      if (std::string(e.what()).find(word) != std::string::npos) ++n;
    }
  }
  co_return n;
}

// Runs `body(b, entered)` as the main task on one worker, with a fresh barrier of `parties`.
template <class Body>
void on_one_worker(std::size_t parties, Body body) {
  auto main_task = [&]() -> weft::task<> {
    weft::barrier b(parties);
    std::atomic<int> entered{0};
    co_await body(b, entered);
  };
  weft::run(main_task(), {.worker_threads = 1});
}

// Spawns `n` tasks made by `make()` on two workers and waits for them all.
template <class Make>
void in_lockstep(int n, Make make) {
  auto main_task = [&]() -> weft::task<> {
    std::vector<weft::join_handle<void>> hs;
    for (int i = 0; i < n; ++i)
      hs.push_back(weft::spawn(make()));
    for (auto& h : hs)
      co_await h;
  };
  weft::run(main_task(), {.worker_threads = 2});
}

}  // namespace

TEST_CASE(
    "barrier: each party gets its arrival index and the last arriver gets parties minus one") {
  weft_test::watchdog dog(10s);
  on_one_worker(3, [](weft::barrier& b, std::atomic<int>& entered) -> weft::task<> {
    CHECK(b.parties() == 3);
    auto hs = co_await queue_up(b, entered, 2);
    CHECK(b.n_waiting() == 2);
    CHECK(co_await b.wait() == 2);  // completes the round without suspending
    CHECK(b.n_waiting() == 0);
    CHECK(co_await hs[0] == 0);
    CHECK(co_await hs[1] == 1);
  });
}

TEST_CASE("barrier: a barrier of one party never suspends and runs its completion every time") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    int completions = 0;
    weft::barrier b(1, [&] { ++completions; });
    for (int i = 0; i < 5; ++i)
      CHECK(co_await b.wait() == 0);
    CHECK(completions == 5);
  };
  weft::run(main_task(), {.worker_threads = 1});
  CHECK_THROWS_AS(weft::barrier(0), std::invalid_argument);
}

TEST_CASE("barrier: the barrier is cyclic and no round releases before all its parties arrive") {
  weft_test::watchdog dog(30s);
  constexpr int parties = 4;
  constexpr std::size_t rounds = 300;
  std::vector<std::atomic<int>> arrived(rounds);
  std::vector<std::atomic<unsigned>> indices(rounds);
  std::atomic<int> failures{0};
  weft::barrier b(parties);
  auto member = [&]() -> weft::task<> {
    for (std::size_t r = 0; r < rounds; ++r) {
      ++arrived[r];
      const std::size_t index = co_await b.wait();
      if (arrived[r].load() != parties) ++failures;  // released before the round was full
      indices[r].fetch_or(1U << index);
    }
  };
  in_lockstep(parties, member);
  CHECK(failures.load() == 0);
  int complete_rounds = 0;
  for (auto& mask : indices)
    complete_rounds += mask.load() == 0b1111U ? 1 : 0;  // indices 0..3, each once
  CHECK(complete_rounds == rounds);
  CHECK(b.n_waiting() == 0);
}

TEST_CASE("barrier: the completion function runs once per round before any party is released") {
  weft_test::watchdog dog(30s);
  constexpr int parties = 3;
  constexpr std::size_t rounds = 200;
  std::atomic<std::size_t> completions{0};
  std::atomic<std::size_t> returned{0};
  std::atomic<int> failures{0};
  weft::barrier b(parties, [&] {
    // Every party of the rounds before this one may have returned, none of this round's.
    if (returned.load() > completions.load() * parties) ++failures;
    ++completions;
  });
  auto member = [&]() -> weft::task<> {
    for (std::size_t r = 0; r < rounds; ++r) {
      co_await b.wait();
      if (completions.load() != r + 1) ++failures;  // lockstep: this round's completion ran
      ++returned;
    }
  };
  in_lockstep(parties, member);
  CHECK(failures.load() == 0);
  CHECK(completions.load() == rounds);
}

TEST_CASE("barrier: a round that fills while the completion runs waits for it and runs its own") {
  weft_test::watchdog dog(30s);
  std::atomic<int> calls{0};
  std::atomic<bool> running{false};
  std::atomic<bool> overlapped{false};
  std::atomic<bool> next_round_queued{false};
  weft::barrier* self = nullptr;
  weft::barrier b(2, [&] {
    if (running.exchange(true)) overlapped = true;
    if (++calls == 1) {
      // Hold the first completion (and its worker) until both tasks of the next round queued.
      const auto give_up = std::chrono::steady_clock::now() + 5s;
      while (self->n_waiting() < 2 && std::chrono::steady_clock::now() < give_up)
        std::this_thread::yield();
      next_round_queued = self->n_waiting() == 2;
    }
    running = false;
  });
  self = &b;
  // Spawned from this (foreign) thread, through the injection queue, so that the worker that is
  // not busy with the completion picks them up.
  weft::runtime rt({.worker_threads = 2});
  std::atomic<int> entered{0};
  auto spawn_queued = [&](std::size_t waiting_after) {
    auto h = rt.spawn(arrive(b, entered));
    while (b.n_waiting() < waiting_after)
      std::this_thread::yield();
    return h;
  };
  auto join = [&](weft::join_handle<std::size_t>& h) {
    return rt.block_on([&]() -> weft::task<std::size_t> { co_return co_await h; }());
  };
  auto first = spawn_queued(1);
  auto releaser = rt.spawn(arrive(b, entered));  // completes round 1, runs the completion
  while (calls.load() < 1)
    std::this_thread::yield();
  auto second_0 = spawn_queued(1);
  auto second_1 = rt.spawn(arrive(b, entered));  // the completion sees it queue and returns
  CHECK(join(first) == 0);
  CHECK(join(releaser) == 1);
  CHECK(join(second_0) == 0);
  CHECK(join(second_1) == 1);  // the last arriver of round 2, handed its completion
  CHECK(next_round_queued.load());
  CHECK(calls.load() == 2);
  CHECK_FALSE(overlapped.load());
}

TEST_CASE("barrier: a throwing completion function breaks the barrier and reset repairs it") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    int calls = 0;
    weft::barrier b(2, [&] {
      if (++calls == 1) throw std::runtime_error("completion failed");
    });
    std::atomic<int> entered{0};
    auto hs = co_await queue_up(b, entered, 1);
    CHECK_THROWS_WITH_AS(co_await b.wait(), "completion failed", std::runtime_error);
    CHECK(co_await broken_with(hs, "completion function threw") == 1);
    CHECK(b.broken());
    CHECK_THROWS_AS(co_await b.wait(), weft::broken_barrier);  // at once, without suspending
    b.reset();
    CHECK_FALSE(b.broken());
    CHECK(co_await full_round(b, entered));
    CHECK(calls == 2);
  };
  weft::run(main_task(), {.worker_threads = 1});
}

TEST_CASE("barrier: abort breaks the waiting tasks and every wait until reset") {
  weft_test::watchdog dog(10s);
  on_one_worker(3, [](weft::barrier& b, std::atomic<int>& entered) -> weft::task<> {
    auto hs = co_await queue_up(b, entered, 2);
    b.abort();
    CHECK(b.broken());
    CHECK(b.n_waiting() == 0);
    CHECK(co_await broken_with(hs, "abort()") == 2);
    CHECK_THROWS_AS(co_await b.wait(), weft::broken_barrier);
    b.reset();
    CHECK(co_await full_round(b, entered));
  });
}

TEST_CASE(
    "barrier: reset wakes the waiting tasks with broken_barrier and the barrier fills again") {
  weft_test::watchdog dog(10s);
  on_one_worker(3, [](weft::barrier& b, std::atomic<int>& entered) -> weft::task<> {
    auto hs = co_await queue_up(b, entered, 2);
    b.reset();
    CHECK_FALSE(b.broken());
    CHECK(b.n_waiting() == 0);
    CHECK(co_await broken_with(hs, "reset") == 2);
    CHECK(co_await full_round(b, entered));  // a fresh round: indices start at 0 again
  });
}

TEST_CASE("barrier: abort from a foreign thread wakes the waiting tasks") {
  weft_test::watchdog dog(10s);
  weft::barrier b(2);
  weft::runtime rt({.worker_threads = 2});
  auto h = rt.spawn([&b]() -> weft::task<std::size_t> { co_return co_await b.wait(); });
  std::thread([&b] {
    while (b.n_waiting() < 1)
      std::this_thread::yield();
    b.abort();
  }).join();
  CHECK_THROWS_AS(rt.block_on([&]() -> weft::task<std::size_t> { co_return co_await h; }()),
                  weft::broken_barrier);
}

TEST_CASE("barrier: a task cancelled before it arrives is not counted") {
  weft_test::watchdog dog(10s);
  on_one_worker(2, [](weft::barrier& b, std::atomic<int>& entered) -> weft::task<> {
    auto h = weft::spawn(arrive(b, entered));
    h.cancel();  // pending before the task first runs (one worker)
    CHECK_THROWS_AS(co_await h, weft::cancelled_error);
    CHECK(b.n_waiting() == 0);
    CHECK(co_await full_round(b, entered));
  });
}

TEST_CASE(
    "barrier: a waiter cancelled while the barrier fills leaves and the others keep waiting") {
  weft_test::watchdog dog(10s);
  on_one_worker(3, [](weft::barrier& b, std::atomic<int>& entered) -> weft::task<> {
    auto hs = co_await queue_up(b, entered, 2);
    hs[0].cancel();
    CHECK_THROWS_AS(co_await hs[0], weft::cancelled_error);
    CHECK(b.n_waiting() == 1);
    auto late = co_await queue_up(b, entered, 1);  // two waiting again: not released yet
    CHECK(b.n_waiting() == 2);
    CHECK_FALSE(hs[1].done());
    CHECK(co_await b.wait() == 2);
    CHECK(co_await hs[1] == 0);  // moved up when the first one left
    CHECK(co_await late[0] == 1);
  });
}

TEST_CASE("barrier: a waiter cancelled after its round completed throws and the round stands") {
  weft_test::watchdog dog(10s);
  on_one_worker(3, [](weft::barrier& b, std::atomic<int>& entered) -> weft::task<> {
    auto hs = co_await queue_up(b, entered, 2);
    CHECK(co_await b.wait() == 2);  // both are woken but cannot run before this task suspends
    hs[0].cancel();
    CHECK_THROWS_AS(co_await hs[0], weft::cancelled_error);
    CHECK(co_await hs[1] == 1);
    CHECK(b.n_waiting() == 0);  // nothing left behind: the next round starts empty
    CHECK(co_await full_round(b, entered));
  });
}

namespace {

// Many tasks, each arriving `waits` times, at a barrier of `parties`, on two workers, while the
// main task cancels tasks at random. Each cancellation lands anywhere: before an arrival, while
// queued, after the release. At the end every task has finished or waits in a round that cannot
// fill; that round is aborted. Checks: completions never overlap; a completion always finds at
// least `parties` tasks inside wait() (its round's); the arrivals that counted, parties per
// completed round, lie between the normal returns and the normal returns plus the cancellations;
// no index repeats within a round more often than rounds were completed.
void stress_barrier(bool with_completion) {
  const std::size_t tasks = weft_test::stress_count(16, 64);
  const std::size_t waits = weft_test::stress_count(400, 2000);
  constexpr std::size_t parties = 4;
  weft_test::watchdog dog(weft_test::stress_scaled_up() ? 900s : 120s);
  std::atomic<std::size_t> inside{0};  // tasks between arriving and returning from wait()
  std::atomic<std::size_t> completions{0};
  std::atomic<bool> completing{false};
  std::atomic<int> failures{0};
  std::function<void()> completion;
  if (with_completion) {
    completion = [&] {
      if (completing.exchange(true)) ++failures;  // two completions at once
      if (inside.load() < parties) ++failures;    // a round released without its parties
      ++completions;
      completing = false;
    };
  }
  weft::barrier b(parties, completion);
  std::atomic<std::size_t> returned{0};
  std::atomic<std::size_t> cancelled{0};
  std::atomic<std::size_t> broken{0};
  std::atomic<std::size_t> finished{0};
  std::array<std::atomic<std::size_t>, parties> by_index{};
  auto member = [&](std::size_t id) -> weft::task<> {
    std::mt19937 rng(static_cast<unsigned>(id));
    for (std::size_t i = 0; i < waits; ++i) {
      try {
        if (rng() % 4 == 0) co_await weft::yield_now();
        ++inside;
        std::size_t index = 0;
        try {
          index = co_await b.wait();
        } catch (...) {
          --inside;
          throw;
        }
        --inside;
        if (index < parties) {
          ++by_index[index];
        } else {
          ++failures;
        }
        ++returned;
      } catch (const weft::cancelled_error&) {
        ++cancelled;
      } catch (const weft::broken_barrier&) {
        ++broken;
        break;
      }
    }
    ++finished;
  };
  std::size_t left_waiting = 0;
  auto main_task = [&]() -> weft::task<> {
    std::vector<weft::join_handle<void>> hs;
    for (std::size_t i = 0; i < tasks; ++i)
      hs.push_back(weft::spawn(member(i)));
    std::mt19937 rng(11);
    int quiet = 0;
    // Until every task has finished or waits, queued, for a round that cannot fill (seen three
    // times in a row: a task that is woken or about to queue is inside but not counted by
    // n_waiting, so a stranded waiter keeps this loop going until the watchdog fires).
    while (quiet < 3) {
      if (rng() % 2 == 0) hs[rng() % hs.size()].cancel();
      co_await weft::yield_now();
      const std::size_t done = finished.load();
      const std::size_t in = inside.load();
      const std::size_t queued = b.n_waiting();
      const bool settled = done + in == tasks && queued == in && inside.load() == in;
      quiet = settled ? quiet + 1 : 0;
    }
    left_waiting = b.n_waiting();
    b.abort();
    for (auto& h : hs)
      co_await h;
  };
  weft::runtime rt({.worker_threads = 2});
  rt.block_on(main_task());
  CHECK(failures.load() == 0);
  CHECK(left_waiting < parties);  // a full round was never left in the queue
  CHECK(broken.load() == left_waiting);
  CHECK(finished.load() == tasks);
  if (with_completion) {
    const std::size_t counted = completions.load() * parties;
    CHECK(returned.load() <= counted);
    CHECK(counted <= returned.load() + cancelled.load());
    for (auto& n : by_index)
      CHECK(n.load() <= completions.load());
  }
  MESSAGE("returned ", returned.load(), ", cancelled ", cancelled.load(), ", rounds ",
          completions.load(), ", left waiting ", left_waiting);
}

}  // namespace

TEST_SUITE("stress") {
  TEST_CASE("barrier: stress with random cancels releases only full rounds and strands no waiter") {
    stress_barrier(/*with_completion=*/true);
  }

  TEST_CASE("barrier: stress without a completion function strands no waiter") {
    stress_barrier(/*with_completion=*/false);
  }
}  // TEST_SUITE("stress")
