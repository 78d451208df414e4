// bench/spawn_remote.cpp: a plain thread outside the pool submits n trivial tasks, then waits
// until all ran (an atomic countdown; the last task wakes the submitter).
// weft: runtime::spawn from main, handles detached. Peer: oneTBB task_arena::enqueue.
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>

#include <weft/weft.hpp>

#include "harness.hpp"

namespace {

bench::countdown left;

weft::task<> trivial() {
  left.arrive();
  co_return;
}

}  // namespace

int main(int argc, char** argv) {
  const auto opts = bench::parse(argc, argv);
  const long n = opts.param("n", 1000000);
  if (opts.system == "weft") {
    weft::runtime rt(bench::weft_options(opts));
    bench::run_timed(opts, [&] {
      left.reset(n);
      for (long i = 0; i < n; ++i)
        rt.spawn(trivial()).detach();
      left.wait();
    });
  } else if (opts.system == "onetbb") {
    // The submitting thread does not join the arena: all `threads` slots go to TBB workers, so
    // the global limit is threads + 1 (it counts the main thread).
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, opts.threads + 1);
    tbb::task_arena arena(opts.threads, 0);
    arena.initialize();
    bench::run_timed(opts, [&] {
      left.reset(n);
      for (long i = 0; i < n; ++i)
        arena.enqueue([] { left.arrive(); });
      left.wait();
    });
  } else {
    bench::unknown_system(opts);
  }
  bench::emit_end();
}
