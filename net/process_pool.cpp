// net/process_pool.cpp: the parent side of weft::process_pool.
//
// The pool has `workers` slots. A call takes a slot (a semaphore counts the idle ones; a list
// under the pool's mutex names them), makes sure the slot has a live worker (starting one if the
// slot is empty or its worker died while idle), sends its request, reads the reply (try first,
// wait on the socket's io_source on EAGAIN), and gives the slot back. One request is outstanding
// per worker, so nothing on the wire needs matching.
//
// Invariant: a worker goes back to the idle list only after a complete request and reply. Any
// other way out of a call (a crash, a timeout, a cancellation, a malformed reply, an exception
// of ours) kills the worker and empties the slot (lease's destructor), so a worker can never
// hand one call's bytes to the next. The one exception is on_cancel::finish, which moves the
// lease to a task that reads the reply to its end first.
//
// Invariant: every process the pool starts has exactly one watcher task, which reaps it
// (waitpid) on every path: when its pidfd turns readable (or, before Linux 5.3, polling
// waitpid), and in its frame's destructor if the runtime destroys the watcher first, which then
// kills and reaps synchronously. Only the watcher calls waitpid, and kill() is sent under the same
// mutex that marks the process reaped, so a signal can never reach a recycled pid. No zombies.
//
// Invariant: a worker's descriptors (socket, pidfd) belong to its worker_process and close when
// the last reference goes: the slot's, the running call's, the watcher's and the live list's.
// close() waits until the watcher of every process has dropped its references, so when close()
// returns every descriptor the pool opened is closed.
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <weft/net/process_pool.hpp>
#include <weft/primitives/event.hpp>
#include <weft/primitives/semaphore.hpp>
#include <weft/primitives/timeout.hpp>
#include <weft/scheduler/io.hpp>
#include <weft/scheduler/sleep.hpp>
#include <weft/scheduler/spawn.hpp>

#include "process_protocol.hpp"
#include "process_spawn.hpp"

namespace weft {

namespace protocol = detail::process_protocol;
using namespace std::chrono_literals;

worker_crashed::worker_crashed(const std::string& message, pid_t pid, int signal, int exit_code,
                               bool out_of_memory)
    : std::runtime_error(message),
      pid_(pid),
      signal_(signal),
      exit_code_(exit_code),
      out_of_memory_(out_of_memory) {}

remote_error::remote_error(const std::string& message, std::string type_name)
    : std::runtime_error(message), type_name_(std::move(type_name)) {}

namespace detail {

namespace {

// One worker process. Shared by its slot, the call running on it, its watcher and the live list.
struct worker_process {
  explicit worker_process(const spawned_worker& w) : pid(w.pid), socket(w.socket), pidfd(w.pidfd) {}
  worker_process(const worker_process&) = delete;
  worker_process& operator=(const worker_process&) = delete;
  ~worker_process() {
    socket_source.reset();  // deregister before closing: the poller must not see a reused fd
    pid_source.reset();
    ::close(socket);
    if (pidfd >= 0) ::close(pidfd);
  }

  // Sends `sig` unless the process was reaped (its pid may belong to someone else by then).
  void signal(int sig) {
    std::lock_guard lock(reap_mutex);
    if (!reaped) ::kill(pid, sig);
  }
  // waitpid without blocking; true once the process is reaped.
  bool try_reap() {
    std::lock_guard lock(reap_mutex);
    if (reaped) return true;
    int st = 0;
    const pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      status = st;
      reaped = true;
    } else if (r < 0 && errno == ECHILD) {
      reaped = true;  // someone else reaped it (a waitpid(-1) in the program); status unknown
    }
    return reaped;
  }
  // Kills and reaps, blocking: only when the runtime destroys the watcher.
  void reap_now() {
    std::lock_guard lock(reap_mutex);
    if (reaped) return;
    ::kill(pid, SIGKILL);
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    status = st;
    reaped = true;
  }
  // An idle worker that died or closed its socket: it never writes unasked, so any readiness for
  // reading (end of file, an error, stray bytes) means it cannot take a request.
  bool dead() const {
    // Ordering: acquire, pairs with the watcher's release store after it reaped.
    if (exited.load(std::memory_order_acquire)) return true;
    pollfd p{socket, POLLIN | POLLRDHUP, 0};
    return ::poll(&p, 1, 0) != 0;
  }

