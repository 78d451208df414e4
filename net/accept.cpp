// net/accept.cpp: accepting a connection, and what a listener does when the process runs out of
// descriptors.
//
// accept4 with EMFILE/ENFILE leaves the connection in the kernel's queue, so the listening socket
// stays readable: waiting for readiness would return at once and the loop would spin at 100% CPU
// (libuv and others have met this). Instead the listener sleeps, 10 ms doubling to 1 s, and tries
// again; it reports the condition once per episode (the first failure after a success) through the
// runtime's log hook, and a later success ends the episode. The sleeps are cancellation points, so
// a listener being closed does not wait out its backoff.
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#include <weft/net/detail/socket_handle.hpp>
#include <weft/net/errors.hpp>
#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/detail/task_header.hpp>
#include <weft/scheduler/sleep.hpp>

namespace weft::detail {

namespace {
constexpr auto first_backoff = std::chrono::milliseconds(10);
constexpr auto longest_backoff = std::chrono::milliseconds(1000);

bool out_of_resources(int error) noexcept {
  return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

// The peer gave up between the handshake and accept (or a protocol error on that connection
// only): nothing is wrong with the listener, take the next one.
bool connection_went_away(int error) noexcept {
  return error == ECONNABORTED || error == EPROTO || error == EPERM || error == ENETDOWN ||
         error == ENOPROTOOPT || error == EHOSTDOWN || error == ENONET || error == EHOSTUNREACH ||
         error == ENETUNREACH;
}
}  // namespace

task<socket_handle> accept_socket(socket_handle& listener, socket_address& peer, bool& reported) {
  auto backoff = first_backoff;
  // The cooperative budget, as stream_socket::read_some: a flood of connections cannot hold the
  // worker of an accept loop.
  if (detail::budget_exhausted()) co_await yield_now();
  for (;;) {
    socklen_t size = socket_address::capacity;
    const int fd = ::accept4(listener.fd(), peer.data(), &size, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      peer.set_size(size);
      reported = false;  // the episode (if any) is over
      co_return socket_handle(fd);
    }
    const int error = errno;
    if (error == EAGAIN || error == EWOULDBLOCK) {
      co_await listener.io().readable();
    } else if (error == EINTR || connection_went_away(error)) {
      continue;
    } else if (out_of_resources(error)) {
      if (!reported) {
        reported = true;
        const std::string message = "weft: accept on " + listener.local_address().to_string() +
                                    ": " + std::strerror(error) +
                                    "; pausing accepts (10 ms doubling to 1 s) until descriptors "
                                    "are free";
        report_to_log(current_runtime_core(), message);
      }
      co_await weft::sleep(backoff);
      backoff = std::min(backoff * 2, longest_backoff);
    } else {
      throw_net_error(error, "accept on", listener.local_address().to_string());
    }
  }
}

}  // namespace weft::detail
