// net/process_pool.cpp: the parent side of weft::process_pool.
//
// The pool has `workers` slots, each with at most one worker process. A call takes one of
// workers x pipeline_depth permits (a semaphore), picks the least loaded slot (starting its worker
// if the slot is empty), appends itself to that worker's queue and sends its request at once, even
// while the worker is busy with earlier ones: the worker reads the next request without sleeping,
// and one wake-up of the parent can find several replies (docs/patterns/process-pool.md).
//
// Replies come back in the order of the requests. The calls of one worker share its socket through
// the *reading role*, held by one task at a time: the first call of the queue that still waits for
// its reply (a call cancelled meanwhile is "abandoned": its reply is read and dropped). The holder
// reads frames into the worker's buffer, drops those of abandoned calls ahead of it, takes its
// own, and hands the role to the next waiting call, or to a drain task when only abandoned calls
// are left. The role is handed under the worker's queue mutex, so exactly one task reads at a time.
//
// Invariant (a crash fails only its own call): the worker reads one request, runs it, writes the
// whole reply, then reads the next. So when its socket ends, every call whose reply came is done,
// only the first call of the queue can have been running, and every call behind it never started.
// The first one fails with worker_crashed (if its whole request was sent; if not, the worker never
// had it and it is retried), the ones behind it are sent again to another worker. The same holds
// when the pool kills a worker (timeout, cancellation of the running call, a malformed reply).
//
// Invariant: a request is sent whole or not at all as far as any call can see: the first bytes go
// out under the queue mutex in queue order; bytes the socket does not take go to the worker's
// backlog, which one flush task writes in order. A call that leaves never leaves half a frame.
//
// Invariant: every process the pool starts has exactly one watcher task, which reads its ready
// byte and reaps it (waitpid) on every path: when its pidfd turns readable (or, before Linux 5.3,
// polling waitpid), and in its frame's destructor if the runtime destroys the watcher first, which
// then kills and reaps synchronously. Only the watcher calls waitpid, and kill() is sent under the
// same mutex that marks the process reaped, so a signal can never reach a recycled pid. No zombies.
//
// Invariant: a worker's descriptors (socket, pidfd) belong to its worker_process and close when
// the last reference goes: the slot's, the calls', the watcher's, a drain or flush task's and the
// live list's. close() waits until the watcher of every process has dropped its references, so when
// close() returns every descriptor the pool opened is closed.
//
// Lock order: the core's mutex before a worker's queue_mutex; reap_mutex is taken alone.
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
#include <deque>
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

// One call's place in a worker's queue. Shared by the call and the queue (an abandoned call's
// entry stays queued until its reply was read).
struct pending_call {
  enum class state : unsigned char { queued, reader, retry, failed };
  event turn;  // set when the call may go on: it got the reading role, must retry, or failed
  // Under the worker's queue_mutex.
  state st = state::queued;
  bool abandoned = false;  // its task left; the reply is dropped
  bool sent = false;       // its last request byte is in the socket
};
using pending_ptr = std::shared_ptr<pending_call>;

