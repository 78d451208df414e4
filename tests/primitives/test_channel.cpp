// tests/test_channel.cpp: weft::channel (patterns.md row 16, reliability.md rule 3 and S4): FIFO,
// bounded send waits, try_send and try_receive, close (senders throw, receivers drain then get
// std::nullopt, waiters are released), cancellation of a sender and a receiver before it queues,
// while queued and after it was granted, and stress with many senders and receivers, a foreign
// thread and random cancellations: every value received exactly once.
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

#include "support/exactly_once.hpp"
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
}  // TEST_SUITE("stress")
