// tests/test_channel.cpp: weft::channel (patterns.md row 16, reliability.md rule 3 and S4): FIFO,
// bounded send waits, try_send and try_receive, close (senders throw, receivers drain then get
// std::nullopt, waiters are released), cancellation of a sender and a receiver before it queues,
// while queued and after it was granted, and stress with many senders and receivers, a foreign
// thread and random cancellations: every value received exactly once.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "support/exactly_once.hpp"  // also detail::all_done
#include "support/fifo_rig.hpp"
#include "support/handoff_cancellation.hpp"
#include "support/ledger.hpp"
#include "support/outcomes.hpp"
#include "support/stress.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

using weft_test::ended;
using weft_test::how_it_ends;
using weft_test::let_others_wait;
using weft_test::one_worker;

weft::task<std::optional<int>> receive_one(weft::channel<int>& ch) {
  co_return co_await ch.receive();
}
weft::task<> send_one(weft::channel<int>& ch, int v) { co_await ch.send(v); }

// The channel's adapter for the scenarios and drivers it shares with the queue
// (support/fifo_rig.hpp, support/handoff_cancellation.hpp, support/exactly_once.hpp).
struct channel_ops {
  weft::channel<int> ch;
  explicit channel_ops(std::size_t capacity = 0) : ch(capacity) {}
  auto get() { return ch.receive(); }
  auto put(int v) { return ch.send(v); }
  bool try_put(int v) { return ch.try_send(v); }
  std::optional<int> take_now() { return ch.try_receive(); }
  std::size_t size() { return ch.size(); }
  // For support/exactly_once.hpp (ops_rig):
  void mark_done() {}
  void end_puts() { ch.close(); }  // receivers then end with nullopt
  void check_settled() {}
};

// The same on a bounded channel (capacity 4 where the scenario asks for an unbounded one), so that
// the shared scenarios also run on the bounded core's lock-free ring and its fast path
// (detail/channel_core.hpp).
struct bounded_channel_ops : channel_ops {
  explicit bounded_channel_ops(std::size_t capacity = 0)
      : channel_ops(capacity == 0 ? 4 : capacity) {}
};

weft::task<> collect(weft::channel<long>& ch, std::vector<long>& got) {
  while (auto v = co_await ch.receive())
    got.push_back(*v);  // no cancellation point between the receive and the record
}

// Sends (id << 32 | seq) for seq = 0, 1, ... count - 1 and counts in `sent` the sends that
// returned; stops at channel_closed (or at a cancellation: that send sent nothing).
weft::task<> send_numbered(weft::channel<long>& ch, long id, long count, std::atomic<long>& sent) {
  for (long seq = 0; seq < count; ++seq) {
    try {
      co_await ch.send(id << 32 | seq);
    } catch (const weft::channel_closed&) {
      co_return;
    }
    sent.store(seq + 1, std::memory_order_relaxed);
    if (seq % 7 == 0) co_await weft::yield_now();
  }
}

