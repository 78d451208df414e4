// net/http_server_state.hpp: what a weft::http::server shares with its accept loop and its
// connections: the handler and options, the registry of open connections (for shutdown), and the
// count that wait_closed() waits on.
#pragma once

#include <atomic>
#include <cstddef>
#include <list>
#include <memory>
#include <optional>
#include <string>

#include <weft/net/http/server.hpp>

#include <weft/scheduler/join_handle.hpp>
#include "listener_core.hpp"

namespace weft::http::detail {

// One open connection, as shutdown sees it.
struct connection_record {
  // The TCP descriptor while the connection owns it open; -1 once it is about to close (guarded
  // by the state's mutex, so shutdown never touches a descriptor number reused since).
  int fd = -1;
  // Ordering: the connection stores true (seq_cst) before it loads `draining` (seq_cst) when it
  // starts waiting for a new request; shutdown stores `draining` (seq_cst) before it loads `idle`.
  // Of the two (Dekker's pattern) at least one sees the other's store: either the connection sees
  // the drain and leaves, or shutdown sees it idle and ends its read.
  std::atomic<bool> idle{true};
  std::optional<join_handle<void>> handle;  // guarded by the mutex; set after the spawn
  bool finished = false;                    // guarded: the task ended before its handle was set
};

// The accept loop, close() and the count of running tasks come from listener_core (shared with
// weft::start_server); this adds the handler, the options and the registry of connections.
struct server_state final : weft::detail::listener_core {
  server_state(handler h_, server_options o, socket_address a)
      : listener_core(a), h(std::move(h_)), options(std::move(o)) {}

  const handler h;
  const server_options options;

  // Ordering: see connection_record::idle.
  std::atomic<bool> draining{false};
  // Open connections, for connections() (relaxed: a statistic; the registry is the truth).
  std::atomic<std::size_t> open{0};

  // Guarded by listener_core::mutex.
  std::list<connection_record> connections;

  // Registers the connection and starts its task, or answers 503 beyond max_connections.
  void on_accept(const std::shared_ptr<listener_core>& self, tcp_stream stream) override;
  [[nodiscard]] std::string name() const override { return "weft::http::server"; }
};

}  // namespace weft::http::detail
