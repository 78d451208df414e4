// net/dns.cpp: weft::resolve on c-ares, its sockets driven by the runtime's poller.
//
// Each lookup has its own c-ares channel (channels are not thread-safe, and a lookup's task may
// move between workers; creating one reads resolv.conf, which is cheap beside a DNS round trip)
// and its own small epoll instance. c-ares tells us which sockets it wants watched (the socket
// state callback) and we put them in that epoll set, level-triggered; the epoll descriptor itself
// is one io_source on the runtime's poller, which reports it readable whenever one of c-ares'
// sockets is ready. So one task waits on one descriptor, whatever number of sockets c-ares opens,
// and the "try, then wait" rule holds: the loop asks the inner set (epoll_wait with timeout 0)
// before it waits, so readiness that came before the wait is never missed. c-ares' own timers
// (retries, server rotation) are honoured by waiting at most ares_timeout() and then letting
// c-ares process the timeout.
//
// Cancellation: the wait is a cancellation point; unwinding destroys the channel (c-ares calls the
// lookup's callback with ARES_EDESTRUCTION and closes its sockets), then the epoll descriptor.
#include <weft/net/dns.hpp>

#include <ares.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include <weft/primitives/timeout.hpp>
#include <weft/scheduler/io.hpp>

namespace weft {

namespace {

void init_library_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    const int status = ares_library_init(ARES_LIB_INIT_ALL);
    if (status != ARES_SUCCESS) {
      throw net_error(std::error_code(status, dns_category()), "weft: initialize c-ares");
    }
  });
}

class lookup {
 public:
  lookup(const std::string& host, const resolve_options& options) : host_(host) {
    init_library_once();
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) detail::throw_net_error(errno, "create an epoll set to resolve", host);
    ares_options opts{};
    opts.sock_state_cb = &lookup::socket_state;
    opts.sock_state_cb_data = this;
    int status = ares_init_options(&channel_, &opts, ARES_OPT_SOCK_STATE_CB);
    if (status != ARES_SUCCESS) {
      channel_ = nullptr;
      ::close(epoll_fd_);
      throw host_not_found(std::error_code(status, dns_category()), "weft: resolve " + host);
    }
    if (options.servers != nullptr) {
      status = ares_set_servers_ports_csv(channel_, options.servers);
      if (status != ARES_SUCCESS) {
        ares_destroy(channel_);
        ::close(epoll_fd_);
        throw std::invalid_argument("weft: resolve " + host + ": bad DNS server list '" +
                                    std::string(options.servers) + "': " + ares_strerror(status));
      }
    }
  }
  lookup(const lookup&) = delete;
  lookup& operator=(const lookup&) = delete;
  ~lookup() {
    source_.reset();         // off the poller before the descriptor goes
    ares_destroy(channel_);  // runs on_result(ARES_EDESTRUCTION) if still pending
    ::close(epoll_fd_);
  }

  task<std::vector<socket_address>> run(std::uint16_t port, int family) {
    source_ = std::make_unique<io_source>(epoll_fd_);
    ares_addrinfo_hints hints{};
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    // ARES_AI_ENVHOSTS: the hosts file named by $CARES_HOSTS, if set, instead of /etc/hosts.
    hints.ai_flags = ARES_AI_ENVHOSTS;
    const std::string service = std::to_string(port);
    ares_getaddrinfo(channel_, host_.c_str(), service.c_str(), &hints, &lookup::on_result, this);
    while (!done_) {
      std::array<epoll_event, 8> events{};
      const int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), 0);
      if (n > 0) {
        for (int i = 0; i < n; ++i) {
          const int fd = events[static_cast<std::size_t>(i)].data.fd;
          const std::uint32_t what = events[static_cast<std::size_t>(i)].events;
          const bool readable = (what & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0;
          const bool writable = (what & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0;
          ares_process_fd(channel_, readable ? fd : ARES_SOCKET_BAD,
                          writable ? fd : ARES_SOCKET_BAD);
        }
        continue;
      }
      timeval limit{};
      const timeval* wait_for = ares_timeout(channel_, nullptr, &limit);
      if (wait_for == nullptr) {
        co_await source_->readable();
        continue;
      }
      const auto ms =
          std::chrono::milliseconds(wait_for->tv_sec * 1000 + wait_for->tv_usec / 1000 + 1);
      bool expired = false;
      try {
        co_await weft::timeout(ms, wait_readable(*source_));
      } catch (const timeout_error&) {
        expired = true;
      }
      if (expired) ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    }
    if (status_ != ARES_SUCCESS) {
      throw host_not_found(std::error_code(status_, dns_category()), "weft: resolve " + host_);
    }
    if (addresses_.empty()) {
      throw host_not_found(std::error_code(ARES_ENODATA, dns_category()), "weft: resolve " + host_);
    }
    co_return std::move(addresses_);
  }

 private:
  static task<void> wait_readable(io_source& source) { co_await source.readable(); }

  static void socket_state(void* data, ares_socket_t fd, int readable, int writable) {
    auto* self = static_cast<lookup*>(data);
    if (readable == 0 && writable == 0) {
      ::epoll_ctl(self->epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
      return;
    }
    epoll_event event{};
    event.events = (readable != 0 ? EPOLLIN : 0U) | (writable != 0 ? EPOLLOUT : 0U);
    event.data.fd = fd;
    if (::epoll_ctl(self->epoll_fd_, EPOLL_CTL_MOD, fd, &event) != 0 && errno == ENOENT) {
      ::epoll_ctl(self->epoll_fd_, EPOLL_CTL_ADD, fd, &event);
    }
  }

  static void on_result(void* data, int status, int /*timeouts*/, ares_addrinfo* result) {
    auto* self = static_cast<lookup*>(data);
    self->done_ = true;
    self->status_ = status;
    if (result == nullptr) return;
    if (status == ARES_SUCCESS) {
      for (const ares_addrinfo_node* node = result->nodes; node != nullptr; node = node->ai_next) {
        socket_address address(node->ai_addr, static_cast<socklen_t>(node->ai_addrlen));
        bool seen = false;
        for (const auto& a : self->addresses_)
          seen = seen || a == address;
        if (!seen) self->addresses_.push_back(address);
      }
    }
    ares_freeaddrinfo(result);
  }

  std::string host_;
  int epoll_fd_ = -1;
  ares_channel channel_ = nullptr;
  std::unique_ptr<io_source> source_;
  bool done_ = false;
  int status_ = ARES_SUCCESS;
  std::vector<socket_address> addresses_;
};

task<std::vector<socket_address>> lookup_name(std::string host, std::uint16_t port,
                                              resolve_options options) {
  lookup state(host, options);
  co_return co_await state.run(port, options.family);
}

}  // namespace

task<std::vector<socket_address>> resolve(std::string host, std::uint16_t port,
                                          resolve_options options) {
  const std::optional<socket_address> numeric = socket_address::parse(host, port);
  if (numeric) {
    std::vector<socket_address> one;
    one.push_back(*numeric);
    co_return one;
  }
  if (host.empty()) {
    throw host_not_found(std::error_code(ARES_EBADNAME, dns_category()),
                         "weft: resolve an empty host name");
  }
  const auto limit = options.timeout;
  co_return co_await weft::timeout(limit, lookup_name(std::move(host), port, options));
}

}  // namespace weft
