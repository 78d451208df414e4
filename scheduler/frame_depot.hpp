// scheduler/frame_depot.hpp: the frames that threads freed beyond their own cache, kept for any
// thread to take, in batches, up to a bound for the whole process.
//
//   frame_depot<128> depot(2 << 20);            // 128 size classes, at most 2 MiB held
//   if (!depot.put(c, head, count, bytes)) ...  // a chain of `count` free frames of class c
//   std::size_t count = 0;
//   if (free_frame* chain = depot.take(c, count)) ...   // a whole batch, or null
//
// Why it exists: frame_allocator.cpp keeps a free list per thread, so a frame freed on the thread
// that allocates the next one costs no lock. When frames are allocated on one thread and freed on
// another (a foreign thread spawning, a worker running what it spawned), the freeing thread's
// cache fills and, without the depot, the surplus goes back to malloc, one lock of the allocating
// thread's arena per frame, while the allocating thread mallocs each new one under the same lock.
// perf of bench/run spawn_remote: a third of the time in malloc, free and their lock. With the
// depot the surplus travels back in batches, one lock per batch on each side.
//
// A batch is a chain of free frames linked through their first word (free_frame::next); the
// first frame of a batch also holds the link to the batch below it on its class's shelf and the
// batch's length (depot_batch), so frames must be at least sizeof(depot_batch) = 24 bytes. The
// depot owns no memory of its own beyond the shelves: it holds frames, it does not allocate them.
//
// Invariants:
//   - A frame is in at most one place: a thread's list, or one batch on one shelf. put() links a
//     chain the caller gave up; take() unlinks a whole batch under the same lock, so no two takers
//     get the same batch.
//   - bytes() never exceeds the bound: put() reserves its bytes with an RMW before linking, and
//     takes the reservation back when that would pass the bound (the caller then frees the chain
//     itself); take() gives the bytes back after unlinking.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <new>

#include <weft/scheduler/detail/atomic.hpp>
#include <weft/scheduler/detail/spinlock.hpp>

namespace weft::detail {

// The first word of a free frame: the next free frame of its list or batch.
struct free_frame {
  free_frame* next;
};

// The first frame of a batch on a shelf.
struct depot_batch : free_frame {
  depot_batch* below;  // the next batch on the same shelf
  std::size_t frames;  // the batch's length, this frame included
};

template <std::size_t Classes>
class frame_depot {
 public:
  // Frames of one batch at most: what a thread hands over or takes at once.
  static constexpr std::size_t batch_frames = 32;

  constexpr explicit frame_depot(std::size_t max_bytes) noexcept : max_bytes_(max_bytes) {}
  frame_depot(const frame_depot&) = delete;
  frame_depot& operator=(const frame_depot&) = delete;

  // Shelves `count` frames of class `c` (each `bytes` long, at least sizeof(depot_batch)), chained
  // from `head` through free_frame::next. False if they would pass the bound: nothing was taken,
  // and the caller still owns the chain.
  bool put(std::size_t c, free_frame* head, std::size_t count, std::size_t bytes) noexcept {
    const std::size_t total = count * bytes;
    // Ordering: relaxed. The counter only bounds the memory held; no frame is published through
    // it (the shelf's lock publishes the chain). The RMW makes concurrent reservations add up, so
    // the sum of what is reserved never passes the bound.
    if (bytes_.fetch_add(total, std::memory_order_relaxed) + total > max_bytes_) {
      // Ordering: relaxed, as above.
      bytes_.fetch_sub(total, std::memory_order_relaxed);
      return false;
    }
    free_frame* const rest = head->next;
    auto* batch = ::new (static_cast<void*>(head)) depot_batch{{rest}, nullptr, count};
    shelf& s = shelves_[c];
    s.lock.lock();
    // Ordering: relaxed; the lock orders every write of `top`. The atomic is for take()'s hint.
    batch->below = s.top.load(std::memory_order_relaxed);
    s.top.store(batch, std::memory_order_relaxed);
    s.lock.unlock();
    return true;
  }

  // Takes one whole batch of class `c` (frames of `bytes` each): its first frame, the rest
  // chained behind it through free_frame::next, and its length in `count`. Null if the shelf is
  // empty (then `count` is untouched).
  free_frame* take(std::size_t c, std::size_t& count, std::size_t bytes) noexcept {
    shelf& s = shelves_[c];
    // Ordering: relaxed, a hint that spares the lock on every allocation while the shelf is empty
    // (a thread allocating a million frames nobody freed yet); the locked load below decides.
    if (s.top.load(std::memory_order_relaxed) == nullptr) return nullptr;
    s.lock.lock();
    // Ordering: relaxed under the lock, whose acquire makes the putter's writes to the batch (its
    // links and length, written before its release) visible here.
    depot_batch* batch = s.top.load(std::memory_order_relaxed);
    if (batch != nullptr) s.top.store(batch->below, std::memory_order_relaxed);
    s.lock.unlock();
    if (batch == nullptr) return nullptr;
    count = batch->frames;
    // Ordering: relaxed, as in put().
    bytes_.fetch_sub(count * bytes, std::memory_order_relaxed);
    return static_cast<free_frame*>(batch);
  }

  // Bytes of frames on the shelves now (a snapshot).
  std::size_t bytes() const noexcept {
    // Ordering: relaxed, a statistic.
    return bytes_.load(std::memory_order_relaxed);
  }

  std::size_t max_bytes() const noexcept { return max_bytes_; }

 private:
  // One per size class, on its own cache line: threads freeing and allocating frames of
  // different sizes do not share a lock or a line.
  struct alignas(64) shelf {
    spinlock lock;
    atomic<depot_batch*> top{nullptr};
  };

  const std::size_t max_bytes_;
  atomic<std::size_t> bytes_{0};
  std::array<shelf, Classes> shelves_{};
};

}  // namespace weft::detail
