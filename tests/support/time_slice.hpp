// tests/support/time_slice.hpp: reading a thread's scheduler time slice (scheduler/time_slice.hpp
// sets the runtime threads' slice; test_compute and test_io_source check when).
#pragma once

#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>

namespace weft_test {

// The time slice of the calling thread in ns (sched_getattr's sched_runtime), or -1 if unknown.
inline long long slice_of_this_thread() {
  struct {
    std::uint32_t size;
    std::uint32_t policy;
    std::uint64_t flags;
    std::int32_t nice;
    std::uint32_t priority;
    std::uint64_t runtime, deadline, period;
  } attr{};
  if (::syscall(SYS_sched_getattr, 0, &attr, sizeof attr, 0) != 0) return -1;
  return static_cast<long long>(attr.runtime);
}

// Linux 6.12 added custom time slices for SCHED_OTHER.
inline bool kernel_has_custom_slices() {
  utsname u{};
  if (::uname(&u) != 0) return false;
  int major = 0;
  int minor = 0;
  if (std::sscanf(u.release, "%d.%d", &major, &minor) != 2) return false;
  return major > 6 || (major == 6 && minor >= 12);
}

}  // namespace weft_test
