// scheduler/simulation.cpp: the event log of the deterministic mode (simulation.hpp has the
// design; the loop that makes the choices is worker::run_deterministic in worker.cpp).
#include "simulation.hpp"

namespace weft::detail {

std::uint64_t simulation::id_of(const void* frame) {
  auto [it, inserted] = ids_.try_emplace(frame, next_id_);
  if (inserted) ++next_id_;
  return it->second;
}

void simulation::spawned(const void* frame, std::uint64_t now) {
  std::lock_guard lock(mutex_);
  // A new task: a fresh id, even if its frame reuses the address of a finished coroutine.
  const std::uint64_t id = next_id_++;
  ids_[frame] = id;
  events_.push_back({task_event::kind::spawned, id, running_, now});
}

void simulation::resumed(const void* frame, std::uint64_t now) {
  std::lock_guard lock(mutex_);
  running_ = id_of(frame);
  events_.push_back({task_event::kind::resumed, running_, 0, now});
}

void simulation::completed(const void* frame, std::uint64_t now) {
  std::lock_guard lock(mutex_);
  const auto it = ids_.find(frame);
  if (it == ids_.end()) return;  // spawned before the log existed: cannot happen, but harmless
  events_.push_back({task_event::kind::completed, it->second, 0, now});
  ids_.erase(it);  // the frame is about to go; its address may come back as a new task's
}

std::vector<task_event> simulation::events() const {
  std::lock_guard lock(mutex_);
  return events_;
}

}  // namespace weft::detail
