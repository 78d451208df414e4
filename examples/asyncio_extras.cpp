// examples/asyncio_extras.cpp: the smaller asyncio APIs weft also has: PriorityQueue and
// LifoQueue, eager tasks, current_task() with cancelling()/uncancel(), Condition.notify(n),
// Semaphore.locked(), cancel messages and a timeout whose deadline moves. Docs:
// docs/patterns/queues.md, docs/patterns/create-task.md, docs/cancellation.md,
// docs/patterns/locks-and-semaphores.md, docs/patterns/timeouts.md.
//
//   Python                                          weft
//   jobs = asyncio.PriorityQueue()                  weft::priority_queue<std::pair<int, job>> jobs;
//   undo = asyncio.LifoQueue()                      weft::lifo_queue<std::string> undo;
//   create_task(lookup(k), eager_start=True)        weft::spawn_eager(lookup, k)
//   asyncio.current_task().uncancel()               (co_await weft::current_task()).uncancel()
//   cond.notify(2); sem.locked()                    cv.notify(2); sem.locked()
//   task.cancel("reason"); err.args[0]              handle.cancel("reason"); err.message()
//   async with asyncio.timeout(None) as cm:         weft::timeout_scope cm(std::nullopt);
//       cm.reschedule(loop.time() + 1)              co_await weft::timeout(cm, work(cm));

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <weft/weft.hpp>

#include "example_support.hpp"

namespace examples::asyncio_extras {

using namespace std::chrono_literals;

namespace {

// A job queue served most urgent first: (priority, name), the smallest priority first.
weft::task<std::vector<std::string>> run_jobs() {
  weft::priority_queue<std::pair<int, std::string>> jobs;
  co_await jobs.put({3, "send newsletter"});
  co_await jobs.put({1, "page the on-call"});
  co_await jobs.put({2, "resize images"});
  std::vector<std::string> done;
  while (!jobs.empty()) {
    auto [priority, name] = co_await jobs.get();
    co_await weft::sleep(10ms);  // the work
    done.push_back(name);
    jobs.task_done();
  }
  co_return done;
}

// Undo: the last edit is undone first.
weft::task<std::string> undo_last_two() {
  weft::lifo_queue<std::string> undo;
  for (const char* edit : {"type hello", "bold", "delete line"})
    co_await undo.put(edit);
  std::string first = co_await undo.get();
  std::string second = co_await undo.get();
  co_return first + ", then " + second;
}

// An eager lookup: a cache hit finishes inside spawn_eager, without a trip through the run queue.
weft::task<std::string> lookup(const std::map<std::string, std::string>& cache, std::string key) {
  if (auto it = cache.find(key); it != cache.end()) co_return it->second;
  co_await weft::sleep(50ms);  // a miss goes to the (simulated) backend
  co_return "fetched " + key;
}

// A task that cancels a step of its own and absorbs just that cancellation with uncancel().
weft::task<int> skip_a_step() {
  weft::task_ref self = co_await weft::current_task();
  int steps = 0;
  for (int i = 0; i < 3; ++i) {
    if (i == 1) self.cancel();  // give up on step 1 only
    try {
      co_await weft::sleep(10ms);
      ++steps;
    } catch (const weft::cancelled_error&) {
      if (self.uncancel() > 0) throw;  // someone else wants us gone too: let it through
    }
  }
  co_return steps;
}

// Keeps a watch alive while heartbeats come: each one moves the deadline 100 ms ahead; after the
// third the heartbeats stop and the deadline passes.
weft::task<int> watch(weft::timeout_scope& alive) {
  int beats = 0;
  for (;;) {
    alive.reschedule(weft::now() + 100ms);
    co_await weft::sleep(beats < 3 ? 20ms : 1s);  // the heartbeat, then silence
    ++beats;
  }
}

weft::task<bool> async_main() {
  bool ok = true;
  const auto done = co_await run_jobs();
  std::printf("jobs in priority order: %s; %s; %s\n", done[0].c_str(), done[1].c_str(),
              done[2].c_str());
  ok &= check(
      done == std::vector<std::string>{"page the on-call", "resize images", "send newsletter"},
      "the priority queue serves the smallest priority first");

  const std::string undone = co_await undo_last_two();
  std::printf("undo: %s\n", undone.c_str());
  ok &= check(undone == "delete line, then bold", "the lifo queue gives the last edit first");

  const std::map<std::string, std::string> cache{{"home", "cached home page"}};
  auto hit = weft::spawn_eager(lookup, std::cref(cache), std::string("home"));
  auto miss = weft::spawn_eager(lookup, std::cref(cache), std::string("about"));
  ok &= check(hit.done() && !miss.done(), "an eager cache hit is done when spawn_eager returns");
  std::printf("eager lookups: %s / %s\n", (co_await hit).c_str(), (co_await miss).c_str());

  const int steps = co_await skip_a_step();
  std::printf("steps done after skipping one: %d\n", steps);
  ok &= check(steps == 2, "uncancel() absorbed the task's own cancellation");

  auto worker = weft::spawn([]() -> weft::task<> { co_await weft::sleep(10s); }());
  co_await weft::sleep(5ms);
  worker.cancel("the user pressed stop");
  try {
    co_await worker;
  } catch (const weft::cancelled_error& e) {
    std::printf("cancelled: %s\n", e.what());
    ok &= check(e.message() == "the user pressed stop", "the cancel message reaches the awaiter");
  }

  weft::timeout_scope alive(std::nullopt);  // no deadline until the watch sets one
  const auto start = weft::now();
  try {
    co_await weft::timeout(alive, watch(alive));
  } catch (const weft::timeout_error&) {
    std::printf("watch expired %lld ms after it began\n",
                static_cast<long long>((weft::now() - start) / 1ms));
  }
  ok &= check(alive.expired(), "the rescheduled timeout expired once the heartbeats stopped");

  weft::semaphore slots(1);
  {
    auto permit = co_await slots.acquire();
    ok &= check(slots.locked(), "semaphore::locked() while the only permit is out");
  }
  ok &= check(!slots.locked(), "and not once it is back");
  co_return ok;
}

}  // namespace

int run() { return weft::run(async_main()) ? 0 : 1; }

}  // namespace examples::asyncio_extras

// The program `asyncio_extras`.
#ifndef WEFT_EXAMPLE_NO_MAIN
int main() { return examples::asyncio_extras::run(); }
#endif
