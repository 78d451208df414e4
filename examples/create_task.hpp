// examples/create_task.hpp: the seed guide's "asyncio.create_task()": two background tasks print
// once a second while main does other work for five seconds, then main stops them and waits for
// them to finish.
//
// Python stops its `while True` loops with task.cancel(). weft's cancellation
// (join_handle::cancel() and weft::cancelled_error) comes in a later release; until then a
// background loop stops when a shared std::atomic<bool> is set, or after a bounded number of
// rounds. A flag is only seen when the task wakes up, so stopping takes up to one period;
// cancel() will interrupt the sleep itself.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>

#include <weft/weft.hpp>

#include "example_support.hpp"

namespace examples::create_task {

using namespace std::chrono_literals;

// Runs until `stop` is set; returns how many rounds it ran. `stop` is a reference, so the caller
// must keep the flag alive until the task has finished (async_main joins it before returning).
inline weft::task<int> background_task(std::string name, const std::atomic<bool>& stop) {
  int rounds = 0;
  while (!stop.load()) {
    std::printf("%s running\n", name.c_str());
    ++rounds;
    co_await weft::sleep(1s);
  }
  co_return rounds;
}

inline weft::task<bool> async_main() {
  const stopwatch watch;
  std::atomic<bool> stop{false};

  // Create background tasks: spawn starts them now, on the pool, without awaiting them.
  weft::join_handle<int> task1 = weft::spawn(background_task("Task 1", stop));
  weft::join_handle<int> task2 = weft::spawn(background_task("Task 2", stop));

  // A bounded background loop written as a capturing lambda. spawn(callable, args...) keeps the
  // lambda (with its captures) and the argument in the task's own frame, so they live as long as
  // the task. (spawn([&]() -> weft::task<> {...}()) would let the lambda die at once: see
  // docs/patterns/create-task.md.)
  int checks = 0;
  weft::join_handle<void> checker = weft::spawn(
      [&checks](int rounds) -> weft::task<> {
        for (int i = 1; i <= rounds; ++i) {
          co_await weft::sleep(1500ms);
          checks = i;
          std::printf("checker: round %d of %d\n", i, rounds);
        }
      },
      3);

  // Do other work.
  co_await weft::sleep(5s);

  // Stop the background tasks (Python: task1.cancel(); task2.cancel()) and wait for them
  // (Python: await asyncio.gather(task1, task2, return_exceptions=True)).
  stop.store(true);
  const stopwatch stopping;
  const int rounds1 = co_await task1;
  const int rounds2 = co_await task2;
  co_await checker;
  const double stop_took = stopping.seconds();
  const double took = watch.seconds();

  std::printf("Task 1 ran %d rounds, Task 2 ran %d, the checker %d; stopping took %.2f s\n",
              rounds1, rounds2, checks, stop_took);
  std::printf("2 background tasks of 1 s rounds ran beside 5 s of other work; %.2f s in all\n",
              took);
  // Five rounds start at 0, 1, 2, 3 and 4 s; a sixth starts if a task wakes at 5 s just before
  // the flag is set.
  bool ok = check(rounds1 >= 5 && rounds1 <= 6 && rounds2 >= 5 && rounds2 <= 6,
                  "each background task ran about 5 rounds while main worked");
  ok &= check(checks == 3, "the bounded loop ran its 3 rounds");
  ok &= check(stop_took < 1.9, "the background tasks stop within one period");
  ok &= check(took >= 5.0 && took < 6.9, "the whole run takes 5 to 6 s");
  co_return ok;
}

inline int run() { return weft::run(async_main()) ? 0 : 1; }

}  // namespace examples::create_task
