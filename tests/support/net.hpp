// tests/support/net.hpp: loopback helpers for the network tests: addresses, a "black hole"
// listener that never completes a handshake, descriptor limits, and CPU time of the process.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <weft/weft.hpp>

namespace weft_test {

inline weft::socket_address loopback(std::uint16_t port = 0) {
  return *weft::socket_address::parse("127.0.0.1", port);
}

// A vector of addresses, built outside the calling coroutine: GCC 12 rejects a braced list
// (whose backing array is a temporary) in a coroutine ("array used as initializer").
template <class... A>
std::vector<weft::socket_address> addresses(const A&... a) {
  std::vector<weft::socket_address> result;
  (result.push_back(a), ...);
  return result;
}

// A loopback address whose SYNs are dropped, so a connect to it hangs (until the kernel gives up,
// minutes later): a listener with backlog 0 whose one-slot accept queue is already full. Plain
// blocking sockets, not registered with any runtime.
class black_hole {
 public:
  black_hole() {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(listener_ >= 0);
    const auto any = loopback();
    REQUIRE(::bind(listener_, any.data(), any.size()) == 0);
    REQUIRE(::listen(listener_, 0) == 0);
    socklen_t size = weft::socket_address::capacity;
    REQUIRE(::getsockname(listener_, address_.data(), &size) == 0);
    address_.set_size(size);
    // Fill the accept queue (backlog 0 holds one; a second makes sure).
    for (int i = 0; i < 2; ++i) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      REQUIRE(fd >= 0);
      ::connect(fd, address_.data(), address_.size());
      fillers_.push_back(fd);
    }
    ::usleep(50 * 1000);  // let the handshakes of the fillers complete
  }
  black_hole(const black_hole&) = delete;
  black_hole& operator=(const black_hole&) = delete;
  ~black_hole() {
    for (int fd : fillers_)
      ::close(fd);
    ::close(listener_);
  }
  [[nodiscard]] const weft::socket_address& address() const { return address_; }

 private:
  int listener_ = -1;
  std::vector<int> fillers_;
  weft::socket_address address_;
};

// The process's CPU time (user + system), for "does not spin" checks.
inline std::chrono::microseconds process_cpu_time() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return std::chrono::seconds(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         std::chrono::microseconds(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

// Sets the soft RLIMIT_NOFILE for the scope and restores it after.
class fd_limit {
 public:
  explicit fd_limit(rlim_t soft) {
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved_) == 0);
    rlimit changed = saved_;
    changed.rlim_cur = soft < saved_.rlim_max ? soft : saved_.rlim_max;
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &changed) == 0);
    granted_ = changed.rlim_cur;
  }
  fd_limit(const fd_limit&) = delete;
  fd_limit& operator=(const fd_limit&) = delete;
  ~fd_limit() { ::setrlimit(RLIMIT_NOFILE, &saved_); }
  [[nodiscard]] rlim_t granted() const { return granted_; }
  [[nodiscard]] rlim_t hard() const { return saved_.rlim_max; }

 private:
  rlimit saved_{};
  rlim_t granted_ = 0;
};

// The highest open descriptor number + 1 (a bound for "how many are open").
inline int open_descriptor_bound() {
  int highest = 0;
  for (int fd = 0; fd < 4096; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1) highest = fd + 1;
  }
  return highest;
}

}  // namespace weft_test
