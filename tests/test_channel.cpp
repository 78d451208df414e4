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

#include "support/stress.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

enum class ended { value, cancelled, closed, failed };

template <class A>
weft::task<ended> how_it_ends(A&& awaitable) {
  try {
    (void)co_await static_cast<A&&>(awaitable);
    co_return ended::value;
  } catch (const weft::cancelled_error&) {
    co_return ended::cancelled;
  } catch (const weft::channel_closed&) {
    co_return ended::closed;
  } catch (...) {
    co_return ended::failed;
  }
}

weft::task<> let_others_wait() { co_await weft::sleep(1ms); }
const weft::runtime_options one_worker{.worker_threads = 1, .virtual_time = true};

weft::task<std::optional<int>> receive_one(weft::channel<int>& ch) {
  co_return co_await ch.receive();
}
weft::task<> send_one(weft::channel<int>& ch, int v) { co_await ch.send(v); }

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

TEST_CASE("channel: a receiver cancelled while queued or before it waits receives nothing") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        weft::channel<int> ch;
        auto early = weft::spawn(receive_one(ch));
        early.cancel();  // pending before it waits
        CHECK(co_await how_it_ends(early) == ended::cancelled);
        auto queued = weft::spawn(receive_one(ch));
        co_await let_others_wait();
        auto next = weft::spawn(receive_one(ch));
        co_await let_others_wait();
        queued.cancel();
        CHECK(co_await how_it_ends(queued) == ended::cancelled);
        CHECK(ch.try_send(7));
        CHECK(co_await next == 7);
      }(),
      one_worker);
}

TEST_CASE("channel: a receiver cancelled after it was handed a value keeps the value") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        weft::channel<int> ch;
        for (int round = 0; round < 10; ++round) {
          std::atomic<int> got{-1};
          auto h = weft::spawn(
              [](weft::channel<int>& c, std::atomic<int>& out) -> weft::task<> {
                out = *co_await c.receive();
                co_await weft::yield_now();
              },
              std::ref(ch), std::ref(got));
          co_await let_others_wait();
          CHECK(ch.try_send(round));
          h.cancel();
          CHECK(co_await how_it_ends(h) == ended::cancelled);
          CHECK(got.load() == round);
        }
      }(),
      one_worker);
}

TEST_CASE("channel: a sender cancelled while queued sends nothing and one granted completes") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        weft::channel<int> ch(1);
        CHECK(ch.try_send(0));
        auto queued = weft::spawn(send_one(ch, 1));
        co_await let_others_wait();
        queued.cancel();
        CHECK(co_await how_it_ends(queued) == ended::cancelled);
        CHECK(ch.size() == 1);

        std::atomic<bool> returned{false};
        auto granted = weft::spawn(
            [](weft::channel<int>& c, std::atomic<bool>& r) -> weft::task<> {
              co_await c.send(2);
              r = true;
              co_await weft::yield_now();
            },
            std::ref(ch), std::ref(returned));
        co_await let_others_wait();
        CHECK(ch.try_receive() == 0);  // moves the sender's value in
        granted.cancel();
        CHECK(co_await how_it_ends(granted) == ended::cancelled);
        CHECK(returned.load());
        CHECK(ch.try_receive() == 2);
      }(),
      one_worker);
}

namespace {

struct ledger {
  explicit ledger(std::size_t n) : sent(n), received(n) {}
  std::vector<std::atomic<int>> sent;
  std::vector<std::atomic<int>> received;
};

weft::task<> stress_sender(weft::channel<int>& ch, ledger& l, int first, int count) {
  for (int i = first; i < first + count; ++i) {
    co_await ch.send(i);
    l.sent[static_cast<std::size_t>(i)] = 1;
    if (i % 5 == 0) co_await weft::yield_now();
  }
}

weft::task<> stress_receiver(weft::channel<int>& ch, ledger& l) {
  while (auto i = co_await ch.receive())
    ++l.received[static_cast<std::size_t>(*i)];
}

}  // namespace

TEST_CASE(
    "channel: many senders and receivers with random cancellations lose and duplicate nothing") {
  weft_test::watchdog dog(120s);
  const std::size_t rounds = weft_test::stress_count(4, 200);
  for (std::size_t round = 0; round < rounds; ++round) {
    constexpr int senders = 6;
    const int per_sender = static_cast<int>(weft_test::stress_count(500, 5000));
    const std::size_t total = static_cast<std::size_t>((senders + 1) * per_sender);
    ledger l(total);
    weft::channel<int> ch(round % 2 == 0 ? 3 : 0);
    weft::runtime rt({.worker_threads = 3});

    std::atomic<bool> stop_foreign{false};
    std::thread foreign([&] {
      int next = senders * per_sender;
      std::mt19937 rng(static_cast<unsigned>(round));
      while (!stop_foreign.load()) {
        if (next < static_cast<int>(total) && rng() % 2 == 0) {
          if (ch.try_send(next)) {
            l.sent[static_cast<std::size_t>(next)] = 1;
            ++next;
          }
        } else if (auto i = ch.try_receive()) {
          ++l.received[static_cast<std::size_t>(*i)];
        }
        if (next >= static_cast<int>(total)) std::this_thread::yield();
      }
    });

    rt.block_on([](weft::channel<int>& c, ledger& led, int per, unsigned seed) -> weft::task<> {
      std::mt19937 rng(seed);
      std::vector<weft::join_handle<void>> sends;
      for (int s = 0; s < senders; ++s)
        sends.push_back(weft::spawn(stress_sender(c, led, s * per, per)));
      std::vector<weft::join_handle<void>> receives;
      for (int r = 0; r < 4; ++r)
        receives.push_back(weft::spawn(stress_receiver(c, led)));
      for (int k = 0; k < 60; ++k) {
        co_await weft::yield_now();
        const std::size_t r = rng() % receives.size();
        receives[r].cancel();
        CHECK(co_await how_it_ends(receives[r]) == ended::cancelled);
        receives[r] = weft::spawn(stress_receiver(c, led));
        if (k % 20 == 5) sends[rng() % sends.size()].cancel();
      }
      for (auto& s : sends)
        (void)co_await how_it_ends(s);
      co_await weft::cancel_all(receives);
    }(ch, l, per_sender, static_cast<unsigned>(round) + 3));
    stop_foreign = true;
    foreign.join();
    ch.close();
    while (auto i = ch.try_receive())
      ++l.received[static_cast<std::size_t>(*i)];
    std::size_t lost = 0, duplicated = 0, phantom = 0;
    for (std::size_t i = 0; i < total; ++i) {
      const int s = l.sent[i].load(), r = l.received[i].load();
      if (s == 1 && r == 0) ++lost;
      if (r > 1) ++duplicated;
      if (s == 0 && r > 0) ++phantom;
    }
    CHECK(lost == 0);
    CHECK(duplicated == 0);
    CHECK(phantom == 0);
  }
}
