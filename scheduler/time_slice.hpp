// scheduler/time_slice.hpp: the scheduler time slice of the runtime's threads.
//
// Linux 6.12 lets a SCHED_OTHER thread ask for its own time slice (sched_setattr's sched_runtime,
// 100 us to 100 ms; older kernels ignore the field). Under EEVDF a slice sets how soon a running
// thread yields to one that woke, not its share of the CPU. The runtime's threads (workers, the
// poller, blocking-pool threads started from them: every thread named "<thread_name>-...") get
// a 100 us slice once the runtime starts serving latency-sensitive work, because on a full core
// the default slice (about 1.4-3 ms) is what a woken thread waits:
//   - compute() starts the oneTBB arena (compute_arena.cpp): a weft thread woken by a timer or a
//     socket then preempts a TBB thread at once (bench offload_latency);
//   - the poller registers its first descriptor (poller.cpp): a worker that runs I/O tasks
//     without pause then gives the core, within 100 us, to the threads its replies woke, a
//     client on the same machine, say (bench tcp_echo: docs/architecture.md, "Time slices").
// A runtime that never does either keeps the kernel's default.
#pragma once

#include <cstdint>
#include <string>

namespace weft::detail {

// The slice the runtime's threads get.
inline constexpr std::uint64_t short_slice_ns = 100'000;

// Gives every thread of this process whose name starts with "<thread_name>-" (cut to 15
// characters, as thread names are) the short slice, keeping its policy and nice value; a thread
// with a real-time or idle policy keeps its own. Best effort: a thread that refuses, or a kernel
// without custom slices, keeps its default. Scans /proc/self/task: call it once per occasion.
void shorten_runtime_slices(const std::string& thread_name) noexcept;

// Sets the calling thread's slice (0: the kernel's default), keeping its policy and nice value.
void set_own_slice(std::uint64_t ns) noexcept;

}  // namespace weft::detail
