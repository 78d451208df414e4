// bench/skynet.cpp: wide fan-out and reduce. Each task spawns 10 children until depth 6
// (1,000,000 leaves, 1,111,111 tasks); leaves return their number and the sum is checked.
// weft: the children are one `co_await weft::fork_join(children)` of an array of ten tasks (the
// fork-join path); weft_spawn: each child is spawned (a join_handle) and the handles are awaited in
// turn (the general path). Peer: oneTBB task_group (the Go peer is skynet.go).
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_group.h>

#include <array>
#include <cstdint>

#include <weft/scheduler/fork_join.hpp>
#include <weft/weft.hpp>

#include "harness.hpp"

namespace {

constexpr int fan_out = 10;

weft::task<std::uint64_t> weft_skynet(std::uint64_t num, std::uint64_t size) {
  if (size == 1) co_return num;
  const std::uint64_t child_size = size / fan_out;
  std::array<weft::task<std::uint64_t>, fan_out> children;
  for (int i = 0; i < fan_out; ++i)
    children[i] = weft_skynet(num + i * child_size, child_size);
  std::uint64_t sum = 0;
  for (std::uint64_t r : co_await weft::fork_join(std::move(children)))
    sum += r;
  co_return sum;
}

weft::task<std::uint64_t> weft_spawn_skynet(std::uint64_t num, std::uint64_t size) {
  if (size == 1) co_return num;
  const std::uint64_t child_size = size / fan_out;
  std::array<weft::join_handle<std::uint64_t>, fan_out> children;
  for (int i = 0; i < fan_out; ++i)
    children[i] = weft::spawn(weft_spawn_skynet(num + i * child_size, child_size));
  std::uint64_t sum = 0;
  for (auto& child : children)
    sum += co_await child;
  co_return sum;
}

std::uint64_t tbb_skynet(std::uint64_t num, std::uint64_t size) {
  if (size == 1) return num;
  const std::uint64_t child_size = size / fan_out;
  std::array<std::uint64_t, fan_out> results{};
  tbb::task_group group;
  for (int i = 0; i < fan_out; ++i)
    group.run([&results, i, num, child_size] {
      results[i] = tbb_skynet(num + i * child_size, child_size);
    });
  group.wait();
  std::uint64_t sum = 0;
  for (auto r : results)
    sum += r;
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  const auto opts = bench::parse(argc, argv);
  const int depth = static_cast<int>(opts.param("depth", 6));
  std::uint64_t size = 1;
  for (int i = 0; i < depth; ++i)
    size *= fan_out;
  const std::uint64_t expected = size * (size - 1) / 2;
  if (opts.system == "weft") {
    weft::runtime rt(bench::weft_options(opts));
    bench::run_timed(opts, [&] {
      bench::check(rt.block_on(weft_skynet(0, size)) == expected, "weft skynet sum");
    });
  } else if (opts.system == "weft_spawn") {
    weft::runtime rt(bench::weft_options(opts));
    bench::run_timed(opts, [&] {
      bench::check(rt.block_on(weft_spawn_skynet(0, size)) == expected, "weft_spawn skynet sum");
    });
  } else if (opts.system == "onetbb") {
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, opts.threads);
    bench::run_timed(opts,
                     [&] { bench::check(tbb_skynet(0, size) == expected, "tbb skynet sum"); });
  } else {
    bench::unknown_system(opts);
  }
  bench::emit_end();
}
