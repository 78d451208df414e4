// scheduler/heavy_fence.cpp: membarrier(2) behind heavy_fence() (heavy_fence.hpp).
#include "heavy_fence.hpp"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>

#include "tsan.hpp"

namespace weft::detail {

namespace {

bool register_once() noexcept {
#if WEFT_TSAN
  return false;  // TSan would not see the ordering the barrier gives (heavy_fence.hpp)
#else
  const long supported = ::syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  if (supported < 0 || (supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return false;
  return ::syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#endif
}

}  // namespace

bool heavy_fence_available() noexcept {
  static const bool available = register_once();
  return available;
}

void heavy_fence() noexcept {
  // The process is registered (heavy_fence_available), after which the kernel has no reason to
  // refuse the command. If it ever did, the other side's accesses would be unordered and a
  // protocol relying on this could hand one task to two threads: stop instead.
  if (::syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) std::abort();
}

}  // namespace weft::detail
