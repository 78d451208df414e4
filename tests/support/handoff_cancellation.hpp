// tests/support/handoff_cancellation.hpp: the cancellation scenarios that weft::queue and
// weft::channel share (reliability.md rule 3): a getter and a putter cancelled before it waits,
// while queued, and after it was granted (woken with its item, or with its item inserted, but not
// yet resumed). Both containers run on the same waiter machinery, so one set of scenarios, written
// once, checks both; test_queue.cpp and test_channel.cpp each register them under their own names
// (getter and putter are a receiver and a sender on a channel).
//
// Ops is the adapter of one container API (queue_ops, channel_ops): constructed with a bound (0:
// unbounded), it owns an empty container of int; get() and put(v) return its awaiters (get()'s
// result is an int or a std::optional<int>), try_put(v) puts without waiting and says whether it
// did, take_now() takes an item without waiting if there is one, and size() counts the items in.
//
// Every scenario runs on weft_test::one_worker (one worker, virtual time): a spawned task runs only
// when the scenario's task waits, so after let_others_wait() it is queued, and a task woken by a
// put or a get cannot resume before the scenario's task waits again: cancelling it then hits the
// granted state.
#pragma once

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>

#include <weft/weft.hpp>

#include "support/outcomes.hpp"
#include "support/watchdog.hpp"