  const pid_t pid;
  const int socket;
  const int pidfd;
  std::unique_ptr<io_source> socket_source;
  std::unique_ptr<io_source> pid_source;

  std::mutex reap_mutex;
  bool reaped = false;  // under reap_mutex
  int status = 0;       // under reap_mutex; read by others after `exited`
  // Set by the watcher after the process was reaped and `status` written.
  std::atomic<bool> exited{false};
  event exited_event;
  // Why the pool killed it (a static string), for the message of the call it was running.
  // Ordering: release before the kill, acquire by the call after the process is reaped (the
  // event's and the reap mutex's ordering would do; the atomic keeps the reader race-free).
  std::atomic<const char*> kill_reason{nullptr};

  // Touched only by the task that holds this worker's slot.
  bool started = false;  // its ready byte was read
  std::size_t calls = 0;
  std::string buffer;
};

using worker_ptr = std::shared_ptr<worker_process>;

std::size_t cpu_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<std::size_t>(n);
  }
  const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<std::size_t>(n) : 1;
}

task<void> wait_event(event& e) { co_await e.wait(); }

}  // namespace

class process_pool_core : public std::enable_shared_from_this<process_pool_core> {
 public:
  explicit process_pool_core(process_pool_options o)
      : options(std::move(o)),
        plan(make_spawn_plan(options)),
        slots(options.workers),
        free_slots(options.workers) {
    for (std::size_t i = options.workers; i > 0; --i)
      idle.push_back(i - 1);
  }

  // Starts a worker and its watcher. Throws std::system_error (nothing is left behind).
  worker_ptr start_worker() {
    auto p = std::make_shared<worker_process>(spawn_worker(plan));
    try {
      p->socket_source = std::make_unique<io_source>(p->socket);
      if (p->pidfd >= 0) p->pid_source = std::make_unique<io_source>(p->pidfd);
    } catch (...) {
      p->reap_now();
      throw;
    }
    bool doomed = false;
    {
      // Before the watcher starts: it removes the process from this list when it is reaped.
      std::lock_guard lock(mutex);
      live.push_back(p);
      doomed = killing;
    }
    // Started while kill_all ran (it saw the live list before this process was on it): the call
    // that started it sees it die before taking its request, and ready_worker refuses to retry.
    if (doomed) p->signal(SIGKILL);
    try {
      weft::spawn(watch, shared_from_this(), p).detach();
    } catch (...) {
      p->reap_now();
      forget(p);
      throw;
    }
    // Ordering: relaxed; statistics only.
    stats_started.fetch_add(1, std::memory_order_relaxed);
    return p;
  }

  // The watcher: reaps `p` however the task ends (see the file comment).
  static task<void> watch(std::shared_ptr<process_pool_core> core, worker_ptr p) {
    struct guard {
      std::shared_ptr<process_pool_core> core;
      worker_ptr p;
      ~guard() {
        p->reap_now();  // nothing to do once reaped; otherwise kill and wait
        p->exited.store(true, std::memory_order_release);
        p->exited_event.set();
        core->forget(std::move(p));
      }
    } g{std::move(core), std::move(p)};
    while (!g.p->try_reap()) {
      if (g.p->pid_source) {
        co_await g.p->pid_source->readable();
      } else {
        co_await weft::sleep(10ms);  // before Linux 5.3: no pidfd to wait on
      }
    }
  }

