// tests/test_oneshot.cpp: weft::oneshot: a value sent from a task or a foreign thread is received
// once; a sender dropped unsent makes the receiver throw oneshot_dropped; sending twice or
// receiving twice is a logic_error; cancellation before the wait, while waiting (the value stays
// for a later await) and after the value arrived (the value is returned); stress with values sent
// from foreign threads to receivers cancelled at random: every value received exactly once.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <random>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include <weft/weft.hpp>

#include "support/outcomes.hpp"
#include "support/stress.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

using weft_test::ended;
using weft_test::how_it_ends;
using weft_test::let_others_wait;
using weft_test::one_worker;

}  // namespace

TEST_CASE("oneshot: a value sent from a foreign thread is received") {
  weft_test::watchdog dog(10s);
  weft::run([]() -> weft::task<> {
    auto [sender, receiver] = weft::make_oneshot<std::unique_ptr<int>>();
    std::thread t([s = std::move(sender)]() mutable {
      std::this_thread::sleep_for(5ms);
      s.send(std::make_unique<int>(42));
    });
    auto value = co_await receiver;
    CHECK(*value == 42);
    t.join();
    CHECK_THROWS_AS((void)co_await receiver, std::logic_error);  // taken once
  }());
}

TEST_CASE("oneshot: a value sent before the await is returned at once") {
  weft_test::watchdog dog(10s);
  weft::run([]() -> weft::task<> {
    auto [sender, receiver] = weft::oneshot<int>::make();
    sender.send(1);
    CHECK_THROWS_AS(sender.send(2), std::logic_error);
    CHECK(receiver.ready());
    CHECK(co_await receiver == 1);
  }());
}

TEST_CASE("oneshot: a sender dropped unsent makes the waiting receiver throw oneshot_dropped") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        {
          auto [sender, receiver] = weft::make_oneshot<int>();
          auto h = weft::spawn(
              [](weft::oneshot_receiver<int> r) -> weft::task<int> { co_return co_await r; },
              std::move(receiver));
          co_await let_others_wait();
          { auto dropped = std::move(sender); }
          CHECK(co_await how_it_ends(h) == ended::dropped);
        }
        {
          auto [sender, receiver] = weft::make_oneshot<int>();
          { auto dropped = std::move(sender); }
          CHECK(co_await how_it_ends(receiver) == ended::dropped);
        }
      }(),
      one_worker);
}

TEST_CASE("oneshot: a receiver cancelled while waiting throws and the value stays for later") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        auto [sender, receiver] = weft::make_oneshot<int>();
        auto h = weft::spawn(
            [](weft::oneshot_receiver<int>& r) -> weft::task<int> { co_return co_await r; },
            std::ref(receiver));
        co_await let_others_wait();
        h.cancel();
        CHECK(co_await how_it_ends(h) == ended::cancelled);
        sender.send(9);
        CHECK(co_await receiver == 9);

        // Cancelled before it waits: throws without waiting, and a later await still works.
        auto [s2, r2] = weft::make_oneshot<int>();
        auto early = weft::spawn(
            [](weft::oneshot_receiver<int>& r) -> weft::task<int> { co_return co_await r; },
            std::ref(r2));
        early.cancel();
        CHECK(co_await how_it_ends(early) == ended::cancelled);
        s2.send(3);
        CHECK(co_await r2 == 3);
      }(),
      one_worker);
}

TEST_CASE("oneshot: a receiver cancelled after the value arrived returns the value") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        for (int round = 0; round < 10; ++round) {
          auto [sender, receiver] = weft::make_oneshot<int>();
          std::atomic<int> got{-1};
          auto h = weft::spawn(
              [](weft::oneshot_receiver<int> r, std::atomic<int>& out) -> weft::task<> {
                out = co_await r;
                co_await weft::yield_now();
              },
              std::move(receiver), std::ref(got));
          co_await let_others_wait();
          sender.send(round);  // wakes the receiver behind us
          h.cancel();          // value arrived, not yet resumed
          CHECK(co_await how_it_ends(h) == ended::cancelled);
          CHECK(got.load() == round);
        }
      }(),
      one_worker);
}

TEST_CASE(
    "oneshot: values sent from foreign threads reach receivers cancelled at random exactly once") {
  weft_test::watchdog dog(120s);
  const std::size_t count = weft_test::stress_count(2000, 100000);
  std::vector<weft::oneshot_sender<std::size_t>> senders;
  std::vector<weft::oneshot_receiver<std::size_t>> receivers;
  for (std::size_t i = 0; i < count; ++i) {
    auto [s, r] = weft::make_oneshot<std::size_t>();
    senders.push_back(std::move(s));
    receivers.push_back(std::move(r));
  }
  std::vector<std::atomic<int>> received(count);
  weft::runtime rt({.worker_threads = 3});
  std::thread sending([&] {
    for (std::size_t i = 0; i < count; ++i) {
      if (i % 10 == 9) {
        senders[i] = {};  // dropped unsent
      } else {
        senders[i].send(i);
      }
    }
  });
  rt.block_on([](std::vector<weft::oneshot_receiver<std::size_t>>& rs,
                 std::vector<std::atomic<int>>& got, std::size_t n) -> weft::task<> {
    std::mt19937 rng(5);
    std::vector<weft::join_handle<void>> waiting;
    for (std::size_t i = 0; i < n; ++i) {
      waiting.push_back(weft::spawn(
          [](weft::oneshot_receiver<std::size_t>& r,
             std::vector<std::atomic<int>>& g) -> weft::task<> {
            const std::size_t v = co_await r;
            ++g[v];
          },
          std::ref(rs[i]), std::ref(got)));
      if (rng() % 3 == 0) waiting.back().cancel();
    }
    for (std::size_t i = 0; i < n; ++i) {
      const ended e = co_await how_it_ends(waiting[i]);
      if (e == ended::cancelled) {
        // The value was not taken: await it again (it comes, or the sender was dropped).
        const ended again = co_await how_it_ends(
            [](weft::oneshot_receiver<std::size_t>& r,
               std::vector<std::atomic<int>>& g) -> weft::task<> { ++g[co_await r]; }(rs[i], got));
        CHECK((again == ended::value || again == ended::dropped));
      } else {
        CHECK((e == ended::value || e == ended::dropped));
      }
    }
  }(receivers, received, count));
  sending.join();
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const int expected = i % 10 == 9 ? 0 : 1;
    if (received[i].load() != expected) ++wrong;
  }
  CHECK(wrong == 0);
}