// One worker process. Shared by its slot, the calls on it, its watcher, the live list and a drain
// or flush task.
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
  // Records why the pool kills it (for the running call's message), then kills it.
  void kill(const char* reason) {
    const char* none = nullptr;
    // Ordering: release, pairs with the acquire load of the call that reports the death; the
    // first reason wins.
    kill_reason.compare_exchange_strong(none, reason, std::memory_order_release,
                                        std::memory_order_relaxed);
    signal(SIGKILL);
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
  // An idle worker (nothing queued) that died or closed its socket: it never writes unasked, so
  // any readiness for reading (end of file, an error, stray bytes) means it cannot take a request.
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
  std::atomic<const char*> kill_reason{nullptr};

  // The ready byte: the watcher reads it, stores `ready_ok`, then sets `ready`. Ordering:
  // relaxed suffices for ready_ok, since readers look at it only after ready.wait() returned or
  // ready.is_set() was true (the event's release/acquire orders the store before).
  std::atomic<bool> ready_ok{false};
  event ready;

  // The queue of requests sent and not yet answered, and the write side. Under queue_mutex.
  std::mutex queue_mutex;
  std::deque<pending_ptr> queue;  // in send order
  bool reading = false;           // a call or a drain task holds the reading role
  bool broken = false;            // dead or killed: takes no more requests
  std::string backlog;            // request bytes the socket did not take yet
  std::size_t backlog_sent = 0;   // of backlog
  std::deque<std::pair<pending_ptr, std::size_t>> backlog_ends;  // (call, end offset in backlog)
  bool flushing = false;                                         // a flush task owns the backlog

  // The read buffer: touched only by the holder of the reading role (the role passes under
  // queue_mutex, which orders one holder's writes before the next one's reads).
  std::string in;
  std::size_t in_start = 0;
  std::size_t in_end = 0;

  // Under the core's mutex.
  std::size_t load = 0;      // calls that picked it and have not left
  std::size_t assigned = 0;  // calls ever given to it (max_calls_per_worker)
  bool retired = false;      // out of its slot after max_calls_per_worker: closes when unloaded
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

// Reads a new worker's ready byte; false if it died (or wrote something else) first.
task<bool> read_ready_byte(worker_process& p) {
  for (;;) {
    char byte = 0;
    const ssize_t n = ::recv(p.socket, &byte, 1, 0);
    if (n == 1) co_return byte == protocol::ready_byte;  // not a weft worker: killed by a call
    if (n == 0) co_return false;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      co_await p.socket_source->readable();
      continue;
    }
    co_return false;  // ECONNRESET or worse: the worker is gone
  }
}

}  // namespace

class process_pool_core : public std::enable_shared_from_this<process_pool_core> {
 public:
  explicit process_pool_core(process_pool_options o)
      : options(std::move(o)),
        plan(make_spawn_plan(options)),
        slots(options.workers),
        slot_load(options.workers, 0),
        free_slots(options.workers * options.pipeline_depth) {}

