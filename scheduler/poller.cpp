// scheduler/poller.cpp: the poller thread (see poller.hpp).
#include "poller.hpp"
#include "time_slice.hpp"
#include "trace.hpp"
#include "tsan.hpp"

#include <linux/futex.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <string>
#include <system_error>

#include <weft/scheduler/detail/duration.hpp>
#include <weft/scheduler/io.hpp>

namespace weft::detail {

namespace {
constexpr std::uint64_t no_timer = UINT64_MAX;
constexpr int max_events = 256;

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

timespec to_timespec(std::int64_t ns) noexcept {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  return ts;
}

// The watchdog's sleep on role_: returns on a wake, a timeout, EINTR, or at once if the word is
// no longer `expected` (callers re-read it). timeout_ns < 0: no timeout.
void role_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected,
               std::int64_t timeout_ns) noexcept {
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
  timespec ts{};
  timespec* timeout = nullptr;
  if (timeout_ns >= 0) {
    ts = to_timespec(timeout_ns);
    timeout = &ts;
  }
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT | FUTEX_PRIVATE_FLAG,
            expected, timeout, nullptr, 0);
}

void role_wake(std::atomic<std::uint32_t>* word) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1,
            nullptr, nullptr, 0);
}
}  // namespace

poller::poller(poller_host& host, config cfg)
    : host_(host),
      epoch_(clock::now()),
      virtual_(cfg.virtual_time),
      deterministic_(cfg.deterministic),
      trace_(cfg.trace),
      driver_in_park_(cfg.driver_in_park && !cfg.virtual_time && !cfg.deterministic &&
                      cfg.trace == nullptr) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw_errno("weft: epoll_create1 for the poller");
  event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (event_fd_ < 0) {
    const int error = errno;
    ::close(epoll_fd_);
    throw std::system_error(error, std::generic_category(), "weft: eventfd for the poller");
  }
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.ptr = nullptr;  // null marks the eventfd
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, event_fd_, &event) < 0) {
    const int error = errno;
    ::close(event_fd_);
    ::close(epoll_fd_);
    throw std::system_error(error, std::generic_category(), "weft: registering the poller eventfd");
  }
  // Ordering: relaxed (virtual_time_pollers, timer_entry.hpp). Last, after everything that can
  // throw: the destructor takes it back.
  if (virtual_) virtual_time_pollers.fetch_add(1, std::memory_order_relaxed);
}

poller::~poller() {
  stop();
  ::close(event_fd_);
  ::close(epoll_fd_);
  // Ordering: relaxed (virtual_time_pollers, timer_entry.hpp). Last: the runtime's workers were
  // joined before its poller is destroyed, so no task of this runtime reads the count after it
  // drops.
  if (virtual_) virtual_time_pollers.fetch_sub(1, std::memory_order_relaxed);
}

void poller::start(const std::string& thread_name) {
  thread_name_ = thread_name;  // before any register_fd: the runtime starts the poller first
  thread_ = std::thread([this] {
    if (driver_in_park_) {
      run_watchdog();
    } else {
      run();
    }
  });
  std::string name = thread_name + "-io";
  name.resize(std::min<std::size_t>(name.size(), 15));
  pthread_setname_np(thread_.native_handle(), name.c_str());
}

void poller::stop() {
  if (!thread_.joinable()) return;
  // Ordering: release pairs with the loop's acquire load; wake() makes a blocked epoll_wait
  // return so that the loop reads the flag.
  stopping_.store(true, std::memory_order_release);
  // The watchdog may be about to sleep on role_ with no timeout, having read stopping_ false
  // just before the store above: changing the word makes that futex wait return at once (its
  // expected value no longer matches), and wake() below wakes a wait already in progress.
  // Relaxed: the bit carries no data, stopping_ does (release, above).
  if (driver_in_park_) role_.fetch_or(role_stopping, std::memory_order_relaxed);
  wake();
  thread_.join();
}

void poller::wake() noexcept {
  const std::uint64_t one = 1;
  // A full counter (EAGAIN) already means "wake up"; nothing else can fail here.
  [[maybe_unused]] const ssize_t written = ::write(event_fd_, &one, sizeof one);
  // Driver-in-park: the eventfd reaches the role holder in epoll_wait, if any; the watchdog may
  // instead sleep on role_ with a timeout computed before this timer (or stop) arrived. A rare
  // path (an earlier timer than any, or stop), so the spare syscall costs nothing measurable.
  if (driver_in_park_) role_wake(&role_);
}