// One round of the order stress below; returns the number of values received.
std::size_t ordered_round(std::size_t round, long per_sender) {
  constexpr long task_senders = 4;
  constexpr long senders = task_senders + 1;  // the last one is a foreign thread (try_send)
  static constexpr std::size_t capacities[] = {1, 2, 8};
  weft::channel<long> ch(capacities[round % 3]);
  std::vector<std::atomic<long>> sent(senders);
  std::deque<std::vector<long>> logs;  // one per receiver; deque: references stay valid
  std::vector<long>& foreign_log = logs.emplace_back();
  const bool close_early = round % 2 == 1;
  std::mt19937 rng(static_cast<unsigned>(round) * 7919U + 1);

  // A foreign thread sends without waiting and another receives without waiting until the channel
  // is closed and empty (closed() read before an empty try_receive: nothing can come after).
  std::thread foreign_sender([&] {
    for (long seq = 0; seq < per_sender;) {
      try {
        if (ch.try_send((senders - 1) << 32 | seq)) sent[senders - 1].store(++seq);
      } catch (const weft::channel_closed&) {
        return;
      }
      if (seq % 64 == 0) std::this_thread::yield();
    }
  });
  std::thread foreign_receiver([&] {
    for (;;) {
      const bool was_closed = ch.closed();
      if (auto v = ch.try_receive()) {
        foreign_log.push_back(*v);
      } else if (was_closed) {
        return;
      } else {
        std::this_thread::yield();
      }
    }
  });

  weft::run(
      [&]() -> weft::task<> {
        std::vector<weft::join_handle<void>> producers;
        for (long id = 0; id < task_senders; ++id)
          producers.push_back(weft::spawn(send_numbered(ch, id, per_sender, sent[id])));
        std::vector<weft::join_handle<void>> receivers;
        for (int k = 0; k < 3; ++k)
          receivers.push_back(weft::spawn(collect(ch, logs.emplace_back())));
        // Cancel random receivers (and replace them) while values flow, a sender now and then,
        // and, in odd rounds, close the channel while senders are still sending.
        for (std::size_t k = 0; !weft_test::detail::all_done(producers); ++k) {
          co_await weft::yield_now();
          auto& r = receivers[rng() % receivers.size()];
          r.cancel();
          (void)co_await how_it_ends(r);
          r = weft::spawn(collect(ch, logs.emplace_back()));
          if (k % 50 == 17) producers[rng() % producers.size()].cancel();
          if (close_early && k == 30) ch.close();
        }
        ch.close();
        for (auto& r : receivers)
          (void)co_await how_it_ends(r);
      }(),
      {.worker_threads = 3});
  foreign_sender.join();
  foreign_receiver.join();

  // Every value sent was received exactly once, nothing else was received, and each receiver saw
  // each sender's values in the order they were sent.
  std::vector<std::vector<int>> seen(senders,
                                     std::vector<int>(static_cast<std::size_t>(per_sender)));
  std::size_t received = 0;
  bool in_order = true;
  for (const auto& log : logs) {
    std::vector<long> last(senders, -1);
    for (const long v : log) {
      const long id = v >> 32;
      const long seq = v & 0xffffffffL;
      REQUIRE(id >= 0);
      REQUIRE(id < senders);
      REQUIRE(seq < sent[static_cast<std::size_t>(id)].load());  // was sent
      ++seen[static_cast<std::size_t>(id)][static_cast<std::size_t>(seq)];
      in_order = in_order && seq > last[static_cast<std::size_t>(id)];
      last[static_cast<std::size_t>(id)] = seq;
      ++received;
    }
  }
  CHECK(in_order);
  for (long id = 0; id < senders; ++id) {
    const long n = sent[static_cast<std::size_t>(id)].load();
    for (long seq = 0; seq < n; ++seq) {
      const int times = seen[static_cast<std::size_t>(id)][static_cast<std::size_t>(seq)];
      if (times != 1) {
        FAIL_CHECK("sender " << id << " value " << seq << " received " << times << " times");
        break;
      }
    }
  }
  return received;
}

}  // namespace

TEST_CASE("channel: values arrive in order and receive ends with nullopt after close") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        weft::channel<std::string> ch(4);
        auto producer = weft::spawn(
            [](weft::channel<std::string>& c) -> weft::task<> {
              for (int i = 0; i < 50; ++i)
                co_await c.send(std::to_string(i));
              c.close();
            },
            std::ref(ch));
        int expected = 0;
        while (auto v = co_await ch.receive()) {
          CHECK(*v == std::to_string(expected));
          ++expected;
        }
        CHECK(expected == 50);
        co_await producer;
        CHECK(ch.closed());
        CHECK_FALSE((co_await ch.receive()).has_value());
      }(),
      {.worker_threads = 2});
}

TEST_CASE("channel: try_send reports a full channel and try_receive an empty one") {
  weft::channel<int> ch(2);
  CHECK(ch.capacity() == 2);
  CHECK_FALSE(ch.try_receive().has_value());
  CHECK(ch.try_send(1));
  int two = 2;
  CHECK(ch.try_send(std::move(two)));
  int three = 3;
  CHECK_FALSE(ch.try_send(std::move(three)));
  CHECK(three == 3);  // untouched
  CHECK(ch.size() == 2);
  CHECK(ch.try_receive() == 1);
  ch.close();
  CHECK_THROWS_AS(ch.try_send(4), weft::channel_closed);
  CHECK(ch.try_receive() == 2);  // drains after close
  CHECK_FALSE(ch.try_receive().has_value());
}

TEST_CASE(
    "channel: close releases waiting senders with channel_closed and receivers with nullopt") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        weft::channel<int> empty;
        auto r = weft::spawn(receive_one(empty));
        weft::channel<int> full(1);
        full.try_send(0);
        auto s = weft::spawn(send_one(full, 1));
        co_await let_others_wait();
        empty.close();
        full.close();
        CHECK_FALSE((co_await r).has_value());
        CHECK(co_await how_it_ends(s) == ended::closed);
        CHECK(co_await full.receive() == 0);
        CHECK_FALSE((co_await full.receive()).has_value());
        CHECK(co_await how_it_ends(full.send(2)) == ended::closed);
      }(),
      one_worker);
}

