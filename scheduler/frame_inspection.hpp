// scheduler/frame_inspection.hpp: keeps the memory of coroutine frames while runtime::dump reads
// them.
//
// A dump walks a waiting task's await chain (task_header::awaiting) through frames that the task's
// worker may free at any moment: a wake-up resumes the task, which destroys the frames of the
// awaits that end. The dump must not ask that worker to wait (it may be busy for seconds), so
// instead every frame freed while a dump runs is put aside, and returned to the allocator when the
// last dump ends. The cost outside a dump is one load and a predictable branch per freed frame.
//
// Why a dump reads no freed memory (the argument for the orders; dump.cpp follows it):
//   1. the dump increments `frame_inspectors` (seq_cst RMW), then reads the task's hook (seq_cst);
//   2. it walks the chain only if the hook was published: the task is suspended in that wait, and
//      its chain (every `awaiting` link, written before publish_hook's seq_cst store) is frozen and
//      alive at that moment;
//   3. the task leaves the wait through withdraw_hook's seq_cst exchange, and only afterwards frees
//      frames; that exchange reads a later value of the hook than the dump's load, so it follows
//      the load in the single total order of seq_cst operations, and so does the seq_cst load of
//      `frame_inspectors` in deallocate_frame, which therefore sees the dump's increment and puts
//      the frame aside.
// So every frame of the chain seen in step 2 stays allocated until the dump ends, even if the task
// resumes meanwhile; a link read from such a frame after that (the task moved on) points to a frame
// allocated after step 1, whose free is put aside as well. The dump checks at the end that the
// hook is unchanged and discards a chain that changed under it; TSan cannot see this protocol, so
// the few plain reads it makes of a frame's first word (its resume function) are marked.
#pragma once

#include <atomic>
#include <cstddef>

// frame_inspectors, the count of dumps running now (any runtime: frames are allocated per
// process), is declared there: the inline free path reads it.
#include <weft/scheduler/detail/frame_allocator.hpp>

namespace weft::detail {

// deallocate_frame's slow path: a dump runs, keep the frame's memory for now.
void defer_frame(void* frame, std::size_t size) noexcept;
// The allocator's own deallocation (frame_allocator.cpp), without the check.
void release_frame(void* frame, std::size_t size) noexcept;

// A dump's hold on freed frames, for its lifetime.
class frame_inspection {
 public:
  frame_inspection() noexcept;
  ~frame_inspection();
  frame_inspection(const frame_inspection&) = delete;
  frame_inspection& operator=(const frame_inspection&) = delete;
};

}  // namespace weft::detail