  // Drops the live list's reference to `p` (and the one passed in), then, if close() waits for
  // the last one, tells it.
  void forget(worker_ptr p) {
    worker_ptr mine;
    bool last = false;
    {
      std::lock_guard lock(mutex);
      for (auto it = live.begin(); it != live.end(); ++it) {
        if (*it == p) {
          mine = std::move(*it);
          live.erase(it);
          break;
        }
      }
      last = retiring && live.empty();
    }
    mine.reset();
    p.reset();  // the descriptors close here unless a call still holds the process
    if (last) all_reaped.set();
  }

  // The slot's worker, started or replaced if needed. Only the slot's holder calls this.
  worker_ptr ready_worker(std::size_t index) {
    worker_ptr p;
    {
      std::lock_guard lock(mutex);
      if (killing) throw process_pool_closed("weft::process_pool: the pool was closed");
      p = slots[index];
    }
    // A worker not yet started is checked by awaiting its ready byte (run_process_request).
    if (p && (!p->started || !p->dead())) return p;
    if (p) {
      p->signal(SIGKILL);  // dead already, or a worker that closed its socket: make sure
      std::lock_guard lock(mutex);
      slots[index].reset();
    }
    p = start_worker();
    std::lock_guard lock(mutex);
    slots[index] = p;
    return p;
  }

  // Gives a slot back: a healthy worker stays (or is recycled), any other is killed.
  void release(std::size_t index, bool healthy, const char* reason) {
    worker_ptr gone;
    {
      std::lock_guard lock(mutex);
      auto& p = slots[index];
      if (p && !healthy) {
        p->kill_reason.store(reason, std::memory_order_release);
        p->signal(SIGKILL);
        gone = std::move(p);
      } else if (p && options.max_calls_per_worker != 0 &&
                 p->calls >= options.max_calls_per_worker) {
        ::shutdown(p->socket, SHUT_RDWR);  // end of file: the worker exits by itself
        stats_recycled.fetch_add(1, std::memory_order_relaxed);
        gone = std::move(p);
      }
      idle.push_back(index);
    }
  }

  // Empties a slot whose worker died before it took a request (it is reaped by its watcher).
  void release_dead_worker(std::size_t index) {
    worker_ptr gone;
    {
      std::lock_guard lock(mutex);
      gone = std::move(slots[index]);
    }
    if (gone) gone->signal(SIGKILL);
  }

  // Kills every worker still alive; calls running on them fail with worker_crashed naming
  // `reason`, calls still queued fail with process_pool_closed.
  void kill_all(const char* reason) {
    std::vector<worker_ptr> victims;
    {
      std::lock_guard lock(mutex);
      killing = true;
      victims = live;
    }
    for (auto& p : victims) {
      p->kill_reason.store(reason, std::memory_order_release);
      p->signal(SIGKILL);
      stats_killed.fetch_add(1, std::memory_order_relaxed);
    }
  }

  // The destructor's path: no waiting. Every worker is killed; the watchers reap them.
  void abandon(const char* reason) {
    std::vector<worker_ptr> dropped;
    bool idle_now = false;
    {
      std::lock_guard lock(mutex);
      closed = true;
      idle_now = active == 0;
      for (auto& p : slots)
        if (p) dropped.push_back(std::move(p));
    }
    if (idle_now) drained.set();
    kill_all(reason);
  }

  const process_pool_options options;
  const spawn_plan plan;

  mutable std::mutex mutex;
  std::vector<worker_ptr> slots;  // under mutex; the process of each slot, or null
  std::vector<std::size_t> idle;  // under mutex; slots no call holds
  std::vector<worker_ptr> live;   // under mutex; started and not yet reaped
  std::size_t active = 0;         // under mutex; calls and drains in progress
  bool closed = false;            // under mutex; no new calls
  bool killing = false;           // under mutex; queued calls fail instead of starting
  bool retiring = false;          // under mutex; close() waits for `live` to empty
  semaphore free_slots;           // permits = entries of `idle`
  event drained;                  // closed and active == 0
  event all_reaped;               // retiring and live is empty