std::uint64_t poller::now_tick() const noexcept {
  // Ordering: acquire pairs with the poller's release when it advances virtual time, so a task
  // woken by a timer sees the clock at least at that timer's deadline.
  if (virtual_) return virtual_ticks_.load(std::memory_order_acquire);
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - epoch_).count());
}

clock::time_point poller::now() const noexcept {
  if (!virtual_) return clock::now();
  // Saturated (detail/duration.hpp): virtual time reaches the tick of a sleep until
  // time_point::max(), rounded up past it, and epoch_ plus that would overflow.
  // Relaxed: the tick is a value, not a publication. A task woken by a timer sees the new tick
  // through its wake-up (the injection queue's release/acquire follows the store), and a task
  // that reads the clock unprompted may see an earlier tick, as it would have a moment before;
  // coherence keeps each thread's readings monotonic.
  const auto ticks = static_cast<std::int64_t>(virtual_ticks_.load(std::memory_order_relaxed));
  return saturating_add(epoch_, saturating_ceil_ns(std::chrono::milliseconds(ticks)));
}

bool poller::advance_virtual_time() {
  // Idle: every worker parked and nothing queued. A task that is running, or queued, may still
  // arm an earlier timer, so time must not move then.
  if (!host_.pool_idle()) return false;
  // Deterministic mode: the worker moves the clock itself (advance_deterministic), at a point of
  // its loop that does not depend on when this thread wakes.
  if (deterministic_) return false;
  std::lock_guard lock(timers_mutex_);
  const auto next = wheel_.next_expiration();
  if (!next) return false;
  if (*next > virtual_ticks_.load(std::memory_order_relaxed)) {
    virtual_ticks_.store(*next, std::memory_order_relaxed);  // see now()
  }
  return true;
}

namespace {

// A timer the wheel just unlinked as due, under timers_mutex_: a plain waiter goes to `ready`, a
// callback entry to `callbacks` (run after the unlock). The one copy for the poller's advance and
// the deterministic worker's.
void sort_due(timer_entry* entry, std::vector<void*>& ready, std::vector<timer_entry*>& callbacks) {
  entry->linked = false;
  if (entry->has_callback) {
    // Relaxed: published to cancel_timer (which reads it under timers_mutex_) by the unlock.
    entry->firing.store(true, std::memory_order_relaxed);
    callbacks.push_back(entry);
  } else {
    ready.push_back(entry->waiter.address());
  }
}

}  // namespace

bool poller::advance_deterministic(std::vector<void*>& ready,
                                   std::vector<timer_entry*>& callbacks) {
  std::lock_guard lock(timers_mutex_);
  // next_expiration() may be a moment at which the wheel only re-files entries into a finer
  // level: keep moving until something fires or the wheel is empty. Every entry due at the new
  // tick fires here (no fire_batch limit), so the poller thread's fire_timers never finds one
  // due: time moves only in this call, under this lock.
  const std::size_t before = ready.size() + callbacks.size();
  while (ready.size() + callbacks.size() == before) {
    const auto next = wheel_.next_expiration();
    if (!next) return false;
    if (*next > virtual_ticks_.load(std::memory_order_relaxed)) {
      // Ordering: release pairs with now_tick's acquire, as when the poller advances; here the
      // readers are the worker itself and the poller (which reads it under this lock anyway).
      virtual_ticks_.store(*next, std::memory_order_release);
    }
    wheel_.advance(*next, SIZE_MAX, [&](timer_entry* entry) { sort_due(entry, ready, callbacks); });
  }
  sleeping_until_ = wheel_.next_expiration().value_or(no_timer);
  return true;
}

void poller::fire_callback(timer_entry* entry) noexcept {
  static_cast<callback_timer_entry*>(entry)->on_fire(entry);
  // Ordering: release, as in run(): disarm's acquire load then sees on_fire's effects.
  entry->firing.store(false, std::memory_order_release);
}

std::uint64_t poller::tick_of(clock::time_point when) const noexcept {
  if (when <= epoch_) return 0;
  // Rounded up, so that firing at tick >= tick_of(when) is never early.
  return static_cast<std::uint64_t>(
      std::chrono::ceil<std::chrono::milliseconds>(when - epoch_).count());
}

