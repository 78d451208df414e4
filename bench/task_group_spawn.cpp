// bench/task_group_spawn.cpp: spawning into a task_group and joining it, against bare spawn and
// join. `weft`: n children spawned into one group, then co_await group.join(); `bare`: n
// weft::spawn, then co_await of every handle. Operations: children. Target: ratio <= 1.2.
// `start_soon`: the group's children started with task_group::start_soon (no handles; ended
// children are freed in batches while the group lives), for its cost per child and its peak
// memory against `weft`'s, which keeps every child's frame until the group ends.
#include <cstdint>
#include <vector>

#include <weft/weft.hpp>

#include "harness.hpp"

namespace {

weft::task<> child() { co_return; }

weft::task<> in_group(long n) {
  weft::task_group group;
  for (long i = 0; i < n; ++i)
    group.spawn(child());
  co_await group.join();
}

weft::task<> in_group_start_soon(long n) {
  weft::task_group group;
  for (long i = 0; i < n; ++i)
    group.start_soon(child());
  co_await group.join();
}

weft::task<> bare(long n) {
  std::vector<weft::join_handle<void>> handles;
  handles.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i)
    handles.push_back(weft::spawn(child()));
  for (auto& handle : handles)
    co_await handle;
}

}  // namespace

int main(int argc, char** argv) {
  const auto opts = bench::parse(argc, argv);
  const long n = opts.param("n", 1000000);
  weft::runtime rt(bench::weft_options(opts));
  if (opts.system == "weft") {
    bench::run_timed(opts, [&] { rt.block_on(in_group(n)); });
  } else if (opts.system == "start_soon") {
    bench::run_timed(opts, [&] { rt.block_on(in_group_start_soon(n)); });
  } else if (opts.system == "bare") {
    bench::run_timed(opts, [&] { rt.block_on(bare(n)); });
  } else {
    bench::unknown_system(opts);
  }
  bench::emit_end();
}