  // Starts a worker and its watcher. Throws std::system_error (nothing is left behind).
  // `mutex_held`: the caller holds `mutex` (assign), so the live list is updated without it.
  worker_ptr start_worker(bool mutex_held = false) {
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
      std::unique_lock lock(mutex, std::defer_lock);
      if (!mutex_held) lock.lock();
      live.push_back(p);
      doomed = killing;
    }
    // Started while kill_all ran (it saw the live list before this process was on it): the call
    // that started it sees it die before it is ready, and assign refuses to retry.
    if (doomed) p->signal(SIGKILL);
    try {
      // Scheduled, not run here: the watcher takes `mutex` only when it ends.
      weft::spawn(watch, shared_from_this(), p).detach();
    } catch (...) {
      p->reap_now();
      std::unique_lock lock(mutex, std::defer_lock);
      if (!mutex_held) lock.lock();
      std::erase(live, p);
      throw;
    }
    // Ordering: relaxed; statistics only.
    stats_started.fetch_add(1, std::memory_order_relaxed);
    return p;
  }

  // The watcher: reads the ready byte, then reaps `p` however the task ends (the file comment).
  static task<void> watch(std::shared_ptr<process_pool_core> core, worker_ptr p) {
    struct guard {
      std::shared_ptr<process_pool_core> core;
      worker_ptr p;
      ~guard() {
        p->reap_now();  // nothing to do once reaped; otherwise kill and wait
        // Ordering: release, after reap_now wrote `status`: pairs with the acquire loads in dead()
        // and pids(), which then read the status (or skip the pid) safely.
        p->exited.store(true, std::memory_order_release);
        p->exited_event.set();
        if (!p->ready.is_set()) p->ready.set();  // ready_ok stays false: the calls retry
        core->forget(std::move(p));
      }
    } g{std::move(core), std::move(p)};
    const bool ok = co_await read_ready_byte(*g.p);
    g.p->ready_ok.store(ok, std::memory_order_relaxed);
    g.p->ready.set();
    if (!ok) g.p->signal(SIGKILL);  // died, or not a weft worker
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

  // Picks the least loaded slot for a call, starting or replacing its worker if needed, and
  // counts the call on it. Throws process_pool_closed once kill_all ran, std::system_error if a
  // worker cannot be started.
  std::pair<std::size_t, worker_ptr> assign() {
    std::lock_guard lock(mutex);
    if (killing) throw process_pool_closed("weft::process_pool: the pool was closed");
    std::size_t index = 0;
    for (std::size_t i = 1; i < slots.size(); ++i)
      if (slot_load[i] < slot_load[index]) index = i;
    worker_ptr& p = slots[index];
    if (p) {
      bool broken = false;
      bool quiet = false;
      {
        std::lock_guard queue_lock(p->queue_mutex);
        broken = p->broken;  // given up by a call or a drain task that saw it die
        quiet = p->queue.empty();
      }
      // An idle worker may have died since its last call: find out now, so that a death while
      // idle fails no call. Not while a drain task still reads from it.
      const bool idle = p->ready.is_set() && slot_load[index] == 0 && quiet;
      if (broken || (idle && (!p->ready_ok.load(std::memory_order_relaxed) || p->dead()))) {
        p->signal(SIGKILL);  // dead already, or a worker that closed its socket: make sure
        p.reset();
      }
    }
    if (!p) {
      // Spawning under the mutex keeps two calls from starting two workers for one slot; it is
      // a posix_spawn (vfork-like) and the rare path.
      p = start_worker(/*mutex_held=*/true);
    }
    ++slot_load[index];
    ++p->load;
    if (options.max_calls_per_worker != 0 && ++p->assigned >= options.max_calls_per_worker) {
      p->retired = true;  // this call is its last; it closes when its calls have left
      stats_recycled.fetch_add(1, std::memory_order_relaxed);
      worker_ptr mine = p;
      p.reset();
      return {index, mine};
    }
    return {index, p};
  }

  // A call leaves worker `p` of slot `index`.
  void unassign(std::size_t index, worker_process& p) {
    std::lock_guard lock(mutex);
    --slot_load[index];
    // A retired worker gets end of file once unloaded, and exits after its last request.
    if (--p.load == 0 && p.retired) ::shutdown(p.socket, SHUT_WR);
  }

  // Takes a worker that died or was killed out of its slot (the next call starts another).
  void drop(std::size_t index, const worker_ptr& p) {
    std::lock_guard lock(mutex);
    if (slots[index] == p) slots[index].reset();
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
      p->kill(reason);
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
  std::vector<worker_ptr> slots;       // under mutex; the process of each slot, or null
  std::vector<std::size_t> slot_load;  // under mutex; calls on each slot
  std::vector<worker_ptr> live;        // under mutex; started and not yet reaped
  std::size_t active = 0;              // under mutex; calls in progress
  bool closed = false;                 // under mutex; no new calls
  bool killing = false;                // under mutex; queued calls fail instead of starting
  bool retiring = false;               // under mutex; close() waits for `live` to empty
  semaphore free_slots;                // workers x pipeline_depth: calls that may hold a place
  event drained;                       // closed and active == 0
  event all_reaped;                    // retiring and live is empty

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
  active_call(const active_call&) = delete;
  active_call& operator=(const active_call&) = delete;
  ~active_call() {
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

// A call's hold on a worker (assign/unassign).
class assignment {
 public:
  assignment(process_pool_core& core, std::pair<std::size_t, worker_ptr> picked)
      : core_(&core), index_(picked.first), worker_(std::move(picked.second)) {}
  assignment(const assignment&) = delete;
  assignment& operator=(const assignment&) = delete;
  ~assignment() { core_->unassign(index_, *worker_); }

  [[nodiscard]] std::size_t index() const noexcept { return index_; }
  [[nodiscard]] const worker_ptr& worker() const noexcept { return worker_; }

 private:
  process_pool_core* core_;
  std::size_t index_;
  worker_ptr worker_;
};

enum class read_result { complete, end_of_file, malformed };

// Reads until a whole reply frame starts the worker's buffer (at p.in_start): try first, wait on
// EAGAIN. Only the holder of the reading role calls this. Bytes read stay in the buffer if the
// wait is cancelled, for the next holder.
task<read_result> next_frame(worker_process& p, std::size_t max_size) {
  for (;;) {
    const std::size_t have = p.in_end - p.in_start;
    if (have >= protocol::reply_header_size) {
      const std::size_t length = protocol::read_length(p.in.data() + p.in_start);
      if (length == 0 || length > max_size) co_return read_result::malformed;
      if (have >= protocol::length_size + length) co_return read_result::complete;
    }
    // Room for more: move what is left to the front; grow for a large frame.
    if (p.in_start != 0) {
      std::memmove(p.in.data(), p.in.data() + p.in_start, have);
      p.in_start = 0;
      p.in_end = have;
    }
    std::size_t want = 4096;
    if (have >= protocol::length_size) {
      want = std::max(want, protocol::length_size + protocol::read_length(p.in.data()));
    }
    if (p.in.size() < want) p.in.resize(want);
    const ssize_t n = ::recv(p.socket, p.in.data() + p.in_end, p.in.size() - p.in_end, 0);
    if (n > 0) {
      p.in_end += static_cast<std::size_t>(n);
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
}

// The frame at the buffer's front: [length][status][payload].
std::size_t frame_size(const worker_process& p) {
  return protocol::length_size + protocol::read_length(p.in.data() + p.in_start);
}
void consume_frame(worker_process& p) {
  p.in_start += frame_size(p);
  if (p.in_start == p.in_end) {
    p.in_start = p.in_end = 0;
    // One large reply must not keep megabytes per worker.
    if (p.in.size() > (std::size_t{1} << 16)) std::string().swap(p.in);
  }
}

task<void> drain(std::shared_ptr<process_pool_core> core, worker_ptr p);

// Gives up the reading role (queue_mutex held): to the first call still waiting (its turn is
// appended to `wake`, set after the lock), or to a new drain task if only abandoned calls are
// queued (`need_drain`). A worker that sent bytes nobody asked for is killed.
void hand_over_locked(worker_process& p, std::vector<pending_ptr>& wake, bool& need_drain) {
  p.reading = false;
  for (auto& e : p.queue) {
    if (!e->abandoned) {
      p.reading = true;
      e->st = pending_call::state::reader;
      wake.push_back(e);
      return;
    }
  }
  if (!p.queue.empty()) {
    p.reading = true;
    need_drain = true;
  } else if (p.in_end != p.in_start && !p.broken) {
    p.broken = true;
    p.kill("it sent a reply nobody asked for");
  }
}

void set_all(std::vector<pending_ptr>& wake) {
  for (auto& e : wake)
    e->turn.set();
}

// Hands the reading role on and wakes whoever gets it. A drain task counts as an active call (the
// continuation of the cancelled calls it reads for), so close() waits for it as it waits for them.
// Called only by a call that is itself still active, so `active` cannot have reached zero.
void hand_over(const std::shared_ptr<process_pool_core>& core, const worker_ptr& p) {
  std::vector<pending_ptr> wake;
  bool need_drain = false;
  {
    std::lock_guard lock(p->queue_mutex);
    hand_over_locked(*p, wake, need_drain);
  }
  set_all(wake);
  if (need_drain) {
    {
      std::lock_guard lock(core->mutex);
      ++core->active;
    }
    weft::spawn(drain, core, p).detach();
  }
}

// The worker is gone or being killed: it takes no more requests and the reading role ends. The
// first queued call, if its whole request was sent, may have been running: it is marked failed;
// every other waiting call never started and is marked to retry. Both are woken (a caller that
// holds its own entry reads the verdict with state_of).
void break_worker(worker_process& p) {
  std::vector<pending_ptr> wake;
  {
    std::lock_guard lock(p.queue_mutex);
    p.broken = true;
    bool first = true;
    for (auto& e : p.queue) {
      const bool ran = first && e->sent;
      first = false;
      if (e->abandoned) continue;
      e->st = ran ? pending_call::state::failed : pending_call::state::retry;
      wake.push_back(e);
    }
    p.queue.clear();
    p.reading = false;
    p.backlog.clear();
    p.backlog_sent = 0;
    p.backlog_ends.clear();
  }
  set_all(wake);
}

pending_call::state state_of(worker_process& p, const pending_call& entry) {
  std::lock_guard lock(p.queue_mutex);
  return entry.st;
}

// Reads and drops the replies of abandoned calls until a waiting call can take the role or the
// queue is empty.
task<void> drain(std::shared_ptr<process_pool_core> core, worker_ptr p) {
  struct active_guard {  // the count hand_over took for this task
    process_pool_core& c;
    ~active_guard() {
      bool done = false;
      {
        std::lock_guard lock(c.mutex);
        done = --c.active == 0 && c.closed;
      }
      if (done) c.drained.set();
    }
  } guard{*core};
  for (;;) {
    const read_result r = co_await next_frame(*p, core->options.max_message_size);
    if (r != read_result::complete) {
      if (r == read_result::malformed) p->kill("it sent a malformed reply");
      break_worker(*p);
      co_return;
    }
    consume_frame(*p);
    std::vector<pending_ptr> wake;
    bool more = false;
    {
      std::lock_guard lock(p->queue_mutex);
      if (!p->queue.empty()) p->queue.pop_front();
      hand_over_locked(*p, wake, more);
    }
    set_all(wake);
    if (!more) co_return;
  }
}

// Writes the backlog of `p` in order; one flush task per worker at a time.
task<void> flush(worker_ptr p) {
  for (;;) {
    {
      std::lock_guard lock(p->queue_mutex);
      for (;;) {
        if (p->broken || p->backlog_sent == p->backlog.size()) {
          p->backlog.clear();
          p->backlog_sent = 0;
          p->backlog_ends.clear();
          p->flushing = false;
          co_return;
        }
        const ssize_t n = ::send(p->socket, p->backlog.data() + p->backlog_sent,
                                 p->backlog.size() - p->backlog_sent, MSG_NOSIGNAL);
        if (n > 0) {
          p->backlog_sent += static_cast<std::size_t>(n);
          while (!p->backlog_ends.empty() && p->backlog_ends.front().second <= p->backlog_sent) {
            p->backlog_ends.front().first->sent = true;
            p->backlog_ends.pop_front();
          }
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        // EPIPE, ECONNRESET: the worker is gone; its reader sees the end of file.
        p->backlog_sent = p->backlog.size();
      }
    }
    co_await p->socket_source->writable();
  }
}

enum class send_result { queued, gone, broken };

// Queues `entry` on `p` and sends `request`, all of it now or the rest through the backlog.
// `gone`: the worker was dead before it took a byte; `broken`: the pool already gave it up (a call
// before this one saw it die). Either way the entry is not queued.
send_result send_request(const worker_ptr& p, const pending_ptr& entry,
                         const std::string& request) {
  bool start_flush = false;
  {
    std::lock_guard lock(p->queue_mutex);
    if (p->broken) return send_result::broken;
    std::size_t sent = 0;
    if (!p->flushing) {
      while (sent < request.size()) {
        const ssize_t n =
            ::send(p->socket, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
          sent += static_cast<std::size_t>(n);
        } else if (n < 0 && errno == EINTR) {
          continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          break;
        } else if (sent == 0) {
          return send_result::gone;  // EPIPE, ECONNRESET: it died while idle
        } else {
          sent = request.size();  // died mid-frame: the reader sees the end of file
          break;
        }
      }
    }
    p->queue.push_back(entry);
    if (!p->reading) {
      p->reading = true;
      entry->st = pending_call::state::reader;
    }
    if (sent == request.size()) {
      entry->sent = true;
    } else {
      p->backlog.append(request, sent);
      p->backlog_ends.emplace_back(entry, p->backlog.size());
      start_flush = !p->flushing;
      p->flushing = true;
    }
  }
  if (start_flush) weft::spawn(flush, p).detach();
  return send_result::queued;
}

// Leaves the queue of `p` without waiting for the reply (a cancellation): the reply is dropped.
void abandon_call(const std::shared_ptr<process_pool_core>& core, const worker_ptr& p,
                  pending_call& entry) {
  bool had_role = false;
  {
    std::lock_guard lock(p->queue_mutex);
    if (entry.st == pending_call::state::retry || entry.st == pending_call::state::failed) {
      return;  // not queued any more
    }
    entry.abandoned = true;
    had_role = entry.st == pending_call::state::reader;
  }
  if (had_role) hand_over(core, p);
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

// Holding the reading role: drops the replies of abandoned calls ahead of `entry`, then reads its
// own, which is left at the buffer's front.
task<read_result> read_own_reply(worker_process& p, const pending_call* entry,
                                 std::size_t max_size) {
  for (;;) {
    const read_result r = co_await next_frame(p, max_size);
    if (r != read_result::complete) co_return r;
    {
      std::lock_guard lock(p.queue_mutex);
      if (!p.queue.empty() && p.queue.front().get() == entry) co_return read_result::complete;
      if (!p.queue.empty()) p.queue.pop_front();  // an abandoned call's reply
    }
    consume_frame(p);
  }
}

// Throws worker_crashed for the call that `p` was running when it died, once it is reaped.
task<void> crashed(process_pool_core& c, worker_process& p, const process_function_base* fn) {
  const int status = co_await exit_status(p);
  c.stats_crashed.fetch_add(1, std::memory_order_relaxed);
  // Ordering: acquire, pairs with worker_process::kill's release.
  const char* why = p.kill_reason.load(std::memory_order_acquire);
  std::string message = "weft::process_pool: the worker (pid " + std::to_string(p.pid) +
                        ") running " + quoted(fn) + " " + describe_exit(status);
  if (why != nullptr) message += std::string(" (killed by the pool: ") + why + ")";
  throw worker_crashed(message, p.pid, WIFSIGNALED(status) ? WTERMSIG(status) : 0,
                       WIFEXITED(status) ? WEXITSTATUS(status) : -1, false);
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
  const auto permit = co_await c.free_slots.acquire();

  int dead_on_arrival = 0;  // workers in a row that died before taking the request
  for (;;) {
    assignment held(c, c.assign());
    const worker_ptr& p = held.worker();
    if (!p->ready.is_set()) co_await p->ready.wait();  // not under call_timeout
    send_result sent = send_result::gone;
    auto entry = std::make_shared<pending_call>();
    if (p->ready_ok.load(std::memory_order_relaxed)) sent = send_request(p, entry, request);
    if (sent == send_result::broken) continue;  // assign starts or picks another
    if (sent == send_result::gone) {
      p->signal(SIGKILL);  // dead already, or not a weft worker: make sure
      c.drop(held.index(), p);
      if (++dead_on_arrival == 3) {
        throw worker_crashed("weft::process_pool: " + quoted(fn) +
                                 ": three workers in a row died before taking the request (does "
                                 "main() call weft::process_pool::serve_if_worker() first? the "
                                 "executable is '" +
                                 c.plan.executable + "')",
                             p->pid, 0, -1, false);
      }
      continue;
    }

    // Wait for the reading role. A cancellation here leaves the call queued: the worker runs it
    // later and its reply is dropped (killing the worker would fail the call it is running).
    if (state_of(*p, *entry) == pending_call::state::queued) {
      try {
        co_await entry->turn.wait();
      } catch (const cancelled_error&) {
        abandon_call(core, p, *entry);
        throw;
      }
    }
    const auto verdict = state_of(*p, *entry);
    if (verdict == pending_call::state::retry) continue;  // an earlier call's worker died
    if (verdict == pending_call::state::failed) {
      // The worker died while running this call (another task saw the end of its socket).
      c.drop(held.index(), p);
      co_await crashed(c, *p, fn);
    }

    // Holding the reading role.
    read_result result = read_result::end_of_file;
    bool timed_out = false;
    std::optional<cancelled_error> cancelled;  // kept to rethrow it with its message
    try {
      if (c.options.call_timeout.count() > 0) {
        result = co_await weft::timeout(
            c.options.call_timeout, read_own_reply(*p, entry.get(), c.options.max_message_size));
      } else {
        result = co_await read_own_reply(*p, entry.get(), c.options.max_message_size);
      }
    } catch (const timeout_error&) {
      timed_out = true;
    } catch (const cancelled_error& error) {
      cancelled = error;
    }
    if (cancelled) {
      bool running = false;
      {
        std::lock_guard lock(p->queue_mutex);
        running = !p->queue.empty() && p->queue.front() == entry && entry->sent;
      }
      if (running && c.options.cancel == process_pool_options::on_cancel::kill_worker) {
        p->kill("the call was cancelled (process_pool_options::on_cancel::kill_worker)");
        c.stats_killed.fetch_add(1, std::memory_order_relaxed);
        c.drop(held.index(), p);
        break_worker(*p);
      } else {
        abandon_call(core, p, *entry);  // runs to its end; the reply is dropped
      }
      throw *cancelled;
    }
    if (timed_out) {
      p->kill("the call ran past process_pool_options::call_timeout");
      c.stats_killed.fetch_add(1, std::memory_order_relaxed);
      c.drop(held.index(), p);
      break_worker(*p);
      throw timeout_error("weft::process_pool: " + quoted(fn) + " ran longer than " +
                          std::to_string(c.options.call_timeout.count()) + " ms; its worker (pid " +
                          std::to_string(p->pid) + ") was killed and will be replaced");
    }
    if (result == read_result::malformed) p->kill("it sent a malformed reply");
    if (result != read_result::complete) {
      c.drop(held.index(), p);
      break_worker(*p);
      if (state_of(*p, *entry) == pending_call::state::retry) continue;  // never had it whole
      co_await crashed(c, *p, fn);
    }

    // A complete reply at the buffer's front: take it, then pass the role on.
    const char* frame = p->in.data() + p->in_start;
    const auto status = static_cast<protocol::reply_status>(frame[protocol::length_size]);
    std::string payload(frame + protocol::reply_header_size,
                        frame_size(*p) - protocol::reply_header_size);
    consume_frame(*p);
    if (status == protocol::reply_status::out_of_memory) {
      // The worker exits after this reply: the calls behind it never started.
      p->kill("it ran out of memory");
      c.drop(held.index(), p);
      break_worker(*p);
      c.stats_crashed.fetch_add(1, std::memory_order_relaxed);
      throw worker_crashed("weft::process_pool: the worker (pid " + std::to_string(p->pid) +
                               ") running " + quoted(fn) +
                               " ran out of memory (process_pool_options::memory_limit is " +
                               std::to_string(c.options.memory_limit) + " bytes); it was replaced",
                           p->pid, 0, -1, true);
    }
    {
      std::lock_guard lock(p->queue_mutex);
      if (!p->queue.empty() && p->queue.front() == entry) p->queue.pop_front();
    }
    hand_over(core, p);
    c.stats_calls.fetch_add(1, std::memory_order_relaxed);
    switch (status) {
      case protocol::reply_status::ok:
        co_return payload;
      case protocol::reply_status::error: {
        std::uint16_t type_size = 0;
        if (payload.size() >= sizeof type_size) std::memcpy(&type_size, payload.data(), 2);
        const std::string type = payload.substr(2, type_size);
        const std::string what =
            payload.size() >= 2u + type_size ? payload.substr(2u + type_size) : "";
        throw remote_error("weft::process_pool: " + quoted(fn) + " raised " + type + ": " + what,
                           type);
      }
      case protocol::reply_status::codec:
        throw codec_error(payload);
      case protocol::reply_status::unknown_function:
        throw std::logic_error(payload);
      case protocol::reply_status::out_of_memory:
        break;
    }
    p->kill("it sent a reply of unknown status");
    c.drop(held.index(), p);
    break_worker(*p);
    throw worker_crashed("weft::process_pool: the worker (pid " + std::to_string(p->pid) +
                             ") running " + quoted(fn) + " sent a malformed reply; it was killed",
                         p->pid, 0, -1, false);
  }
}

std::size_t process_pool_width(const process_pool_core& core) noexcept {
  return core.options.workers * core.options.pipeline_depth;
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
  if (options.pipeline_depth == 0) options.pipeline_depth = 1;
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
    // Ordering: acquire pairs with the watcher's release store: a reaped pid is never listed.
    if (p && !p->exited.load(std::memory_order_acquire)) out.push_back(p->pid);
  return out;
}

}  // namespace weft
