// net/tcp_stream.cpp: weft::tcp_stream: connecting with Happy Eyeballs (RFC 8305), and the TCP
// socket options.
//
// Happy Eyeballs here is a loop over spawned attempts: start the next address's attempt, then wait
// (weft::wait, first_completed) until some attempt finished or `attempt_delay` passed; a success
// wins, a failure starts the next attempt at once, an expired delay starts the next one beside the
// running ones. When the connect ends (won, failed, cancelled or timed out), every attempt still
// running is cancelled and awaited, so no attempt outlives the call and holds a descriptor.
#include <weft/net/tcp.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <exception>
#include <optional>
#include <utility>

#include <weft/net/dns.hpp>
#include <weft/primitives/cancel_all.hpp>
#include <weft/primitives/timeout.hpp>
#include <weft/primitives/wait.hpp>
#include <weft/scheduler/spawn.hpp>

namespace weft {

namespace detail {

std::vector<socket_address> interleave_families(std::vector<socket_address> addresses) {
  if (addresses.size() < 2) return addresses;
  const int first_family = addresses.front().family();
  std::vector<socket_address> first;
  std::vector<socket_address> other;
  for (auto& a : addresses)
    (a.family() == first_family ? first : other).push_back(a);
  std::vector<socket_address> result;
  result.reserve(addresses.size());
  for (std::size_t i = 0; i < first.size() || i < other.size(); ++i) {
    if (i < first.size()) result.push_back(first[i]);
    if (i < other.size()) result.push_back(other[i]);
  }
  return result;
}

}  // namespace detail

namespace {

task<tcp_stream> attempt(socket_address address) {
  auto socket = detail::socket_handle::open(address.family(), SOCK_STREAM, IPPROTO_TCP);
  co_await detail::connect_socket(socket, address);
  co_return tcp_stream(std::move(socket), address);
}

// Cancels the attempts still running and waits for them; their results (a connection that won
// too late, an error) are taken and dropped so that none is reported as never retrieved.
task<void> abandon(std::vector<join_handle<tcp_stream>>& running) {
  co_await cancel_all(running);
  for (auto& handle : running) {
    try {
      (void)co_await std::move(handle);
    } catch (...) {  // NOLINT(bugprone-empty-catch): the loser's outcome does not matter
    }
  }
  running.clear();
}

task<tcp_stream> happy_eyeballs(std::vector<socket_address> addresses,
                                std::chrono::milliseconds attempt_delay) {
  const std::vector<socket_address> order = detail::interleave_families(std::move(addresses));
  if (order.empty()) {
    throw net_error(std::make_error_code(std::errc::invalid_argument),
                    "weft: connect: no address to connect to");
  }
  std::vector<join_handle<tcp_stream>> running;
  std::exception_ptr last_error;
  std::exception_ptr cancelled;
  std::optional<tcp_stream> winner;
  std::size_t next = 0;
  try {
    while (!winner) {
      if (next < order.size()) running.push_back(weft::spawn(attempt(order[next++])));
      if (running.empty()) break;  // every address failed
      std::optional<clock::duration> delay;
      if (next < order.size()) delay = attempt_delay;
      auto [done, pending] = co_await weft::wait(std::move(running), first_completed, delay);
      running = std::move(pending);
      for (auto& handle : done) {
        try {
          tcp_stream stream = co_await std::move(handle);
          if (!winner) winner.emplace(std::move(stream));
        } catch (const net_error&) {
          last_error = std::current_exception();
        }
      }
    }
  } catch (const cancelled_error&) {
    cancelled = std::current_exception();
  }
  co_await abandon(running);
  if (cancelled) std::rethrow_exception(cancelled);
  if (winner) co_return std::move(*winner);
  std::rethrow_exception(last_error);
}

task<tcp_stream> resolve_and_connect(std::string host, std::uint16_t port,
                                     std::chrono::milliseconds attempt_delay) {
  std::vector<socket_address> addresses = co_await resolve(std::move(host), port);
  co_return co_await happy_eyeballs(std::move(addresses), attempt_delay);
}

}  // namespace

task<tcp_stream> tcp_stream::connect(std::string host, std::uint16_t port,
                                     connect_options options) {
  co_return co_await weft::timeout(
      options.timeout, resolve_and_connect(std::move(host), port, options.attempt_delay));
}

task<tcp_stream> tcp_stream::connect(std::vector<socket_address> addresses,
                                     connect_options options) {
  co_return co_await weft::timeout(options.timeout,
                                   happy_eyeballs(std::move(addresses), options.attempt_delay));
}

void tcp_stream::set_nodelay(bool on) {
  const int value = on ? 1 : 0;
  if (::setsockopt(handle_.fd(), IPPROTO_TCP, TCP_NODELAY, &value, sizeof value) != 0) {
    detail::throw_net_error(errno, "set TCP_NODELAY on", peer_.to_string());
  }
}

void tcp_stream::set_keepalive(bool on, std::chrono::seconds idle, int probes) {
  const int value = on ? 1 : 0;
  if (::setsockopt(handle_.fd(), SOL_SOCKET, SO_KEEPALIVE, &value, sizeof value) != 0) {
    detail::throw_net_error(errno, "set SO_KEEPALIVE on", peer_.to_string());
  }
  if (!on) return;
  if (idle.count() > 0) {
    const int seconds = static_cast<int>(idle.count());
    if (::setsockopt(handle_.fd(), IPPROTO_TCP, TCP_KEEPIDLE, &seconds, sizeof seconds) != 0 ||
        ::setsockopt(handle_.fd(), IPPROTO_TCP, TCP_KEEPINTVL, &seconds, sizeof seconds) != 0) {
      detail::throw_net_error(errno, "set the keep-alive interval on", peer_.to_string());
    }
  }
  if (probes > 0 &&
      ::setsockopt(handle_.fd(), IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes) != 0) {
    detail::throw_net_error(errno, "set TCP_KEEPCNT on", peer_.to_string());
  }
}

}  // namespace weft