  // Ordering: relaxed, all of them; statistics only.
  std::atomic<std::uint64_t> stats_started{0};
  std::atomic<std::uint64_t> stats_crashed{0};
  std::atomic<std::uint64_t> stats_killed{0};
  std::atomic<std::uint64_t> stats_recycled{0};
  std::atomic<std::uint64_t> stats_calls{0};
};

namespace {

// Counts a call as active for close(); refuses calls on a closed pool.
class active_call {
 public:
  explicit active_call(process_pool_core& core) : core_(&core) {
    std::lock_guard lock(core.mutex);
    if (core.closed) throw process_pool_closed("weft::process_pool: the pool is closed");
    ++core.active;
  }
  active_call(active_call&& other) noexcept : core_(std::exchange(other.core_, nullptr)) {}
  active_call(const active_call&) = delete;
  active_call& operator=(const active_call&) = delete;
  ~active_call() {
    if (core_ == nullptr) return;
    bool done = false;
    {
      std::lock_guard lock(core_->mutex);
      done = --core_->active == 0 && core_->closed;
    }
    if (done) core_->drained.set();
  }

 private:
  process_pool_core* core_;
};

// A slot held by one call. The destructor gives it back: kept if `healthy`, otherwise its worker
// is killed with `reason`.
class lease {
 public:
  lease(process_pool_core& core, semaphore::permit permit)
      : core_(&core), permit_(std::move(permit)) {
    std::lock_guard lock(core.mutex);
    if (core.killing) {
      core_ = nullptr;  // the permit goes back; no slot was taken
      throw process_pool_closed("weft::process_pool: the pool was closed while the call waited");
    }
    index_ = core.idle.back();
    core.idle.pop_back();
  }
  lease(lease&& other) noexcept
      : core_(std::exchange(other.core_, nullptr)),
        permit_(std::move(other.permit_)),
        index_(other.index_),
        healthy(other.healthy),
        reason(other.reason) {}
  lease(const lease&) = delete;
  lease& operator=(const lease&) = delete;
  ~lease() {
    if (core_ != nullptr) core_->release(index_, healthy, reason);
    // permit_ is released after this body, once the slot is back on the idle list
  }

  [[nodiscard]] std::size_t index() const noexcept { return index_; }

 private:
  process_pool_core* core_;
  semaphore::permit permit_;
  std::size_t index_ = 0;

 public:
  bool healthy = false;
  const char* reason = "the call ended without a reply";
};

enum class read_result { complete, end_of_file, malformed };

// Waits for a new worker's ready byte; false if it died first. Not under call_timeout: starting
// the program is not the call's time.
task<bool> await_ready(worker_process& p) {
  for (;;) {
    char byte = 0;
    const ssize_t n = ::recv(p.socket, &byte, 1, 0);
    if (n == 1) {
      if (byte != protocol::ready_byte) co_return false;  // not a weft worker: killed below
      p.started = true;
      co_return true;
    }
    if (n == 0) co_return false;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      co_await p.socket_source->readable();
      continue;
    }
    co_return false;  // ECONNRESET or worse: the worker is gone
  }
}

// Reads one whole reply into p.buffer: try first, wait on EAGAIN.
task<read_result> read_reply(worker_process& p, std::size_t max_size) {
  std::string& out = p.buffer;
  // The buffer is read into up to its capacity; one large reply must not make every later call
  // zero-fill megabytes, so a big buffer is dropped.
  if (out.capacity() > (std::size_t{1} << 16)) std::string().swap(out);
  out.resize(std::max<std::size_t>(out.capacity(), 256));
  std::size_t have = 0;
  std::size_t need = protocol::reply_header_size;
  bool length_known = false;
  while (have < need) {
    const ssize_t n = ::recv(p.socket, out.data() + have, out.size() - have, 0);
    if (n > 0) {
      have += static_cast<std::size_t>(n);
      if (!length_known && have >= protocol::length_size) {
        const std::size_t length = protocol::read_length(out.data());
        if (length == 0 || length > max_size) co_return read_result::malformed;
        need = protocol::length_size + length;
        length_known = true;
        if (out.size() < need) out.resize(need);
      }
      continue;
    }
    if (n == 0) co_return read_result::end_of_file;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      co_await p.socket_source->readable();
      continue;
    }
    if (errno == ECONNRESET) co_return read_result::end_of_file;
    throw std::system_error(errno, std::generic_category(),
                            "weft::process_pool: reading from worker " + std::to_string(p.pid));
  }
  if (have > need) co_return read_result::malformed;  // a second reply nobody asked for
  out.resize(need);
  co_return read_result::complete;
}

