// bench/frame_budget.cpp: how well weft::frame_executor::run_for keeps a frame's budget.
//
// A host loop at `fps` frames per second (0: back to back) drives run_for(budget_us) for `frames`
// frames. `tasks` tasks live on the executor; each waits for the next frame (a weft::event the
// host sets before each slice; two alternate), does a little work and waits again, so each frame
// resumes up to `tasks` tasks. The executor reads the clock after every resumption and stops at the
// budget, so a slice ends at most one resumption past it: the overrun this benchmark reports (p99
// and max, in extra fields) is that last resumption plus whatever the machine adds: a host thread
// preempted inside the slice (counted with getrusage's involuntary context switches) overruns by
// the length of the preemption, so the p99 over the frames that were not preempted is reported too
// (on a shared 2-core machine under load, every overrun of more than 1 ms came with a switch).
// Target (design/benchmarks.md): p99 overrun under 0.1 ms with 10,000 tasks resumed per frame.
// One timed run is the whole loop; operations are frames. No peer: an absolute budget check.
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "harness.hpp"

namespace {

using steady = std::chrono::steady_clock;

struct shared_state {
  std::array<weft::event, 2> frame_started;  // frame f sets frame_started[f % 2]
  std::vector<double> positions;
  long steps = 0;  // resumptions that did their work (host thread only)
};

weft::task<> entity(shared_state& s, std::size_t index) {
  for (unsigned frame = 1;; ++frame) {
    co_await s.frame_started[frame % 2].wait();
    s.positions[index] += 0.5 * std::sin(static_cast<double>(index + frame));
    ++s.steps;
  }
}

}  // namespace

int main(int argc, char** argv) {
  const auto opts = bench::parse(argc, argv);
  const long tasks = opts.param("tasks", 10000);
  const long frames = opts.param("frames", 600);
  const long fps = opts.param("fps", 60);
  const auto budget = std::chrono::microseconds(opts.param("budget_us", 2000));
  if (opts.system != "weft") bench::unknown_system(opts);

  std::vector<double> overruns_us;
  std::vector<double> unpreempted_us;  // frames whose slice saw no involuntary context switch
  std::vector<double> resumed_per_frame;
  long total_steps = 0;
  bench::run_timed(opts, [&] {
    shared_state s;
    s.positions.assign(static_cast<std::size_t>(tasks), 0.0);
    weft::frame_executor_options options;
    options.overrun_report = std::chrono::seconds(1);  // the overruns are measured, not logged
    weft::frame_executor exec(options);
    for (long i = 0; i < tasks; ++i)
      exec.spawn(entity(s, static_cast<std::size_t>(i))).detach();
    (void)exec.run_until_idle();  // every entity waits for frame 1
    const auto period =
        fps > 0 ? std::chrono::nanoseconds(1'000'000'000 / fps) : std::chrono::nanoseconds::zero();
    auto next_frame = steady::now();
    for (long f = 1; f <= frames; ++f) {
      // Frame f: the tasks waiting on frame_started[f % 2] become ready; the other event is
      // cleared for the frame after (a task resumed now waits on it).
      s.frame_started[(f + 1) % 2].clear();
      s.frame_started[f % 2].set();
      rusage before{};
      getrusage(RUSAGE_THREAD, &before);
      const weft::frame_result slice = exec.run_for(budget);
      rusage after{};
      getrusage(RUSAGE_THREAD, &after);
      const double overrun = std::chrono::duration<double, std::micro>(slice.overrun).count();
      overruns_us.push_back(overrun);
      if (after.ru_nivcsw == before.ru_nivcsw) unpreempted_us.push_back(overrun);
      resumed_per_frame.push_back(static_cast<double>(slice.resumed));
      if (period.count() > 0) {
        next_frame += period;
        std::this_thread::sleep_until(next_frame);
      }
    }
    total_steps += s.steps;
  });  // the executor's destructor cancels the entities

  bench::check(total_steps > 0, "the entities ran");
  bench::check(!overruns_us.empty(), "frames were measured");
  std::sort(overruns_us.begin(), overruns_us.end());
  std::sort(unpreempted_us.begin(), unpreempted_us.end());
  const auto percentile = [](const std::vector<double>& sorted, double p) {
    if (sorted.empty()) return 0.0;
    return sorted[static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1))];
  };
  double mean_resumed = 0;
  for (double r : resumed_per_frame)
    mean_resumed += r;
  mean_resumed /= static_cast<double>(resumed_per_frame.size());
  char extra[384];
  std::snprintf(extra, sizeof extra,
                "\"p50_overrun_us\":%.2f,\"p99_overrun_us\":%.2f,\"max_overrun_us\":%.2f,"
                "\"p99_overrun_unpreempted_us\":%.2f,\"preempted_frames\":%zu,"
                "\"resumed_per_frame\":%.0f",
                percentile(overruns_us, 0.5), percentile(overruns_us, 0.99), overruns_us.back(),
                percentile(unpreempted_us, 0.99), overruns_us.size() - unpreempted_us.size(),
                mean_resumed);
  std::fprintf(stderr, "frame_budget: %s\n", extra);
  bench::emit_end(extra);
}
