// bench/fib.cpp: fork-join task overhead. No sequential cutoff: every call is a task.
// weft: fib(n) is `co_await weft::fork_join(fib(n - 1), fib(n - 2))` (the fork-join path: the
// first child runs at once, the second waits on the deque for a thief).
// weft_spawn: the general path, fib(n) spawns fib(n-1) (a join_handle), awaits fib(n-2) as a plain
// task, then joins the handle.
// Peer: oneTBB task_group of the same shape (run fib(n-1), call fib(n-2), wait).
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_group.h>

#include <cstdint>

#include <weft/scheduler/fork_join.hpp>
#include <weft/weft.hpp>

#include "harness.hpp"

namespace {

std::uint64_t fib_reference(int n) {
  std::uint64_t a = 0, b = 1;
  for (int i = 0; i < n; ++i) {
    const std::uint64_t next = a + b;
    a = b;
    b = next;
  }
  return a;
}

weft::task<std::uint64_t> weft_fib(int n) {
  if (n < 2) co_return static_cast<std::uint64_t>(n);
  auto [first, second] = co_await weft::fork_join(weft_fib(n - 1), weft_fib(n - 2));
  co_return first + second;
}

weft::task<std::uint64_t> weft_spawn_fib(int n) {
  if (n < 2) co_return static_cast<std::uint64_t>(n);
  auto first = weft::spawn(weft_spawn_fib(n - 1));
  const std::uint64_t second = co_await weft_spawn_fib(n - 2);
  co_return co_await first + second;
}

std::uint64_t tbb_fib(int n) {
  if (n < 2) return static_cast<std::uint64_t>(n);
  std::uint64_t first = 0;
  tbb::task_group group;
  group.run([&] { first = tbb_fib(n - 1); });
  const std::uint64_t second = tbb_fib(n - 2);
  group.wait();
  return first + second;
}

}  // namespace

int main(int argc, char** argv) {
  const auto opts = bench::parse(argc, argv);
  const int n = static_cast<int>(opts.param("n", 30));
  const std::uint64_t expected = fib_reference(n);
  if (opts.system == "weft") {
    weft::runtime rt(bench::weft_options(opts));
    bench::run_timed(opts,
                     [&] { bench::check(rt.block_on(weft_fib(n)) == expected, "weft fib value"); });
  } else if (opts.system == "weft_spawn") {
    weft::runtime rt(bench::weft_options(opts));
    bench::run_timed(opts, [&] {
      bench::check(rt.block_on(weft_spawn_fib(n)) == expected, "weft_spawn fib value");
    });
  } else if (opts.system == "onetbb") {
    // The calling thread takes part in task_group::wait, so it counts as one of the threads.
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, opts.threads);
    bench::run_timed(opts, [&] { bench::check(tbb_fib(n) == expected, "tbb fib value"); });
  } else {
    bench::unknown_system(opts);
  }
  bench::emit_end();
}
