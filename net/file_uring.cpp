// net/file_uring.cpp: the io_uring backend of weft::file (file_uring.hpp has the operation's
// protocol): the probe, the ring of each runtime, submission and reaping.
//
// One ring per runtime, a runtime extension (detail/runtime_extension.hpp) made by the first file
// operation on a worker of that runtime. Submitting and reaping share one mutex: the
// submission queue and the completion queue each need a single producer or consumer, and a
// submission reaps right after io_uring_enter, because a read the page cache can serve completes
// inside that call (the task then does not suspend at all). Completions that come later (from
// the kernel's workers or its task work) signal an eventfd registered with the ring; a small
// coroutine, the reaper, waits on that eventfd as an io_source of the runtime's poller, so no
// thread is added: when it is readable the poller queues the reaper on a worker, which reaps and
// wakes the tasks whose operations completed.
//
// No lost completion: the reaper empties the eventfd before it reaps and waits only after
// reaping; a completion posted after the reap signals the eventfd after it was emptied, and the
// poller remembers that edge (io.hpp), so the reaper's next wait returns at once.
//
// Shutdown (the runtime destroys its extensions after its threads have stopped and every
// pending task's cancellation hook ran and its frame was destroyed): operations still in the
// kernel hold their buffers; the destructor waits for their completions (for regular files a few
// milliseconds; the kernel also cancelled the requests of the worker threads as they exited),
// and if some never come within 5 s it reports them and leaves them allocated rather than free
// memory the kernel may still write.
#include <liburing.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>

#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/detail/runtime_extension.hpp>
#include <weft/scheduler/io.hpp>

#include "file_uring.hpp"

namespace weft {

namespace detail {
namespace {

// Submissions in the queue at once: each submit is followed by io_uring_enter, so the queue
// holds at most one entry per submitting thread plus cancels; completions beyond the CQ's size
// (twice this) wait in the kernel's overflow list (IORING_FEAT_NODROP), never lost.
constexpr unsigned ring_entries = 256;

// user_data of entries whose completion nobody waits for (a submission turned into a no-op).
constexpr std::uint64_t ignored = 0;
// The low bit marks the completion of an IORING_OP_ASYNC_CANCEL aimed at the op (ops are
// aligned): the op keeps a ring reference for it, so its address cannot be reused by a new
// operation while the cancel may still look for it.
constexpr std::uint64_t cancel_tag = 1;

std::error_code run_probe() noexcept {
  io_uring ring{};
  const int init = io_uring_queue_init(4, &ring, 0);
  if (init < 0) return {-init, std::system_category()};
  std::error_code result;
  io_uring_probe* probe = io_uring_get_probe_ring(&ring);
  if (probe == nullptr) {
    result = {ENOSYS, std::system_category()};
  } else {
    for (int op : {IORING_OP_NOP, IORING_OP_READ, IORING_OP_WRITE, IORING_OP_FSYNC,
                   IORING_OP_ASYNC_CANCEL}) {
      if (io_uring_opcode_supported(probe, op) == 0) result = {ENOSYS, std::system_category()};
    }
    io_uring_free_probe(probe);
  }
  if (!result) {
    // Setup may be allowed while io_uring_enter is not (a seccomp filter on one syscall).
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_nop(sqe);
    const int submitted = io_uring_submit_and_wait(&ring, 1);
    io_uring_cqe* cqe = nullptr;
    if (submitted < 0) {
      result = {-submitted, std::system_category()};
    } else if (const int got = io_uring_peek_cqe(&ring, &cqe); got < 0 || cqe == nullptr) {
      result = {got < 0 ? -got : EIO, std::system_category()};
    } else {
      io_uring_cqe_seen(&ring, cqe);
    }
  }
  io_uring_queue_exit(&ring);
  return result;
}

}  // namespace

// ---- the ring of one runtime ----

class uring_ring final : public runtime_extension {
 public:
  explicit uring_ring(runtime_core* rt) : runtime_(rt) {
    const int init = io_uring_queue_init(ring_entries, &ring_, 0);
    if (init < 0) throw std::system_error(-init, std::system_category(), "io_uring_queue_init");
    event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (event_fd_ < 0) {
      const int error = errno;
      io_uring_queue_exit(&ring_);
      throw std::system_error(error, std::system_category(), "eventfd for io_uring");
    }
    if (const int r = io_uring_register_eventfd(&ring_, event_fd_); r < 0) {
      ::close(event_fd_);
      io_uring_queue_exit(&ring_);
      throw std::system_error(-r, std::system_category(), "io_uring_register_eventfd");
    }
    try {
      source_ = std::make_unique<io_source>(event_fd_);
    } catch (...) {
      ::close(event_fd_);
      io_uring_queue_exit(&ring_);
      throw;
    }
    reaper_ = reap_forever(*this).handle;  // runs until its first wait
  }

