// tests/model/test_model_deque.cpp: the real Chase-Lev deque (scheduler/deque.hpp) under the model
// checker. The owner pushes and pops, thieves steal; every item must be taken exactly once and no
// taker may get a null or stale slot. Built unmutated and once per deque mutant
// (tests/model/CMakeLists.txt).
#include <doctest/doctest.h>

#include <array>
#include <cstddef>

#include "deque.hpp"
#include "model_checker.hpp"
#include "mutation.hpp"

namespace model = weft::model;
using weft_model_test::scenario;

namespace {

using deque = weft::detail::work_deque<4>;

// Items are the addresses of these counters; taking an item bumps its counter.
struct items {
  std::array<int, 3> taken{};

  void* item(std::size_t i) { return &taken[i]; }
  void take(void* p) {
    model::check(p != nullptr, "a successful take returned a null slot");
    bool known = false;
    for (int& t : taken) {
      if (p == &t) {
        known = true;
        ++t;
      }
    }
    model::check(known, "a take returned a pointer that was never pushed (a stale slot)");
  }
  void require_each_once(std::size_t count) {
    for (std::size_t i = 0; i < count; ++i)
      model::check(taken[i] == 1, "an item was lost or taken twice");
  }
};

// Steals until `attempts` steals ended in success or empty (a lost race is retried).
void thief(deque& q, items& it, int attempts) {
  for (int i = 0; i < attempts; ++i) {
    void* out = nullptr;
    deque::steal_result r;
    do {
      r = q.steal(out);
    } while (r == deque::steal_result::lost_race);
    if (r == deque::steal_result::success) it.take(out);
  }
}

void drain(deque& q, items& it) {
  while (void* p = q.pop())
    it.take(p);
}

model::result explore(unsigned preemptions, const std::function<void()>& body) {
  model::options opts;
  opts.preemption_bound = preemptions;
  return model::explore(opts, body);
}

// Two items pushed before the thief starts; the owner pops one while the thief steals twice.
model::result pop_against_two_steals() {
  return explore(3, [] {
    deque q;
    items it;
    q.push(it.item(0));
    q.push(it.item(1));
    const int t = model::spawn([&] { thief(q, it, 2); });
    if (void* p = q.pop()) it.take(p);
    model::join(t);
    drain(q, it);
    it.require_each_once(2);
  });
}

// The owner pushes while the thief is already looking, then pops; the thief steals once.
model::result push_against_steal() {
  return explore(2, [] {
    deque q;
    items it;
    const int t = model::spawn([&] { thief(q, it, 1); });
    q.push(it.item(0));
    q.push(it.item(1));
    if (void* p = q.pop()) it.take(p);
    model::join(t);
    drain(q, it);
    it.require_each_once(2);
  });
}

// The last item: the owner's pop and the thief's steal race for it through the CAS on top.
model::result last_item_race() {
  return explore(2, [] {
    deque q;
    items it;
    q.push(it.item(0));
    const int t = model::spawn([&] { thief(q, it, 1); });
    if (void* p = q.pop()) it.take(p);
    q.push(it.item(1));  // reuses the slot the race was about
    model::join(t);
    drain(q, it);
    it.require_each_once(2);
  });
}

// Two thieves and the owner over three items.
model::result two_thieves() {
  return explore(2, [] {
    deque q;
    items it;
    q.push(it.item(0));
    q.push(it.item(1));
    q.push(it.item(2));
    const int a = model::spawn([&] { thief(q, it, 1); });
    const int b = model::spawn([&] { thief(q, it, 1); });
    if (void* p = q.pop()) it.take(p);
    model::join(a);
    model::join(b);
    drain(q, it);
    it.require_each_once(3);
  });
}

const std::initializer_list<scenario> scenarios = {
    {"deque: a pop against two steals", pop_against_two_steals},
    {"deque: pushes while a thief looks", push_against_steal},
    {"deque: the last item raced by the owner and a thief", last_item_race},
    {"deque: two thieves and the owner", two_thieves},
};

}  // namespace

TEST_SUITE("model") {
#ifndef WEFT_MODEL_MUTANT
  TEST_CASE("model deque: every interleaving of owner and thieves takes each item exactly once") {
    weft_model_test::require_all_pass(scenarios);
  }
#else
  TEST_CASE("model deque: the checker catches the mutant " WEFT_MODEL_MUTANT_NAME) {
    weft_model_test::require_some_failure(scenarios);
  }
#endif
}