arm_result poller::arm(timer_entry* entry, clock::time_point when) {
  const std::uint64_t deadline = tick_of(when);
  bool wake_poller = false;
  {
    std::lock_guard lock(timers_mutex_);
    if (entry->cancelled) return arm_result::cancelled;
    if (deadline <= now_tick() || deadline <= wheel_.elapsed()) return arm_result::due;
    entry->deadline = deadline;
    wheel_.insert(entry);
    entry->linked = true;
    if (deadline < sleeping_until_) {
      sleeping_until_ = deadline;
      wake_poller = true;
    }
  }
  if (wake_poller) wake();
  return arm_result::armed;
}

bool poller::cancel(timer_entry* entry) noexcept {
  std::lock_guard lock(timers_mutex_);
  if (entry->linked) {
    wheel_.remove(entry);
    entry->linked = false;
    return true;
  }
  entry->cancelled = true;  // not armed (yet): the coming arm refuses
  return false;
}

bool poller::disarm(timer_entry* entry) noexcept {
  {
    std::lock_guard lock(timers_mutex_);
    if (entry->linked) {
      wheel_.remove(entry);
      entry->linked = false;
      return true;
    }
  }
  // Not armed, or fired already. If its on_fire is running on the poller thread right now, wait:
  // the caller is about to destroy the entry. (`firing` was set under the lock when the entry was
  // unlinked, so a false here means the call has returned or never happens.)
  // Ordering: acquire pairs with the poller's release store that clears `firing` after on_fire
  // returned: everything on_fire did to the entry happens before the caller destroys it.
  while (entry->firing.load(std::memory_order_acquire))
    std::this_thread::yield();
  return false;
}

std::size_t poller::timer_count() {
  std::lock_guard lock(timers_mutex_);
  return wheel_.size();
}

void poller::fire_timers(std::vector<void*>& ready, std::vector<timer_entry*>& callbacks,
                         bool& more) {
  std::lock_guard lock(timers_mutex_);
  const std::size_t fired = wheel_.advance(
      now_tick(), fire_batch, [&](timer_entry* entry) { sort_due(entry, ready, callbacks); });
  more = fired == fire_batch;
  sleeping_until_ = more ? 0 : wheel_.next_expiration().value_or(no_timer);
}

std::int64_t poller::timeout_until(std::uint64_t until) const noexcept {
  if (until == no_timer) return -1;
  // To the start of the tick itself, read on the fine clock. A wait of whole ticks from now_tick()
  // (now rounded down) ends as far past the tick's start as now was into its own tick: a timer
  // then fired 0-1 ms late on top of its deadline's rounding up to a tick, with the phase of the
  // previous wake-up deciding which (bench offload_latency: an idle 1 ms ticker's p50 was 0.6 ms
  // in one run and 1.5 ms in the next). Saturated: a tick beyond the clock's range waits for
  // the longest time the clock can express.
  const clock::duration left =
      saturating_add(epoch_, saturating_ceil_ns(std::chrono::milliseconds(until))) - clock::now();
  if (left <= clock::duration::zero()) return 0;
  return std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
}

std::uint64_t poller::next_deadline() {
  std::lock_guard lock(timers_mutex_);
  return sleeping_until_;
}