TEST_CASE("channel: waiting receivers are served in the order they came") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        weft::channel<int> ch;
        std::vector<weft::join_handle<std::optional<int>>> receivers;
        for (int i = 0; i < 5; ++i) {
          receivers.push_back(weft::spawn(receive_one(ch)));
          co_await let_others_wait();
        }
        for (int i = 0; i < 5; ++i)
          CHECK(ch.try_send(i));
        for (int i = 0; i < 5; ++i)
          CHECK(co_await receivers[static_cast<std::size_t>(i)] == i);
      }(),
      one_worker);
}

TEST_CASE("channel: waiting receivers of a bounded channel are served in the order they came") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        weft::channel<int> ch(2);
        std::vector<weft::join_handle<std::optional<int>>> receivers;
        for (int i = 0; i < 5; ++i) {
          receivers.push_back(weft::spawn(receive_one(ch)));
          co_await let_others_wait();
        }
        for (int i = 0; i < 5; ++i)
          CHECK(ch.try_send(i));  // each goes to a waiting receiver: the ring stays empty
        CHECK(ch.size() == 0);
        for (int i = 0; i < 5; ++i)
          CHECK(co_await receivers[static_cast<std::size_t>(i)] == i);
      }(),
      one_worker);
}

TEST_CASE("channel: a foreign try_receive from a full bounded channel lets the waiting sender in") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        weft::channel<int> ch(1);
        CHECK(ch.try_send(0));
        auto s = weft::spawn(send_one(ch, 1));
        co_await let_others_wait();
        CHECK_FALSE(s.done());
        std::optional<int> got;
        std::thread([&] { got = ch.try_receive(); }).join();
        CHECK(got == 0);
        co_await s;  // granted by the foreign thread: its value is in the channel now
        CHECK(ch.size() == 1);
        CHECK(ch.try_receive() == 1);
      }(),
      one_worker);
}

TEST_CASE("channel: values sent before close are received even when close comes between sends") {
  weft::channel<int> ch(3);
  CHECK(ch.try_send(1));
  CHECK(ch.try_send(2));
  ch.close();
  CHECK_THROWS_AS(ch.try_send(3), weft::channel_closed);
  CHECK(ch.size() == 2);
  CHECK(ch.try_receive() == 1);
  CHECK(ch.try_receive() == 2);
  CHECK_FALSE(ch.try_receive().has_value());
  ch.close();  // idempotent
  CHECK(ch.closed());
}

TEST_CASE("channel: close releases the receivers of a bounded channel only once it is drained") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        weft::channel<int> ch(4);
        auto r1 = weft::spawn(receive_one(ch));
        auto r2 = weft::spawn(receive_one(ch));
        co_await let_others_wait();
        CHECK(ch.try_send(7));  // handed to r1
        ch.close();             // r2 gets nullopt: drained
        CHECK(co_await r1 == 7);
        CHECK_FALSE((co_await r2).has_value());
      }(),
      one_worker);
}

// The cancellation scenarios channel and queue share: support/handoff_cancellation.hpp.
TEST_CASE("channel: a receiver cancelled before it waits throws and receives nothing") {
  weft_test::getter_cancelled_before_it_waits<channel_ops>();
}

TEST_CASE(
    "channel: a receiver cancelled while queued throws and the next value goes to the next "
    "receiver") {
  weft_test::getter_cancelled_while_queued<channel_ops>();
}

TEST_CASE("channel: a receiver cancelled after it was handed a value keeps the value") {
  weft_test::getter_cancelled_after_it_was_handed_an_item<channel_ops>();
}

TEST_CASE("channel: a sender cancelled while queued throws and sends nothing") {
  weft_test::putter_cancelled_while_queued<channel_ops>();
}

TEST_CASE("channel: a sender cancelled before it waits throws and sends nothing") {
  weft_test::putter_cancelled_before_it_waits<channel_ops>();
}

TEST_CASE("channel: a sender cancelled after its value was taken in completes normally") {
  weft_test::putter_cancelled_after_its_item_was_inserted<channel_ops>();
}

TEST_CASE("channel: the cancellation scenarios hold for a bounded channel") {
  weft_test::getter_cancelled_before_it_waits<bounded_channel_ops>();
  weft_test::getter_cancelled_while_queued<bounded_channel_ops>();
  weft_test::getter_cancelled_after_it_was_handed_an_item<bounded_channel_ops>();
  weft_test::putter_cancelled_while_queued<bounded_channel_ops>();
  weft_test::putter_cancelled_before_it_waits<bounded_channel_ops>();
  weft_test::putter_cancelled_after_its_item_was_inserted<bounded_channel_ops>();
}

