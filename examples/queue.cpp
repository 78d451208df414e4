// examples/queue.cpp: asyncio.Queue: a producer and consumers, with backpressure, join() and
// cancellation. Docs: docs/patterns/queues.md.
//
// The seed guide's "Async Queue": one producer puts 20 items into a queue of maxsize 10 (waiting
// while it is full), three consumers take and process them, main waits for the producer, then for
// the queue to be joined (every item marked done), then cancels the consumers. As in the seed, the
// producer ends with a "no more items" marker that stops one consumer; here the marker is
// std::nullopt in a queue of std::optional<int>.
//
//   Python                                   weft
//   queue = Queue(maxsize=10)                weft::queue<std::optional<int>> queue(10);
//   await queue.put(i)                       co_await queue.put(i);
//   item = await queue.get()                 auto item = co_await queue.get();
//   queue.task_done()                        queue.task_done();
//   await queue.join()                       co_await queue.join();
//   task.cancel(); await gather(..., True)   co_await weft::cancel_all(consumers);

#include <atomic>
#include <chrono>
#include <cstdio>
#include <optional>
#include <vector>

#include <weft/weft.hpp>

#include "example_support.hpp"
#include "scenarios.hpp"

namespace examples::queue {

using namespace std::chrono_literals;

namespace {

using item_queue = weft::queue<std::optional<int>>;

weft::task<> producer(item_queue& queue, int n) {
  for (int i = 0; i < n; ++i) {
    co_await weft::sleep(100ms);
    co_await queue.put(i);
    std::printf("  produced: %d\n", i);
  }
  co_await queue.put(std::nullopt);  // signal completion
}

weft::task<> process_item(int /*item*/) { co_await weft::sleep(150ms); }

weft::task<> consumer(item_queue& queue, int name, std::atomic<int>& consumed) {
  for (;;) {
    std::optional<int> item = co_await queue.get();
    if (!item) {  // the completion signal
      queue.task_done();
      std::printf("  consumer-%d: end of items\n", name);
      break;
    }
    std::printf("  consumer-%d consumed: %d\n", name, *item);
    co_await process_item(*item);
    ++consumed;
    queue.task_done();
  }
}

weft::task<bool> async_main() {
  bool ok = true;
  stopwatch watch;
  item_queue queue(10);
  std::atomic<int> consumed{0};

  auto producer_task = weft::spawn(producer(queue, 20));
  std::vector<weft::join_handle<void>> consumer_tasks;
  for (int i = 0; i < 3; ++i)
    consumer_tasks.push_back(weft::spawn(consumer(queue, i, consumed)));

  co_await producer_task;  // wait for the producer to finish
  co_await queue.join();   // wait for every item to be processed
  const double took = watch.seconds();
  co_await weft::cancel_all(consumer_tasks);  // cancel the consumers and wait for them

  int cancelled = 0;
  for (auto& task : consumer_tasks)
    cancelled += task.cancelled() ? 1 : 0;
  std::printf("20 items produced and consumed in %.2f s; %d consumers cancelled\n", took,
              cancelled);
  ok &= check(consumed.load() == 20, "every item was consumed once");
  ok &= check(queue.empty() && queue.unfinished_tasks() == 0, "join saw every item done");
  ok &= check(cancelled == 2, "the two consumers still waiting were cancelled");
  // 20 puts 0.1 s apart; the last item is processed 0.15 s after it was put.
  ok &= check(took_about(took, 2.15), "the run takes about 2.15 s, bounded by the producer");
  co_return ok;
}

}  // namespace

int run() { return weft::run(async_main()) ? 0 : 1; }

}  // namespace examples::queue

// The program `queue`; weft_demo builds this file without main() and calls run().
#ifndef WEFT_EXAMPLE_NO_MAIN
int main() { return examples::queue::run(); }
#endif
