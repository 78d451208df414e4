// tests/model/test_model_parking.cpp: the idle/parker protocol (scheduler/idle.hpp, idle.cpp,
// parker.hpp, parker.cpp, compiled for real against the model) with the deques, as worker.cpp and
// runtime_core use them. The worker loop itself needs the whole runtime (threads, injector,
// registry, poller), so `idle_worker` below restates its parking path step for step
// (worker::search, worker::park_until_notified) and `pool` restates runtime_core's two notify
// functions; keep them in step with worker.cpp.
//
// The property: a producer publishes one task and then waits for it to have run without ever
// running it itself (a task that spins on a sibling, the case issue 10 names). If the idle worker
// sleeps through the publication, the producer spins for ever and the idle worker sleeps on its
// futex: the checker reports that as a deadlock.
#include <doctest/doctest.h>

#include <array>
#include <cstddef>

#include "deque.hpp"
#include "idle.hpp"
#include "model_checker.hpp"
#include "mutation.hpp"
#include "parker.hpp"

namespace model = weft::model;
using weft_model_test::scenario;

namespace {

using deque = weft::detail::work_deque<4>;

struct pool {
  explicit pool(std::size_t workers) : idle(workers) {}

  weft::detail::idle idle;
  std::array<deque, 3> deques;  // one per worker; a foreign producer uses the last one
  std::array<weft::detail::parker, 3> parkers;
  model::atomic<int> runs{0};

  // runtime_core::notify_one_if_needed
  void notify_one_if_needed() {
    if (const auto index = idle.worker_to_notify()) parkers[*index].unpark();
  }
  // runtime_core::notify_for_local_work
  void notify_for_local_work() {
    if (idle.maybe_should_wake_for_local_work()) {
      if (const auto index = idle.wake_one()) parkers[*index].unpark();
    }
  }

  void* steal_from_others(std::size_t self, std::size_t queues) {
    for (std::size_t i = 0; i < queues; ++i) {
      if (i == self || deques[i].size_estimate() == 0) continue;
      void* out = nullptr;
      deque::steal_result r;
      do {
        r = deques[i].steal(out);
      } while (r == deque::steal_result::lost_race);
      if (r == deque::steal_result::success) return out;
    }
    return nullptr;
  }
};

// worker::has_stealable_work
bool has_stealable_work(const deque& q) { return q.size_estimate() > 0; }

// worker::work_visible (the injector is one of the deques here)
bool work_visible(pool& p, std::size_t queues) {
  bool work_left = false;
  for (std::size_t i = 0; i < queues; ++i)
    work_left = work_left || has_stealable_work(p.deques[i]);
  return work_left;
}

// A worker with nothing to do: searches, parks, and runs the first task it finds.
// Restates worker::run / search / park_until_notified.
void idle_worker(pool& p, std::size_t self, std::size_t queues) {
  bool searching = false;
  for (;;) {
    void* task = nullptr;
    if (searching || p.idle.transition_to_searching()) {
      searching = true;
      task = p.steal_from_others(self, queues);
    }
    if (task != nullptr) {
      if (searching) {
        searching = false;
        // worker::run: the last searcher wakes another only if it sees work left
        // (worker::work_visible, the same seq_cst re-check as parking).
        if (p.idle.transition_from_searching() && work_visible(p, queues)) p.notify_one_if_needed();
      }
      p.runs.fetch_add(1, std::memory_order_release);  // run the task
      return;
    }
    // park_until_notified
    p.idle.transition_to_parked(self, searching);
    searching = false;
    if (work_visible(p, queues)) p.notify_one_if_needed();
    p.parkers[self].park();
    searching = p.idle.transition_from_parked(self);
  }
}

int task_storage = 0;

// The producer waits, without running it, until the task ran.
void wait_for_the_task(pool& p) {
  while (p.runs.load(std::memory_order_acquire) == 0) {
  }
}

model::result explore(const std::function<void()>& body) {
  model::options opts;
  opts.preemption_bound = 2;
  return model::explore(opts, body);
}

// Worker 0 spawns onto its own deque (worker::push_local) while worker 1 goes to sleep.
model::result local_push_against_parking() {
  return explore([] {
    pool p(2);
    const int sleeper = model::spawn([&] { idle_worker(p, 1, 2); });
    p.deques[0].push(&task_storage);
    p.notify_for_local_work();
    wait_for_the_task(p);
    model::join(sleeper);
  });
}

// A thread outside the pool publishes a task (the injector, here a queue the workers steal from)
// and notifies through worker_to_notify() (runtime_core::inject) while the only worker parks.
model::result injection_against_parking() {
  return explore([] {
    pool p(1);
    const int sleeper = model::spawn([&] { idle_worker(p, 0, 3); });
    p.deques[2].push(&task_storage);
    p.notify_one_if_needed();
    wait_for_the_task(p);
    model::join(sleeper);
  });
}

// Two workers go idle while a foreign thread injects: exactly the wake-ups needed, no more.
model::result injection_against_two_parking_workers() {
  return explore([] {
    pool p(2);
    std::array<int, 2> done{};
    const int a = model::spawn([&] {
      idle_worker(p, 0, 3);
      done[0] = 1;
    });
    const int b = model::spawn([&] {
      idle_worker(p, 1, 3);
      done[1] = 1;
    });
    p.deques[2].push(&task_storage);
    p.notify_one_if_needed();
    wait_for_the_task(p);
    // The worker that did not get the task is asleep or about to be: shut down as the runtime
    // does (unpark everybody), with a second task for whoever wakes.
    p.deques[2].push(&task_storage);
    p.parkers[0].unpark();
    p.parkers[1].unpark();
    model::join(a);
    model::join(b);
    model::check(p.runs.load(std::memory_order_relaxed) == 2, "a task ran twice or not at all");
  });
}

// Two tasks published one after the other from outside while two workers go idle: whichever
// worker finds the first as the last searcher must see the second (or its producer must see no
// searcher and wake the other worker). Each worker runs one task and leaves, so the producer waits
// for ever if the second wake-up is lost.
model::result two_injections_against_a_searcher_stopping() {
  return explore([] {
    pool p(2);
    const int a = model::spawn([&] { idle_worker(p, 0, 3); });
    const int b = model::spawn([&] { idle_worker(p, 1, 3); });
    p.deques[2].push(&task_storage);
    p.notify_one_if_needed();
    p.deques[2].push(&task_storage);
    p.notify_one_if_needed();
    while (p.runs.load(std::memory_order_acquire) < 2) {
    }
    model::join(a);
    model::join(b);
  });
}

const std::initializer_list<scenario> scenarios = {
    {"parking: a local push against a worker going to sleep", local_push_against_parking},
    {"parking: an injection against the only worker going to sleep", injection_against_parking},
    {"parking: an injection against two workers going to sleep",
     injection_against_two_parking_workers},
    {"parking: a second injection against the last searcher stopping",
     two_injections_against_a_searcher_stopping},
};

}  // namespace

TEST_SUITE("model") {
#ifndef WEFT_MODEL_MUTANT
  TEST_CASE("model parking: no interleaving loses the wake-up of a worker going to sleep") {
    weft_model_test::require_all_pass(scenarios);
  }
#else
  TEST_CASE("model parking: the checker catches the mutant " WEFT_MODEL_MUTANT_NAME) {
    weft_model_test::require_some_failure(scenarios);
  }
#endif
}