void poller::wait_and_dispatch(std::vector<void*>& ready, std::int64_t timeout_ns) {
  epoll_event events[max_events];
  // epoll_pwait2 (Linux 5.11) takes the timeout in nanoseconds; before it, epoll_wait's whole
  // milliseconds, rounded up so that a timer is never early. Under TSan always epoll_wait:
  // clang 14's TSan does not intercept epoll_pwait2, so it would not see the happens-before from
  // epoll_ctl (the registration's fields) to the wait that reports the descriptor, and would
  // report every dispatch as a race.
  // Ordering: relaxed; a flag that only ever goes from true to false, each thread finding the
  // same answer from the kernel.
  static std::atomic<bool> has_pwait2{!WEFT_TSAN};
  int n = -1;
  if (has_pwait2.load(std::memory_order_relaxed)) {
    const timespec ts = to_timespec(timeout_ns);
    n = ::epoll_pwait2(epoll_fd_, events, max_events, timeout_ns < 0 ? nullptr : &ts, nullptr);
    if (n < 0 && errno == ENOSYS) has_pwait2.store(false, std::memory_order_relaxed);
  }
  if (!has_pwait2.load(std::memory_order_relaxed)) {
    const std::int64_t ms = timeout_ns < 0 ? -1 : (timeout_ns + 999'999) / 1'000'000;
    n = ::epoll_wait(epoll_fd_, events, max_events,
                     static_cast<int>(std::min<std::int64_t>(ms, INT_MAX)));
  }
  if (n < 0) {
    if (errno == EINTR) return;
    host_.report("weft: epoll_wait failed in the poller: " +
                 std::system_error(errno, std::generic_category()).code().message());
    return;
  }
  for (int i = 0; i < n; ++i) {
    if (events[i].data.ptr == nullptr) {
      std::uint64_t count = 0;
      [[maybe_unused]] const ssize_t drained = ::read(event_fd_, &count, sizeof count);
      continue;
    }
    dispatch_io(static_cast<io_registration*>(events[i].data.ptr), events[i].events, ready);
  }
}

void poller::run() {
  std::vector<void*> ready;
  ready.reserve(fire_batch);
  std::vector<timer_entry*> callbacks;
  // Ordering: acquire pairs with stop()'s release store of stopping_.
  while (!stopping_.load(std::memory_order_acquire)) {
    free_deregistered();

    bool more = false;
    ready.clear();
    callbacks.clear();
    fire_timers(ready, callbacks, more);
    if (trace_ != nullptr && !ready.empty()) [[unlikely]]
      trace_->timers_fired(ready.data(), ready.size());
    if (!ready.empty()) host_.inject_batch(ready.data(), ready.size());
    for (timer_entry* entry : callbacks)
      fire_callback(entry);

    std::int64_t timeout_ns = -1;
    if (more) {
      timeout_ns = 0;
    } else if (virtual_) {
      // No real-time timeouts: time moves only when the pool is idle (the last worker to park
      // wakes us). Then jump to the next deadline and fire it on the next loop.
      if (advance_virtual_time()) timeout_ns = 0;
    } else {
      timeout_ns = timeout_until(next_deadline());
    }

    ready.clear();
    wait_and_dispatch(ready, timeout_ns);
    if (trace_ != nullptr && !ready.empty()) [[unlikely]]
      trace_->io_ready(ready.data(), ready.size());
    if (!ready.empty()) host_.inject_batch(ready.data(), ready.size());
  }
}

// ---- driver-in-park mode ----

bool poller::try_acquire_driver() noexcept {
  std::uint32_t expected = role_free;
  // Ordering: acquire pairs with the previous holder's release (release_driver, or the
  // watchdog's store): its dispatches and frees happen before this holder's cycle. Failure:
  // relaxed, nothing is read from a held role. The plain load first keeps a busy worker's check
  // from pulling the line exclusive when the role is taken.
  if (role_.load(std::memory_order_relaxed) != role_free) return false;
  return role_.compare_exchange_strong(expected, role_worker, std::memory_order_acquire,
                                       std::memory_order_relaxed);
}

void poller::release_driver() noexcept {
  // Ordering: release publishes this holder's cycle to the next one (see try_acquire_driver).
  // An exchange, not a store, so that a watching bit the watchdog set meanwhile (a CAS from
  // role_worker) is seen here and answered with a wake: the watchdog sleeps on the word with the
  // bit as its expected value, and every change of the word is an RMW, so either this exchange
  // reads the bit or the watchdog's CAS fails (and it re-reads the free role).
  if ((role_.exchange(role_free, std::memory_order_acq_rel) & role_watching) != 0) {
    role_wake(&role_);
  }
}

void poller::drive(std::vector<void*>& ready, std::vector<timer_entry*>& callbacks, bool block) {
  free_deregistered();
  bool more = false;
  const std::size_t before = ready.size();
  callbacks.clear();
  fire_timers(ready, callbacks, more);
  for (timer_entry* entry : callbacks)
    fire_callback(entry);
  // Never block with work in hand: a fired timer's waiter, or a task a callback woke (onto this
  // worker's queue, which nobody else may be looking at while every other worker sleeps).
  std::int64_t timeout_ns = 0;
  if (block && !more && ready.size() == before && callbacks.empty()) {
    timeout_ns = timeout_until(next_deadline());
  }
  wait_and_dispatch(ready, timeout_ns);
}

void poller::run_watchdog() {
  std::vector<void*> ready;
  std::vector<timer_entry*> callbacks;
  // The interval doubles (up to max_watchdog_interval) while the role stays free and the
  // watchdog's cycles find nothing: a pool busy with work that does no I/O (fib, compute) then
  // pays a few wake-ups per second, not a thousand. It is back at one interval whenever a cycle
  // found something or a worker let the role go. Timers never wait for it (the sleep ends at the
  // next deadline in any case).
  std::chrono::milliseconds interval = watchdog_interval;
  // Ordering: acquire pairs with stop()'s release store of stopping_; the role's acquire load
  // pairs with a driver's release when it gives the role back (role_).
  while (!stopping_.load(std::memory_order_acquire)) {
    std::uint32_t role = role_.load(std::memory_order_acquire);
    if (role == role_free) {
      std::uint32_t expected = role_free;
      // Ordering: as try_acquire_driver (acquire) and release_driver (release, the store below).
      if (role_.compare_exchange_strong(expected, role_poller, std::memory_order_acquire,
                                        std::memory_order_relaxed)) {
        ready.clear();
        drive(ready, callbacks, /*block=*/false);
        role_.store(role_free, std::memory_order_release);
        if (!ready.empty()) host_.inject_batch(ready.data(), ready.size());
        interval = ready.empty() && callbacks.empty()
                       ? std::min<std::chrono::milliseconds>(2 * interval, max_watchdog_interval)
                       : watchdog_interval;
      }
    } else if ((role & role_worker) != 0) {
      // A worker drives: it serves readiness and timers. Sleep until it lets go.
      // Ordering: relaxed CAS; the bit carries no data, only the request to be woken, and the
      // release_driver exchange that reads it is an RMW on the same word (see there).
      if ((role & role_watching) == 0 &&
          !role_.compare_exchange_strong(role, role | role_watching, std::memory_order_relaxed)) {
        continue;
      }
      role_wait(&role_, role | role_watching, -1);
      // Fall through: a released role is left to the workers for one interval first.
      interval = watchdog_interval;
    }
    // The role is free (or a worker just let go): look again at the earlier of the next timer and
    // one interval. An earlier timer armed meanwhile wakes this wait (wake()).
    std::int64_t timeout_ns = std::chrono::nanoseconds(interval).count();
    const std::int64_t until_timer = timeout_until(next_deadline());
    if (until_timer >= 0 && until_timer < timeout_ns) timeout_ns = until_timer;
    if (timeout_ns > 0) role_wait(&role_, role_.load(std::memory_order_relaxed), timeout_ns);
  }
}

void poller::dispatch_io(io_registration* reg, std::uint32_t events, std::vector<void*>& ready) {
  const bool failed = (events & (EPOLLERR | EPOLLHUP)) != 0;
  const bool directions[2] = {failed || (events & (EPOLLIN | EPOLLRDHUP)) != 0,
                              failed || (events & EPOLLOUT) != 0};
  for (int dir = 0; dir < 2; ++dir) {
    if (!directions[dir]) continue;
    auto& slot = reg->waiters[dir];
    // Ordering: acquire makes the waiter's frame (published by its release CAS) visible before we
    // queue it; release on the idle->ready store pairs with the waiter's acquire consume.
    std::uintptr_t current = slot.load(std::memory_order_acquire);
    for (;;) {
      if (current == io_registration::ready || current == io_registration::cancelled) break;
      const std::uintptr_t next =
          current == io_registration::idle ? io_registration::ready : io_registration::idle;
      if (slot.compare_exchange_weak(current, next, std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
        if (current != io_registration::idle) ready.push_back(reinterpret_cast<void*>(current));
        break;
      }
    }
  }
}

io_registration* poller::register_fd(int fd) {
  auto* reg = new io_registration;
  reg->fd = fd;
  reg->owner = this;
  epoll_event event{};
  event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  event.data.ptr = reg;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) < 0) {
    const int error = errno;
    delete reg;
    throw std::system_error(error, std::generic_category(),
                            "weft: registering fd " + std::to_string(fd) + " with epoll");
  }
  // Relaxed: a hint (poller.hpp).
  registered_.fetch_add(1, std::memory_order_relaxed);
  // The runtime serves I/O from now on: its threads get the short time slice (time_slice.hpp).
  // Relaxed: the flag only makes the scan happen once; it publishes nothing.
  if (!slices_shortened_.load(std::memory_order_relaxed) &&
      !slices_shortened_.exchange(true, std::memory_order_relaxed)) {
    shorten_runtime_slices(thread_name_);
  }
  std::lock_guard lock(registrations_mutex_);
  registrations_.push_front(reg);
  return reg;
}

