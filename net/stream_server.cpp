// net/stream_server.cpp: weft::start_server and weft::open_connection, asyncio's entry points to
// its streams.
//
// The server's state is shared by the server object, its accept loop and every connection
// handler, so none outlives what it uses. `active` counts the accept loop and the running
// handlers; wait_closed() waits for it to reach zero.
#include <weft/net/streams.hpp>

#include <sys/socket.h>

#include <atomic>
#include <exception>
#include <mutex>
#include <optional>

#include <weft/primitives/event.hpp>
#include <weft/scheduler/detail/task_header.hpp>
#include <weft/scheduler/errors.hpp>
#include <weft/scheduler/join_handle.hpp>
#include <weft/scheduler/spawn.hpp>

namespace weft {

namespace detail {

struct server_state {
  server_state(connection_handler h, server_options o, socket_address a)
      : handler(std::move(h)), options(o), address(a) {}

  const connection_handler handler;
  const server_options options;
  const socket_address address;
  // Invariant: counts the accept loop (the initial 1) and every handler that started and has not
  // ended. Only the accept loop increments, and only while it is itself counted, so once the
  // count reaches zero it stays there: the thread that brings it to zero sets `all_done`.
  // Ordering: acq_rel on the decrement, so that the last one sees every handler's effects and
  // the waiter on all_done (woken through the event's lock) sees them too; relaxed increments,
  // since the loop's own count keeps the total above zero while it increments.
  std::atomic<std::size_t> active{1};
  event all_done;
  std::mutex mutex;                       // guards the three fields below
  std::optional<join_handle<void>> loop;  // the accept loop, to cancel it on close()
  int listener_fd = -1;  // the accept loop's listener while it is open, for close()
  bool closed = false;

  void leave() noexcept {
    if (active.fetch_sub(1, std::memory_order_acq_rel) == 1) all_done.set();
  }
};

namespace {

// Leaves the count when the handler's frame ends, however it ends (including destruction of the
// frame at runtime shutdown).
struct leave_on_exit {
  explicit leave_on_exit(std::shared_ptr<server_state> s) noexcept : state(std::move(s)) {}
  leave_on_exit(const leave_on_exit&) = delete;
  leave_on_exit& operator=(const leave_on_exit&) = delete;
  ~leave_on_exit() { state->leave(); }
  std::shared_ptr<server_state> state;
};

task<void> serve_connection(std::shared_ptr<server_state> state, tcp_stream stream) {
  leave_on_exit leave{state};
  const socket_address peer = stream.peer_address();
  auto [reader, writer] =
      make_streams(std::make_shared<tcp_stream>(std::move(stream)), state->options.limit);
  try {
    co_await state->handler(std::move(reader), std::move(writer));
  } catch (const std::exception& e) {
    report_to_log(current_runtime_core(), "weft: start_server: the handler for " +
                                              peer.to_string() + " failed: " + e.what());
  }
}

// Forgets the listener's descriptor before the listener (a parameter of the accept loop, so
// destroyed after this local) closes it, so close() never shuts down a reused descriptor number.
struct forget_listener {
  explicit forget_listener(server_state& s) noexcept : state(s) {}
  forget_listener(const forget_listener&) = delete;
  forget_listener& operator=(const forget_listener&) = delete;
  ~forget_listener() {
    std::lock_guard lock(state.mutex);
    state.listener_fd = -1;
  }
  server_state& state;
};

task<void> accept_loop(std::shared_ptr<server_state> state, tcp_listener listener) {
  leave_on_exit leave{state};
  {
    std::lock_guard lock(state->mutex);
    state->listener_fd = state->closed ? -1 : listener.native_handle();
    if (state->closed) co_return;
  }
  forget_listener forget(*state);
  try {
    for (;;) {
      tcp_stream stream = co_await listener.accept();
      state->active.fetch_add(1, std::memory_order_relaxed);
      try {
        weft::spawn(serve_connection(state, std::move(stream))).detach();
      } catch (...) {
        state->leave();  // the handler never started
        throw;
      }
    }
  } catch (const cancelled_error&) {
    // close(): stop accepting. The listener closes when this frame ends.
  } catch (const std::exception& e) {
    bool closed = false;
    {
      std::lock_guard lock(state->mutex);
      closed = state->closed;
    }
    // After close() the listener was shut down under the pending accept: not a failure.
    if (!closed) {
      report_to_log(current_runtime_core(), "weft: start_server: accepting on " +
                                                state->address.to_string() +
                                                " failed: " + e.what());
    }
  }
}

}  // namespace

}  // namespace detail

std::pair<stream_reader, stream_writer> make_streams(std::shared_ptr<stream_socket> socket,
                                                     std::size_t limit) {
  stream_reader reader(socket, limit);
  stream_writer writer(std::move(socket));
  return {std::move(reader), std::move(writer)};
}

task<std::pair<stream_reader, stream_writer>> open_connection(std::string host, std::uint16_t port,
                                                              connect_options options,
                                                              std::size_t limit) {
  tcp_stream stream = co_await tcp_stream::connect(std::move(host), port, options);
  co_return make_streams(std::make_shared<tcp_stream>(std::move(stream)), limit);
}

server::server(std::shared_ptr<detail::server_state> state) noexcept : state_(std::move(state)) {}

server::~server() {
  if (state_) close();
}

const socket_address& server::address() const noexcept { return state_->address; }

bool server::is_serving() const noexcept {
  std::lock_guard lock(state_->mutex);
  return !state_->closed;
}

void server::close() {
  std::lock_guard lock(state_->mutex);
  if (state_->closed) return;
  state_->closed = true;
  // Stop listening now, as asyncio's close() does: shutdown() on a listening socket turns it back
  // into an unconnected one, so new connections are refused at once (and the pending accept wakes
  // up). The descriptor itself is closed by the accept loop as it ends.
  if (state_->listener_fd >= 0) ::shutdown(state_->listener_fd, SHUT_RD);
  if (state_->loop) {
    state_->loop->cancel();
    state_->loop->detach();
    state_->loop.reset();
  }
}

task<void> server::wait_closed() {
  auto state = state_;  // the server object may go away while this waits
  co_await state->all_done.wait();
}

task<server> start_server(connection_handler handler, std::string host, std::uint16_t port,
                          server_options options) {
  tcp_listener listener = co_await tcp_listener::bind(std::move(host), port, options.listen);
  auto state =
      std::make_shared<detail::server_state>(std::move(handler), options, listener.local_address());
  auto loop = weft::spawn(detail::accept_loop(state, std::move(listener)));
  {
    std::lock_guard lock(state->mutex);
    state->loop.emplace(std::move(loop));
  }
  co_return server(std::move(state));
}

}  // namespace weft
