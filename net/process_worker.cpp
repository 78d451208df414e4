// net/process_worker.cpp: the worker side of weft::process_pool, a plain blocking loop.
//
// A worker is this program started by the pool with WEFT_PROCESS_WORKER="<parent pid>,<memory
// limit>" in its environment and its end of a socketpair on descriptor 3. serve_if_worker():
//   1. removes the variable (a subprocess the worker's functions start is not a worker), asks the
//      kernel to SIGKILL it when the parent's spawning thread dies (PR_SET_PDEATHSIG), and then
//      checks getppid(): a parent that died before prctl ran would otherwise go unnoticed;
//   2. marks descriptor 3 close-on-exec (posix_spawn's dup2 cleared it), so programs the
//      functions exec do not hold the socket open after the worker dies;
//   3. sets RLIMIT_AS to the memory limit, and the kernel's default time slice (below);
//   4. writes one ready byte, then reads a request, runs it, writes the reply, until the pool
//      closes its end (end of file).
// A function that lets std::bad_alloc escape gets an out_of_memory reply and the worker exits
// (status 1): its heap may be in any state, so it is replaced rather than reused.
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fcntl.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <typeinfo>

#include <weft/net/process_pool.hpp>

#include "process_protocol.hpp"
#include "process_registry.hpp"

namespace weft {

namespace {

namespace protocol = detail::process_protocol;

// The worker runs the user's functions as a program started on its own would: with the kernel's
// default time slice, not the short one (100 us) of the runtime thread that spawned it, which it
// inherited (scheduler/time_slice.hpp; posix_spawn has no attribute for it). With the short slice
// each request that wakes a worker preempts one of the parent's busy threads at once; with the
// default, the worker waits for them to pause, and the requests queued meanwhile come in one
// read. bench process_pool, 64 callers 16 deep: 450-540 ms per 100,000 calls against 470-1,060
// (docs/architecture.md, "Worker processes' time slice"). Keeps the policy and nice value; does
// nothing under a policy the user chose (real-time, idle) or on kernels without custom slices.
void use_default_time_slice() noexcept {
  struct {  // sched_setattr's argument (linux/sched/types.h; glibc has no wrapper)
    std::uint32_t size, policy;
    std::uint64_t flags;
    std::int32_t nice;
    std::uint32_t priority;
    std::uint64_t runtime, deadline, period;
  } attr{};
  if (::syscall(SYS_sched_getattr, 0, &attr, sizeof attr, 0) != 0) return;
  if (attr.policy != SCHED_OTHER) return;
  attr.size = sizeof attr;
  attr.flags = 0;
  attr.runtime = 0;  // 0: the default slice
  (void)::syscall(SYS_sched_setattr, 0, &attr, 0);
}

bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n > 0) {
      data += n;
      size -= static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return false;
    }
  }
  return true;
}

void start_reply(std::string& out, protocol::reply_status status) {
  out.assign(protocol::reply_header_size, '\0');
  out[protocol::length_size] = static_cast<char>(status);
}

bool send_reply(int fd, std::string& out) {
  protocol::write_length(out.data(),
                         static_cast<std::uint32_t>(out.size() - protocol::length_size));
  return write_all(fd, out.data(), out.size());
}

[[noreturn]] void out_of_memory(int fd) {
  // No allocation here: the heap just refused one.
  char reply[protocol::reply_header_size];
  protocol::write_length(reply, 1);
  reply[protocol::length_size] = static_cast<char>(protocol::reply_status::out_of_memory);
  write_all(fd, reply, sizeof reply);
  ::_exit(1);
}

// Runs one request (the frame after its length) and leaves the reply in `out`.
void run_request(std::string_view body, std::string& out) {
  byte_reader in(body);
  const auto kind = static_cast<detail::process_request_kind>(in.get<unsigned char>());
  const auto signature = in.get<std::uint64_t>();
  const auto name_size = in.get<std::uint16_t>();
  const std::string_view name = in.take(name_size);
  const std::string_view arguments = body.substr(body.size() - in.remaining());

  const auto found = detail::find_process_function(name);
  if (found.function == nullptr || found.function->signature() != signature) {
    start_reply(out, protocol::reply_status::unknown_function);
    out += "weft::process_pool: '" + std::string(name) + "' ";
    out += found.registered_twice      ? "is registered by two different functions"
           : found.function == nullptr ? "is not registered in the worker's program"
                                       : "has another signature in the worker's program";
    return;
  }
  try {
    start_reply(out, protocol::reply_status::ok);
    if (kind == detail::process_request_kind::chunk) {
      found.function->invoke_chunk(arguments, out);
    } else {
      found.function->invoke(arguments, out);
    }
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const codec_error& e) {
    start_reply(out, protocol::reply_status::codec);
    out += e.what();
  } catch (const std::exception& e) {
    const std::string type = detail::demangle(typeid(e).name());
    start_reply(out, protocol::reply_status::error);
    const auto type_size = static_cast<std::uint16_t>(std::min<std::size_t>(type.size(), 65535));
    out.append(reinterpret_cast<const char*>(&type_size), sizeof type_size);
    out.append(type, 0, type_size);
    out += e.what();
  } catch (...) {
    const std::string type = "(not a std::exception)";
    start_reply(out, protocol::reply_status::error);
    const auto type_size = static_cast<std::uint16_t>(type.size());
    out.append(reinterpret_cast<const char*>(&type_size), sizeof type_size);
    out += type;
    out += "an exception of unknown type";
  }
}