namespace weft_test {

namespace handoff_detail {

// The coroutines the scenarios spawn. Parameters, not captures: a spawned coroutine must not refer
// to a lambda object that dies before it does.
template <class Ops>
struct coroutines {
  static weft::task<std::optional<int>> get_one(Ops& ops) { co_return co_await ops.get(); }
  static weft::task<std::optional<int>> get_after_a_yield(Ops& ops) {
    co_await weft::yield_now();
    co_return co_await ops.get();
  }
  static weft::task<> put_one(Ops& ops, int v) { co_await ops.put(v); }
  // Gets, records the item in `out`, then reaches a cancellation point: a pending cancellation is
  // delivered there, and the -2 is never written. (A channel's get() cannot end the stream here:
  // nobody closes it; value() would throw if it did.)
  static weft::task<> get_then_yield(Ops& ops, std::atomic<int>& out) {
    out = std::optional<int>(co_await ops.get()).value();
    co_await weft::yield_now();
    out = -2;
  }
  // Puts, records that the put returned, then reaches a cancellation point.
  static weft::task<> put_then_yield(Ops& ops, int v, std::atomic<bool>& returned) {
    co_await ops.put(v);
    returned = true;
    co_await weft::yield_now();
  }
};

// Runs body(ops) on one_worker, on an Ops bounded to `bound`, under a watchdog.
template <class Ops, class Body>
void run_scenario(std::size_t bound, Body body) {
  using namespace std::chrono_literals;
  watchdog dog(10s);
  Ops ops(bound);
  weft::run(body(ops), one_worker);
}

}  // namespace handoff_detail

// A getter cancelled before it waits ends cancelled and takes nothing, whether the cancellation is
// pending when it reaches get() or when it reaches an earlier point; with an item already there,
// get() takes it without waiting, so it is no cancellation point (as in asyncio).
template <class Ops>
void getter_cancelled_before_it_waits() {
  using co = handoff_detail::coroutines<Ops>;
  handoff_detail::run_scenario<Ops>(0, [](Ops& ops) -> weft::task<> {
    auto at_get = weft::spawn(co::get_one(ops));
    at_get.cancel();  // pending before the task even ran
    CHECK(co_await how_it_ends(at_get) == ended::cancelled);
    auto at_yield = weft::spawn(co::get_after_a_yield(ops));
    at_yield.cancel();
    CHECK(co_await how_it_ends(at_yield) == ended::cancelled);
    CHECK(ops.size() == 0);
    CHECK(ops.try_put(5));
    auto with_item = weft::spawn(co::get_one(ops));
    with_item.cancel();
    CHECK(co_await with_item == 5);
    CHECK(ops.size() == 0);
  });
}

// Of two queued getters, the first is cancelled: it ends cancelled, and the next item goes to the
// second.
template <class Ops>
void getter_cancelled_while_queued() {
  using co = handoff_detail::coroutines<Ops>;
  handoff_detail::run_scenario<Ops>(0, [](Ops& ops) -> weft::task<> {
    auto first = weft::spawn(co::get_one(ops));
    co_await let_others_wait();
    auto second = weft::spawn(co::get_one(ops));
    co_await let_others_wait();
    first.cancel();
    CHECK(co_await how_it_ends(first) == ended::cancelled);
    CHECK(ops.try_put(1));
    CHECK(co_await second == 1);
    CHECK(ops.size() == 0);
  });
}

// A getter handed an item (woken, not yet resumed) and cancelled then keeps the item: the
// cancellation is delivered at its next point, after get() returned. Ten rounds on one container.
template <class Ops>
void getter_cancelled_after_it_was_handed_an_item() {
  using co = handoff_detail::coroutines<Ops>;
  handoff_detail::run_scenario<Ops>(0, [](Ops& ops) -> weft::task<> {
    for (int round = 0; round < 10; ++round) {
      std::atomic<int> got{-1};
      auto h = weft::spawn(co::get_then_yield(ops, got));
      co_await let_others_wait();
      CHECK(ops.try_put(round));  // hands the item over and schedules the getter behind us
      h.cancel();                 // granted, not yet resumed
      CHECK(co_await how_it_ends(h) == ended::cancelled);
      CHECK(got.load() == round);
      CHECK(ops.size() == 0);
    }
  });
}

// A putter cancelled before it waits on a full container ends cancelled and inserts nothing.
template <class Ops>
void putter_cancelled_before_it_waits() {
  using co = handoff_detail::coroutines<Ops>;
  handoff_detail::run_scenario<Ops>(1, [](Ops& ops) -> weft::task<> {
    CHECK(ops.try_put(0));
    auto h = weft::spawn(co::put_one(ops, 1));
    h.cancel();
    CHECK(co_await how_it_ends(h) == ended::cancelled);
    CHECK(ops.size() == 1);
    CHECK(ops.take_now() == 0);
  });
}

// Of two putters queued on a full container, the first is cancelled: it ends cancelled and
// inserts nothing, and the place freed goes to the second. `then(ops)` runs last, for what only
// one API can check.
template <class Ops>
void putter_cancelled_while_queued(std::function<void(Ops&)> then = [](Ops&) {}) {
  using co = handoff_detail::coroutines<Ops>;
  handoff_detail::run_scenario<Ops>(1, [&then](Ops& ops) -> weft::task<> {
    CHECK(ops.try_put(0));
    auto first = weft::spawn(co::put_one(ops, 1));
    co_await let_others_wait();
    auto second = weft::spawn(co::put_one(ops, 2));
    co_await let_others_wait();
    first.cancel();
    CHECK(co_await how_it_ends(first) == ended::cancelled);
    CHECK(ops.size() == 1);
    CHECK(co_await ops.get() == 0);
    co_await second;
    CHECK(ops.take_now() == 2);
    CHECK(ops.size() == 0);
    then(ops);
  });
}

// A putter whose item was moved in (woken, not yet resumed) and cancelled then completes: put()
// returned, the cancellation is delivered at its next point, and the item stays in. Ten rounds on
// one container.
template <class Ops>
void putter_cancelled_after_its_item_was_inserted() {
  using co = handoff_detail::coroutines<Ops>;
  handoff_detail::run_scenario<Ops>(1, [](Ops& ops) -> weft::task<> {
    for (int round = 0; round < 10; ++round) {
      CHECK(ops.try_put(-1));
      std::atomic<bool> returned{false};
      auto h = weft::spawn(co::put_then_yield(ops, round, returned));
      co_await let_others_wait();
      CHECK(ops.take_now() == -1);  // moves the putter's item in and schedules the putter
      h.cancel();                   // granted, not yet resumed
      CHECK(co_await how_it_ends(h) == ended::cancelled);
      CHECK(returned.load());
      CHECK(ops.take_now() == round);
    }
  });
}

}  // namespace weft_test
