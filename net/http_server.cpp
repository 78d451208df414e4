// net/http_server.cpp: weft::http::server: the accept loop, the connection registry that
// graceful shutdown walks, the 503 beyond max_connections, and the small public types
// (body_reader, body_writer, request, response).
#include <weft/net/http/server.hpp>

#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <array>
#include <exception>

#include <weft/primitives/timeout.hpp>
#include <weft/scheduler/detail/task_header.hpp>
#include <weft/scheduler/errors.hpp>
#include <weft/scheduler/spawn.hpp>

#include "http_connection.hpp"

namespace weft::http {

// ---- the small public types ----

task<std::string_view> body_reader::read() {
  if (done_ || conn_ == nullptr) co_return std::string_view{};
  const std::string_view piece = co_await conn_->read_body();
  if (piece.empty()) done_ = true;
  co_return piece;
}

task<std::string> body_reader::read_all(std::size_t limit) {
  std::string all;
  for (;;) {
    const std::string_view piece = co_await read();
    if (piece.empty()) co_return all;
    if (all.size() + piece.size() > limit) throw bad_message(parse_error::body_too_large);
    all += piece;
  }
}

task<void> body_writer::write(std::string_view data) {
  co_await conn_->write_body(data, chunked_);
  written_ += data.size();
}

std::string_view request::param(std::string_view name) const noexcept {
  for (const auto& [key, value] : params)
    if (key == name) return value;
  return {};
}

response response::send_file(weft::file f, std::string content_type) {
  struct stat st {};
  if (::fstat(f.native_handle(), &st) != 0)
    throw file_error(std::error_code(errno, std::generic_category()),
                     "weft: fstat " + f.path() + ": " + std::strerror(errno), f.path());
  const auto size = static_cast<std::uint64_t>(st.st_size);
  response r;
  r.status = 200;
  r.file_offset = std::min(f.position(), size);
  r.file_length = size - r.file_offset;
  r.file_body = std::make_shared<weft::file>(std::move(f));
  r.headers.push_back({"Content-Type", std::move(content_type)});
  return r;
}

response response::text(int status, std::string body, std::string content_type) {
  response r;
  r.status = status;
  r.body = std::move(body);
  r.headers.push_back({"Content-Type", std::move(content_type)});
  return r;
}

namespace detail {

namespace {

// server_options::tls as a transport factory: the server handshake over the accepted socket.
transport_factory tls_factory(tls_context context) {
  return [context = std::move(context)](tcp_stream s) -> task<std::unique_ptr<transport>> {
    co_return std::make_unique<tls_transport>(co_await tls_stream::accept(std::move(s), context));
  };
}

using weft::detail::leave_on_exit;

// Removes the connection's record when its task ends (however it ends), detaching the task's
// handle; if the accept loop has not stored the handle yet, it finds `finished` and does it.
struct unregister_on_exit {
  unregister_on_exit(server_state& s, std::list<connection_record>::iterator r) noexcept
      : state(s), record(r) {}
  unregister_on_exit(const unregister_on_exit&) = delete;
  unregister_on_exit& operator=(const unregister_on_exit&) = delete;
  ~unregister_on_exit() {
    std::lock_guard lock(state.mutex);
    record->fd = -1;
    state.open.fetch_sub(1, std::memory_order_relaxed);
    if (record->handle) {
      record->handle->detach();
      state.connections.erase(record);
    } else {
      record->finished = true;
    }
  }
  server_state& state;
  std::list<connection_record>::iterator record;
};

task<void> serve(std::shared_ptr<server_state> state, std::list<connection_record>::iterator record,
                 tcp_stream stream) {
  leave_on_exit leave{state};
  unregister_on_exit unregister{*state, record};
  const clock::time_point accepted = weft::now();
  std::unique_ptr<transport> t;
  if (state->options.wrap) {
    const int fd = stream.native_handle();
    try {
      t = co_await weft::timeout(state->options.header_timeout,
                                 state->options.wrap(std::move(stream)));
    } catch (const cancelled_error&) {
      throw;
    } catch (const std::exception&) {
      // A failed handshake (a client speaking something else, or too slowly): the factory owns
      // the stream and has closed it; nothing to answer.
    }
    if (!t) {
      std::lock_guard lock(state->mutex);
      record->fd = -1;
      (void)fd;
      co_return;
    }
  } else {
    t = std::make_unique<tcp_transport>(std::move(stream));
  }
  connection conn(*state, *record, std::move(t), accepted);
  co_await conn.run();
}

// Beyond max_connections: a 503 and a close. Best effort, bounded: it waits at most a moment
// for the client to take the answer.
task<void> reject(std::shared_ptr<server_state> state, tcp_stream stream) {
  leave_on_exit leave{state};
  static constexpr std::string_view busy =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n"
      "Connection: close\r\nRetry-After: 1\r\n\r\n503 server is full\r\n";
  try {
    co_await weft::timeout(std::chrono::milliseconds(200), stream.write_all(busy));
    stream.shutdown_write();
    std::array<char, 1024> scratch{};
    const auto until = weft::now() + std::chrono::milliseconds(200);
    for (;;) {
      if (co_await weft::timeout_at(until, stream.read_some(scratch)) == 0) break;
    }
  } catch (const cancelled_error&) {
    throw;
  } catch (const std::exception&) {
  }
}

}  // namespace

void server_state::on_accept(const std::shared_ptr<listener_core>& self, tcp_stream stream) {
  auto state = std::static_pointer_cast<server_state>(self);
  if (options.nodelay) {
    try {
      stream.set_nodelay(true);
    } catch (const std::exception&) {
      return;  // the connection died already
    }
  }
  std::list<connection_record>::iterator record;
  bool full = false;
  {
    std::lock_guard lock(mutex);
    if (connections.size() >= options.max_connections) {
      full = true;
    } else {
      record = connections.emplace(connections.end());
      record->fd = stream.native_handle();
      open.fetch_add(1, std::memory_order_relaxed);
    }
  }
  // Over TLS (or another wrapped transport) a plain-text 503 would be garbage to the client:
  // the connection is closed without an answer (the stream's destructor).
  if (full && options.wrap) return;
  enter();
  if (full) {
    try {
      weft::spawn(reject(std::move(state), std::move(stream))).detach();
    } catch (...) {
      leave();
      throw;
    }
    return;
  }
  join_handle<void> handle;
  try {
    handle = weft::spawn(serve(state, record, std::move(stream)));
  } catch (...) {
    leave();
    std::lock_guard lock(mutex);
    open.fetch_sub(1, std::memory_order_relaxed);
    connections.erase(record);
    throw;
  }
  std::lock_guard lock(mutex);
  if (record->finished) {
    handle.detach();
    connections.erase(record);
  } else {
    record->handle.emplace(std::move(handle));
  }
}

}  // namespace detail

server::server(std::shared_ptr<detail::server_state> state) noexcept : state_(std::move(state)) {}

server::~server() {
  if (state_) close();
}

const socket_address& server::address() const noexcept { return state_->address; }

std::size_t server::connections() const noexcept {
  return state_->open.load(std::memory_order_relaxed);
}

void server::close() { state_->close(); }

task<void> server::shutdown(std::chrono::milliseconds grace) {
  auto state = state_;
  close();
  // Ordering: seq_cst store before the seq_cst loads of each record's `idle`
  // (connection_record::idle has the argument).
  state->draining.store(true, std::memory_order_seq_cst);
  {
    std::lock_guard lock(state->mutex);
    for (detail::connection_record& r : state->connections) {
      // An idle connection's pending read sees the end of the stream and the connection ends.
      // Ordering: seq_cst, the load half of the store-then-load pair with `draining` above.
      if (r.fd >= 0 && r.idle.load(std::memory_order_seq_cst)) ::shutdown(r.fd, SHUT_RD);
    }
  }
  try {
    co_await weft::timeout(grace, state->wait_all_done());
    co_return;
  } catch (const timeout_error&) {
  }
  {
    std::lock_guard lock(state->mutex);
    for (detail::connection_record& r : state->connections)
      if (r.handle) r.handle->cancel();
  }
  co_await state->all_done.wait();
}

task<void> server::wait_closed() {
  auto state = state_;
  co_await state->all_done.wait();
}

task<server> server::start(handler h, std::string host, std::uint16_t port,
                           server_options options) {
  if (!h) throw std::invalid_argument("weft::http::server::start: an empty handler");
  if (options.tls && !options.wrap) {
    if (!options.tls.is_server())
      throw std::invalid_argument("weft::http::server::start: options.tls is a client context");
    options.wrap = detail::tls_factory(options.tls);
  }
  tcp_listener listener = co_await tcp_listener::bind(std::move(host), port, options.listen);
  auto state = std::make_shared<detail::server_state>(std::move(h), std::move(options),
                                                      listener.local_address());
  weft::detail::start_accepting(state, std::move(listener));
  co_return server(std::move(state));
}

}  // namespace weft::http
