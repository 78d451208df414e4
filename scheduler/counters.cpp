// scheduler/counters.cpp: runtime::counters() and its Prometheus rendering.
//
// Every counter is kept where it is written, so that the hot path pays a plain store: per-worker
// counters are single-writer (the worker itself, worker_counters in worker.hpp: a relaxed load and
// a relaxed store, no RMW, no shared cache line), the foreign ones are relaxed RMWs on the rare
// path of spawns from other threads, and the gauges (queue depths, parked workers) are read from
// the structures themselves. A reader sums them with relaxed loads: each value is a recent one,
// and the set is not one instant's (a task may be counted spawned and not yet live), which is what
// a scraper expects of counters read while the program runs.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include <weft/scheduler/diagnostics.hpp>
#include <weft/scheduler/runtime.hpp>

#include "dump.hpp"
#include "runtime_core.hpp"

namespace weft {
namespace detail {
namespace {

double busy_seconds(const worker_counters& c) {
  // Relaxed: single-writer statistics (worker.hpp).
  std::uint64_t ns = c.busy_ns.load(std::memory_order_relaxed);
  const std::uint64_t since = c.awake_since_ns.load(std::memory_order_relaxed);
  if (!c.asleep.load(std::memory_order_relaxed) && since != 0) {
    const auto now =
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::steady_clock::now().time_since_epoch())
                                       .count());
    if (now > since) ns += now - since;
  }
  return static_cast<double>(ns) / 1e9;
}

}  // namespace

runtime_counters counters_of(runtime_core& rt) {
  runtime_counters out;
  const runtime_stats totals = rt.stats();
  out.spawned = totals.spawned;
  out.completed = totals.completed;
  out.injected = totals.injected;
  out.live_tasks = totals.live_tasks;
  out.timers = totals.timers;
  out.blocking_threads = totals.blocking_threads;
  out.blocking_busy =
      totals.blocking_threads - std::min(totals.blocking_idle, totals.blocking_threads);
  out.blocking_queued = totals.blocking_queued;
  out.compute_running = totals.compute_running;
  const std::int64_t injection = rt.injector.length();
  out.injection_queue = injection > 0 ? static_cast<std::uint64_t>(injection) : 0;
  for (std::size_t i = 0; i < rt.workers.size(); ++i) {
    const worker& w = *rt.workers[i];
    worker_stats s;
    s.index = i;
    s.busy_seconds = busy_seconds(w.counters);
    s.spawned = w.counters.spawned.load(std::memory_order_relaxed);
    s.completed = w.counters.completed.load(std::memory_order_relaxed);
    s.stolen = w.counters.stolen.load(std::memory_order_relaxed);
    s.parks = w.counters.parked.load(std::memory_order_relaxed);
    s.local_queue = w.local_queue_depth();
    s.parked = w.counters.asleep.load(std::memory_order_relaxed);
    if (s.parked) ++out.parked_workers;
    out.workers.push_back(s);
  }
  return out;
}

}  // namespace detail

namespace {

// Appends one metric: its HELP and TYPE lines, then one sample per (labels, value).
class exposition {
 public:
  exposition(std::string& out, std::string_view prefix, std::string_view labels)
      : out_(out), prefix_(prefix), labels_(labels) {}

  void header(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    append_name(name);
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    append_name(name);
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }

  void sample(std::string_view name, std::string_view labels, double value) {
    append_name(name);
    if (!labels.empty() || !labels_.empty()) {
      out_ += '{';
      out_ += labels_;
      if (!labels.empty() && !labels_.empty()) out_ += ',';
      out_ += labels;
      out_ += '}';
    }
    // Counts print as integers (exact below 2^53); seconds with nine significant digits.
    char buffer[40];
    if (value == static_cast<double>(static_cast<std::uint64_t>(value)) &&
        value < 9007199254740992.0) {
      std::snprintf(buffer, sizeof buffer, " %llu\n", static_cast<unsigned long long>(value));
    } else {
      std::snprintf(buffer, sizeof buffer, " %.9g\n", value);
    }
    out_ += buffer;
  }

  void single(std::string_view name, std::string_view type, std::string_view help, double value) {
    header(name, type, help);
    sample(name, "", value);
  }

 private:
  void append_name(std::string_view name) {
    out_ += prefix_;
    out_ += '_';
    out_ += name;
  }

  std::string& out_;
  std::string_view prefix_;
  std::string_view labels_;
};

}  // namespace

std::string runtime_counters::to_prometheus(std::string_view prefix,
                                            std::string_view labels) const {
  std::string out;
  exposition e(out, prefix, labels);
  const auto per_worker = [&](std::string_view name, std::string_view type, std::string_view help,
                              auto value_of) {
    e.header(name, type, help);
    for (const worker_stats& w : workers) {
      e.sample(name, "worker=\"" + std::to_string(w.index) + "\"", value_of(w));
    }
  };
  per_worker("worker_busy_seconds_total", "counter",
             "Time each worker spent awake (running tasks or searching for them).",
             [](const worker_stats& w) { return w.busy_seconds; });
  per_worker("worker_spawned_total", "counter", "Tasks spawned on each worker.",
             [](const worker_stats& w) { return static_cast<double>(w.spawned); });
  per_worker("worker_completed_total", "counter", "Spawned tasks that finished on each worker.",
             [](const worker_stats& w) { return static_cast<double>(w.completed); });
  per_worker("worker_steals_total", "counter", "Tasks each worker stole from the others.",
             [](const worker_stats& w) { return static_cast<double>(w.stolen); });
  per_worker("worker_parks_total", "counter", "Times each worker went to sleep.",
             [](const worker_stats& w) { return static_cast<double>(w.parks); });
  per_worker("worker_local_queue_depth", "gauge", "Tasks in each worker's local queue.",
             [](const worker_stats& w) { return static_cast<double>(w.local_queue); });
  // The runtime-wide series: one sample each.
  struct single_series {
    std::string_view name;
    std::string_view type;
    std::string_view help;
    double value;
  };
  const auto count = [](auto n) { return static_cast<double>(n); };
  const single_series singles[] = {
      {"tasks_spawned_total", "counter", "Tasks spawned, from any thread.", count(spawned)},
      {"tasks_completed_total", "counter", "Spawned tasks that finished.", count(completed)},
      {"tasks_injected_total", "counter", "Tasks that entered through the injection queue.",
       count(injected)},
      {"tasks_live", "gauge", "Spawned tasks not yet finished.", count(live_tasks)},
      {"injection_queue_depth", "gauge", "Tasks waiting in the injection queue.",
       count(injection_queue)},
      {"workers_parked", "gauge", "Workers asleep now.", count(parked_workers)},
      {"timers", "gauge", "Timers waiting in the timer wheel.", count(timers)},
      {"blocking_threads", "gauge", "Threads of the to_thread pool.", count(blocking_threads)},
      {"blocking_busy_threads", "gauge", "Threads of the to_thread pool running a call.",
       count(blocking_busy)},
      {"blocking_queued", "gauge", "to_thread calls waiting for a thread.", count(blocking_queued)},
      {"compute_running", "gauge", "compute() calls submitted and not yet ended.",
       count(compute_running)},
  };
  for (const single_series& s : singles)
    e.single(s.name, s.type, s.help, s.value);
  return out;
}

runtime_counters runtime::counters() const { return detail::counters_of(*core_); }

}  // namespace weft
