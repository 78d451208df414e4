// scheduler/registry.hpp: the runtime's list of live spawned tasks.
//
// The runtime must be able to find every pending task: to destroy it at shutdown (a task waiting
// on something that never comes is reachable from nowhere else) and to count and list tasks for
// diagnostics. Tasks are linked intrusively through their headers into shards.
//
// Each worker owns one shard and is the only thread that links or unlinks its tasks, with plain
// loads and stores: a task is listed by the worker that starts it and, in the common case, ends
// on that worker too, which costs no atomic operation here. A task that completes on another
// thread (it suspended and was woken elsewhere) cannot be unlinked there, so the completer pushes
// it onto the shard's `remote_done` stack (one CAS) and leaves the task's `listed` bit set; the
// owner drains that stack at its next tick or before it parks, unlinks those tasks and clears
// their `listed` bit. The frame is destroyed by whichever of completer, join_handle and owner
// makes the state reach done + detached + not listed (task_header.hpp).
//
// Spawned tasks are listed when they start, not when they are spawned: a spawn pushes the task
// as a tagged item (unlisted_item, below), and the worker that first takes it from a queue lists
// it in its own shard (worker::admit, adopt). Until then runtime_core::unlisted_queued() counts it.
// Two reasons, both measured:
//   - a task listed by its spawner and stolen ended on the thief, so every stolen task went
//     through the remote stack: a CAS on the shared stack by the thief, then, on the spawner, a
//     cache miss on the task's header, an unlink and a locked RMW, long after the task ended (a
//     spawner in a loop drains only when its resumption returns). In bench spawn_many the drain
//     was 13% of the samples, and in task_group_spawn it made the two workers take turns: the
//     spawner of one run spent the next run draining a million tasks while the other spawned
//     alone. Listed by the thief, a stolen task ends where it is listed. `AB_PROCS=4 bench/ab`
//     against the commit before: spawn_many 0.71 (P(faster) 0.98), task_group_spawn 0.54 (0.99),
//     spawn_remote 0.80 (0.86), chained_spawn 0.98, yield_many 1.03 (docs/architecture.md).
//   - a task spawned from a thread outside the pool has no shard of its own to go to: listing it
//     at the spawn, in one shared shard, made the spawner and every worker that completed such a
//     task fight over that shard's lock (perf of bench spawn_remote: 40% of the workers' time
//     spinning on it).
// So runtime::tasks() and runtime::dump() list a task from its first run on; a queued task that
// has not started is counted (stats().live_tasks, runtime_dump::not_started), not listed. An eager
// spawn (run at once, nested in the spawner) is listed by the spawner, which is what starts it.
//
// One extra shard has no owner; every operation on it holds its spinlock. It lists what no worker
// lists: the unstarted tasks that shutdown found in the stopped queues, for its sweep. Its lock is
// also what a foreign spawn holds from its `closing` check to its injection (spawn_root).
//
// The owner's links and unlinks exclude the visitors (runtime::dump, runtime::tasks: any thread)
// so that those can walk any shard without the owner's cooperation: a worker busy in one long
// task does not hide its tasks. Invariant: a task reachable from a shard's list inside a
// visitor's section is alive (its frame is destroyed only after it was unlinked, which needs the
// owner's section), so the visitor may read its header's atomics and its name. The owner's other
// reads of its list (cancel_all, describe) need no exclusion: only the owner writes it.
//
// The exclusion is asymmetric where heavy_fence() is available (heavy_fence.hpp): the owner
// enters with two plain stores and a load around a compiler barrier (owner_enter), a visitor
// with the shard's spinlock and a heavy fence (visitor_enter), a Dekker pair in which one side
// pays for both. The owner used to take the spinlock itself: its exchange, a full barrier on every
// spawn and every completion, waited for the stores into the new task's frame (cold memory in a
// burst of spawns) and was 93% of spawn_root's samples in bench spawn_many (perf, 2026-12-07);
// without it spawn_many took 0.69x the time. Where the fence is unavailable (old kernels, seccomp,
// ThreadSanitizer) both sides take the spinlock, as before.
//
// After the runtime's threads are joined (shutdown), the runtime reads everything single-threaded.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/detail/task_header.hpp>
#include <weft/scheduler/runtime.hpp>

#include <weft/scheduler/detail/spinlock.hpp>
#include "heavy_fence.hpp"
#include "parker.hpp"

