// scheduler/time_slice.cpp: the runtime threads' time slice (time_slice.hpp).
#include "time_slice.hpp"

#include <dirent.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

namespace weft::detail {

namespace {

// sched_setattr's argument (linux/sched/types.h; glibc has no wrapper).
struct sched_attributes {
  std::uint32_t size;
  std::uint32_t policy;
  std::uint64_t flags;
  std::int32_t nice;
  std::uint32_t priority;
  std::uint64_t runtime;  // SCHED_OTHER: the time slice in ns (Linux 6.12+; 0 = the default)
  std::uint64_t deadline;
  std::uint64_t period;
};

// Sets the slice of thread `tid` (0: the calling thread) unless its policy is not SCHED_OTHER.
void set_slice(pid_t tid, std::uint64_t ns) noexcept {
  sched_attributes attr{};
  attr.size = sizeof attr;
  if (::syscall(SYS_sched_getattr, tid, &attr, sizeof attr, 0) != 0) return;
  if (attr.policy != SCHED_OTHER || attr.runtime == ns) return;  // a policy the user chose
  attr.size = sizeof attr;
  attr.flags = 0;
  attr.runtime = ns;
  (void)::syscall(SYS_sched_setattr, tid, &attr, 0);
}

}  // namespace

void shorten_runtime_slices(const std::string& thread_name) noexcept {
  try {
    std::string prefix = thread_name + "-";
    prefix.resize(std::min<std::size_t>(prefix.size(), 15));
    DIR* dir = ::opendir("/proc/self/task");
    if (dir == nullptr) return;
    while (const dirent* entry = ::readdir(dir)) {
      if (entry->d_name[0] == '.') continue;
      std::ifstream comm(std::string("/proc/self/task/") + entry->d_name + "/comm");
      std::string name;
      if (!std::getline(comm, name) || name.rfind(prefix, 0) != 0) continue;
      set_slice(static_cast<pid_t>(std::atoi(entry->d_name)), short_slice_ns);
    }
    ::closedir(dir);
  } catch (...) {
    // Out of memory reading /proc: the slices stay as they were.
  }
}

void set_own_slice(std::uint64_t ns) noexcept { set_slice(0, ns); }

}  // namespace weft::detail
