// tests/support/fifo_rig.hpp: the harness of the S4 FIFO stress tests (test_mutex, test_semaphore,
// test_queue, test_channel): FIFO among uncancelled waiters, checked while releases and
// cancellations come at once from workers and foreign threads.
//
// What can be checked without a race in the test itself. FIFO is an order over registrations, and
// a registration is not observable from outside: with several workers, a task seen to have
// "entered" may still be a few instructions before it links itself, and a later task may overtake
// it. So the waiters arrive on a runtime with ONE worker (`arrive_in_order`): waiter i+1 is spawned
// only after waiter i announced itself, and the single worker cannot run waiter i+1 before waiter i
// has suspended in its wait (or got through it), because a task runs until it suspends. The queue
// order is therefore the index order, exactly. Everything else (releases, hand-overs,
// cancellations) then happens concurrently from another runtime's workers and from foreign threads,
// and the waiters are woken across runtimes. Each test checks a property that does not depend on
// the order in which woken waiters happen to run:
//   mutex      holders log their index under the lock, so the log is the grant order: it must be
//              increasing, and contain every waiter whose cancellation was never requested;
//   semaphore  in quiescent moments between batches of releases and cancellations, every waiter
//              still waiting must come after every waiter holding a permit (granted = a prefix);
//   queue and channel getters: for each producer, whose items go out in its order, the getters
//              that received them must be in index order (a hand-off goes to the first getter).
// No sleeps: threads wait for each other through atomics (wait/notify) and joins only.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <weft/weft.hpp>

#include "support/foreign_thread.hpp"

namespace weft_test {

// A counter that waiters bump after every change a waiting thread may look for, so that a thread
// can wait for a condition over shared state without polling.
class progress {
 public:
  void bump() noexcept {
    count_.fetch_add(1);
    count_.notify_all();
  }
  // Blocks until pred() holds. Every change that can make it true must be followed by a bump().
  template <class Pred>
  void wait_until(Pred pred) {
    for (;;) {
      const std::uint64_t seen = count_.load();
      if (pred()) return;
      count_.wait(seen);
    }
  }

 private:
  std::atomic<std::uint64_t> count_{0};
};

// Bumps a progress counter when the waiter's coroutine leaves its scope, whichever way.
struct bump_on_exit {
  progress& p;
  ~bump_on_exit() { p.bump(); }
};

// Spawns make(i) on `waiters_rt` (a runtime with exactly one worker) for i = 0..n-1, each only
// once the previous waiter announced itself by incrementing `entered` (and notifying) right before
// its co_await. See the file comment for why the queue order is then the index order.
template <class Make>
std::vector<weft::join_handle<void>> arrive_in_order(weft::runtime& waiters_rt, std::size_t n,
                                                     std::atomic<std::size_t>& entered, Make make) {
  std::vector<weft::join_handle<void>> handles;
  handles.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    handles.push_back(waiters_rt.spawn(make(i)));
    for (std::size_t seen = entered.load(); seen < i + 1; seen = entered.load())
      entered.wait(seen);
  }
  return handles;
}

// The waiter's side of arrive_in_order: call right before the co_await of the wait.
inline void announce(std::atomic<std::size_t>& entered) noexcept {
  entered.fetch_add(1);
  entered.notify_all();
}

inline weft::task<> join_quietly(std::vector<weft::join_handle<void>> handles) {
  for (auto& h : handles) {
    try {
      co_await h;
    } catch (const weft::cancelled_error&) {
    }
  }
}

// Waits, on `rt`, until every task of `handles` finished (a cancelled one included). A stranded
// waiter hangs here, and the test's watchdog reports it.
inline void join_all(weft::runtime& rt, std::vector<weft::join_handle<void>> handles) {
  rt.block_on(join_quietly(std::move(handles)));
}

// Requests the cancellation of handles[id] for each id of `ids`, half from a task on `workers` and
// half from a foreign thread, both at once and at once with whatever else runs; `requested[id]` is
// set before each request. wait() returns when every request was made. The foreign half runs on a
// thread of its own, or on `on`, kept by a caller that storms many times.
class cancel_storm {
 public:
  cancel_storm(weft::runtime& workers, const std::vector<weft::join_handle<void>>& handles,
               std::vector<std::size_t> ids, std::vector<std::atomic<bool>>& requested,
               unsigned seed)
      : cancel_storm(workers, handles, std::move(ids), requested, seed, nullptr) {}
  cancel_storm(weft::runtime& workers, const std::vector<weft::join_handle<void>>& handles,
               std::vector<std::size_t> ids, std::vector<std::atomic<bool>>& requested,
               unsigned seed, foreign_thread& on)
      : cancel_storm(workers, handles, std::move(ids), requested, seed, &on) {}
  cancel_storm(const cancel_storm&) = delete;
  cancel_storm& operator=(const cancel_storm&) = delete;
  ~cancel_storm() { wait(); }

