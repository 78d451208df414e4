// net/listener_core.cpp: the accept loop and close() shared by weft::start_server and
// weft::http::server (listener_core.hpp).
#include "listener_core.hpp"

#include <sys/socket.h>

#include <exception>

#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/detail/task_header.hpp>
#include <weft/scheduler/errors.hpp>
#include <weft/scheduler/spawn.hpp>

namespace weft::detail {

namespace {

// Forgets the listener's descriptor before the listener (a parameter of the accept loop, so
// destroyed after this local) closes it, so close() never shuts down a reused descriptor number.
struct forget_listener {
  explicit forget_listener(listener_core& c) noexcept : core(c) {}
  forget_listener(const forget_listener&) = delete;
  forget_listener& operator=(const forget_listener&) = delete;
  ~forget_listener() {
    std::lock_guard lock(core.mutex);
    core.listener_fd = -1;
  }
  listener_core& core;
};

task<void> accept_loop(std::shared_ptr<listener_core> core, tcp_listener listener) {
  leave_on_exit leave{core};
  {
    std::lock_guard lock(core->mutex);
    core->listener_fd = core->closed ? -1 : listener.native_handle();
    if (core->closed) co_return;
  }
  forget_listener forget(*core);
  try {
    for (;;)
      core->on_accept(core, co_await listener.accept());
  } catch (const cancelled_error&) {
    // close(): stop accepting. The listener closes when this frame ends.
  } catch (const std::exception& e) {
    // After close() the listener was shut down under the pending accept: not a failure.
    if (!core->is_closed()) {
      report_to_log(current_runtime_core(), core->name() + ": accepting on " +
                                                core->address.to_string() + " failed: " + e.what());
    }
  }
}

}  // namespace

void listener_core::close() {
  std::lock_guard lock(mutex);
  if (closed) return;
  closed = true;
  // shutdown() on a listening socket turns it back into an unconnected one, so new connections
  // are refused at once and the pending accept wakes up. The descriptor itself is closed by the
  // accept loop as it ends.
  if (listener_fd >= 0) ::shutdown(listener_fd, SHUT_RD);
  if (loop) {
    loop->cancel();
    loop->detach();
    loop.reset();
  }
}

task<void> listener_core::wait_all_done() { co_await all_done.wait(); }

void start_accepting(const std::shared_ptr<listener_core>& core, tcp_listener listener) {
  auto handle = weft::spawn(accept_loop(core, std::move(listener)));
  std::lock_guard lock(core->mutex);
  core->loop.emplace(std::move(handle));
}

}  // namespace weft::detail
