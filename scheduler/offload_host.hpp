// scheduler/offload_host.hpp: what the offload pools need of the runtime that owns them.
//
// The blocking pool (to_thread) and the oneTBB arena (compute) run calls on threads that are not
// the runtime's workers, and need only two things back from it: make the awaiting task runnable
// again when its call ends, and report a straggler at shutdown. This interface is all they see;
// neither includes runtime_core.hpp, so they stand below the runtime as the poller does (its own
// host is poller_host, poller.hpp). runtime_core implements both.
//
// The entry points of to_thread.hpp and compute.hpp, which find the current runtime's pool, are
// in offload.cpp, one level up.
#pragma once

#include <coroutine>
#include <string_view>

namespace weft::detail {

class offload_host {
 public:
  // Makes `waiter` runnable on the runtime from any thread (a pool thread, a TBB thread). Never
  // throws: a wake-up cannot be dropped, so running out of memory there aborts with a message.
  virtual void wake_from_offload(std::coroutine_handle<> waiter) noexcept = 0;
  // Reports through the runtime's log hook (or stderr). Never throws.
  virtual void report(std::string_view message) const noexcept = 0;
  // A compute() call started (true) or ended (false) on the runtime's oneTBB arena; the workers
  // search differently while calls run (pool.hpp, compute_calls). Any thread; never throws.
  virtual void compute_call(bool started) noexcept = 0;

  // report(compose()), where composing the message may run out of memory: that becomes a line
  // saying so rather than an exception out of a noexcept path.
  template <class Compose>
  void report_composed(Compose compose) const noexcept {
    try {
      report(compose());
    } catch (...) {
      report("weft: out of memory while composing a report; the report is lost");
    }
  }

 protected:
  offload_host() = default;
  ~offload_host() = default;
  offload_host(const offload_host&) = default;
  offload_host& operator=(const offload_host&) = default;
};

}  // namespace weft::detail
