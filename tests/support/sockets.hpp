// tests/support/sockets.hpp: a connected pair of non-blocking Unix sockets, and the "try, then wait
// on EAGAIN" read loop of io.hpp, for the tests of io_source and of its cancellation.
#pragma once

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <string>

#include <weft/weft.hpp>

namespace weft_test {

struct socket_pair {
  int fds[2] = {-1, -1};
  socket_pair() {
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
  }
  socket_pair(const socket_pair&) = delete;
  socket_pair& operator=(const socket_pair&) = delete;
  ~socket_pair() {
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }
  void close_side(int i) {
    ::close(fds[i]);
    fds[i] = -1;
  }
};

// Reads what is there (up to 256 bytes), waiting for readability while there is nothing.
inline weft::task<std::string> read_some(weft::io_source& src) {
  std::array<char, 256> buffer{};
  for (;;) {
    const ssize_t n = ::read(src.fd(), buffer.data(), buffer.size());
    if (n >= 0) co_return std::string(buffer.data(), static_cast<std::size_t>(n));
    REQUIRE(errno == EAGAIN);
    co_await src.readable();
  }
}

}  // namespace weft_test