  void wait() {
    thread_->wait();
    if (task_.valid()) {
      std::vector<weft::join_handle<void>> one;
      one.push_back(std::move(task_));
      join_all(workers_, std::move(one));
    }
  }

 private:
  static weft::task<> cancel_from_task(const std::vector<weft::join_handle<void>>& handles,
                                       std::vector<std::size_t> ids,
                                       std::vector<std::atomic<bool>>& requested, unsigned seed) {
    std::mt19937 rng(seed ^ 0x5bd1e995u);
    for (std::size_t id : ids) {
      requested[id] = true;
      handles[id].cancel();
      if (rng() % 2 == 0) co_await weft::yield_now();
    }
  }

  cancel_storm(weft::runtime& workers, const std::vector<weft::join_handle<void>>& handles,
               std::vector<std::size_t> ids, std::vector<std::atomic<bool>>& requested,
               unsigned seed, foreign_thread* on)
      : workers_(workers), thread_(on != nullptr ? on : &own_.emplace()) {
    std::mt19937 rng(seed);
    std::shuffle(ids.begin(), ids.end(), rng);
    std::vector<std::size_t> from_task, from_thread;
    for (std::size_t k = 0; k < ids.size(); ++k)
      (k % 2 == 0 ? from_task : from_thread).push_back(ids[k]);
    task_ = workers.spawn(cancel_from_task(handles, std::move(from_task), requested, seed));
    thread_->start([&handles, &requested, ids = std::move(from_thread)] {
      for (std::size_t k = 0; k < ids.size(); ++k) {
        requested[ids[k]] = true;
        handles[ids[k]].cancel();
        if (k % 2 == 1) std::this_thread::yield();
      }
    });
  }

  weft::runtime& workers_;
  weft::join_handle<void> task_;
  std::optional<foreign_thread> own_;  // the thread of a storm not given one
  foreign_thread* thread_;
};

// Picks each index of 0..n-1 with probability 1/every.
inline std::vector<std::size_t> pick_some(std::size_t n, unsigned every, std::mt19937& rng) {
  std::vector<std::size_t> ids;
  for (std::size_t i = 0; i < n; ++i)
    if (rng() % every == 0) ids.push_back(i);
  return ids;
}

// --- The getters' FIFO of weft::queue and weft::channel
// -------------------------------------------

// What one round of getter_fifo_round saw.
struct getter_fifo_result {
  std::size_t received = 0;            // items that getters returned with
  std::size_t drained = 0;             // items left in the container at the end
  std::size_t cancel_requested = 0;    // getters whose cancellation was requested
  std::size_t ended_cancelled = 0;     // getters that threw cancelled_error
  std::size_t out_of_order = 0;        // FIFO violations: see below
  std::size_t lost_or_duplicated = 0;  // items not seen exactly once
  std::size_t unserved = 0;            // uncancelled getters that got nothing
  std::size_t refused_puts = 0;        // the foreign thread's puts that found the container full
};

inline int received_value(int v) { return v; }
inline int received_value(const std::optional<int>& v) { return v ? *v : -1; }

