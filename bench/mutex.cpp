// bench/mutex.cpp: an async mutex under contention. `tasks` tasks each do `iters` lock,
// increment, unlock; operations = tasks * iters lock+unlock pairs. weft: weft::mutex. Peer:
// std::mutex with the same number of threads doing the same total count (what the async mutex
// replaces when a task must not block its worker), or one thread when tasks=1: that run measures
// the uncontended path of both.
#include <mutex>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "harness.hpp"

namespace {

weft::task<> weft_worker(weft::mutex& m, long& counter, long iters) {
  for (long i = 0; i < iters; ++i) {
    auto guard = co_await m.lock();
    ++counter;
  }
}

weft::task<long> weft_root(long tasks, long iters) {
  weft::mutex m;
  long counter = 0;
  std::vector<weft::task<>> workers;
  for (long t = 0; t < tasks; ++t)
    workers.push_back(weft_worker(m, counter, iters));
  co_await weft::gather(std::move(workers));
  co_return counter;
}

}  // namespace

int main(int argc, char** argv) {
  const auto opts = bench::parse(argc, argv);
  const long tasks = opts.param("tasks", 64);
  const long iters = opts.param("iters", 100000);
  if (opts.system == "weft") {
    weft::runtime rt(bench::weft_options(opts));
    bench::run_timed(opts, [&] {
      bench::check(rt.block_on(weft_root(tasks, iters)) == tasks * iters, "weft mutex count");
    });
  } else if (opts.system == "std_mutex") {
    bench::run_timed(opts, [&] {
      std::mutex m;
      long counter = 0;
      const int thread_count = tasks < opts.threads ? static_cast<int>(tasks) : opts.threads;
      const long per_thread = tasks * iters / thread_count;
      std::vector<std::thread> threads;
      for (int t = 0; t < thread_count; ++t) {
        threads.emplace_back([&] {
          for (long i = 0; i < per_thread; ++i) {
            std::lock_guard lock(m);
            ++counter;
          }
        });
      }
      for (auto& t : threads)
        t.join();
      bench::check(counter == per_thread * thread_count, "std::mutex count");
    });
  } else {
    bench::unknown_system(opts);
  }
  bench::emit_end();
}
