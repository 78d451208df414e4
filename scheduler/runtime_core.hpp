// scheduler/runtime_core.hpp: the private state of a runtime, shared by its parts.
//
// A runtime_core owns the workers, the injection queue, the idle coordinator, the registry of live
// tasks and the poller. runtime.cpp builds it, starts the threads, and tears it down in this order:
// stop accepting work, stop and join the workers and the poller, drop the queued task pointers,
// disconnect timers, destroy every pending task (shutdown sweep), free what is left.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <weft/scheduler/runtime.hpp>

#include "idle.hpp"
#include "injector.hpp"
#include "poller.hpp"
#include "registry.hpp"
#include "worker.hpp"

namespace weft::detail {

class runtime_core {
 public:
  explicit runtime_core(runtime_options options);
  ~runtime_core();
  runtime_core(const runtime_core&) = delete;
  runtime_core& operator=(const runtime_core&) = delete;

  void start();
  void shutdown();

  // Makes `task` runnable from a thread that is not one of this runtime's workers.
  void inject(void* task);
  // Makes a batch runnable (the poller's expired timers and ready descriptors).
  void inject_batch(void* const* tasks, std::size_t count);
  // Wakes one parked worker if the idle protocol says one should be woken.
  void notify_one_if_needed();
  // The same for work a worker pushed onto its own deque (see idle.hpp for why it may be cheaper).
  void notify_for_local_work() {
    if (idle.maybe_should_wake_for_local_work()) [[unlikely]] {
      wake_for_local_work();
    }
  }
  [[gnu::noinline]] void wake_for_local_work();

  void report(std::string_view message) const;

  [[nodiscard]] bool stopping() const noexcept { return stopping_.load(std::memory_order_acquire); }
  [[nodiscard]] runtime_stats stats() const noexcept;

  const runtime_options options;
  std::vector<std::unique_ptr<worker>> workers;
  detail::injector injector;
  detail::idle idle;
  detail::registry registry;
  detail::poller poller;

  // Completions and spawns from threads outside the pool.
  std::atomic<std::uint64_t> foreign_spawned{0};
  std::atomic<std::uint64_t> foreign_completed{0};
  std::atomic<std::uint64_t> injected{0};
  // runtime::tasks() callers, one at a time (each worker has one listing buffer).
  std::mutex listing_mutex;

 private:
  void destroy_pending_tasks();

  std::atomic<bool> stopping_{false};
  bool started_ = false;
};

}  // namespace weft::detail