// One round: n getters queue in index order on `waiters_rt` (one worker) on an empty container;
// then two producer tasks on `others_rt` (co_await put) and a foreign thread (put without
// waiting) put n items in all, each producer its own increasing sequence, while a task and a
// foreign thread cancel a random quarter of the getters. Items are producer * n + sequence.
// A put with getters waiting hands its item to the first of them, so, for each producer, the
// getters that received its items must be in index order (out_of_order counts the pairs that are
// not); a getter cancelled after it was handed an item keeps it, which changes nothing to that.
// Every item must come out exactly once, from a getter or from the container at the end.
//
// Ops wraps the container: get() and put(v) return its awaiters, try_put(v) puts from any thread
// and says whether it did (the container is unbounded here: it must), take_now() takes an item if
// there is one.
template <class Ops>
getter_fifo_result getter_fifo_round(weft::runtime& waiters_rt, weft::runtime& others_rt,
                                     std::size_t n, unsigned seed, Ops& ops) {
  struct shared {
    explicit shared(std::size_t count) : got(count) {
      for (auto& g : got)
        g = -1;
    }
    std::atomic<std::size_t> entered{0};
    std::vector<std::atomic<int>> got;  // the item getter i returned with, or -1
    std::atomic<std::size_t> ended_cancelled{0};
  };
  struct coroutines {
    static weft::task<> getter(Ops& o, shared& sh, std::size_t id) {
      try {
        announce(sh.entered);
        sh.got[id] = received_value(co_await o.get());
      } catch (const weft::cancelled_error&) {
        ++sh.ended_cancelled;
      }
    }
    static weft::task<> producer(Ops& o, std::vector<int> items, unsigned seed) {
      std::mt19937 rng(seed);
      for (int v : items) {
        co_await o.put(v);
        if (rng() % 2 == 0) co_await weft::yield_now();
      }
    }
  };
  std::mt19937 rng(seed);
  getter_fifo_result res;
  shared sh(n);
  std::vector<std::atomic<bool>> requested(n);
  std::vector<std::vector<int>> items(3);
  for (std::size_t k = 0; k < n; ++k)
    items[k % 3].push_back(static_cast<int>((k % 3) * n + k / 3));
  auto handles = arrive_in_order(waiters_rt, n, sh.entered,
                                 [&](std::size_t i) { return coroutines::getter(ops, sh, i); });
  {
    cancel_storm storm(others_rt, handles, pick_some(n, 4, rng), requested, seed);
    std::vector<weft::join_handle<void>> producers;
    producers.push_back(others_rt.spawn(coroutines::producer(ops, items[0], seed + 1)));
    producers.push_back(others_rt.spawn(coroutines::producer(ops, items[1], seed + 2)));
    std::thread foreign([&ops, &items, &res] {
      for (int v : items[2])
        res.refused_puts += ops.try_put(v) ? 0 : 1;
    });
    foreign.join();
    join_all(others_rt, std::move(producers));
    storm.wait();
  }
  join_all(waiters_rt, std::move(handles));  // 0 stranded: n items for at most n getters
  std::vector<int> seen(3 * n);
  std::vector<long> last_seq(3, -1);
  for (std::size_t i = 0; i < n; ++i) {
    const int v = sh.got[i].load();
    if (requested[i]) ++res.cancel_requested;
    if (v < 0) {
      if (!requested[i]) ++res.unserved;
      continue;
    }
    ++res.received;
    ++seen[static_cast<std::size_t>(v)];
    const std::size_t p = static_cast<std::size_t>(v) / n;
    const long seq = static_cast<long>(static_cast<std::size_t>(v) % n);
    if (seq <= last_seq[p]) ++res.out_of_order;
    last_seq[p] = seq;
  }
  while (auto v = ops.take_now()) {
    ++res.drained;
    ++seen[static_cast<std::size_t>(*v)];
  }
  for (std::size_t p = 0; p < 3; ++p)
    for (int v : items[p])
      res.lost_or_duplicated += seen[static_cast<std::size_t>(v)] == 1 ? 0 : 1;
  res.ended_cancelled = sh.ended_cancelled.load();
  return res;
}

// The one-line summary of getter_fifo_round totals, for stress_summary.
inline std::string describe(const getter_fifo_result& total, std::size_t rounds, std::size_t n,
                            long long ms) {
  return std::to_string(rounds) + " rounds x " + std::to_string(n) + " getters: received " +
         std::to_string(total.received) + ", left over " + std::to_string(total.drained) +
         ", cancellations requested " + std::to_string(total.cancel_requested) +
         ", ended cancelled " + std::to_string(total.ended_cancelled) + ", " + std::to_string(ms) +
         " ms";
}

// `rounds` rounds of getter_fifo_round with n getters each, each on the container of a fresh
// make_ops() (an Ops that owns an empty unbounded container: puts never wait, and getters wait on
// it), checked round by round; returns the summary line of all of them. `seed` varies the rounds
// from one test to another.
template <class MakeOps>
std::string getter_fifo_rounds(std::size_t rounds, std::size_t n, unsigned seed, MakeOps make_ops) {
  weft::runtime waiters_rt({.worker_threads = 1});
  weft::runtime others_rt({.worker_threads = 2});
  REQUIRE(waiters_rt.worker_count() == 1);
  getter_fifo_result total;
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t round = 0; round < rounds; ++round) {
    auto ops = make_ops();
    const auto r =
        getter_fifo_round(waiters_rt, others_rt, n, static_cast<unsigned>(round) + seed, ops);
    CHECK(r.out_of_order == 0);
    CHECK(r.lost_or_duplicated == 0);
    CHECK(r.unserved == 0);
    CHECK(r.refused_puts == 0);
    CHECK(r.received + r.drained == n);
    CHECK(r.received + r.ended_cancelled == n);
    total.received += r.received;
    total.drained += r.drained;
    total.cancel_requested += r.cancel_requested;
    total.ended_cancelled += r.ended_cancelled;
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  return describe(total, rounds, n, ms);
}

}  // namespace weft_test
