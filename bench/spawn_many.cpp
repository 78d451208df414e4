// bench/spawn_many.cpp: one task spawns n trivial tasks, then waits for all of them.
// weft keeps the join_handles and awaits each; peer: oneTBB task_group::run of the same lambdas
// and one task_group::wait.
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_group.h>

#include <atomic>
#include <vector>

#include <weft/weft.hpp>

#include "harness.hpp"

namespace {

std::atomic<long> ran{0};

weft::task<> trivial() {
  ran.fetch_add(1, std::memory_order_relaxed);
  co_return;
}

weft::task<> weft_spawn_many(long n) {
  std::vector<weft::join_handle<void>> handles;
  handles.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i)
    handles.push_back(weft::spawn(trivial()));
  for (auto& handle : handles)
    co_await handle;
}

}  // namespace

int main(int argc, char** argv) {
  const auto opts = bench::parse(argc, argv);
  const long n = opts.param("n", 1000000);
  if (opts.system == "weft") {
    weft::runtime rt(bench::weft_options(opts));
    bench::run_timed(opts, [&] {
      ran.store(0);
      rt.block_on(weft_spawn_many(n));
      bench::check(ran.load() == n, "weft spawn_many count");
    });
  } else if (opts.system == "onetbb") {
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, opts.threads);
    bench::run_timed(opts, [&] {
      ran.store(0);
      tbb::task_group group;
      for (long i = 0; i < n; ++i)
        group.run([] { ran.fetch_add(1, std::memory_order_relaxed); });
      group.wait();
      bench::check(ran.load() == n, "tbb spawn_many count");
    });
  } else {
    bench::unknown_system(opts);
  }
  bench::emit_end();
}