  ~uring_ring() override {
    {
      std::lock_guard lock(mutex_);
      closing_ = true;  // the tasks are gone: reaping wakes nobody
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (outstanding_ > 0 && std::chrono::steady_clock::now() < give_up) {
        __kernel_timespec wait{0, 50'000'000};
        io_uring_cqe* cqe = nullptr;
        const int r = io_uring_wait_cqe_timeout(&ring_, &cqe, &wait);
        if (r < 0 && r != -ETIME && r != -EINTR) break;
        reap_locked(nullptr);
      }
      if (outstanding_ > 0) {
        // Safety: the kernel may still write into these operations' buffers; leave them.
        report_to_log(runtime_,
                      "weft: shutdown: " + std::to_string(outstanding_) +
                          " io_uring file operation(s) did not complete within 5 s; their "
                          "buffers are left allocated");
      }
    }
    reaper_.destroy();  // suspended in its wait; no thread runs it any more
    source_.reset();
    io_uring_queue_exit(&ring_);
    ::close(event_fd_);
  }

  uring_op::state_type submit(uring_op* op) {
    std::lock_guard lock(mutex_);
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) {
      // Full only if earlier submits failed to flush: flush, reap, try once more.
      io_uring_submit(&ring_);
      reap_locked(nullptr);
      sqe = io_uring_get_sqe(&ring_);
      if (sqe == nullptr) throw_file_error(EAGAIN, "queue an io_uring request for", op->file->path);
    }
    // A stream (pipe, FIFO) has no offsets: -1 reads and writes "at the current position".
    const std::uint64_t offset = op->file->seekable ? op->offset : ~std::uint64_t{0};
    switch (op->kind) {
      case uring_op_kind::read:
        io_uring_prep_read(sqe, op->file->fd, op->data, op->size, offset);
        break;
      case uring_op_kind::write:
        io_uring_prep_write(sqe, op->file->fd, op->data, op->size, offset);
        break;
      case uring_op_kind::fsync:
        io_uring_prep_fsync(sqe, op->file->fd, 0);
        break;
    }
    uring_op::state_type expected = uring_op::idle;
    // Ordering: acq_rel CAS against uring_cancel's CAS on the same word; whichever runs first
    // decides (refused: this submit backs out; in_flight: the canceller wakes the task).
    if (!op->state.compare_exchange_strong(expected, uring_op::in_flight,
                                           std::memory_order_acq_rel)) {
      io_uring_prep_nop(sqe);
      io_uring_sqe_set_data64(sqe, ignored);
      return uring_op::refused;
    }
    io_uring_sqe_set_data(sqe, op);
    // The ring's reference; dropped by reap_locked when the CQE arrives. Ordering: relaxed, the
    // awaiter's reference keeps the op alive here, and the CQE's reap happens under mutex_.
    op->refs.fetch_add(1, std::memory_order_relaxed);
    ++outstanding_;
    const int error = flush_locked();
    if (error != 0) {
      // The entry stays in the submission queue and goes with a later flush; the op keeps its
      // ring reference until then. The task gets the error now, unless a canceller already
      // took the op (then it woke the task).
      op->result = -error;
      expected = uring_op::in_flight;
      // Ordering: acq_rel, as every transition of uring_op::state (the file comment): the
      // release publishes op->result to the task, the acquire orders after a canceller's claim.
      if (op->state.compare_exchange_strong(expected, uring_op::completed,
                                            std::memory_order_acq_rel)) {
        return uring_op::completed;
      }
      return uring_op::in_flight;
    }
    return reap_locked(op) ? uring_op::completed : uring_op::in_flight;
  }

  bool cancel(uring_op* op) noexcept {
    uring_op::state_type expected = uring_op::idle;
    // Ordering: see submit.
    if (op->state.compare_exchange_strong(expected, uring_op::refused, std::memory_order_acq_rel)) {
      return false;  // the submit refuses; the awaiter resumes itself
    }
    if (expected != uring_op::in_flight) return false;  // completed: the reaper woke the task
    if (!op->state.compare_exchange_strong(expected, uring_op::cancelled,
                                           std::memory_order_acq_rel)) {
      return false;
    }
    // Best effort: ask the kernel to stop the request early. Whether or not it does, the op's
    // own CQE still arrives and only then is its buffer released.
    std::lock_guard lock(mutex_);
    if (io_uring_sqe* sqe = io_uring_get_sqe(&ring_)) {
      io_uring_prep_cancel64(sqe, reinterpret_cast<std::uint64_t>(op), 0);
      io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uint64_t>(op) | cancel_tag);
      op->refs.fetch_add(1, std::memory_order_relaxed);  // for the cancel's CQE (see cancel_tag)
      ++outstanding_;
      (void)flush_locked();
    }
    return true;
  }

 private:
  struct reaper {
    struct promise_type {
      reaper get_return_object() noexcept {
        return {std::coroutine_handle<promise_type>::from_promise(*this)};
      }
      std::suspend_never initial_suspend() noexcept { return {}; }
      std::suspend_always final_suspend() noexcept { return {}; }
      void return_void() noexcept {}
      void unhandled_exception() noexcept { std::terminate(); }
    };
    std::coroutine_handle<promise_type> handle;
  };

