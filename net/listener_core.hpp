// net/listener_core.hpp: what weft::start_server (net/stream_server.cpp) and weft::http::server
// (net/http_server.cpp) share: the accept loop, the listener's bookkeeping for close(), and the
// count of running tasks that wait_closed() waits on.
//
// A server's state derives from listener_core and says what to do with each accepted connection
// (on_accept). The state is shared (std::shared_ptr) by the server object, the accept loop and
// every connection task, so none outlives what it uses.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <weft/net/address.hpp>
#include <weft/net/tcp.hpp>
#include <weft/primitives/event.hpp>
#include <weft/scheduler/join_handle.hpp>
#include <weft/scheduler/task.hpp>

namespace weft::detail {

class listener_core {
 public:
  explicit listener_core(socket_address a) noexcept : address(a) {}
  listener_core(const listener_core&) = delete;
  listener_core& operator=(const listener_core&) = delete;
  virtual ~listener_core() = default;

  const socket_address address;

  // Invariant: counts the accept loop (the initial 1) and every connection task that started and
  // has not ended. Only the accept loop increments (enter(), from on_accept), and only while it
  // is itself counted, so once the count reaches zero it stays there: the thread that brings it
  // to zero sets `all_done`.
  // Ordering: acq_rel on the decrement, so that the last one sees every task's effects and the
  // waiter on all_done (woken through the event's lock) sees them too; relaxed increments, since
  // the loop's own count keeps the total above zero while it increments.
  std::atomic<std::size_t> active{1};
  event all_done;

  // Guards the three fields below (and a derived state's own registry, if it has one).
  mutable std::mutex mutex;
  std::optional<join_handle<void>> loop;  // the accept loop, to cancel it on close()
  int listener_fd = -1;  // the accept loop's listener while it is open, for close()
  bool closed = false;

  void enter() noexcept { active.fetch_add(1, std::memory_order_relaxed); }
  void leave() noexcept {
    // Ordering: acq_rel; enter() may be relaxed since a handler is only entered while another
    // count (the loop's own 1) is held. Every leave releases what its handler did, and the last
    // one acquires all of them before it sets all_done, so wait_closed() sees every handler end.
    if (active.fetch_sub(1, std::memory_order_acq_rel) == 1) all_done.set();
  }

  // Stops accepting: the port is released at once (the listener is shut down under the pending
  // accept, as asyncio's close() does) and the loop is cancelled. Idempotent; any thread.
  void close();
  [[nodiscard]] bool is_closed() const {
    std::lock_guard lock(mutex);
    return closed;
  }
  // Returns when the accept loop and every connection task have ended.
  task<void> wait_all_done();

  // Called by the accept loop for each accepted connection, with the loop's own reference to
  // this state. A task it starts for the connection must be counted: enter() before the spawn,
  // leave() when the task ends (leave_on_exit), and leave() too if the spawn throws (then
  // rethrow: the loop stops and reports). Runs on the loop's task, so it must not wait.
  virtual void on_accept(const std::shared_ptr<listener_core>& self, tcp_stream stream) = 0;
  // For the log when accepting fails: "weft: start_server", "weft::http::server".
  [[nodiscard]] virtual std::string name() const = 0;
};

// Starts the accept loop on `listener` (spawned; its handle kept in core->loop for close()).
void start_accepting(const std::shared_ptr<listener_core>& core, tcp_listener listener);

// Leaves the count when a connection task's frame ends, however it ends (including destruction
// of the frame at runtime shutdown). Holds the state alive until then.
struct leave_on_exit {
  explicit leave_on_exit(std::shared_ptr<listener_core> c) noexcept : core(std::move(c)) {}
  leave_on_exit(const leave_on_exit&) = delete;
  leave_on_exit& operator=(const leave_on_exit&) = delete;
  ~leave_on_exit() { core->leave(); }
  std::shared_ptr<listener_core> core;
};

}  // namespace weft::detail
