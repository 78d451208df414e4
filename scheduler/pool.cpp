// scheduler/pool.cpp: the workers' shared state (pool.hpp): injection and wake-ups.
#include "pool.hpp"

#include "simulation.hpp"

namespace weft::detail {

pool::pool(runtime_options validated, std::unique_ptr<simulation> deterministic,
           std::shared_ptr<tracer> recorder, poller_host& host, bool hosted)
    : options(std::move(validated)),
      sim(std::move(deterministic)),
      trace(std::move(recorder)),
      idle(options.worker_threads),
      poller(host, {.virtual_time = options.virtual_time,
                    .deterministic = sim != nullptr,
                    .trace = trace.get(),
                    // A frame_executor's one worker is driven by its host, and never parks.
                    .driver_in_park = options.io_driver_in_park && !hosted}) {}

pool::~pool() = default;

void pool::notify_one_if_needed() {
  if (const auto index = idle.worker_to_notify()) parkers[*index]->unpark();
}

void pool::wake_for_local_work() {
  if (const auto index = idle.wake_one()) parkers[*index]->unpark();
}

void pool::inject(void* task) {
  injector.push(task);
  injected.fetch_add(1, std::memory_order_relaxed);  // a statistic
  notify_one_if_needed();
}

void pool::inject_batch(void* const* tasks, std::size_t count) {
  injector.push_bulk(tasks, count);
  injected.fetch_add(count, std::memory_order_relaxed);  // a statistic
  notify_one_if_needed();
}

}  // namespace weft::detail
