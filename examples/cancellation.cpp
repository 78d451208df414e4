// examples/cancellation.cpp: Task.cancel(), asyncio.CancelledError and asyncio.shield(): stopping
// tasks and cleaning up after them. Docs: docs/patterns/cancellation.md.
//
// The seed guide's "Task Cancellation", all five sub-sections: basic cancellation, graceful
// cancellation (cleanup that itself awaits), cancellation with a timeout, shielding an operation
// from cancellation, and cancelling many tasks at once. Simulated I/O with weft::sleep; some
// durations are shorter than the seed's so that the whole runs in ~9 s.
//
//   Python                                   weft
//   task.cancel()                            handle.cancel()
//   except asyncio.CancelledError:           catch (const weft::cancelled_error&)
//   raise                                    throw;  (or std::rethrow_exception, see graceful)
//   task.cancelled()                         handle.cancelled()
//   async with asyncio.timeout(t):           co_await weft::timeout(t, std::move(handle))
//   await asyncio.shield(task)               co_await weft::shield(handle)
//   cancel all, gather(return_exceptions)    co_await weft::cancel_all(handles)

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <weft/weft.hpp>

#include "example_support.hpp"
#include "scenarios.hpp"

namespace examples::cancellation {

using namespace std::chrono_literals;

namespace {

// ---- Basic cancellation ----

weft::task<> long_running_task(std::atomic<int>& works, std::atomic<bool>& saw_cancel) {
  try {
    while (true) {
      co_await weft::sleep(1s);  // a cancellation point: cancel() resumes the task here
      std::printf("  Working...\n");
      ++works;
    }
  } catch (const weft::cancelled_error&) {
    std::printf("  Task was cancelled\n");
    saw_cancel = true;  // cleanup code here (no co_await inside a handler: see graceful_task)
    throw;              // re-raise to complete cancellation
  }
}

weft::task<bool> basic() {
  std::atomic<int> works{0};
  std::atomic<bool> saw_cancel{false};
  weft::join_handle<void> task = weft::spawn(long_running_task(works, saw_cancel));

  co_await weft::sleep(3s);  // let it run for a bit

  const stopwatch watch;
  task.cancel();
  bool cancelled = false;
  try {
    co_await task;  // wait for cancellation to complete
  } catch (const weft::cancelled_error&) {
    std::printf("  Task cancelled successfully\n");
    cancelled = true;
  }
  const double took = watch.seconds();
  std::printf("  %d rounds of work; the cancellation took %.3f s\n", works.load(), took);
  bool ok = check(cancelled && task.cancelled(), "awaiting the cancelled task throws");
  ok &= check(saw_cancel, "the task saw cancelled_error and re-raised it");
  ok &= check(works >= 2 && works <= 3, "it worked about 3 times in 3 s");
  ok &= check(took < 0.5, "cancel() interrupts the sleep: no waiting for the period to end");
  co_return ok;
}

// ---- Graceful cancellation ----

std::atomic<int> items_processed{0};
std::atomic<bool> cleanup_complete{false};

weft::task<> process_item() {
  co_await weft::sleep(100ms);
  ++items_processed;
}

weft::task<> cleanup_resources() {
  co_await weft::sleep(300ms);  // flush buffers, close connections: I/O that must be awaited
  cleanup_complete = true;
}

// Task that handles cancellation gracefully. Python awaits the cleanup inside `except`; C++
// forbids co_await in a catch handler, so the handler keeps the exception and the cleanup runs
// after the try. The cancellation was consumed when it was thrown: the cleanup's own awaits run
// normally (a second cancel() would interrupt them).
weft::task<> graceful_task() {
  std::exception_ptr cancelled;
  try {
    while (true) {
      co_await weft::sleep(500ms);
      co_await process_item();
    }
  } catch (const weft::cancelled_error&) {
    cancelled = std::current_exception();
  }
  std::printf("  INFO Cancellation requested, cleaning up...\n");
  co_await cleanup_resources();
  std::printf("  INFO Cleanup complete\n");
  std::rethrow_exception(cancelled);  // re-raise to complete cancellation
}

weft::task<bool> graceful() {
  items_processed = 0;
  cleanup_complete = false;
  weft::join_handle<void> task = weft::spawn(graceful_task());
  co_await weft::sleep(2s);  // the seed waits 5 s

  const stopwatch watch;
  task.cancel();
  bool cancelled = false;
  try {
    co_await task;
  } catch (const weft::cancelled_error&) {
    std::printf("  INFO Task cancelled gracefully\n");
    cancelled = true;
  }
  const double took = watch.seconds();
  std::printf("  %d items processed; cancel to end of cleanup: %.2f s\n", items_processed.load(),
              took);
  bool ok = check(cancelled && task.cancelled(), "the task ended cancelled");
  ok &= check(cleanup_complete, "the awaited cleanup ran to the end");
  ok &= check(items_processed >= 2 && items_processed <= 4, "it processed about 3 items in 2 s");
  ok &= check(took >= 0.3 && took < 0.9, "awaiting the task waits for its cleanup (0.3 s)");
  co_return ok;
}

// ---- Cancellation with timeout ----

std::atomic<bool> operation_cleaned_up{false};

// Takes `duration`; when cancelled, releases what it holds (awaiting) and re-raises.
weft::task<std::string> long_running_operation(std::chrono::milliseconds duration) {
  std::exception_ptr cancelled;
  try {
    co_await weft::sleep(duration);
    co_return "operation result";
  } catch (const weft::cancelled_error&) {
    cancelled = std::current_exception();
  }
  co_await weft::sleep(100ms);  // release what the operation holds
  operation_cleaned_up = true;
  std::rethrow_exception(cancelled);
}

// Python 3.11+: `async with asyncio.timeout(t): result = await task`, and on TimeoutError
// `task.cancel(); await task`. weft::timeout on a handle does both itself: on expiry it cancels
// the task and waits until it has finished (cleanup included), then throws timeout_error.
weft::task<std::string> task_with_timeout(std::chrono::milliseconds timeout,
                                          std::chrono::milliseconds work) {
  weft::join_handle<std::string> task = weft::spawn(long_running_operation(work));
  try {
    co_return co_await weft::timeout(timeout, std::move(task));
  } catch (const weft::timeout_error&) {
    std::printf("  WARNING Task timed out after %.1f seconds\n", timeout.count() / 1000.0);
    throw;
  }
}

// Python < 3.11: asyncio.wait_for(task, timeout).
weft::task<std::string> task_with_timeout_legacy(std::chrono::milliseconds timeout,
                                                 std::chrono::milliseconds work) {
  weft::join_handle<std::string> task = weft::spawn(long_running_operation(work));
  try {
    co_return co_await weft::wait_for(std::move(task), timeout);
  } catch (const weft::timeout_error&) {
    std::printf("  WARNING Task timed out after %.1f seconds\n", timeout.count() / 1000.0);
    throw;
  }
}

weft::task<bool> with_timeout() {
  operation_cleaned_up = false;
  stopwatch watch;
  bool timed_out = false;
  try {
    (void)co_await task_with_timeout(1000ms, 10000ms);
  } catch (const weft::timeout_error&) {
    timed_out = true;
  }
  double took = watch.seconds();
  std::printf("  timeout(1s) on a 10 s operation: %s after %.2f s\n",
              timed_out ? "timeout_error" : "no error", took);
  bool ok = check(timed_out, "the operation timed out");
  ok &= check(operation_cleaned_up, "the operation was cancelled and its cleanup ran");
  ok &= check(took_about(took, 1.1), "after the timeout (1 s) and the cleanup (0.1 s)");

  watch = stopwatch();
  const std::string result = co_await task_with_timeout_legacy(1000ms, 300ms);
  took = watch.seconds();
  std::printf("  wait_for(1s) on a 0.3 s operation: '%s' after %.2f s\n", result.c_str(), took);
  ok &= check(result == "operation result", "an operation within the limit gives its result");
  ok &= check(took_about(took, 0.3), "and takes its own time (0.3 s)");
  co_return ok;
}

// ---- Shield from cancellation ----

std::atomic<int> critical_steps{0};

// Operation that should not be cancelled.
weft::task<std::string> critical_operation() {
  co_await weft::sleep(300ms);  // save_to_database()
  ++critical_steps;
  co_await weft::sleep(300ms);  // send_confirmation_email()
  ++critical_steps;
  co_return "order 42 confirmed";
}

// The seed's main: shields the task it created. If main is cancelled, the shielded await throws
// at once while the task runs on; main then waits for the task (outside the catch handler) and
// returns its result. Like the seed, it thereby absorbs its own cancellation (debug mode,
// WEFT_DEBUG=1, reports that as a swallowed cancellation); to pass the cancellation on instead,
// std::rethrow_exception(cancelled) after the await.
weft::task<std::string> shielded_main(double& cancelled_at, const stopwatch& watch) {
  weft::join_handle<std::string> task = weft::spawn(critical_operation());
  std::exception_ptr cancelled;
  try {
    co_return co_await weft::shield(task);
  } catch (const weft::cancelled_error&) {
    cancelled = std::current_exception();
  }
  cancelled_at = watch.seconds();
  std::printf("  INFO Main cancelled at %.2f s, but task continues\n", cancelled_at);
  std::string result = co_await task;  // wait for the task to complete
  co_return result;
}

weft::task<bool> shield() {
  critical_steps = 0;
  const stopwatch watch;
  double cancelled_at = 0;
  weft::join_handle<std::string> main_task = weft::spawn(shielded_main(cancelled_at, watch));
  co_await weft::sleep(100ms);
  main_task.cancel();  // while the critical operation is saving to the database
  const std::string result = co_await main_task;
  const double took = watch.seconds();
  std::printf("  main returned '%s' after %.2f s; %d of 2 critical steps done\n", result.c_str(),
              took, critical_steps.load());
  bool ok = check(cancelled_at >= 0.1 && cancelled_at < 0.3,
                  "the shielded await threw as soon as main was cancelled");
  ok &= check(critical_steps == 2 && result == "order 42 confirmed",
              "the critical operation ran to completion");
  ok &= check(took_about(took, 0.6), "main returned when the operation finished (0.6 s)");
  co_return ok;
}

// ---- Cancelling multiple tasks ----

// Works in rounds; workers 3 and 7 fail during their third round.
weft::task<> worker(int i) {
  for (int round = 1;; ++round) {
    co_await weft::sleep(300ms);
    if ((i == 3 || i == 7) && round == 3) {
      throw std::runtime_error("worker " + std::to_string(i) + ": disk full");
    }
  }
}

struct tally {
  std::size_t cancelled = 0;
  std::size_t failed = 0;
};

// Cancel all tasks and wait for them to finish, then log each one's fate.
weft::task<tally> cancel_all_tasks(std::vector<weft::join_handle<void>>& tasks) {
  co_await weft::cancel_all(tasks);  // cancels every task, waits for all, takes no result

  tally counts;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    if (tasks[i].cancelled()) {
      std::printf("  INFO Task %zu cancelled\n", i);
      ++counts.cancelled;
      continue;
    }
    try {
      tasks[i].take_result();  // Python's task.exception(): rethrows what the task threw
    } catch (const std::exception& e) {
      std::printf("  ERROR Task %zu failed: %s\n", i, e.what());
      ++counts.failed;
    }
  }
  co_return counts;
}

weft::task<bool> multiple() {
  std::vector<weft::join_handle<void>> tasks;
  for (int i = 0; i < 10; ++i)
    tasks.push_back(weft::spawn(worker(i)));

  co_await weft::sleep(1500ms);  // let them run (the seed: 5 s)

  const stopwatch watch;
  const tally counts = co_await cancel_all_tasks(tasks);
  const double took = watch.seconds();
  std::printf("  %zu cancelled, %zu failed; cancel_all took %.3f s\n", counts.cancelled,
              counts.failed, took);
  bool ok = check(counts.cancelled == 8 && counts.failed == 2, "8 cancelled, 2 failed");
  ok &= check(took < 0.5, "every task stopped at once");
  co_return ok;
}

// Tasks left running when the program ends: runtime::shutdown cancels them and waits for their
// cleanup, as asyncio.run does with the tasks main() left behind.
std::atomic<int> heartbeats{0};
std::atomic<bool> heartbeat_cleaned_up{false};

weft::task<> heartbeat() {
  std::exception_ptr cancelled;
  try {
    for (;;) {
      ++heartbeats;
      co_await weft::sleep(10ms);
    }
  } catch (const weft::cancelled_error&) {
    cancelled = std::current_exception();
  }
  co_await weft::sleep(5ms);  // asynchronous cleanup (flush, say goodbye) after the cancellation
  heartbeat_cleaned_up = true;
  std::rethrow_exception(cancelled);
}

bool left_running() {
  weft::runtime rt;
  rt.block_on([]() -> weft::task<> {
    weft::spawn(heartbeat()).detach();  // never awaited
    co_await weft::sleep(50ms);         // main's own work
  }());
  const std::size_t left = rt.shutdown(2s);
  std::printf("  %d heartbeats; cleanup ran: %s; tasks left after the grace: %zu\n",
              heartbeats.load(), heartbeat_cleaned_up ? "yes" : "no", left);
  return check(heartbeat_cleaned_up && left == 0,
               "shutdown cancelled the task and ran its cleanup");
}

weft::task<bool> async_main() {
  bool ok = true;
  std::printf("Basic cancellation:\n");
  ok &= co_await basic();
  std::printf("Graceful cancellation:\n");
  ok &= co_await graceful();
  std::printf("Cancellation with timeout:\n");
  ok &= co_await with_timeout();
  std::printf("Shield from cancellation:\n");
  ok &= co_await shield();
  std::printf("Cancelling multiple tasks:\n");
  ok &= co_await multiple();
  co_return ok;
}

}  // namespace

int run() {
  bool ok = weft::run(async_main());
  std::printf("Tasks left running at the end:\n");
  ok &= left_running();
  return ok ? 0 : 1;
}

}  // namespace examples::cancellation

// The program `cancellation`; weft_demo builds this file without main() and calls run().
#ifndef WEFT_EXAMPLE_NO_MAIN
int main() { return examples::cancellation::run(); }
#endif