// Waits until the watcher reaped `p` (it closed its socket, so it is exiting); a worker that
// closed its socket and lives on is killed after a second.
task<int> exit_status(worker_process& p) {
  bool slow = false;
  try {
    co_await weft::timeout(1s, wait_event(p.exited_event));
  } catch (const timeout_error&) {
    slow = true;
  }
  if (slow) {
    p.signal(SIGKILL);
    co_await p.exited_event.wait();
  }
  std::lock_guard lock(p.reap_mutex);
  co_return p.status;
}

std::string quoted(const process_function_base* fn) {
  std::string text(1, '\'');
  text += fn->name();
  text += '\'';
  return text;
}

// A call cancelled under on_cancel::finish: read the reply to its end, drop it, keep the worker.
task<void> drain(std::shared_ptr<process_pool_core> core, lease slot, active_call active,
                 worker_ptr p) {
  (void)core;
  (void)active;
  if (co_await read_reply(*p, core->options.max_message_size) == read_result::complete) {
    const auto status = static_cast<protocol::reply_status>(p->buffer[protocol::length_size]);
    slot.healthy = status != protocol::reply_status::out_of_memory;
    ++p->calls;
  }
}

}  // namespace

task<std::string> run_process_request(std::shared_ptr<process_pool_core> core,
                                      const process_function_base* fn, std::string request) {
  process_pool_core& c = *core;
  const std::size_t body = request.size() - protocol::length_size;
  if (request.size() > c.options.max_message_size || body > UINT32_MAX) {
    throw codec_error("weft::process_pool: " + quoted(fn) + ": the request of " +
                      std::to_string(request.size()) +
                      " bytes exceeds process_pool_options::max_message_size");
  }
  protocol::write_length(request.data(), static_cast<std::uint32_t>(body));
  active_call active(c);
  lease slot(c, co_await c.free_slots.acquire());

  // Send. A worker that died before it had the whole request never ran it: try a fresh one.
  worker_ptr p;
  for (int attempt = 0;; ++attempt) {
    p = c.ready_worker(slot.index());
    slot.reason = "the call was cancelled while its worker was starting";
    bool gone = false;
    if (!p->started) gone = !(co_await await_ready(*p));
    std::size_t sent = 0;
    while (!gone && sent < request.size()) {
      const ssize_t n =
          ::send(p->socket, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n >= 0) {
        sent += static_cast<std::size_t>(n);
      } else if (errno == EINTR) {
        continue;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        slot.reason = "the call was cancelled while its request was being sent";
        co_await p->socket_source->writable();  // a cancellation here kills the worker
      } else if (errno == EPIPE || errno == ECONNRESET) {
        gone = true;
        break;
      } else {
        throw std::system_error(errno, std::generic_category(),
                                "weft::process_pool: sending to worker " + std::to_string(p->pid));
      }
    }
    if (!gone) break;
    c.release_dead_worker(slot.index());
    if (attempt == 2) {
      throw worker_crashed("weft::process_pool: " + quoted(fn) +
                               ": three workers in a row died before taking the request (does "
                               "main() call weft::process_pool::serve_if_worker() first? the "
                               "executable is '" +
                               c.plan.executable + "')",
                           p->pid, 0, -1, false);
    }
  }

  // Receive.
  read_result result = read_result::end_of_file;
  bool timed_out = false;
  std::optional<cancelled_error> cancelled;  // kept to rethrow it with its message
  slot.reason = "the call was cancelled (process_pool_options::on_cancel::kill_worker)";
  try {
    if (c.options.call_timeout.count() > 0) {
      result = co_await weft::timeout(c.options.call_timeout,
                                      read_reply(*p, c.options.max_message_size));
    } else {
      result = co_await read_reply(*p, c.options.max_message_size);
    }
  } catch (const timeout_error&) {
    timed_out = true;
  } catch (const cancelled_error& error) {
    cancelled = error;
  }
  if (cancelled) {
    if (c.options.cancel == process_pool_options::on_cancel::finish) {
      weft::spawn(drain, core, std::move(slot), std::move(active), p).detach();
    } else {
      c.stats_killed.fetch_add(1, std::memory_order_relaxed);
    }
    throw *cancelled;
  }
  if (timed_out) {
    slot.reason = "the call ran past process_pool_options::call_timeout";
    c.stats_killed.fetch_add(1, std::memory_order_relaxed);
    throw timeout_error("weft::process_pool: " + quoted(fn) + " ran longer than " +
                        std::to_string(c.options.call_timeout.count()) + " ms; its worker (pid " +
                        std::to_string(p->pid) + ") was killed and will be replaced");
  }
  if (result == read_result::malformed) {
    slot.reason = "it sent a malformed reply";
    c.stats_crashed.fetch_add(1, std::memory_order_relaxed);
    throw worker_crashed("weft::process_pool: the worker (pid " + std::to_string(p->pid) +
                             ") running " + quoted(fn) + " sent a malformed reply; it was killed",
                         p->pid, 0, -1, false);
  }
  if (result == read_result::end_of_file) {
    const int status = co_await exit_status(*p);
    c.stats_crashed.fetch_add(1, std::memory_order_relaxed);
    const char* why = p->kill_reason.load(std::memory_order_acquire);
    std::string message = "weft::process_pool: the worker (pid " + std::to_string(p->pid) +
                          ") running " + quoted(fn) + " " + describe_exit(status);
    if (why != nullptr) message += std::string(" (killed by the pool: ") + why + ")";
    throw worker_crashed(message, p->pid, WIFSIGNALED(status) ? WTERMSIG(status) : 0,
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1, false);
  }

  // A complete reply.
  c.stats_calls.fetch_add(1, std::memory_order_relaxed);
  ++p->calls;
  std::string& reply = p->buffer;
  const auto status = static_cast<protocol::reply_status>(reply[protocol::length_size]);
  std::string payload = reply.substr(protocol::reply_header_size);
  switch (status) {
    case protocol::reply_status::ok:
      slot.healthy = true;
      co_return payload;
    case protocol::reply_status::error: {
      slot.healthy = true;
      std::uint16_t type_size = 0;
      if (payload.size() >= sizeof type_size) std::memcpy(&type_size, payload.data(), 2);
      const std::string type = payload.substr(2, type_size);
      const std::string what =
          payload.size() >= 2u + type_size ? payload.substr(2u + type_size) : "";
      throw remote_error("weft::process_pool: " + quoted(fn) + " raised " + type + ": " + what,
                         type);
    }
    case protocol::reply_status::codec:
      slot.healthy = true;
      throw codec_error(payload);
    case protocol::reply_status::unknown_function:
      slot.healthy = true;
      throw std::logic_error(payload);
    case protocol::reply_status::out_of_memory:
      slot.reason = "it ran out of memory";
      c.stats_crashed.fetch_add(1, std::memory_order_relaxed);
      throw worker_crashed("weft::process_pool: the worker (pid " + std::to_string(p->pid) +
                               ") running " + quoted(fn) +
                               " ran out of memory (process_pool_options::memory_limit is " +
                               std::to_string(c.options.memory_limit) + " bytes); it was replaced",
                           p->pid, 0, -1, true);
  }
  slot.reason = "it sent a reply of unknown status";
  throw worker_crashed("weft::process_pool: the worker (pid " + std::to_string(p->pid) +
                           ") running " + quoted(fn) + " sent a malformed reply; it was killed",
                       p->pid, 0, -1, false);
}

