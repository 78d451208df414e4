// bench/harness.hpp: the shared harness of the benchmark binaries (arguments, timing, output).
//
// A benchmark binary runs ONE system per process, so bench/run can alternate fresh processes
// (A B A B ...) and compare peak memory per system. It speaks a tiny line protocol with bench/run
// on stdout, one JSON object per line:
//
//   {"ms":12.345}                                  one timed run
//   {"peak_rss_kb":5120,"extra":{...}}             last line: the process's peak RSS + extras
//
// bench/run turns these into the lines of the contract (design/benchmarks.md). Anything meant for
// a human goes to stderr.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>

#include <weft/weft.hpp>

namespace bench {

struct options {
  std::string system;
  int runs = 5;
  int warmup = 1;
  int threads = 2;
  std::map<std::string, std::string> params;  // --key value pairs not known to the harness

  [[nodiscard]] long param(const std::string& key, long fallback) const {
    auto it = params.find(key);
    return it == params.end() ? fallback : std::stol(it->second);
  }
  [[nodiscard]] std::string text_param(const std::string& key, const std::string& fallback) const {
    auto it = params.find(key);
    return it == params.end() ? fallback : it->second;
  }
};

inline int threads_from_env() {
  const char* env = std::getenv("WEFT_BENCH_THREADS");
  if (env == nullptr || *env == '\0') return 2;
  const int n = std::atoi(env);
  return n > 0 ? n : 2;
}

inline options parse(int argc, char** argv) {
  options opts;
  opts.threads = threads_from_env();
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    const std::string value = argv[i + 1];
    if (key.rfind("--", 0) != 0) throw std::invalid_argument("expected --key value: " + key);
    const std::string name = key.substr(2);
    if (name == "system") {
      opts.system = value;
    } else if (name == "runs") {
      opts.runs = std::stoi(value);
    } else if (name == "warmup") {
      opts.warmup = std::stoi(value);
    } else {
      opts.params[name] = value;
    }
  }
  if (opts.system.empty()) throw std::invalid_argument("missing --system");
  return opts;
}

// The runtime every weft side uses: `threads` workers, default everything else.
inline weft::runtime_options weft_options(const options& opts) {
  weft::runtime_options result;
  result.worker_threads = static_cast<std::size_t>(opts.threads);
  return result;
}

inline long peak_rss_kb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;  // kilobytes on Linux
}

// Resident memory now (not the peak), in bytes, from /proc/self/statm.
inline long current_rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  long size = 0;
  long resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

inline void emit_run(double ms) {
  std::printf("{\"ms\":%.4f}\n", ms);
  std::fflush(stdout);
}

// `extra_json` is either empty or a JSON object body without braces, e.g. "\"wait\":\"timer\"".
inline void emit_end(const std::string& extra_json = {}) {
  std::printf("{\"peak_rss_kb\":%ld,\"extra\":{%s}}\n", peak_rss_kb(), extra_json.c_str());
  std::fflush(stdout);
}

// Runs `body` opts.warmup times untimed, then opts.runs times timed, emitting each run.
template <class Body>
void run_timed(const options& opts, Body&& body) {
  for (int i = 0; i < opts.warmup; ++i)
    body();
  for (int i = 0; i < opts.runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    body();
    const auto stop = std::chrono::steady_clock::now();
    emit_run(std::chrono::duration<double, std::milli>(stop - start).count());
  }
}

// Fails the process loudly when a benchmark computed a wrong answer: a fast wrong result must
// never be reported as a number.
inline void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "bench: check failed: %s\n", what);
    std::exit(2);
  }
}

[[noreturn]] inline void unknown_system(const options& opts) {
  std::fprintf(stderr, "bench: unknown --system %s\n", opts.system.c_str());
  std::exit(2);
}

// A one-shot countdown that a plain thread can wait on (for work submitted from outside a pool).
class countdown {
 public:
  void reset(long n) { left_.store(n, std::memory_order_relaxed); }
  // Returns true for the call that reached zero.
  bool arrive() noexcept {
    if (left_.fetch_sub(1, std::memory_order_acq_rel) != 1) return false;
    left_.notify_all();
    return true;
  }
  void wait() const noexcept {
    for (long v = left_.load(std::memory_order_acquire); v != 0;
         v = left_.load(std::memory_order_acquire))
      left_.wait(v, std::memory_order_acquire);
  }
  [[nodiscard]] long left() const noexcept { return left_.load(std::memory_order_acquire); }

 private:
  std::atomic<long> left_{0};
};

}  // namespace bench