void poller::deregister(io_registration* reg) noexcept {
  // The descriptor may already be closed (then epoll dropped it itself): ignore EBADF/ENOENT.
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, reg->fd, nullptr);
  registered_.fetch_sub(1, std::memory_order_relaxed);  // a hint (poller.hpp)
  std::lock_guard lock(registrations_mutex_);
  registrations_.remove(reg);
  to_free_.push_back(reg);
}

void poller::free_deregistered() {
  std::vector<io_registration*> batch;
  {
    std::lock_guard lock(registrations_mutex_);
    if (to_free_.empty()) return;
    batch.swap(to_free_);
  }
  for (io_registration* reg : batch)
    delete reg;
}

void poller::clear_for_shutdown() {
  {
    std::lock_guard lock(timers_mutex_);
    wheel_.clear([](timer_entry* entry) { entry->linked = false; });
  }
  std::lock_guard lock(registrations_mutex_);
  for (io_registration* reg : to_free_)
    delete reg;
  to_free_.clear();
  while (io_registration* reg = registrations_.pop_front())
    reg->orphaned = true;
}

// ---- io.hpp's readiness protocol ----

bool io_take_readiness(io_registration* reg, io_direction dir) noexcept {
  std::uintptr_t expected = io_registration::ready;
  // Ordering: acquire pairs with the poller's release when it recorded readiness.
  return reg->waiters[static_cast<int>(dir)].compare_exchange_strong(
      expected, io_registration::idle, std::memory_order_acquire, std::memory_order_relaxed);
}

