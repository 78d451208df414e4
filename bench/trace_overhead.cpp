// bench/trace_overhead.cpp: what recording a trace (runtime_options::trace_file) costs the
// scheduler's busiest path. yield_many's work: `tasks` tasks each yield `yields` times; operations
// = tasks * yields. `weft`: tracing on, a task run per yield (one 16-byte event and one clock read
// on a busy worker); `off`: the same program without a trace file, where each hook is one branch.
// The peer is weft itself without the feature (benchmarks.md: target ratio <= 1.5).
//
// The trace goes to /dev/null by default (`--file path` keeps it): the runs time the recording
// and the writer thread's spilling of full buffers to its scratch file, not the JSON written at
// shutdown.
#include <string>
#include <vector>

#include <weft/weft.hpp>

#include "harness.hpp"

namespace {

weft::task<> yielder(long yields) {
  for (long i = 0; i < yields; ++i)
    co_await weft::yield_now();
}

weft::task<long> root(long tasks, long yields) {
  std::vector<weft::join_handle<void>> handles;
  handles.reserve(static_cast<std::size_t>(tasks));
  for (long i = 0; i < tasks; ++i)
    handles.push_back(weft::spawn_named("yielder", yielder(yields)));
  for (auto& handle : handles)
    co_await handle;
  co_return tasks;
}

}  // namespace

int main(int argc, char** argv) {
  auto opts = bench::parse(argc, argv);
  const long tasks = opts.param("tasks", 200);
  const long yields = opts.param("yields", 1000);
  std::string file = "/dev/null";
  if (auto it = opts.params.find("file"); it != opts.params.end()) {
    file = it->second;
    opts.params.erase(it);
  }
  weft::runtime_options options = bench::weft_options(opts);
  if (opts.system == "weft") {
    options.trace_file = file;
  } else if (opts.system != "off") {
    bench::unknown_system(opts);
  }
  {
    weft::runtime rt(options);
    bench::run_timed(opts,
                     [&] { bench::check(rt.block_on(root(tasks, yields)) == tasks, "tasks"); });
  }
  bench::emit_end();
}