  // Not a weft::task: nothing cancels it and the runtime does not list it; the ring destroys it.
  // Resumed by a worker when the poller sees the eventfd readable.
  static reaper reap_forever(uring_ring& self) {
    for (;;) {
      std::uint64_t count = 0;
      (void)!::read(self.event_fd_, &count, sizeof count);  // EAGAIN: nothing signalled
      {
        std::lock_guard lock(self.mutex_);
        self.reap_locked(nullptr);
      }
      co_await self.source_->readable();
    }
  }

  // io_uring_enter for what the submission queue holds; retries what the kernel asks to retry.
  // Returns 0 or the errno of a failure that persisted.
  int flush_locked() noexcept {
    for (int attempt = 0;; ++attempt) {
      const int r = io_uring_submit(&ring_);
      if (r >= 0) return 0;
      if ((r != -EAGAIN && r != -EBUSY && r != -EINTR) || attempt == 1000) return -r;
      reap_locked(nullptr);  // EBUSY: completions must be reaped before more can be submitted
      if (r != -EINTR) std::this_thread::yield();
    }
  }

  // Reaps every completion in the queue. Returns true if `self`'s completed (its task is the
  // caller, which then does not suspend, so it is not woken).
  bool reap_locked(uring_op* self) noexcept {
    bool own = false;
    io_uring_cqe* cqe = nullptr;
    unsigned seen = 0;
    unsigned head = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      const std::uint64_t data = io_uring_cqe_get_data64(cqe);
      if (data == ignored) continue;
      --outstanding_;
      auto* op = reinterpret_cast<uring_op*>(data & ~cancel_tag);
      if ((data & cancel_tag) == 0) {
        op->result = cqe->res;
        // Ordering: acq_rel; release publishes `result` to the awaiter, the exchange decides
        // against a canceller's CAS (only in_flight -> completed wakes).
        const uring_op::state_type before =
            op->state.exchange(uring_op::completed, std::memory_order_acq_rel);
        if (before == uring_op::in_flight) {
          if (op == self) {
            own = true;
          } else if (!closing_) {
            wake(op->home != nullptr ? op->home : runtime_, op->waiter);
          }
        }
      }
      uring_op::release(op);
    }
    if (seen != 0) io_uring_cq_advance(&ring_, seen);
    return own;
  }

  runtime_core* runtime_;
  io_uring ring_{};
  int event_fd_ = -1;
  std::unique_ptr<io_source> source_;
  std::coroutine_handle<> reaper_;
  std::mutex mutex_;             // guards the ring's two queues and the fields below
  std::size_t outstanding_ = 0;  // CQEs still to come for entries with a user_data
  bool closing_ = false;
};

namespace {
char ring_key;
}

uring_ring& ring_of_calling_runtime(const std::string& path) {
  if (const std::error_code probe = io_uring_status()) {
    throw file_error(probe, "weft: use io_uring for " + path + ": " + probe.message(), path);
  }
  runtime_core* rt = current_runtime_core();
  if (rt == nullptr) throw std::logic_error("weft::file: an io_uring operation outside a runtime");
  try {
    return static_cast<uring_ring&>(runtime_extension_of(
        rt, &ring_key,
        [](runtime_core* core) -> runtime_extension* { return new uring_ring(core); }));
  } catch (const std::system_error& e) {
    throw file_error(e.code(), std::string("weft: set up io_uring for ") + path + ": " + e.what(),
                     path);
  }
}

uring_op::state_type uring_submit(uring_ring& ring, uring_op* op) { return ring.submit(op); }

bool uring_cancel(uring_ring& ring, uring_op* op) noexcept { return ring.cancel(op); }

uring_op* uring_op::make(uring_op_kind kind, std::shared_ptr<file_state> file, std::uint32_t size,
                         std::uint64_t offset) {
  // One allocation: the op, then its buffer.
  void* memory = ::operator new(sizeof(uring_op) + size);
  auto* op = new (memory) uring_op();
  op->kind = kind;
  op->file = std::move(file);
  op->size = size;
  op->offset = offset;
  op->data = static_cast<char*>(memory) + sizeof(uring_op);
  return op;
}

void uring_op::release(uring_op* op) noexcept {
  // Ordering: acq_rel, see `refs`.
  if (op->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    op->~uring_op();
    ::operator delete(op);
  }
}

}  // namespace detail

std::error_code io_uring_status() noexcept {
  static const std::error_code result = detail::run_probe();
  return result;
}

file_backend default_file_backend() noexcept {
  // Read at every call (each open with `automatic`), so a program or test may set it late; the
  // probe itself runs once.
  if (const char* env = std::getenv("WEFT_IO_URING");
      env != nullptr && std::strcmp(env, "0") == 0) {
    return file_backend::threads;
  }
  return io_uring_status() ? file_backend::threads : file_backend::io_uring;
}

}  // namespace weft
