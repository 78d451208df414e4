// weft/scheduler/io.hpp: readiness of file descriptors, the interface sockets are built on.
//
//   weft::io_source source(fd);             // fd must be non-blocking
//   for (;;) {
//     ssize_t n = ::read(fd, buf, size);
//     if (n >= 0) break;
//     if (errno != EAGAIN) throw ...;
//     co_await source.readable();           // try the syscall first, wait only on EAGAIN
//   }
//
// The descriptor is registered once with the runtime's epoll set (edge-triggered, for reading and
// writing), which the I/O driver watches: a parked worker or the poller thread (docs/
// architecture.md, "The I/O driver in park"). Readiness is remembered: an edge that arrives while
// nobody waits makes the next wait return at once, so the "try, then wait on EAGAIN" loop above
// never misses an event. At most one task may wait for each direction at a time. Errors and
// hang-ups count as readiness for both directions, so the next syscall reports them. Waiting is a
// cancellation point.
#pragma once

#include <coroutine>

#include <weft/scheduler/detail/cancellable_wait.hpp>
#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/export.hpp>

namespace weft {

class runtime;

namespace detail {
struct io_registration;
enum class io_direction : unsigned char { read = 0, write = 1 };
// Consumes remembered readiness; true if there was some.
WEFT_API bool io_take_readiness(io_registration* reg, io_direction dir) noexcept;
enum class park_result { parked, ready, cancelled };
// Parks `waiter` until the direction becomes ready. `ready`: readiness arrived meanwhile (retry the
// syscall); `cancelled`: io_cancel ran first (the wait must end with cancelled_error).
WEFT_API park_result io_park(io_registration* reg, io_direction dir,
                             std::coroutine_handle<> waiter);
// For a cancellation: takes back a parked `waiter` (true: the caller resumes it), or, if nothing is
// parked yet, makes the coming io_park refuse.
WEFT_API bool io_cancel(io_registration* reg, io_direction dir,
                        std::coroutine_handle<> waiter) noexcept;
}  // namespace detail

class WEFT_API io_source {
 public:
  // Registers `fd` with the poller of the runtime whose worker is calling (std::logic_error outside
  // a runtime; std::system_error if epoll refuses the descriptor). Does not take ownership of fd.
  explicit io_source(int fd);
  io_source(runtime& rt, int fd);
  // Deregisters. Must not be destroyed while a task waits on it.
  ~io_source();
  io_source(const io_source&) = delete;
  io_source& operator=(const io_source&) = delete;

  [[nodiscard]] int fd() const noexcept { return fd_; }

  // A cancellation point: cancelling the waiting task takes its waiter back and resumes it with
  // cancelled_error.
  class [[nodiscard]] awaiter : private detail::cancellable_wait {
   public:
    awaiter(detail::io_registration* reg, detail::io_direction dir) noexcept
        : reg_(reg), dir_(dir) {}
    [[nodiscard]] bool await_ready() const noexcept {
      return detail::io_take_readiness(reg_, dir_);
    }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> self) {
      on_cancel = &cancel_wait;
      self_ = self;  // before begin() publishes the hook: on_cancel reads it
      if (begin(detail::root_of(self), detail::wait_kind::io)) return false;
      // Nothing here may touch *this once parked: readiness can resume the task at once. A
      // cancel racing with parking is settled on the slot itself (io_cancel / io_park).
      switch (detail::io_park(reg_, dir_, self)) {
        case detail::park_result::parked:
          return true;
        case detail::park_result::ready:
          abandon();
          return false;
        case detail::park_result::cancelled:
          return false;  // await_resume throws cancelled_error
      }
      return true;
    }
    void await_resume() { finish(); }

   private:
    static void cancel_wait(detail::cancel_hook* hook) noexcept {
      auto* waiter = static_cast<awaiter*>(static_cast<detail::cancellable_wait*>(hook));
      if (detail::io_cancel(waiter->reg_, waiter->dir_, waiter->self_)) {
        detail::wake(waiter->root()->runtime(), waiter->self_);
      }
    }

    detail::io_registration* reg_;
    detail::io_direction dir_;
    std::coroutine_handle<> self_;
  };

  // Resumes when the descriptor may be readable (or has an error or hang-up).
  awaiter readable() noexcept { return {reg_, detail::io_direction::read}; }
  // Resumes when the descriptor may be writable (or has an error or hang-up).
  awaiter writable() noexcept { return {reg_, detail::io_direction::write}; }

 private:
  int fd_;
  detail::io_registration* reg_;
};

}  // namespace weft
