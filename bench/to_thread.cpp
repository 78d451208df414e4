// bench/to_thread.cpp: the round trip of an empty function through a blocking pool. One task
// awaits `calls` calls one after another; operations = calls. weft: co_await weft::to_thread.
// Peer: std::async(std::launch::async, fn).get() from a plain thread (what a C++ program without
// a pool does for a blocking call). Every call is timed alone; p50 and p99 of the round trip (in
// microseconds, over the timed runs) go into the extra fields.
#include <algorithm>
#include <chrono>
#include <future>
#include <string>
#include <vector>

#include <weft/weft.hpp>

#include "harness.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

int empty_function(int x) { return x + 1; }

weft::task<long> weft_round_trips(long calls, std::vector<double>& latencies_us) {
  long sum = 0;
  for (long i = 0; i < calls; ++i) {
    const auto start = clock_type::now();
    sum += co_await weft::to_thread(empty_function, static_cast<int>(i & 1));
    latencies_us.push_back(
        std::chrono::duration<double, std::micro>(clock_type::now() - start).count());
  }
  co_return sum;
}

long expected_sum(long calls) { return calls + calls / 2; }  // i & 1 plus one per call

std::string percentiles(std::vector<double>& us) {
  std::sort(us.begin(), us.end());
  auto at = [&](double q) {
    return us[static_cast<std::size_t>(q * static_cast<double>(us.size() - 1))];
  };
  char buffer[128];
  std::snprintf(buffer, sizeof buffer, "\"p50_us\":%.2f,\"p99_us\":%.2f", at(0.50), at(0.99));
  return buffer;
}

}  // namespace

int main(int argc, char** argv) {
  const auto opts = bench::parse(argc, argv);
  const long calls = opts.param("calls", 100000);
  std::vector<double> timed;  // every call's round trip, warm-up runs first
  timed.reserve(static_cast<std::size_t>(calls) *
                static_cast<std::size_t>(opts.runs + opts.warmup));
  if (opts.system == "weft") {
    weft::runtime rt(bench::weft_options(opts));
    bench::run_timed(opts, [&] {
      bench::check(rt.block_on(weft_round_trips(calls, timed)) == expected_sum(calls),
                   "weft to_thread sum");
    });
  } else if (opts.system == "std_async") {
    bench::run_timed(opts, [&] {
      long sum = 0;
      for (long i = 0; i < calls; ++i) {
        const auto start = clock_type::now();
        sum += std::async(std::launch::async, empty_function, static_cast<int>(i & 1)).get();
        timed.push_back(
            std::chrono::duration<double, std::micro>(clock_type::now() - start).count());
      }
      bench::check(sum == expected_sum(calls), "std::async sum");
    });
  } else {
    bench::unknown_system(opts);
  }
  timed.erase(timed.begin(), timed.begin() + calls * opts.warmup);  // the warm-up runs' calls
  bench::emit_end(percentiles(timed));
}