namespace weft::detail {

struct alignas(64) registry_shard {
  // The shard's tasks, linked through their headers (intrusive_list.hpp: a head alone, since
  // tasks are pushed at the front, unlinked from anywhere and walked).
  task_header::registry_list tasks;
  // Written by the owner (or under `lock`), read by stats() from any thread.
  std::atomic<std::size_t> count{0};
  bool shared = false;  // the shard of foreign threads: guarded by `lock`
  // Held by every visitor (runtime::dump, runtime::tasks), by every operation on the shared
  // shard, and by the owner's links and unlinks where the exclusion is symmetric (`asymmetric`
  // false; registry::owner_enter).
  spinlock lock;
  // The asymmetric exclusion (registry::owner_enter, visitor_enter): set once, before the
  // workers start (heavy_fence_available()), never for the shared shard.
  bool asymmetric = false;
  // The owner is inside its section (written by the owner only), and a visitor wants in or is in
  // (written by visitors only, under `lock`). Each side stores its flag, then reads the other's.
  std::atomic<bool> owner_in{false};
  std::atomic<bool> visitor_in{false};
  // The owning worker's parker (null for the shared shard): a completer that hands the owner its
  // first finished task wakes it, so that a parked owner still unlinks and frees promptly.
  parker* owner = nullptr;
  // Tasks of this shard that completed on another thread, linked through their `awaiting` word
  // (task_header.hpp: free once a task completed).
  alignas(64) std::atomic<task_header*> remote_done{nullptr};
  // runtime::shutdown's request to cancel this shard's tasks: shutdown bumps `request` after it
  // set `closing`, the owner notices between two tasks (a relaxed peek, then an acquire load) and
  // copies it into `seen`. Ordering: see worker::serve_requests and runtime_core::shutdown.
  std::atomic<std::uint64_t> request{0};
  std::atomic<std::uint64_t> seen{0};  // the owner's only (atomic for the relaxed peek's type)
};

// A task on its way to the worker that will start it (the file comment): its header's address
// with bit 0 set.
// The queues' other items are frame addresses, which have bit 0 clear (frames are allocated with
// at least 16-byte alignment), so one test tells them apart where items are taken to run
// (worker::admit).
static_assert(alignof(task_header) >= 2, "bit 0 of a header's address tags an unlisted item");
inline void* unlisted_item(task_header* task) noexcept {
  return reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(task) | 1u);
}
// The task of an unlisted item, or null if `item` is a frame address.
inline task_header* unlisted_task_in(void* item) noexcept {
  const auto bits = reinterpret_cast<std::uintptr_t>(item);
  if ((bits & 1u) == 0) return nullptr;
  return reinterpret_cast<task_header*>(bits & ~std::uintptr_t{1});
}

class registry {
 public:
  explicit registry(std::size_t workers) : shards_(workers + 1) {
    shards_.back().shared = true;
    const bool asymmetric = heavy_fence_available();
    for (std::size_t i = 0; i < workers; ++i)
      shards_[i].asymmetric = asymmetric;
  }

  // The owner's section of its shard: each link and unlink. Also whoever links and unlinks once
  // the workers are gone (the shutdown sweep, single-threaded): the protocol needs one owner at a
  // time, not a particular thread.
  //
  // Asymmetric: Dekker's two flags, with the fences split unevenly. The owner stores owner_in,
  // then (compiler barrier only) loads visitor_in; a visitor stores visitor_in, runs heavy_fence(),
  // then loads owner_in. By heavy_fence.hpp, either the visitor's load sees the owner's store (it
  // waits for the owner's release store of false, and its acquire load then sees the section's
  // writes), or the owner's load comes after the fence's point in the owner's program and sees
  // visitor_in set (it backs off before writing anything). Both may happen; then the owner backs
  // off and the visitor goes in. They never both go on. The owner's stores into its list cannot
  // become visible before its owner_in store: x86 keeps stores in order, and the compiler barrier
  // keeps the compiler from moving them up.
  static void owner_enter(registry_shard& shard) noexcept {
    if (!shard.asymmetric) {
      shard.lock.lock();
      return;
    }
    for (;;) {
      // Ordering: relaxed store and load around a signal fence: the frequent side of the
      // heavy_fence pairing (see above), which orders them as seq_cst fences would.
      shard.owner_in.store(true, std::memory_order_relaxed);
      std::atomic_signal_fence(std::memory_order_seq_cst);
      if (!shard.visitor_in.load(std::memory_order_relaxed)) return;
      // A visitor is in or on its way: let it go first. Ordering: release publishes the previous
      // sections to it (it may have read owner_in as true and be waiting for this store);
      // acquire below pairs with visitor_leave's release, though nothing the visitor wrote is
      // read here (visitors only read).
      shard.owner_in.store(false, std::memory_order_release);
      for (unsigned spins = 0; shard.visitor_in.load(std::memory_order_acquire); ++spins)
        backoff(spins);
    }
  }
  static void owner_leave(registry_shard& shard) noexcept {
    if (!shard.asymmetric) {
      shard.lock.unlock();
      return;
    }
    // Ordering: release pairs with visitor_enter's acquire load: the section's writes (the list's
    // links, the count) are visible to the visitor that sees false.
    shard.owner_in.store(false, std::memory_order_release);
  }

