// weft/scheduler/detail/frame_allocator.hpp: where coroutine frames come from.
//
// Every weft::task frame is allocated through these two functions (see task.hpp's promise
// operator new). The recycling implementation keeps per-thread free lists in 16-byte size classes
// up to 2 KiB, so the common frame costs a pointer pop instead of a malloc; larger frames go to
// the system allocator. A frame freed on another thread than the one that allocated it joins the
// freeing thread's list (bounded by max_cached_frame_bytes per thread); the surplus goes to a depot
// shared by all threads, where a thread whose list is empty takes it back in batches (2 MiB kept
// for good; a burst's surplus, up to 1 GiB, only until a period passes in which nobody takes from
// it), and what the depot does not hold goes back to the system.
//
// The common case of both functions (the calling thread's list of the frame's class has a frame,
// or room for one) is inlined below, into every coroutine's creation and end: the size is a
// constant there, so the class folds away, and no call into libweft is made. That exposes the
// per-thread lists' layout here, against the rule that public headers hold no layouts, for the
// same reason task_header's layout is exposed: this is on every task's path (a call into the
// shared library, through the PLT, and the size-class arithmetic were 13% of bench fib's samples).
// Everything else (an empty list, a full cache, a dump in progress, the system allocator, an
// installed weft::frame_allocator) takes the slow path in scheduler/frame_allocator.cpp, which
// also argues why the inline paths need no check of the installed allocator.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>

#include <weft/scheduler/export.hpp>

namespace weft::detail {

// The first word of a free frame: the next free frame of its list (or of a depot batch).
struct free_frame {
  free_frame* next;
};

// Size classes of 16 bytes; class c holds blocks of (c + 1) * 16 - 8 bytes, up to 2040 (the
// reason for the 8: scheduler/frame_allocator.cpp, block sizes).
inline constexpr std::size_t frame_class_count = 128;
inline constexpr std::size_t frame_granule = 16;
inline constexpr std::size_t frame_malloc_header = 8;
constexpr std::size_t frame_class_of(std::size_t size) noexcept {
  return (size + frame_malloc_header - 1) / frame_granule;
}
constexpr std::size_t frame_block_size(std::size_t c) noexcept {
  return (c + 1) * frame_granule - frame_malloc_header;
}

// One thread's free lists. Owner thread only; no atomics.
struct frame_cache {
  free_frame* heads[frame_class_count];
  std::size_t cached_bytes;
  // What cached_bytes may reach on the inline free path: max_cached_frame_bytes once the thread's
  // cleanup is registered, 0 before (the first free registers it, on the slow path), after the
  // thread's lists were emptied at its exit, and always with the system allocator or an installed
  // frame_allocator. One comparison covers all of these cases.
  std::size_t cache_limit;
  bool cleanup_registered;
  bool thread_exiting;  // the lists were emptied; everything goes straight to the system
};

// The calling thread's lists (scheduler/frame_allocator.cpp). Zero-initialized, so no guard;
// initial-exec: a fixed offset from the thread pointer, in libweft and in the programs that
// inline the paths below (libweft already needs static TLS for its own).
extern WEFT_API __attribute__((
    tls_model("initial-exec"))) constinit thread_local frame_cache thread_frame_cache;
// Dumps running now (scheduler/frame_inspection.hpp argues the order of the load below).
extern WEFT_API std::atomic<int> frame_inspectors;

WEFT_API void* allocate_frame_slow(std::size_t size);
WEFT_API void deallocate_frame_slow(void* frame, std::size_t size) noexcept;

inline void* allocate_frame(std::size_t size) {
  const std::size_t c = frame_class_of(size);
  if (c < frame_class_count) {
    frame_cache& cache = thread_frame_cache;
    if (free_frame* node = cache.heads[c]) [[likely]] {
      cache.heads[c] = node->next;
      cache.cached_bytes -= frame_block_size(c);
      return node;
    }
  }
  return allocate_frame_slow(size);
}

inline void deallocate_frame(void* frame, std::size_t size) noexcept {
  const std::size_t c = frame_class_of(size);
  // Ordering: seq_cst (a plain load on x86), step 3 of frame_inspection.hpp's argument: a dump
  // that saw this frame's task suspended before the task went on to free it is seen here, and the
  // slow path puts the frame aside.
  if (c < frame_class_count && frame_inspectors.load(std::memory_order_seq_cst) == 0) [[likely]] {
    frame_cache& cache = thread_frame_cache;
    const std::size_t bytes = frame_block_size(c);
    if (cache.cached_bytes + bytes <= cache.cache_limit) [[likely]] {
      auto* node = static_cast<free_frame*>(frame);
      node->next = cache.heads[c];
      cache.heads[c] = node;
      cache.cached_bytes += bytes;
      return;
    }
  }
  deallocate_frame_slow(frame, size);
}

// What one thread keeps at most in its lists (the recycling allocator; see frame_allocator.cpp).
inline constexpr std::size_t max_cached_frame_bytes = std::size_t{256} << 10;
// What the depot shared by all threads keeps for good (scheduler/frame_depot.hpp).
inline constexpr std::size_t kept_depot_frame_bytes = std::size_t{2} << 20;
// What it holds at most: a burst's surplus above the kept amount, for reuse by whichever thread
// allocates next, returned to the system once a whole period passed with no batch taken.
inline constexpr std::size_t max_depot_frame_bytes = std::size_t{1} << 30;
inline constexpr auto depot_surplus_period = std::chrono::seconds(1);
// The bytes of freed frames the calling thread keeps for reuse (0 with the system allocator).
WEFT_API std::size_t cached_frame_bytes() noexcept;
// The bytes of freed frames in the shared depot now (0 with the system allocator).
WEFT_API std::size_t depot_frame_bytes() noexcept;

}  // namespace weft::detail
