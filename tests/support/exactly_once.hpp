// tests/support/exactly_once.hpp: the driver of the S4 exactly-once stress tests of weft::queue and
// weft::channel (reliability.md S4). Each round: 6 producer tasks and 4 consumer tasks on a
// runtime of 3 workers, and a foreign thread that puts the last range of items and takes items,
// both without waiting. Consumers are cancelled (and replaced) at random all the time the producers
// run, and a few producers are cancelled (at most 3 a round, so that items keep flowing), each at
// its put. After the round, what is left is drained and the ledger (support/ledger.hpp) must find
// no item lost, duplicated or made up, and as many taken as put.
//
// Rig wraps one container for one round:
//   bool put_now(int v)             puts without waiting from any thread; false when full
//   bool take_now(ledger& l)        takes an item without waiting and records it in l (a queue
//                                   also marks it done); false when empty
//   weft::task<> producer(ledger& l, int first, int count)
//                                   puts first..first+count-1, recording each once it is put; a
//                                   cancellation at a put ends it
//   weft::task<> consumer(ledger& l)
//                                   takes and records items until it is cancelled
//   void drain(ledger& l)           after the round: takes what is left, recording it
//   void check_settled()            after the round: the container's own checks
#pragma once

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "support/ledger.hpp"
#include "support/outcomes.hpp"
#include "support/stress.hpp"

namespace weft_test {

// What the rounds of exactly_once_rounds did in all.
struct exactly_once_totals {
  std::size_t put = 0;          // items put, by tasks and by the foreign thread
  std::size_t taken = 0;        // items taken, duplicates included
  std::size_t foreign_ops = 0;  // the foreign thread's puts and takes that succeeded
  std::size_t consumers_cancelled = 0;
  std::size_t producers_cancelled = 0;
  long long ms = 0;
};

// How a test names its items, producers and consumers in the summary line.
struct exactly_once_words {
  const char* put;        // "items put"
  const char* taken;      // "taken"
  const char* consumers;  // "consumers"
  const char* producers;  // "producers"
};

inline std::string describe(const exactly_once_totals& t, std::size_t rounds,
                            const exactly_once_words& w) {
  return std::to_string(rounds) + " rounds: " + w.put + " " + std::to_string(t.put) + ", " +
         w.taken + " " + std::to_string(t.taken) + " (foreign thread operations " +
         std::to_string(t.foreign_ops) + "), cancellations " +
         std::to_string(t.consumers_cancelled) + " " + w.consumers + " and " +
         std::to_string(t.producers_cancelled) + " " + w.producers + ", " + std::to_string(t.ms) +
         " ms";
}

namespace detail {

inline bool all_done(const std::vector<weft::join_handle<void>>& hs) {
  for (const auto& h : hs)
    if (!h.done()) return false;
  return true;
}

struct exactly_once_cancels {
  std::size_t consumers = 0, producers = 0;
};

inline constexpr int exactly_once_producers = 6;

template <class Rig>
weft::task<> exactly_once_tasks(Rig& rig, ledger& l, int per, unsigned seed,
                                exactly_once_cancels& c) {
  std::mt19937 rng(seed);
  std::vector<weft::join_handle<void>> prods;
  for (int p = 0; p < exactly_once_producers; ++p)
    prods.push_back(weft::spawn(rig.producer(l, p * per, per)));
  std::vector<weft::join_handle<void>> cons;
  for (int k = 0; k < 4; ++k)
    cons.push_back(weft::spawn(rig.consumer(l)));
  // Cancel random consumers (and replace them) until every producer has finished, and cancel a
  // producer now and then (at most 3 a round, so that items keep flowing).
  for (std::size_t k = 0; !all_done(prods); ++k) {
    co_await weft::yield_now();
    const std::size_t i = rng() % cons.size();
    cons[i].cancel();
    CHECK(co_await how_it_ends(cons[i]) == ended::cancelled);
    ++c.consumers;
    cons[i] = weft::spawn(rig.consumer(l));
    if (k % 20 == 5 && c.producers < 3) {
      auto& p = prods[rng() % prods.size()];
      if (!p.done()) {
        p.cancel();
        ++c.producers;
      }
    }
  }
  for (auto& p : prods)
    (void)co_await how_it_ends(p);
  co_await weft::cancel_all(cons);
}

}  // namespace detail

// The Rig of a container adapter Ops (queue_ops, channel_ops: support/handoff_cancellation.hpp
// says what every adapter offers), which also provides, for this driver:
//   void mark_done()       after an item was taken and recorded (a queue's task_done)
//   void end_puts()        after the round, before the drain (a channel's close)
//   void check_settled()   after the round: the container's own checks
// Producers yield after every item that is a multiple of `yield_every`.
template <class Ops>
struct ops_rig {
  Ops ops;
  int yield_every;
  ops_rig(std::size_t bound, int yield_every_nth) : ops(bound), yield_every(yield_every_nth) {}