  // A visitor's section (any thread; rare): runtime::dump's walk, runtime::tasks. Visitors are
  // serialized by the spinlock; see owner_enter for the pairing with the owner.
  static void visitor_enter(registry_shard& shard) noexcept {
    shard.lock.lock();
    if (!shard.asymmetric) return;
    // Ordering: relaxed store, then the heavy fence (the rare side of the pairing), then acquire
    // loads that pair with owner_leave's (and owner_enter's back-off) release store.
    shard.visitor_in.store(true, std::memory_order_relaxed);
    heavy_fence();
    for (unsigned spins = 0; shard.owner_in.load(std::memory_order_acquire); ++spins)
      backoff(spins);
  }
  static void visitor_leave(registry_shard& shard) noexcept {
    // Ordering: release, paired with owner_enter's acquire wait (nothing to publish but order).
    if (shard.asymmetric) shard.visitor_in.store(false, std::memory_order_release);
    shard.lock.unlock();
  }
  // A visitor's section for a scope.
  class visit {
   public:
    explicit visit(registry_shard& shard) noexcept : shard_(shard) { visitor_enter(shard_); }
    ~visit() { visitor_leave(shard_); }
    visit(const visit&) = delete;
    visit& operator=(const visit&) = delete;

   private:
    registry_shard& shard_;
  };

  registry_shard& worker_shard(std::size_t index) noexcept { return shards_[index]; }
  registry_shard& foreign_shard() noexcept { return shards_.back(); }

  // Links `task` into `shard`. The caller is the shard's owner, or any thread for the shared shard.
  // Ordering: the owner's section (or the shared shard's lock) orders the links against the
  // visitors' walks (owner_enter).
  static void insert(registry_shard& shard, task_header* task) noexcept {
    if (shard.shared) {
      shard.lock.lock();
      insert_locked(shard, task);
      shard.lock.unlock();
      return;
    }
    owner_enter(shard);
    insert_locked(shard, task);
    owner_leave(shard);
  }

