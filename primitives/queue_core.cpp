// primitives/queue_core.cpp: the non-template part of the queue core that queue, lifo_queue,
// priority_queue and channel share (the protocol is in <weft/primitives/detail/queue_core.hpp>).
#include <weft/primitives/detail/queue_core.hpp>

namespace weft::detail {

void wake_list::wake_chain(queue_waiter* w) noexcept {
  while (w != nullptr) {
    // Safety: read everything before the wake-up; the waiter's frame may be gone right after.
    queue_waiter* next = w->links.next;
    const std::coroutine_handle<> handle = w->handle;
    runtime_core* rt = w->runtime;
    w = next;
    wake(rt, handle);
  }
}

}  // namespace weft::detail