  bool put_now(int v) { return ops.try_put(v); }
  bool take_now(ledger& l) {
    const std::optional<int> i = ops.take_now();
    if (!i) return false;
    l.received(*i);
    ops.mark_done();
    return true;
  }
  weft::task<> producer(ledger& l, int first, int count) {
    return produce(ops, l, first, count, yield_every);
  }
  weft::task<> consumer(ledger& l) { return consume(ops, l); }
  void drain(ledger& l) {
    ops.end_puts();
    while (take_now(l)) {
    }
  }
  void check_settled() { ops.check_settled(); }

 private:
  static weft::task<> produce(Ops& ops, ledger& l, int first, int count, int yield_every) {
    for (int i = first; i < first + count; ++i) {
      co_await ops.put(i);  // a cancellation here means i was not put: the task ends
      l.sent(i);
      if (i % yield_every == 0) co_await weft::yield_now();
    }
  }
  // Until cancelled, or until the container's get() ends the stream (a closed channel's nullopt).
  static weft::task<> consume(Ops& ops, ledger& l) {
    for (;;) {
      const std::optional<int> i = co_await ops.get();
      if (!i) co_return;
      l.received(*i);  // no cancellation point in between
      ops.mark_done();
    }
  }
};

// Runs `rounds` rounds, each on a fresh container make_rig(round) and a fresh runtime, and checks
// each round. `seed` varies the tasks' random choices from one test to another.
template <class MakeRig>
exactly_once_totals exactly_once_rounds(std::size_t rounds, unsigned seed, MakeRig make_rig) {
  constexpr int producers = detail::exactly_once_producers;
  exactly_once_totals totals;
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t round = 0; round < rounds; ++round) {
    const int per_producer = static_cast<int>(stress_count(500, 5000));
    const int foreign_count = per_producer;
    const std::size_t total = static_cast<std::size_t>(producers * per_producer + foreign_count);
    ledger l(total);
    auto rig = make_rig(round);
    weft::runtime rt({.worker_threads = 3});

    // The foreign thread puts the last range and takes, both without waiting.
    std::atomic<bool> stop_foreign{false};
    std::size_t foreign_done = 0;  // operations that succeeded; read after the join
    std::thread foreign([&] {
      int next = producers * per_producer;
      std::mt19937 rng(static_cast<unsigned>(round));
      while (!stop_foreign.load()) {
        if (next < static_cast<int>(total) && rng() % 2 == 0) {
          if (rig.put_now(next)) {
            l.sent(next);
            ++next;
            ++foreign_done;
          }
        } else if (rig.take_now(l)) {
          ++foreign_done;
        }
        if (next >= static_cast<int>(total)) std::this_thread::yield();
      }
    });

    detail::exactly_once_cancels cancelled;
    rt.block_on(detail::exactly_once_tasks(rig, l, per_producer,
                                           static_cast<unsigned>(round) + seed, cancelled));
    stop_foreign = true;
    foreign.join();
    rig.drain(l);
    const auto t = l.count();
    CHECK(t.lost == 0);
    CHECK(t.duplicated == 0);
    CHECK(t.phantom == 0);
    CHECK(t.received == t.sent);  // count conservation
    rig.check_settled();
    CHECK(t.sent > 0);
    totals.put += t.sent;
    totals.taken += t.received;
    totals.foreign_ops += foreign_done;
    totals.consumers_cancelled += cancelled.consumers;
    totals.producers_cancelled += cancelled.producers;
  }
  totals.ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - start)
                  .count();
  return totals;
}

}  // namespace weft_test
