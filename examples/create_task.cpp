// examples/create_task.cpp: asyncio.create_task() and Task.cancel(): background tasks that run
// while main does other work. Docs: docs/patterns/create-task.md.
//
// The seed guide's "asyncio.create_task()": two background tasks print once a second while main
// does other work for five seconds, then main cancels them and waits for the cancellations to
// complete (Python: task.cancel(), then gather(..., return_exceptions=True)). cancel() interrupts
// the sleep the task is in, so stopping takes milliseconds, not a period.

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <tuple>

#include <weft/weft.hpp>

#include "example_support.hpp"
#include "scenarios.hpp"

namespace examples::create_task {

using namespace std::chrono_literals;

namespace {

// Runs until cancelled: weft::sleep is a cancellation point, where the task sees
// weft::cancelled_error. `rounds` counts the rounds for the checks below; it is a reference, so
// the caller keeps it alive until the task has finished (async_main waits for it).
weft::task<> background_task(std::string name, std::atomic<int>& rounds) {
  while (true) {
    std::printf("%s running\n", name.c_str());
    ++rounds;
    co_await weft::sleep(1s);
  }
}

weft::task<bool> async_main() {
  const stopwatch watch;
  std::atomic<int> rounds1{0};
  std::atomic<int> rounds2{0};

  // Create background tasks: spawn starts them now, on the pool, without awaiting them.
  weft::join_handle<void> task1 = weft::spawn(background_task("Task 1", rounds1));
  weft::join_handle<void> task2 = weft::spawn(background_task("Task 2", rounds2));

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

  // Cancel background tasks: each sees weft::cancelled_error in the sleep it is in.
  const stopwatch stopping;
  task1.cancel();
  task2.cancel();

  // Wait for cancellation to complete. gather takes the handles (moved in); with
  // return_exceptions each gives an outcome holding its weft::cancelled_error instead of throwing.
  auto [outcome1, outcome2] =
      co_await weft::gather(weft::return_exceptions, std::move(task1), std::move(task2));
  const double stop_took = stopping.seconds();
  co_await checker;
  const double took = watch.seconds();

  const bool cancelled1 = is_cancelled(outcome1.error());
  const bool cancelled2 = is_cancelled(outcome2.error());
  std::printf("Task 1 ran %d rounds, Task 2 ran %d, the checker %d\n", rounds1.load(),
              rounds2.load(), checks);
  std::printf("Task 1 %s, Task 2 %s; cancelling them took %.3f s\n",
              cancelled1 ? "cancelled" : "NOT cancelled",
              cancelled2 ? "cancelled" : "NOT cancelled", stop_took);
  std::printf("2 background tasks of 1 s rounds ran beside 5 s of other work; %.2f s in all\n",
              took);
  // Five rounds start at 0, 1, 2, 3 and 4 s; a sixth starts if a task wakes at 5 s just before
  // it is cancelled.
  const int r1 = rounds1.load();
  const int r2 = rounds2.load();
  bool ok = check(r1 >= 5 && r1 <= 6 && r2 >= 5 && r2 <= 6,
                  "each background task ran about 5 rounds while main worked");
  ok &= check(cancelled1 && cancelled2, "both background tasks ended with cancelled_error");
  ok &= check(checks == 3, "the bounded loop ran its 3 rounds");
  ok &= check(stop_took < 0.5, "cancel() interrupts the sleep: the tasks stop at once");
  ok &= check(took >= 5.0 && took < 5.9, "the whole run takes about 5 s");
  co_return ok;
}

}  // namespace

int run() { return weft::run(async_main()) ? 0 : 1; }

}  // namespace examples::create_task

// The program `create_task`; weft_demo builds this file without main() and calls run().
#ifndef WEFT_EXAMPLE_NO_MAIN
int main() { return examples::create_task::run(); }
#endif