  // The same with the shared shard's lock already held by the caller (spawn_root holds it across
  // its shutdown check and the injection, see there), or for a worker's own shard.
  static void insert_locked(registry_shard& shard, task_header* task) noexcept {
    task->shard_ = &shard;
    shard.tasks.push_front(task);
    shard.count.store(shard.count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  // Unlinks `task` from its shard. The caller is the shard's owner, or any thread for the shared
  // shard, or the runtime at shutdown.
  static void unlink(task_header* task) noexcept {
    registry_shard* shard = task->shard_;
    if (shard == nullptr) return;
    if (shard->shared) {
      shard->lock.lock();
      unlink_locked(task);
      shard->lock.unlock();
      return;
    }
    owner_enter(*shard);
    unlink_locked(task);
    owner_leave(*shard);
  }

  // The same with the shared shard's lock held by the caller.
  static void unlink_locked(task_header* task) noexcept {
    registry_shard* shard = task->shard_;
    shard->tasks.remove(task);
    shard->count.store(shard->count.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    task->shard_ = nullptr;
  }

  // runtime::shutdown: requests cancellation of every unfinished task of `shard`. Caller: the
  // owner, or anyone holding the lock of the shared shard.
  static void cancel_all(const registry_shard& shard) noexcept {
    for (task_header& task : shard.tasks) {
      task_header* t = &task;
      // Relaxed: a snapshot. A listed task's frame is alive (the caller owns the shard), and
      // nothing of the task's result is read; a task that finishes meanwhile ignores the request
      // (request_cancel on a done task only sets bits nobody reads).
      if ((t->state_word().load(std::memory_order_relaxed) & task_header::done_bit) == 0) {
        request_cancel(t);
      }
    }
  }

  // A thread other than the owner completed `task`: hand it to the owner. The first task pushed
  // onto an empty stack also unparks the owner: it may be asleep, and it must unlink the task
  // (stats().live_tasks is exact on an idle runtime, and the frame's memory is released). If the
  // owner is awake, the unpark only makes its next park() return at once.
  static void push_remote(task_header* task) noexcept {
    registry_shard& shard = *task->shard_;
    task_header* head = shard.remote_done.load(std::memory_order_relaxed);
    do {
      task->awaiting_link().store(head, std::memory_order_relaxed);
      // Ordering: release publishes the link (and the completion) to the owner's acquire
      // exchange in drain_remote().
    } while (!shard.remote_done.compare_exchange_weak(head, task, std::memory_order_release,
                                                      std::memory_order_relaxed));
    // `task` may be freed by the owner from here on; only the shard is touched.
    if (head == nullptr) shard.owner->unpark();
  }

  // Owner only: unlinks the tasks that completed elsewhere and clears their `listed` bit,
  // destroying those whose handle is already gone.
  static void drain_remote(registry_shard& shard) noexcept {
    // Relaxed peek: a push missed here unparks the owner, which drains again.
    if (shard.remote_done.load(std::memory_order_relaxed) == nullptr) return;
    // Ordering: acquire pairs with push_remote's release CAS: each task's link and its
    // completion (the frame's final writes) are visible before the task is unlinked or destroyed.
    task_header* task = shard.remote_done.exchange(nullptr, std::memory_order_acquire);
    while (task != nullptr) {
      task_header* next = task->awaiting_link().load(std::memory_order_relaxed);
      unlink(task);
      // Ordering: acq_rel, see task_header.hpp: this may be the last of the three parties.
      const std::uintptr_t before =
          task->state_word().fetch_and(~task_header::listed_bit, std::memory_order_acq_rel);
      if ((before & (task_header::done_bit | task_header::detached_bit)) ==
          (task_header::done_bit | task_header::detached_bit)) {
        task->frame().destroy();
      }
      task = next;
    }
  }

  // The live (unfinished) tasks of `shard`. Caller: the owner, or anyone holding the lock of the
  // shared shard.
  static std::vector<task_info> describe(const registry_shard& shard) {
    std::vector<task_info> out;
    for (task_header& task : shard.tasks) {
      task_header* t = &task;
      // Relaxed, like the other reads here: a diagnostic snapshot of a listed (so live) task. Its
      // name was written before the task was listed, by the lister itself or under the lock.
      if ((t->state_word().load(std::memory_order_relaxed) & task_header::done_bit) != 0) continue;
      task_info info;
      info.name = t->name() != nullptr ? t->name() : "";
      if ((t->cancel_word().load(std::memory_order_relaxed) & task_header::cancel_pending) != 0) {
        info.state = task_info::state_type::cancelling;
      } else if (t->hook_slot().load(std::memory_order_relaxed) != nullptr) {
        info.state = task_info::state_type::waiting;
      }
      out.push_back(std::move(info));
    }
    return out;
  }

  // Owner only: records that the pending request was served.
  static void acknowledge(registry_shard& shard) noexcept {
    // Relaxed: only the owner reads `seen`; the request's ordering is taken by the caller's
    // acquire load of `request` (worker::serve_requests).
    shard.seen.store(shard.request.load(std::memory_order_relaxed), std::memory_order_relaxed);
  }

  [[nodiscard]] std::size_t shard_count() const noexcept { return shards_.size(); }

 private:
  // The other side is in a short section (a few stores), unless it was preempted.
  static void backoff(unsigned spins) noexcept {
    if (spins < 128) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    } else {
      std::this_thread::yield();
    }
  }

 public:
  [[nodiscard]] std::size_t size() const noexcept {
    std::size_t total = 0;
    for (const auto& shard : shards_)
      total += shard.count.load(std::memory_order_relaxed);
    return total;
  }

  // Shutdown only (no other thread runs): drains every remote stack, then lists every live task.
  [[nodiscard]] std::vector<task_header*> drain_and_snapshot() {
    for (auto& shard : shards_)
      drain_remote(shard);
    std::vector<task_header*> tasks;
    for (const auto& shard : shards_) {
      for (task_header& t : shard.tasks)
        tasks.push_back(&t);
    }
    return tasks;
  }

 private:
  std::vector<registry_shard> shards_;
};

}  // namespace weft::detail
