// scheduler/compute_arena.hpp: the runtime's oneTBB arena behind weft::compute (the awaiter is in
// compute.hpp, the implementation and its argument in compute_arena.cpp). Only compute_arena.cpp
// includes oneTBB: the rest of the runtime sees this opaque type.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include <weft/scheduler/runtime.hpp>

namespace weft::detail {

class offload_host;
class compute_arena;
struct compute_job;

struct compute_arena_deleter {
  void operator()(compute_arena* arena) const noexcept;
};
using compute_arena_ptr = std::unique_ptr<compute_arena, compute_arena_deleter>;

// The arena itself is created lazily, by the first compute() call: a runtime that never computes
// starts no TBB thread.
// `host` is the owning runtime; `thread_name` its runtime_options::thread_name.
compute_arena_ptr make_compute_arena(offload_host& host, std::size_t threads,
                                     const std::string& thread_name);

// compute.hpp's prepare for a call on this arena (offload.cpp finds the runtime's arena).
void compute_arena_prepare(compute_arena& arena, compute_job* job);

// runtime shutdown, with the workers stopped and before the task sweep: cancels every running
// call's group context and waits until each fn has returned, since fn may use its frame, which
// the sweep is about to destroy. A call still running after `report_after` is reported once
// (through the log hook), and waited for all the same.
void shutdown_compute_arena(compute_arena& arena, std::chrono::milliseconds report_after);

[[nodiscard]] std::size_t compute_running(const compute_arena& arena) noexcept;

// The CPUs this process may use: its affinity mask, capped by the cgroup's CPU quota (v2
// cpu.max, or v1 cpu.cfs_quota_us / cpu.cfs_period_us), at least 1.
[[nodiscard]] std::size_t allowed_cpus() noexcept;

}  // namespace weft::detail