// Before a worker sleeps in read() it polls the socket a few times, giving its core away in between
// (sched_yield): a caller that awaits each reply and sends its next call at once (a loop over
// `co_await pool.call(...)`) sends it within a few microseconds, and a worker that is still awake
// then takes it without the wake-up of a sleeping process (a futex and often an inter-processor
// interrupt; 10-15 us on a virtual machine). bench process_pool (4 callers, 2 deep): 100,000 calls
// in 650-730 ms against 1,340-1,440 ms, one call's p50 15 against 28 us; 5 polls gave 730-880 ms,
// 20 the same as 10 (docs/architecture.md, "Worker processes"). The yield leaves the core to any
// thread that wants it, so an idle worker costs 10 polls after its last reply, then nothing.
//
// A yield that took long means another thread had this core: next to a CPU-bound thread the
// kernel may give it back only at its next tick (4 ms at HZ=250), and each further poll would
// delay a request that a blocked read() would have taken at once. So the polls stop after the
// first yield longer than `slow_yield` and the worker blocks.
constexpr int polls_before_sleep = 10;
constexpr std::chrono::microseconds slow_yield{50};

ssize_t receive(int fd, char* data, std::size_t size) {
  for (int i = 0; i < polls_before_sleep; ++i) {
    const ssize_t n = ::recv(fd, data, size, MSG_DONTWAIT);
    if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return n;
    const auto before = std::chrono::steady_clock::now();
    ::sched_yield();
    if (std::chrono::steady_clock::now() - before > slow_yield) break;
  }
  return ::read(fd, data, size);
}

// Reads requests through a buffer: with requests pipelined (process_pool_options::pipeline_depth)
// one read often brings the next request too, and the worker never sleeps between them.
[[noreturn]] void serve(int fd) {
  std::string in(4096, '\0');
  std::size_t start = 0;
  std::size_t end = 0;
  std::string reply;
  for (;;) {
    // A whole request at in[start, ...)?
    std::size_t need = protocol::length_size;
    if (end - start >= protocol::length_size) {
      need += protocol::read_length(in.data() + start);
    }
    if (end - start < need) {
      if (start != 0) {
        std::memmove(in.data(), in.data() + start, end - start);
        end -= start;
        start = 0;
      }
      if (in.size() < need) in.resize(need);
      const ssize_t n = receive(fd, in.data() + end, in.size() - end);
      if (n > 0) {
        end += static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        ::_exit(0);  // the pool closed us
      }
      continue;
    }
    const std::string_view request(in.data() + start + protocol::length_size,
                                   need - protocol::length_size);
    try {
      run_request(request, reply);
    } catch (const std::bad_alloc&) {
      out_of_memory(fd);
    } catch (const std::exception& e) {
      // A malformed request (the pool and worker disagree on the protocol): report, keep going.
      start_reply(reply, protocol::reply_status::codec);
      reply += "weft::process_pool: a malformed request: ";
      reply += e.what();
    }
    start += need;
    if (start == end) start = end = 0;
    if (!send_reply(fd, reply)) ::_exit(0);
    if (reply.capacity() > (std::size_t{1} << 20)) std::string().swap(reply);
    if (start == end && in.size() > (std::size_t{1} << 20)) std::string(4096, '\0').swap(in);
  }
}

}  // namespace

void process_pool::serve_if_worker() {
  const char* value = std::getenv(protocol::worker_variable);
  if (value == nullptr) return;
  char* end = nullptr;
  const long parent = std::strtol(value, &end, 10);
  const unsigned long long memory_limit =
      (end != nullptr && *end == ',') ? std::strtoull(end + 1, nullptr, 10) : 0;
  ::unsetenv(protocol::worker_variable);

  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  // Safety: the parent may have died between posix_spawn and the prctl above; then the death
  // signal was never armed and we were reparented, which getppid() shows.
  if (::getppid() != static_cast<pid_t>(parent)) ::_exit(0);
  ::fcntl(protocol::worker_fd, F_SETFD, FD_CLOEXEC);
  if (memory_limit != 0) {
    const rlimit limit{static_cast<rlim_t>(memory_limit), static_cast<rlim_t>(memory_limit)};
    ::setrlimit(RLIMIT_AS, &limit);
  }
  use_default_time_slice();
  // Ready: the pool starts a call's timeout only after this byte, so a slow start (a large or
  // sanitized binary) is not charged to the first call.
  if (!write_all(protocol::worker_fd, &protocol::ready_byte, 1)) ::_exit(0);
  serve(protocol::worker_fd);
}

}  // namespace weft