namespace {

// A core whose every send and receive completes at once as if it had lost its claim race to
// another worker (detail/channel_core.hpp, "Contention"): it drives the awaiters' yield_after
// path, which a real race reaches only by chance.
struct racing_core {
  using get_waiter = weft::detail::queue_core<int>::get_waiter;
  using put_waiter = weft::detail::queue_core<int>::put_waiter;
  bool put_or_enqueue(put_waiter* w, bool enqueue) {
    if (enqueue) registered = true;  // the yield path must never get here
    sent.push_back(w->value);
    w->status = weft::detail::wait_status::granted;
    w->yield_after = true;
    return true;
  }
  bool get_or_enqueue(get_waiter* w, bool enqueue) noexcept {
    if (enqueue) registered = true;
    w->item = next_value++;
    w->status = weft::detail::wait_status::granted;
    w->yield_after = true;
    return true;
  }
  bool cancel(weft::detail::queue_waiter*, weft::detail::waiter_list racing_core::*) noexcept {
    return false;
  }
  weft::detail::waiter_list getters_;
  weft::detail::waiter_list putters_;
  std::vector<int> sent;
  int next_value = 100;
  bool registered = false;
};
using racing_send =
    weft::detail::put_awaiter<int, weft::channel_closed, weft::detail::ring_buffer<int>,
                              weft::detail::wait_kind::channel_send, racing_core>;
using racing_receive =
    weft::detail::get_awaiter<int, true, weft::channel_closed, weft::detail::ring_buffer<int>,
                              weft::detail::wait_kind::channel_receive, racing_core>;

}  // namespace

TEST_CASE(
    "channel: an operation that lost a race completes then yields once and is no cancellation "
    "point") {
  weft::runtime rt(one_worker);
  racing_core core;
  std::vector<std::string> log;
  rt.block_on([](racing_core& core, std::vector<std::string>& log) -> weft::task<> {
    weft::join_handle<void> racer;
    racer = weft::spawn([](racing_core& core, std::vector<std::string>& log,
                           weft::join_handle<void>& self) -> weft::task<> {
      // Made ready just before the send: without the yield the racer would log "sent" first.
      weft::spawn(
          [](std::vector<std::string>& log, weft::join_handle<void>& racer) -> weft::task<> {
            log.emplace_back("other runs");
            racer.cancel();  // during the racer's yield, which is no cancellation point
            co_return;
          }(log, self))
          .detach();
      co_await racing_send(core, 7);
      log.emplace_back("sent");
      const std::optional<int> got = co_await racing_receive(core);
      log.emplace_back("received " + std::to_string(got.value_or(-1)));
      co_await weft::yield_now();  // the first cancellation point: the request made above
      log.emplace_back("not reached");
    }(core, log, racer));
    CHECK(co_await how_it_ends(racer) == ended::cancelled);
  }(core, log));
  CHECK(core.sent == std::vector<int>{7});
  CHECK_FALSE(core.registered);
  CHECK(log == std::vector<std::string>{"other runs", "sent", "received 100"});
}

TEST_CASE("channel: its ring reports a lost claim race only when another thread took the place") {
  weft::detail::mpmc_ring<long> ring(1 << 16);
  bool lost = false;
  for (long i = 0; i < 1000; ++i) {
    long v = i;
    REQUIRE(ring.try_push(v, lost) == weft::detail::mpmc_ring<long>::push_result::done);
  }
  std::optional<long> out;
  for (long i = 0; i < 1000; ++i)
    REQUIRE(ring.try_pop(out, lost) == weft::detail::mpmc_ring<long>::pop_result::done);
  CHECK_FALSE(lost);  // one thread alone never loses a race

  // Two threads pushing at once lose races now and then; every push still lands exactly once.
  // Repeated until a race was seen (a 2-core machine sees one in the first round).
  weft_test::watchdog dog(60s);
  std::atomic<long> lost_races{0};
  long rounds = 0;
  while (lost_races.load() == 0) {
    ++rounds;
    std::atomic<int> go{0};
    auto pusher = [&](long base) {
      go.fetch_add(1);
      while (go.load() < 2) {
      }
      long races = 0;
      for (long i = 0; i < 20000; ++i) {
        long v = base + i;
        bool lost_here = false;
        REQUIRE(ring.try_push(v, lost_here) == weft::detail::mpmc_ring<long>::push_result::done);
        races += lost_here ? 1 : 0;
      }
      lost_races.fetch_add(races);
    };
    std::thread a(pusher, 0);
    std::thread b(pusher, 1L << 32);
    a.join();
    b.join();
    std::vector<long> got;
    while (ring.try_pop(out) == weft::detail::mpmc_ring<long>::pop_result::done)
      got.push_back(*out);
    std::sort(got.begin(), got.end());
    REQUIRE(got.size() == 40000);
    for (long i = 0; i < 20000; ++i) {
      REQUIRE(got[static_cast<std::size_t>(i)] == i);
      REQUIRE(got[static_cast<std::size_t>(20000 + i)] == (1L << 32) + i);
    }
  }
  MESSAGE(lost_races.load() << " lost races in " << rounds << " round(s)");
}

