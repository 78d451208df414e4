// weft/scheduler/frame_allocator.hpp: giving coroutine frames the embedder's memory.
//
//   struct arena_allocator final : weft::frame_allocator {
//     void* allocate(std::size_t size) override { ... }              // 16-byte aligned
//     void deallocate(void* frame, std::size_t size) noexcept override { ... }
//   };
//   int main() {
//     static arena_allocator frames;
//     weft::set_frame_allocator(frames);   // first, before any weft task exists
//     ...
//   }
//
// Every weft::task frame (spawned or awaited, on any runtime or frame_executor) is then allocated
// and freed through `allocator`, instead of weft's recycling allocator (per-thread free lists).
// Frames are freed on whichever thread ends or drops the task, often another than the one that
// allocated them: the allocator finds the memory's origin itself (its own chunk headers, address
// ranges), as free() does. One allocator for the process, installed once, before the first frame:
// a frame then never meets an allocator other than the one that made it, and frames need no field
// naming their allocator (a suspended task stays 256 bytes for everyone). docs/embedding.md has
// an arena-per-game-frame sketch and the reasons for this shape.
#pragma once

#include <cstddef>

#include <weft/scheduler/export.hpp>

namespace weft {

class frame_allocator {
 public:
  // Memory for one frame of `size` bytes, aligned to 16 bytes (__STDCPP_DEFAULT_NEW_ALIGNMENT__).
  // Called on any thread, concurrently. Throws std::bad_alloc (or returns never) when out of
  // memory: the spawn or the call that creates the task then throws it.
  virtual void* allocate(std::size_t size) = 0;
  // Gives back a frame that allocate(size) returned. Any thread, concurrently.
  virtual void deallocate(void* frame, std::size_t size) noexcept = 0;

 protected:
  frame_allocator() = default;
  frame_allocator(const frame_allocator&) = default;
  frame_allocator& operator=(const frame_allocator&) = default;
  ~frame_allocator() = default;  // never destroyed through this interface
};

// Routes every coroutine frame through `allocator` from now on; `allocator` must outlive every
// frame (a static object). Throws std::logic_error if a frame was already allocated with weft's
// own allocator, or an allocator was installed before: frames must be freed by the allocator that
// made them.
WEFT_API void set_frame_allocator(frame_allocator& allocator);

}  // namespace weft
