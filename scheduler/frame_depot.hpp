// scheduler/frame_depot.hpp: the frames that threads freed beyond their own cache, kept for any
// thread to take, in batches: a small amount for as long as the process lives, a burst's surplus
// for as long as someone is taking from it.
//
//   frame_depot<128> depot(2 << 20, 1 << 30);   // 128 size classes, keep 2 MiB, hold at most 1 GiB
//   if (!depot.put(c, head, count, bytes)) ...  // a chain of `count` free frames of class c
//   std::size_t count = 0;
//   if (free_frame* chain = depot.take(c, count, bytes)) ...   // a whole batch, or null
//   depot.trim(bytes_of, release);              // back down to the kept amount
//
// Why it exists: frame_allocator.cpp keeps a free list per thread, so a frame freed on the thread
// that allocates the next one costs no lock. When frames are allocated on one thread and freed on
// another (a foreign thread spawning, a worker running what it spawned), the freeing thread's
// cache fills and, without the depot, the surplus goes back to malloc, one lock of the allocating
// thread's arena per frame, while the allocating thread mallocs each new one under the same lock.
// perf of bench/run spawn_remote: a third of the time in malloc, free and their lock. With the
// depot the surplus travels back in batches, one lock per batch on each side.
//
// Why it holds a burst's surplus for a while (`kept` < bytes <= `max`): a batch job's phases, or
// bench spawn_many's runs, free a million frames on one worker and allocate the next million on
// another. Handed back to malloc, the freed frames stay in the first worker's glibc arena, and the
// second allocates fresh memory from its own: twice the peak, and a page fault per 4 KiB of frames
// (perf: 18% of spawn_many). The depot gives them to whichever thread allocates next. The surplus
// above `kept` is only for reuse soon: trim() returns it, and frame_allocator.cpp calls trim from a
// background thread once nobody took a batch for a whole period (takes() did not move).
//
// A batch is a chain of free frames linked through their first word (free_frame::next); the
// first frame of a batch also holds the link to the batch below it on its class's shelf and the
// batch's length (depot_batch), so frames must be at least sizeof(depot_batch) = 24 bytes. The
// depot owns no memory of its own beyond the shelves: it holds frames, it does not allocate them.
//
// Invariants:
//   - A frame is in at most one place: a thread's list, or one batch on one shelf. put() links a
//     chain the caller gave up; take() and trim() unlink a whole batch under the shelf's lock, so
//     no two of them get the same batch.
//   - bytes() never exceeds `max`: put() reserves its bytes with an RMW before linking, and takes
//     the reservation back when that would pass the bound (the caller then frees the chain
//     itself); take() and trim() give the bytes back after unlinking.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>

#include <weft/scheduler/detail/atomic.hpp>
#include <weft/scheduler/detail/frame_allocator.hpp>  // free_frame
#include <weft/scheduler/detail/spinlock.hpp>

namespace weft::detail {

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

  // Keeps up to `kept_bytes` for good; holds up to `max_bytes` until trimmed.
  constexpr frame_depot(std::size_t kept_bytes, std::size_t max_bytes) noexcept
      : kept_bytes_(kept_bytes < max_bytes ? kept_bytes : max_bytes), max_bytes_(max_bytes) {}
  frame_depot(const frame_depot&) = delete;
  frame_depot& operator=(const frame_depot&) = delete;

  // Shelves `count` frames of class `c` (each `bytes` long, at least sizeof(depot_batch)), chained
  // from `head` through free_frame::next. False if they would pass `limit` (at most max_bytes):
  // nothing was taken, and the caller still owns the chain.
  bool put(std::size_t c, free_frame* head, std::size_t count, std::size_t bytes,
           std::size_t limit = SIZE_MAX) noexcept {
    const std::size_t total = count * bytes;
    if (limit > max_bytes_) limit = max_bytes_;
    // Ordering: relaxed. The counter only bounds the memory held; no frame is published through
    // it (the shelf's lock publishes the chain). The RMW makes concurrent reservations add up, so
    // the sum of what is reserved never passes the bound.
    if (bytes_.fetch_add(total, std::memory_order_relaxed) + total > limit) {
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
    free_frame* batch = pop(c, count, bytes);
    // Ordering: relaxed. A count of reuse for the trimming heuristic (takes()); it orders nothing:
    // the batch itself came through the shelf's lock.
    if (batch != nullptr) takes_.fetch_add(1, std::memory_order_relaxed);
    return batch;
  }

  // Returns batches to the system until at most the kept amount is held: for each batch taken off
  // a shelf of class c, `release(frame)` is called on each of its frames, which are `bytes_of(c)`
  // long. Safe beside put() and take() on other threads; frames put meanwhile may stay.
  template <class BytesOf, class Release>
  std::size_t trim(BytesOf bytes_of, Release release) noexcept {
    std::size_t released = 0;
    for (std::size_t c = 0; c < Classes && bytes() > kept_bytes_; ++c) {
      const std::size_t frame_bytes = bytes_of(c);
      std::size_t count = 0;
      while (bytes() > kept_bytes_) {
        free_frame* frame = pop(c, count, frame_bytes);
        if (frame == nullptr) break;
        while (frame != nullptr) {
          free_frame* const next = frame->next;
          release(static_cast<void*>(frame));
          frame = next;
          ++released;
        }
      }
    }
    return released;
  }

  // Bytes of frames on the shelves now (a snapshot).
  std::size_t bytes() const noexcept {
    // Ordering: relaxed. A statistic and a bound's check; where a decision needs more (the
    // trimmer's exit against a spill), the caller puts a seq_cst fence around it
    // (frame_allocator.cpp).
    return bytes_.load(std::memory_order_relaxed);
  }

  std::size_t max_bytes() const noexcept { return max_bytes_; }
  std::size_t kept_bytes() const noexcept { return kept_bytes_; }

  // Batches taken so far (a count that only grows): a trimmer that reads the same value twice a
  // period apart knows that nobody reused the surplus meanwhile.
  std::uint64_t takes() const noexcept {
    // Ordering: relaxed, a heuristic's input (see take()).
    return takes_.load(std::memory_order_relaxed);
  }

 private:
  free_frame* pop(std::size_t c, std::size_t& count, std::size_t bytes) noexcept {
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

  // One per size class, on its own cache line: threads freeing and allocating frames of
  // different sizes do not share a lock or a line.
  struct alignas(64) shelf {
    spinlock lock;
    atomic<depot_batch*> top{nullptr};
  };

  const std::size_t kept_bytes_;
  const std::size_t max_bytes_;
  atomic<std::size_t> bytes_{0};
  atomic<std::uint64_t> takes_{0};
  std::array<shelf, Classes> shelves_{};
};

}  // namespace weft::detail
