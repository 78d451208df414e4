// bench/timeout_overhead.cpp: what weft::timeout adds to an awaitable that completes at once.
// `weft`: co_await weft::timeout(1s, ready(i)); `bare`: co_await ready(i). Operations: awaits.
// The peer is weft itself without the timeout (benchmarks.md: ratio <= 1.5 is the target).
#include <chrono>
#include <cstdint>

#include <weft/weft.hpp>

#include "harness.hpp"

namespace {

weft::task<std::uint64_t> ready(std::uint64_t i) { co_return i; }

weft::task<std::uint64_t> with_timeout(long n) {
  using namespace std::chrono_literals;
  std::uint64_t sum = 0;
  for (long i = 0; i < n; ++i) sum += co_await weft::timeout(1s, ready(static_cast<std::uint64_t>(i)));
  co_return sum;
}

weft::task<std::uint64_t> bare(long n) {
  std::uint64_t sum = 0;
  for (long i = 0; i < n; ++i) sum += co_await ready(static_cast<std::uint64_t>(i));
  co_return sum;
}

}  // namespace

int main(int argc, char** argv) {
  const auto opts = bench::parse(argc, argv);
  const long n = opts.param("n", 1000000);
  const std::uint64_t expected = static_cast<std::uint64_t>(n) * static_cast<std::uint64_t>(n - 1) / 2;
  weft::runtime rt(bench::weft_options(opts));
  if (opts.system == "weft") {
    bench::run_timed(opts, [&] { bench::check(rt.block_on(with_timeout(n)) == expected, "sum"); });
  } else if (opts.system == "bare") {
    bench::run_timed(opts, [&] { bench::check(rt.block_on(bare(n)) == expected, "sum"); });
  } else {
    bench::unknown_system(opts);
  }
  bench::emit_end();
}
