// bench/process_pool.cpp: round trips to worker processes through weft::process_pool, a 64-byte
// argument and a 64-byte result (design/benchmarks.md, row process_pool).
//
//   bench_process_pool --system weft --calls 100000 [--depth D] [--lanes L]
//
// --depth sets process_pool_options::pipeline_depth (default: the option's default) and --lanes
// the number of calling tasks (default 2 x workers), for A/B runs of the pipelining.
//
// A timed run makes `calls` calls from 2 x workers tasks at once (workers = WEFT_BENCH_THREADS),
// so every worker always has a request waiting: throughput. The extra fields come from one more
// phase after the timed runs: `p50_us` and `p99_us` of a single call's round trip with nothing
// else in flight (2,000 calls), and `replace_ms`, the median over 10 crashes of the time from
// sending a call whose worker dies to the end of the next successful call on a one-worker pool
// (detecting the death, reaping, starting the replacement, serving). The peer is Python's
// ProcessPoolExecutor (bench/process_pool.py), a reference at 1/10 the calls.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "harness.hpp"

WEFT_PROCESS_FUNCTION(echo64, [](const std::string& payload) {
  std::string result = payload;
  std::reverse(result.begin(), result.end());
  return result;
});
WEFT_PROCESS_FUNCTION(die_now, [](int) -> int { ::_exit(7); });

namespace {

using clock_type = std::chrono::steady_clock;

double micros(clock_type::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

weft::task<long> caller(weft::process_pool& pool, long calls, const std::string& payload) {
  long ok = 0;
  for (long i = 0; i < calls; ++i) {
    const std::string back = co_await pool.call(echo64, payload);
    ok += back.size() == payload.size() && back.front() == payload.back() ? 1 : 0;
  }
  co_return ok;
}

weft::task<std::string> measure(const bench::options& opts) {
  const long calls = opts.param("calls", 100000);
  const std::string payload(64, 'p');
  std::string extra;
  weft::process_pool_options options;
  options.workers = static_cast<std::size_t>(opts.threads);
  // --depth: process_pool_options::pipeline_depth (its default unless given), for A/B runs.
  options.pipeline_depth =
      static_cast<std::size_t>(opts.param("depth", static_cast<long>(options.pipeline_depth)));
  {
    weft::process_pool pool(options);
    const long lanes = opts.param("lanes", 2 * opts.threads);
    for (int run = 0; run < opts.warmup + opts.runs; ++run) {
      const auto start = clock_type::now();
      std::vector<weft::task<long>> tasks;
      for (long lane = 0; lane < lanes; ++lane)
        tasks.push_back(caller(pool, calls / lanes + (lane < calls % lanes ? 1 : 0), payload));
      long ok = 0;
      for (long n : co_await weft::gather(std::move(tasks)))
        ok += n;
      const auto stop = clock_type::now();
      bench::check(ok == calls, "every call returned the reversed payload");
      if (run >= opts.warmup) bench::emit_run(micros(stop - start) / 1000.0);
    }
    std::vector<double> single;
    for (int i = 0; i < 2000; ++i) {
      const auto start = clock_type::now();
      (void)co_await pool.call(echo64, payload);
      single.push_back(micros(clock_type::now() - start));
    }
    std::sort(single.begin(), single.end());
    extra += "\"p50_us\":" + std::to_string(single[single.size() / 2]) +
             ",\"p99_us\":" + std::to_string(single[single.size() * 99 / 100]);
    co_await pool.close();
  }
  {
    options.workers = 1;
    weft::process_pool pool(options);
    (void)co_await pool.call(echo64, payload);
    std::vector<double> replace;
    for (int i = 0; i < 10; ++i) {
      const auto start = clock_type::now();
      bool crashed = false;
      try {
        (void)co_await pool.call(die_now, 0);
      } catch (const weft::worker_crashed&) {
        crashed = true;
      }
      (void)co_await pool.call(echo64, payload);
      replace.push_back(micros(clock_type::now() - start) / 1000.0);
      bench::check(crashed, "the crashing call failed with worker_crashed");
    }
    std::sort(replace.begin(), replace.end());
    extra += ",\"replace_ms\":" + std::to_string(replace[replace.size() / 2]);
    co_await pool.close();
  }
  co_return extra;
}

}  // namespace

int main(int argc, char** argv) {
  weft::process_pool::serve_if_worker(argc, argv);
  const auto opts = bench::parse(argc, argv);
  if (opts.system != "weft") bench::unknown_system(opts);
  weft::runtime rt(bench::weft_options(opts));
  const std::string extra = rt.block_on(measure(opts));
  bench::emit_end(extra);
  return 0;
}