bool io_cancel(io_registration* reg, io_direction dir, std::coroutine_handle<> waiter) noexcept {
  auto& slot = reg->waiters[static_cast<int>(dir)];
  std::uintptr_t expected = reinterpret_cast<std::uintptr_t>(waiter.address());
  // Every transition of the slot is a CAS or swap, so parking, readiness and cancelling are
  // totally ordered on it: exactly one of them decides who resumes the waiter. Ordering: acq_rel,
  // pairing with the waiter's parking CAS and the driver's readiness swap on the same slot.
  if (slot.compare_exchange_strong(expected, io_registration::idle, std::memory_order_acq_rel,
                                   std::memory_order_acquire)) {
    return true;
  }
  expected = io_registration::idle;
  // Ordering: acq_rel, the same slot protocol as io_park's CAS (io.hpp): the mark is ordered
  // with the parker's later CAS, which then fails and reports `cancelled`. Failure: relaxed, the
  // slot holds `ready` (readiness will resume the waiter, or did) and nothing is read from it.
  slot.compare_exchange_strong(expected, io_registration::cancelled, std::memory_order_acq_rel,
                               std::memory_order_relaxed);
  return false;  // not parked yet (now marked), or readiness resumed / will resume it
}

park_result io_park(io_registration* reg, io_direction dir, std::coroutine_handle<> waiter) {
  auto& slot = reg->waiters[static_cast<int>(dir)];
  std::uintptr_t expected = io_registration::idle;
  // Ordering: release publishes the suspended frame to the poller.
  if (slot.compare_exchange_strong(expected, reinterpret_cast<std::uintptr_t>(waiter.address()),
                                   std::memory_order_acq_rel, std::memory_order_acquire)) {
    return park_result::parked;
  }
  if (expected == io_registration::ready) {
    // Readiness arrived since await_ready: consume it and retry the syscall at once.
    slot.store(io_registration::idle, std::memory_order_relaxed);
    return park_result::ready;
  }
  if (expected == io_registration::cancelled) {
    slot.store(io_registration::ready, std::memory_order_relaxed);
    return park_result::cancelled;
  }
  throw std::logic_error("weft::io_source: another task already waits for fd " +
                         std::to_string(reg->fd) + " in the same direction");
}

}  // namespace weft::detail
