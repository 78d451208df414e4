// scheduler/offload.cpp: the entry points of to_thread.hpp and compute.hpp that find the calling
// task's runtime and hand the call to its blocking pool or oneTBB arena. The pools themselves
// (blocking_pool.cpp, compute_arena.cpp) know the runtime only as an offload_host.
#include <stdexcept>

#include <weft/scheduler/compute.hpp>
#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/to_thread.hpp>

#include "runtime_core.hpp"

namespace weft::detail {

blocking_submit_result blocking_submit(blocking_call* call) {
  runtime_core* rt = current_runtime_core();
  if (rt == nullptr) throw std::logic_error("weft::to_thread called outside a weft runtime");
  return rt->blocking->submit(call);
}

bool blocking_cancel(runtime_core* rt, blocking_call* call) noexcept {
  // The task's runtime, not call->pool: a cancel may run before the submit set it, and must then
  // mark the call under the same lock the submit takes.
  return rt->blocking->cancel(call);
}

void compute_prepare(compute_job* job) {
  runtime_core* rt = current_runtime_core();
  if (rt == nullptr) throw std::logic_error("weft::compute called outside a weft runtime");
  compute_arena_prepare(*rt->compute, job);
}

}  // namespace weft::detail