std::size_t process_pool_width(const process_pool_core& core) noexcept {
  return core.options.workers;
}

}  // namespace detail

namespace {

process_pool_options checked(process_pool_options options) {
  if (std::getenv(detail::process_protocol::worker_variable) != nullptr) {
    throw std::logic_error(
        "weft::process_pool: this process was started as a process_pool worker but did not call "
        "weft::process_pool::serve_if_worker() at the start of main(); it will not start "
        "workers of its own");
  }
  if (options.workers == 0) options.workers = detail::cpu_count();
  return options;
}

}  // namespace

process_pool::process_pool(process_pool_options options)
    : core_(std::make_shared<detail::process_pool_core>(checked(std::move(options)))) {
  try {
    for (std::size_t i = 0; i < core_->slots.size(); ++i) {
      auto p = core_->start_worker();
      std::lock_guard lock(core_->mutex);
      core_->slots[i] = std::move(p);
    }
  } catch (...) {
    core_->abandon("the pool failed to start");
    throw;
  }
}

process_pool::~process_pool() { core_->abandon("the pool was destroyed"); }

task<void> process_pool::close() {
  auto core = core_;
  auto& c = *core;
  bool first = false;
  {
    std::lock_guard lock(c.mutex);
    first = !c.closed;
    c.closed = true;
    if (c.active == 0) c.drained.set();
  }
  if (!first) {
    co_await c.drained.wait();
    co_return;  // another close() (or the destructor) does the rest
  }
  bool late = false;
  try {
    co_await weft::timeout(c.options.shutdown_timeout, detail::wait_event(c.drained));
  } catch (const timeout_error&) {
    late = true;
  }
  if (late) {
    c.kill_all("the pool shut down (process_pool_options::shutdown_timeout passed)");
    co_await c.drained.wait();
  }
  // Every slot is idle: end of file tells each worker to exit.
  std::vector<detail::worker_ptr> retired;
  bool none_left = false;
  {
    std::lock_guard lock(c.mutex);
    for (auto& p : c.slots) {
      if (p) {
        ::shutdown(p->socket, SHUT_RDWR);
        retired.push_back(std::move(p));
      }
    }
    c.retiring = true;
    none_left = c.live.empty();
  }
  retired.clear();
  if (none_left) c.all_reaped.set();
  bool slow = false;
  try {
    co_await weft::timeout(c.options.shutdown_timeout, detail::wait_event(c.all_reaped));
  } catch (const timeout_error&) {
    slow = true;
  }
  if (slow) {
    c.kill_all("it did not exit after the pool closed");
    co_await c.all_reaped.wait();
  }
}

std::size_t process_pool::size() const noexcept { return core_->options.workers; }

process_pool_stats process_pool::stats() const {
  process_pool_stats s;
  s.started = core_->stats_started.load(std::memory_order_relaxed);
  s.crashed = core_->stats_crashed.load(std::memory_order_relaxed);
  s.killed = core_->stats_killed.load(std::memory_order_relaxed);
  s.recycled = core_->stats_recycled.load(std::memory_order_relaxed);
  s.calls = core_->stats_calls.load(std::memory_order_relaxed);
  return s;
}

std::vector<pid_t> process_pool::pids() const {
  std::vector<pid_t> out;
  std::lock_guard lock(core_->mutex);
  for (const auto& p : core_->slots)
    if (p && !p->exited.load(std::memory_order_acquire)) out.push_back(p->pid);
  return out;
}

}  // namespace weft