TEST_SUITE("stress") {
  // S4, channel part (driven by support/exactly_once.hpp): 6 sender tasks, 4 receiver tasks and a
  // foreign thread (try_send and try_receive) on 3 workers, bounded (3) and unbounded rounds in
  // turn; receivers are cancelled (and replaced) at random all the time the senders run, and a few
  // senders are cancelled, each at its send. Every value sent is received exactly once and none is
  // received that was not sent. Full scale: 200 rounds x 35,000 values, that is 7e6 sends and 7e6
  // receives.
  TEST_CASE(
      "channel: many senders and receivers with random cancellations lose and duplicate nothing") {
    weft_test::watchdog dog(weft_test::stress_scaled_up() ? 900s : 120s);
    const std::size_t rounds = weft_test::stress_count(4, 200);
    const auto totals = weft_test::exactly_once_rounds(rounds, 3, [](std::size_t round) {
      return weft_test::ops_rig<channel_ops>(round % 2 == 0 ? 3 : 0, 5);
    });
    weft_test::stress_summary(
        weft_test::describe(totals, rounds, {"values sent", "received", "receivers", "senders"}));
  }

  // FIFO of waiting receivers under concurrency: support/fifo_rig.hpp (getter_fifo_round) says what
  // is checked and why that is free of races in the test itself.
  TEST_CASE(
      "channel: stress keeps receivers FIFO while senders and cancellations race from everywhere") {
    const std::size_t rounds = weft_test::stress_count(10, 1000);
    const std::size_t n = weft_test::stress_count(64, 1000);
    weft_test::watchdog dog(weft_test::stress_scaled_up() ? 900s : 120s);
    weft_test::stress_summary(
        weft_test::getter_fifo_rounds(rounds, n, 13, [] { return channel_ops(); }));
  }

  // The same on a bounded channel with room for every value (the rig's foreign thread must never
  // be refused): senders take the ring's lock-free path while receivers register and are cancelled.
  TEST_CASE(
      "channel: bounded stress keeps receivers FIFO while senders and cancellations race from "
      "everywhere") {
    const std::size_t rounds = weft_test::stress_count(10, 1000);
    const std::size_t n = weft_test::stress_count(64, 1000);
    weft_test::watchdog dog(weft_test::stress_scaled_up() ? 900s : 120s);
    weft_test::stress_summary(
        weft_test::getter_fifo_rounds(rounds, n, 17, [n] { return channel_ops(n); }));
  }

  // The lock-free fast path of small bounded channels (full and empty all the time;
  // detail/channel_core.hpp) against waiters that register, cancellations and close: 4 sender
  // tasks, a foreign try_send thread, 3 receiver tasks (cancelled and replaced at random all the
  // time) and a foreign try_receive thread on capacities 1, 2 and 8; every odd round closes the
  // channel while the senders still send. Every value whose send returned is received exactly once,
  // nothing else is, and every receiver sees each sender's values in the order sent. Full scale:
  // 300 rounds x 5 x 20,000.
  TEST_CASE(
      "channel: small bounded channels keep each sender's order and lose nothing under races") {
    weft_test::watchdog dog(weft_test::stress_scaled_up() ? 900s : 120s);
    const std::size_t rounds = weft_test::stress_count(6, 300);
    const long per_sender = static_cast<long>(weft_test::stress_count(3000, 20000));
    std::size_t received = 0;
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t round = 0; round < rounds; ++round)
      received += ordered_round(round, per_sender);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    weft_test::stress_summary(std::to_string(rounds) + " rounds: received " +
                              std::to_string(received) + " values in order, " + std::to_string(ms) +
                              " ms");
  }
}  // TEST_SUITE("stress")
