// scheduler/frame_inspection.cpp: the frames put aside while a dump runs (frame_inspection.hpp).
//
// The list is intrusive (each put-aside frame's own memory holds the link and its size), so
// putting a frame aside allocates nothing; a mutex guards it, taken only while a dump runs.
#include "frame_inspection.hpp"

#include <mutex>

namespace weft::detail {

std::atomic<int> frame_inspectors{0};

namespace {

struct deferred_frame {
  deferred_frame* next;
  std::size_t size;
};
static_assert(sizeof(deferred_frame) <= 16, "every frame holds a task_header, far larger");

std::mutex deferred_mutex;
deferred_frame* deferred_head = nullptr;

void release_deferred() noexcept {
  deferred_frame* list = nullptr;
  {
    std::lock_guard lock(deferred_mutex);
    list = deferred_head;
    deferred_head = nullptr;
  }
  while (list != nullptr) {
    deferred_frame* next = list->next;
    release_frame(list, list->size);
    list = next;
  }
}

}  // namespace

void defer_frame(void* frame, std::size_t size) noexcept {
  {
    std::lock_guard lock(deferred_mutex);
    auto* node = static_cast<deferred_frame*>(frame);
    node->next = deferred_head;
    node->size = size;
    deferred_head = node;
  }
  // The last dump may have ended between deallocate_frame's check and the push above, after it
  // released the list: then nobody else would. Ordering: seq_cst; if this load reads a count
  // above zero, the dump's later decrement is followed by its release_deferred(), whose lock
  // acquisition comes after this push's unlock (or before it, and then the decrement
  // happens-before this load, which would read zero).
  if (frame_inspectors.load(std::memory_order_seq_cst) == 0) release_deferred();
}

frame_inspection::frame_inspection() noexcept {
  // Ordering: seq_cst, step 1 of the argument in frame_inspection.hpp.
  frame_inspectors.fetch_add(1, std::memory_order_seq_cst);
}

frame_inspection::~frame_inspection() {
  if (frame_inspectors.fetch_sub(1, std::memory_order_seq_cst) == 1) release_deferred();
}

}  // namespace weft::detail
