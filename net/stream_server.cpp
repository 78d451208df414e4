// net/stream_server.cpp: weft::start_server and weft::open_connection, asyncio's entry points to
// its streams.
//
// The accept loop, close() and the count of running handlers that wait_closed() waits on are
// net/listener_core's, shared with weft::http::server.
#include <weft/net/streams.hpp>

#include <exception>
#include <memory>
#include <string>

#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/detail/task_header.hpp>
#include <weft/scheduler/spawn.hpp>

#include "listener_core.hpp"

namespace weft {

namespace detail {

// The accept loop, close() and the task count come from listener_core; this adds the handler.
struct server_state final : listener_core {
  server_state(connection_handler h, server_options o, socket_address a)
      : listener_core(a), handler(std::move(h)), options(o) {}

  const connection_handler handler;
  const server_options options;

  void on_accept(const std::shared_ptr<listener_core>& self, tcp_stream stream) override;
  [[nodiscard]] std::string name() const override { return "weft: start_server"; }
};

namespace {

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

}  // namespace

void server_state::on_accept(const std::shared_ptr<listener_core>& self, tcp_stream stream) {
  enter();
  try {
    weft::spawn(serve_connection(std::static_pointer_cast<server_state>(self), std::move(stream)))
        .detach();
  } catch (...) {
    leave();  // the handler never started
    throw;
  }
}

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

bool server::is_serving() const noexcept { return !state_->is_closed(); }

void server::close() { state_->close(); }

task<void> server::wait_closed() {
  auto state = state_;  // the server object may go away while this waits
  co_await state->wait_all_done();
}

task<server> start_server(connection_handler handler, std::string host, std::uint16_t port,
                          server_options options) {
  tcp_listener listener = co_await tcp_listener::bind(std::move(host), port, options.listen);
  auto state =
      std::make_shared<detail::server_state>(std::move(handler), options, listener.local_address());
  detail::start_accepting(state, std::move(listener));
  co_return server(std::move(state));
}

}  // namespace weft
