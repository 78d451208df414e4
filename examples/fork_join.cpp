// examples/fork_join.cpp: divide and conquer on the pool with weft::fork_join. Docs:
// docs/patterns/fork-join.md.
//
// A parallel sum of ten million numbers, split in halves down to blocks of 10,000 (the tuple
// form), fib(25) with no cutoff at all (every call is a task), and a fan-out of eight parts where
// one fails: fork_join waits for all, cancels the rest and rethrows the first failure.
//
//   Python (concurrent.futures / asyncio)           weft
//   results = await asyncio.gather(a(), b())        auto [x, y] = co_await weft::fork_join(a(),
//   b()); (children borrow nothing, run on one thread)    (children may borrow from the caller's
//   frame,
//                                                    run in parallel on every worker)
#include <array>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <weft/scheduler/fork_join.hpp>
#include <weft/weft.hpp>

#include "example_support.hpp"

namespace examples::fork_join {

namespace {

// The children borrow `numbers` from the caller: fork_join returns only after all have finished.
weft::task<std::uint64_t> parallel_sum(std::span<const std::uint32_t> numbers) {
  if (numbers.size() <= 10'000) {
    co_return std::accumulate(numbers.begin(), numbers.end(), std::uint64_t{0});
  }
  const std::size_t half = numbers.size() / 2;
  auto [left, right] = co_await weft::fork_join(parallel_sum(numbers.first(half)),
                                                parallel_sum(numbers.subspan(half)));
  co_return left + right;
}

weft::task<std::uint64_t> fib(int n) {
  if (n < 2) co_return static_cast<std::uint64_t>(n);
  auto [a, b] = co_await weft::fork_join(fib(n - 1), fib(n - 2));
  co_return a + b;
}

weft::task<int> part(int i) {
  if (i == 5) throw std::runtime_error("part 5 failed");
  co_await weft::sleep(std::chrono::milliseconds(i == 0 ? 1000 : 1));  // part 0 is cancelled
  co_return i;
}

weft::task<bool> async_main() {
  bool ok = true;
  std::vector<std::uint32_t> numbers(10'000'000);
  std::iota(numbers.begin(), numbers.end(), 1U);
  stopwatch watch;
  const std::uint64_t sum = co_await parallel_sum(numbers);
  std::printf("parallel_sum of 1..10^7 = %llu in %.1f ms\n", static_cast<unsigned long long>(sum),
              watch.seconds() * 1e3);
  ok &= check(sum == 10'000'000ULL * 10'000'001ULL / 2, "the parallel sum is n(n+1)/2");

  watch = stopwatch();
  const std::uint64_t f = co_await fib(25);
  std::printf("fib(25) = %llu in %.1f ms (242,785 tasks)\n", static_cast<unsigned long long>(f),
              watch.seconds() * 1e3);
  ok &= check(f == 75025, "fib(25) is 75025");

  watch = stopwatch();
  std::string error;
  try {
    std::array<weft::task<int>, 8> parts{part(0), part(1), part(2), part(3),
                                         part(4), part(5), part(6), part(7)};
    (void)co_await weft::fork_join(std::move(parts));
  } catch (const std::runtime_error& e) {
    error = e.what();
  }
  std::printf(
      "fork_join of 8 parts rethrew \"%s\" after %.3f s (part 0, sleeping 1 s, was "
      "cancelled)\n",
      error.c_str(), watch.seconds());
  ok &= check(error == "part 5 failed", "the first failure is rethrown");
  ok &= check(watch.seconds() < 0.9, "the failure cancelled the sleeping part");
  co_return ok;
}

}  // namespace

int run() { return weft::run(async_main()) ? 0 : 1; }

}  // namespace examples::fork_join

#ifndef WEFT_EXAMPLE_NO_MAIN
int main() { return examples::fork_join::run(); }
#endif
