// net/http_server_state.hpp: what a weft::http::server shares with its accept loop and its
// connections: the handler and options, the registry of open connections (for shutdown), and the
// count that wait_closed() waits on.
#pragma once

#include <atomic>
#include <cstddef>
#include <list>
#include <mutex>
#include <optional>

#include <weft/net/http/server.hpp>
#include <weft/primitives/event.hpp>
#include <weft/scheduler/join_handle.hpp>

namespace weft::http::detail {

// One open connection, as shutdown sees it.
struct connection_record {
  // The TCP descriptor while the connection owns it open; -1 once it is about to close (guarded
  // by server_state::mutex, so shutdown never touches a descriptor number reused since).
  int fd = -1;
  // Ordering: the connection stores true (seq_cst) before it loads `draining` (seq_cst) when it
  // starts waiting for a new request; shutdown stores `draining` (seq_cst) before it loads `idle`.
  // Of the two (Dekker's pattern) at least one sees the other's store: either the connection sees
  // the drain and leaves, or shutdown sees it idle and ends its read.
  std::atomic<bool> idle{true};
  std::optional<join_handle<void>> handle;  // guarded by the mutex; set after the spawn
  bool finished = false;                    // guarded: the task ended before its handle was set
};

struct server_state {
  server_state(handler h_, server_options o, socket_address a)
      : h(std::move(h_)), options(std::move(o)), address(a) {}

  const handler h;
  const server_options options;
  const socket_address address;

  // Invariant, as in start_server's state (stream_server.cpp): counts the accept loop (the
  // initial 1) and every connection task that started and has not ended; only the accept loop
  // increments, while counted itself, so zero is final and its setter sets `all_done`.
  // Ordering: acq_rel decrement (the last one sees every task's effects); relaxed increments.
  std::atomic<std::size_t> active{1};
  event all_done;
  // Ordering: see connection_record::idle.
  std::atomic<bool> draining{false};
  // Open connections, for connections() (relaxed: a statistic; the registry is the truth).
  std::atomic<std::size_t> open{0};

  std::mutex mutex;  // guards the registry, the loop handle, listener_fd and closed
  std::list<connection_record> connections;
  std::optional<join_handle<void>> loop;
  int listener_fd = -1;
  bool closed = false;

  void leave() noexcept {
    if (active.fetch_sub(1, std::memory_order_acq_rel) == 1) all_done.set();
  }
};

// Returns when every connection and the accept loop have ended.
task<void> wait_all_done(server_state& state);

}  // namespace weft::http::detail
