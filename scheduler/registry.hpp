// scheduler/registry.hpp: the runtime's list of live spawned tasks.
//
// The runtime must be able to find every pending task: to destroy it at shutdown (a task waiting on
// something that never comes is reachable from nowhere else) and to list tasks for diagnostics.
// Tasks are linked intrusively through their headers into one shard per worker plus one for
// threads outside the pool, so that a worker inserting into its own shard never contends with
// another worker. A task is removed from the shard it was inserted into, by whichever thread
// completes it; that is the only cross-thread access and it holds the shard's spinlock.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include <weft/scheduler/detail/task_header.hpp>

#include "spinlock.hpp"

namespace weft::detail {

struct alignas(64) registry_shard {
  spinlock lock;
  task_header* head = nullptr;
  std::size_t count = 0;
};

class registry {
 public:
  explicit registry(std::size_t shards) : shards_(shards) {}

  void insert(std::size_t shard_index, task_header* task) noexcept {
    registry_shard& shard = shards_[shard_index];
    task->shard = &shard;
    shard.lock.lock();
    task->registry_prev = nullptr;
    task->registry_next = shard.head;
    if (shard.head != nullptr) shard.head->registry_prev = task;
    shard.head = task;
    ++shard.count;
    shard.lock.unlock();
  }

  static void remove(task_header* task) noexcept {
    registry_shard* shard = task->shard;
    if (shard == nullptr) [[unlikely]] return;
    shard->lock.lock();
    if (task->registry_prev != nullptr) {
      task->registry_prev->registry_next = task->registry_next;
    } else {
      shard->head = task->registry_next;
    }
    if (task->registry_next != nullptr) task->registry_next->registry_prev = task->registry_prev;
    --shard->count;
    shard->lock.unlock();
    task->shard = nullptr;
  }

  [[nodiscard]] std::size_t size() noexcept {
    std::size_t total = 0;
    for (auto& shard : shards_) {
      shard.lock.lock();
      total += shard.count;
      shard.lock.unlock();
    }
    return total;
  }

  // Shutdown only (no other thread touches the registry): every live task.
  [[nodiscard]] std::vector<task_header*> snapshot() const {
    std::vector<task_header*> tasks;
    for (const auto& shard : shards_) {
      for (task_header* t = shard.head; t != nullptr; t = t->registry_next)
        tasks.push_back(t);
    }
    return tasks;
  }

 private:
  std::vector<registry_shard> shards_;
};

}  // namespace weft::detail
