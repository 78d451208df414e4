// net/stream_writer.cpp: weft::stream_writer, asyncio's StreamWriter with its transport's flow
// control.
//
// The state is shared between the writer and, while the buffer is not empty, one background
// "flusher" task. Everything in it is guarded by `mutex`, including the send calls themselves, so
// that bytes leave in the order they were written whether write() or the flusher sends them:
//
//   write()   sends directly while nobody flushes and the buffer is empty; whatever the kernel
//             does not take is appended to the buffer, and a flusher is started (flushing = true)
//   flusher   waits for writability, sends from the buffer, and ends when the buffer is empty
//             (flushing = false), after carrying out a requested write_eof or close
//   drain()   waits on `resumed` while `paused`
//
// Invariant: paused == (the buffer passed `high` and has not since fallen to `low`), and the
// `resumed` event is set exactly when !paused (both change together under the mutex). A failed
// connection unpauses for good, so drain() wakes and rethrows the error. The mutex is held only
// for non-blocking sends and buffer updates, never across a co_await.
#include <weft/net/streams.hpp>

#include <sys/socket.h>

#include <exception>
#include <mutex>
#include <stdexcept>

#include <weft/primitives/event.hpp>
#include <weft/scheduler/errors.hpp>
#include <weft/scheduler/spawn.hpp>

namespace weft {

namespace detail {

struct writer_state {
  explicit writer_state(std::shared_ptr<stream_socket> s) : socket(std::move(s)) {}

  std::shared_ptr<stream_socket> socket;
  mutable std::mutex mutex;
  std::string pending;  // unsent bytes are pending[head, size())
  std::size_t head = 0;
  std::size_t high = 64 * 1024;
  std::size_t low = 16 * 1024;
  bool flushing = false;  // a flusher task owns the socket's write side
  bool paused = false;
  bool eof_requested = false;
  bool eof_sent = false;
  bool closing = false;
  bool closed = false;
  std::exception_ptr error;
  event resumed{true};
  event closed_event;

  [[nodiscard]] std::size_t size() const noexcept { return pending.size() - head; }

  // Requires: mutex held.
  void update_pause() {
    if (!paused && size() > high) {
      paused = true;
      resumed.clear();
    } else if (paused && size() <= low) {
      paused = false;
      resumed.set();
    }
  }

  // The connection failed: keep the error for write and drain, wake everyone. Requires: mutex.
  void fail(std::exception_ptr e) {
    if (!error) error = std::move(e);
    pending.clear();
    head = 0;
    paused = false;
    resumed.set();
    finish_close();
  }

  // With the buffer empty: carry out write_eof / close. Requires: mutex held.
  void after_flush() {
    if ((eof_requested || closing) && !eof_sent && !error) {
      eof_sent = true;
      try {
        socket->shutdown_write();
      } catch (...) {
        error = std::current_exception();
      }
    }
    if (closing) finish_close();
  }

  void finish_close() {
    if (closed) return;
    if (closing || error) {
      closed = true;
      closed_event.set();
    }
  }

  // Sends from the buffer until it is empty or the kernel is full. Requires: mutex held.
  void send_buffered() {
    while (size() > 0) {
      bool would_block = false;
      const std::size_t n = socket->try_write(std::string_view(pending).substr(head), would_block);
      if (would_block) break;
      head += n;
    }
    if (head == pending.size()) {
      pending.clear();
      head = 0;
    } else if (head > pending.size() / 2) {
      pending.erase(0, head);
      head = 0;
    }
  }
};

namespace {

task<void> flush(std::shared_ptr<writer_state> state) {
  for (;;) {
    bool stopped = false;
    try {
      co_await state->socket->io().writable();
    } catch (const cancelled_error&) {
      stopped = true;  // the runtime is shutting down
    }
    std::lock_guard lock(state->mutex);
    if (stopped) {
      state->flushing = false;
      state->fail(std::make_exception_ptr(
          runtime_stopped("weft: stream_writer: the runtime stopped before the data was sent")));
      co_return;
    }
    try {
      state->send_buffered();
    } catch (...) {
      state->flushing = false;
      state->fail(std::current_exception());
      co_return;
    }
    state->update_pause();
    if (state->size() == 0) {
      state->flushing = false;
      state->after_flush();
      co_return;
    }
  }
}

}  // namespace

}  // namespace detail

stream_writer::stream_writer(std::shared_ptr<stream_socket> socket)
    : state_(std::make_shared<detail::writer_state>(std::move(socket))) {}

void stream_writer::write(std::string_view data) {
  std::lock_guard lock(state_->mutex);
  if (state_->error) std::rethrow_exception(state_->error);
  if (state_->closing || state_->eof_requested) {
    throw std::logic_error("weft: stream_writer::write after close() or write_eof()");
  }
  if (!state_->flushing && state_->size() == 0) {
    try {
      while (!data.empty()) {
        bool would_block = false;
        const std::size_t n = state_->socket->try_write(data, would_block);
        if (would_block) break;
        data.remove_prefix(n);
      }
    } catch (...) {
      state_->fail(std::current_exception());
      throw;
    }
  }
  if (data.empty()) return;
  state_->pending.append(data);
  if (!state_->flushing) {
    // The flusher may start on another worker at once; it takes the mutex, so it waits for this
    // call to finish its update.
    weft::spawn(detail::flush(state_)).detach();
    state_->flushing = true;
  }
  state_->update_pause();
}

task<void> stream_writer::drain() {
  for (;;) {
    {
      std::lock_guard lock(state_->mutex);
      if (state_->error) std::rethrow_exception(state_->error);
      if (!state_->paused) co_return;
    }
    co_await state_->resumed.wait();
  }
}

void stream_writer::set_write_buffer_limits(std::size_t high, std::size_t low) {
  if (low > high) throw std::invalid_argument("weft: set_write_buffer_limits: low above high");
  std::lock_guard lock(state_->mutex);
  state_->high = high;
  state_->low = low;
  state_->update_pause();
}

std::size_t stream_writer::buffered() const {
  std::lock_guard lock(state_->mutex);
  return state_->size();
}

void stream_writer::write_eof() {
  std::lock_guard lock(state_->mutex);
  state_->eof_requested = true;
  if (!state_->flushing) state_->after_flush();
}

void stream_writer::close() {
  std::lock_guard lock(state_->mutex);
  if (state_->closing) return;
  state_->closing = true;
  if (!state_->flushing) state_->after_flush();
}

task<void> stream_writer::wait_closed() { co_await state_->closed_event.wait(); }

void stream_writer::abort() {
  std::lock_guard lock(state_->mutex);
  state_->closing = true;
  const linger reset{1, 0};  // close() with a zero linger time sends a reset
  ::setsockopt(state_->socket->native_handle(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  ::shutdown(state_->socket->native_handle(), SHUT_RDWR);
  state_->eof_sent = true;
  state_->fail(
      std::make_exception_ptr(connection_reset(std::make_error_code(std::errc::connection_aborted),
                                               "weft: stream_writer: the connection was aborted")));
}

bool stream_writer::is_closing() const {
  std::lock_guard lock(state_->mutex);
  return state_->closing;
}

stream_socket& stream_writer::socket() const { return *state_->socket; }

}  // namespace weft
