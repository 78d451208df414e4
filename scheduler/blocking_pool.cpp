// scheduler/blocking_pool.cpp: the blocking pool behind weft::to_thread (blocking_pool.hpp has
// the states of a call and why one lock settles every race).
#include "blocking_pool.hpp"

#include <pthread.h>
#include <sched.h>

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <system_error>
#include <thread>

#include "offload_host.hpp"
#include "trace.hpp"

namespace weft::detail {

namespace {

enum call_state : unsigned char {
  fresh = 0,  // not submitted yet
  queued,     // waiting for a thread
  held,       // submitted beyond the queue's bound: waits for a queue slot
  running,    // a thread runs it for a task that waits
  detached,   // a thread runs it; its task has gone on (cancelled)
  done,       // ended; its waiter was woken (or had gone)
  removed,    // cancelled before it started: never runs
};

// Rounds of an idle thread's spin that use `pause` before each further round yields the CPU.
constexpr unsigned spin_pause_rounds = 4;

long long steady_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string type_name(const std::type_info* type) {
  if (type == nullptr) return "?";
  int status = 0;
  char* readable = abi::__cxa_demangle(type->name(), nullptr, nullptr, &status);
  std::string name = status == 0 && readable != nullptr ? readable : type->name();
  std::free(readable);
  return name;
}

}  // namespace

struct blocking_pool::thread_state {
  std::condition_variable cv;
  // The call handed to this thread while it was idle. Ordering: stored (release) under the lock by
  // the submitter; the thread reads it with acquire, spinning without the lock or under it, so it
  // sees the call's contents (the callable, the arguments, the waiter).
  std::atomic<blocking_call*> handoff{nullptr};
  blocking_call* current = nullptr;  // guarded by the lock: the call running here
  bool sleeping = false;             // guarded: waiting on cv (a hand-off must notify it)
  bool exit = false;                 // guarded: shutdown asks this idle thread to leave
};

void blocking_pool::call_list::push_back(blocking_call* call) noexcept {
  call->prev = tail;
  call->next = nullptr;
  (tail != nullptr ? tail->next : head) = call;
  tail = call;
  ++size;
}

blocking_call* blocking_pool::call_list::pop_front() noexcept {
  blocking_call* call = head;
  if (call != nullptr) unlink(call);
  return call;
}

void blocking_pool::call_list::unlink(blocking_call* call) noexcept {
  (call->prev != nullptr ? call->prev->next : head) = call->next;
  (call->next != nullptr ? call->next->prev : tail) = call->prev;
  call->prev = call->next = nullptr;
  --size;
}

blocking_pool::blocking_pool(offload_host& host, const runtime_options& options,
                             std::shared_ptr<tracer> trace)
    : host_(&host),
      max_threads_(std::max<std::size_t>(options.blocking_threads, 1)),
      queue_capacity_(options.blocking_queue),
      keep_alive_(options.blocking_keep_alive),
      spin_(options.spin_before_park),
      thread_name_(options.thread_name.substr(0, 13) + "-b"),
      trace_(std::move(trace)) {}

void blocking_pool::unref(blocking_call* call) noexcept {
  // Ordering: acq_rel; the last owner's acquire sees everything the other owner did to the call
  // (the result written by the thread, the awaiter's reads) before it frees it.
  if (call->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) call->free(call);
}

void blocking_pool::start_locked(blocking_call* call, thread_state* thread) {
  call->state = running;
  call->started_ns = steady_ns();
  thread->current = call;
  ++running_;
}

blocking_call* blocking_pool::next_queued_locked() noexcept {
  blocking_call* call = queue_.pop_front();
  if (call != nullptr) {
    // A queue slot freed: the oldest held-back submit takes it (FIFO across both lists).
    if (blocking_call* waiting = held_.pop_front()) {
      waiting->state = queued;
      queue_.push_back(waiting);
    }
  }
  return call;
}

blocking_submit_result blocking_pool::submit(blocking_call* call) {
  std::unique_lock lock(mutex_);
  // A cancel that ran between the hook's publication and this lock marked the call removed.
  if (call->state == removed || closed_ || starting_stopped_) {
    return blocking_submit_result::cancelled;
  }
  call->pool = this;
  // Ordering: relaxed; the pool's reference is taken before the call is visible to any thread
  // (the hand-off below is a release, the lists are under the lock).
  call->refs.fetch_add(1, std::memory_order_relaxed);
  // Ordering: release under the lock; the awaiter's release reads it with acquire.
  call->in_pool.store(true, std::memory_order_release);
  if (!idle_.empty()) {
    thread_state* thread = idle_.back();
    idle_.pop_back();
    start_locked(call, thread);
    // Ordering: release, paired with the thread's acquire exchange (thread_state::handoff).
    thread->handoff.store(call, std::memory_order_release);
    // Under the lock: the thread cannot finish this call and exit (freeing its state) before.
    if (thread->sleeping) thread->cv.notify_one();
    return blocking_submit_result::submitted;
  }
  if (all_.size() < max_threads_) {
    auto* thread = new thread_state;
    start_locked(call, thread);
    // Ordering: release, paired with the thread's acquire exchange (thread_state::handoff).
    thread->handoff.store(call, std::memory_order_release);
    all_.push_back(thread);
    try {
      std::thread([pool = shared_from_this(), thread] { pool->thread_main(thread); }).detach();
      return blocking_submit_result::submitted;
    } catch (...) {
      // No thread (a resource limit): queue the call if another thread will take it, else fail
      // the call with the system's error.
      all_.pop_back();
      --running_;
      delete thread;
      if (all_.empty()) {
        call->state = fresh;
        call->pool = nullptr;
        call->in_pool.store(false, std::memory_order_relaxed);
        call->refs.fetch_sub(1, std::memory_order_relaxed);
        throw;
      }
    }
  }
  if (queue_.size < queue_capacity_) {
    call->state = queued;
    queue_.push_back(call);
  } else {
    call->state = held;  // back-pressure: the task stays suspended until a queue slot frees
    held_.push_back(call);
  }
  return blocking_submit_result::submitted;
}

bool blocking_pool::cancel(blocking_call* call) noexcept {
  bool wake_waiter = false;
  bool drop_pool_ref = false;
  bool stop = false;
  {
    std::lock_guard lock(mutex_);
    switch (call->state) {
      case fresh:
        call->state = removed;  // the coming submit refuses; await_suspend resumes the task
        break;
      case queued:
        queue_.unlink(call);
        if (blocking_call* waiting = held_.pop_front()) {
          waiting->state = queued;
          queue_.push_back(waiting);
        }
        call->state = removed;
        drop_pool_ref = wake_waiter = true;
        break;
      case held:
        held_.unlink(call);
        call->state = removed;
        drop_pool_ref = wake_waiter = true;
        break;
      case running:
        call->state = detached;  // its thread finishes it and wakes nobody
        wake_waiter = true;
        stop = call->stop != nullptr;
        break;
      default:
        break;  // done (its thread woke the task), removed or detached already
    }
    // Ordering: release, paired with blocking_release's acquire (blocking_call::in_pool):
    // the awaiter that reads false knows the pool is done with the call's links.
    if (wake_waiter) call->in_pool.store(false, std::memory_order_release);
  }
  // Outside the lock: stop callbacks and the callable's destructor are user code. The awaiter
  // still holds its reference, so the call is alive here.
  if (stop) call->stop->request_stop();
  if (drop_pool_ref) unref(call);
  return wake_waiter;
}

void blocking_pool::release(blocking_call* call) noexcept {
  bool drop_pool_ref = false;
  {
    std::lock_guard lock(mutex_);
    switch (call->state) {
      case queued:
        queue_.unlink(call);
        if (blocking_call* waiting = held_.pop_front()) {
          waiting->state = queued;
          queue_.push_back(waiting);
        }
        call->state = removed;
        drop_pool_ref = true;
        break;
      case held:
        held_.unlink(call);
        call->state = removed;
        drop_pool_ref = true;
        break;
      case running:
        call->state = detached;
        break;
      default:
        break;
    }
    // Ordering: release, paired with blocking_release's acquire (blocking_call::in_pool):
    // the awaiter that reads false knows the pool is done with the call's links.
    call->in_pool.store(false, std::memory_order_release);
  }
  if (drop_pool_ref) unref(call);
}

void blocking_pool::thread_main(thread_state* self) {
  pthread_setname_np(pthread_self(), thread_name_.c_str());
  // Ordering: acquire, paired with the submitter's release store (thread_state::handoff).
  blocking_call* call = self->handoff.exchange(nullptr, std::memory_order_acquire);
  for (;;) {
    if (trace_ != nullptr) [[unlikely]]
      trace_->call_begin(call->what);
    call->run(call);
    if (trace_ != nullptr) [[unlikely]]
      trace_->call_end();
    blocking_call* next = nullptr;
    bool leave = false;
    offload_host* wake_host = nullptr;  // set if this thread must wake the task (after the lock)
    {
      std::lock_guard lock(mutex_);
      if (call->state == running && host_ != nullptr) {
        // The task still waits: this thread wakes it, once the lock is dropped (the task's next
        // submit takes this lock at once, and the wake may cost a futex call). Shutdown may clear
        // host_ meanwhile; it then waits for wakes_in_flight_ to drop to zero before it lets the
        // runtime go (see shutdown).
        wake_host = host_;
        // Ordering: relaxed; the increment is ordered before shutdown's read by the lock (it
        // happens here, in a section that saw host_ set, so before shutdown's section that clears
        // it); the decrement below is the release that shutdown acquires (every change is an RMW,
        // so the zero that shutdown reads synchronizes with every earlier decrement).
        wakes_in_flight_.fetch_add(1, std::memory_order_relaxed);
      }
      // running (with or without a runtime) or detached (the task went on with cancelled_error):
      // either way nobody else wakes the task from here on.
      call->state = done;
      // Ordering: release, paired with blocking_release's acquire (blocking_call::in_pool):
      // the awaiter that reads false knows the pool is done with the call's links.
      call->in_pool.store(false, std::memory_order_release);
      self->current = nullptr;
      --running_;
      if (!closed_ && !starting_stopped_) next = next_queued_locked();
      if (next != nullptr) {
        start_locked(next, self);
      } else if (closed_) {
        std::erase(all_, self);
        leave = true;
      } else {
        idle_.push_back(self);
      }
      if (closed_) changed_.notify_all();
    }
    if (wake_host != nullptr) {
      // The waiter handle was set before the submit and nobody else resumes the task (its state
      // is done), so the frame is suspended here; only the shutdown sweep, after the workers
      // stopped, could destroy it, and a handle in a stopped runtime's queue is never resumed.
      wake_host->wake_from_offload(call->waiter);
      // Ordering: release, acquired by shutdown's wait: everything this wake did to the runtime
      // happens before shutdown goes on to destroy it.
      wakes_in_flight_.fetch_sub(1, std::memory_order_release);
    }
    unref(call);
    if (leave) {
      delete self;
      return;
    }
    if (next != nullptr) {
      call = next;
      continue;
    }
    call = wait_for_work(self);
    if (call == nullptr) return;
  }
}

blocking_call* blocking_pool::wait_for_work(thread_state* self) {
  // A short spin first: a task that calls to_thread in a loop hands the next call over within
  // microseconds, and a futex wake-up would cost more than the call. After a few rounds each
  // round yields the CPU: the worker that will hand the next call over may be waiting for this
  // very core (two threads that ping-pong often share one), and a spin that holds it delays the
  // hand-off by the whole spin (round trips of 58-110 us instead of 5).
  const auto spin_until = std::chrono::steady_clock::now() + spin_;
  for (unsigned round = 0; self->handoff.load(std::memory_order_relaxed) == nullptr &&
                           std::chrono::steady_clock::now() < spin_until;
       ++round) {
    if (round < spin_pause_rounds) {
      __builtin_ia32_pause();
    } else {
      sched_yield();
    }
  }
  std::unique_lock lock(mutex_);
  const auto idle_until = std::chrono::steady_clock::now() + keep_alive_;
  for (;;) {
    // Ordering: acquire, paired with the submitter's release store (thread_state::handoff).
    if (blocking_call* call = self->handoff.exchange(nullptr, std::memory_order_acquire)) {
      self->sleeping = false;
      return call;
    }
    bool leave = self->exit;
    if (!leave) {
      self->sleeping = true;
      leave = self->cv.wait_until(lock, idle_until) == std::cv_status::timeout &&
              self->handoff.load(std::memory_order_relaxed) == nullptr && !self->exit;
      self->sleeping = false;
      if (leave) std::erase(idle_, self);  // idle for keep_alive: this thread exits
    }
    if (leave) {
      std::erase(all_, self);
      changed_.notify_all();
      lock.unlock();
      delete self;
      return nullptr;
    }
  }
}

void blocking_pool::stop_starting() noexcept {
  std::lock_guard lock(mutex_);
  starting_stopped_ = true;
}

void blocking_pool::shutdown(std::chrono::milliseconds timeout) {
  std::vector<blocking_call*> never_started;
  std::unique_lock lock(mutex_);
  if (closed_) return;
  closed_ = true;
  // Calls that never started never will (their tasks were cancelled and unlinked them, or are
  // gone with the runtime).
  for (call_list* list : {&queue_, &held_}) {
    while (blocking_call* call = list->pop_front()) {
      call->state = removed;
      // Ordering: release, paired with blocking_release's acquire (blocking_call::in_pool):
      // the awaiter that reads false knows the pool is done with the call's links.
      call->in_pool.store(false, std::memory_order_release);
      never_started.push_back(call);
    }
  }
  for (thread_state* thread : idle_) {
    thread->exit = true;
    thread->cv.notify_one();
  }
  idle_.clear();
  changed_.wait_for(lock, timeout, [&] { return running_ == 0; });
  if (running_ != 0) {
    const long long now = steady_ns();
    for (thread_state* thread : all_) {
      blocking_call* call = thread->current;
      if (call == nullptr) continue;
      host_->report_composed([&] {
        return "weft: shutdown: a to_thread call of " + type_name(call->what) +
               " still runs after " + std::to_string((now - call->started_ns) / 1000000) +
               " ms (the blocking_shutdown_timeout is " + std::to_string(timeout.count()) +
               " ms); it finishes on its own thread and its result is dropped";
      });
    }
  }
  host_ = nullptr;  // from here on no pool thread starts a wake of the runtime's tasks
  // Idle threads leave at once; wait for them (not for the stragglers) so that a destroyed
  // runtime leaves no idle thread behind.
  changed_.wait_for(lock, std::chrono::seconds(5), [&] { return all_.size() == running_; });
  lock.unlock();
  // Wakes that began before host_ was cleared (their threads saw it set, under the lock) may still
  // be running: wait for them, so that none touches the runtime after this returns. A wake is a
  // queue push and at most one futex call, so this wait is short.
  // Ordering: acquire pairs with the release decrement after each wake.
  while (wakes_in_flight_.load(std::memory_order_acquire) != 0)
    std::this_thread::yield();
  for (blocking_call* call : never_started)
    unref(call);
}

void blocking_pool::add_stats(runtime_stats& stats) const {
  std::lock_guard lock(mutex_);
  stats.blocking_threads = all_.size();
  stats.blocking_idle = idle_.size();
  stats.blocking_queued = queue_.size;
  stats.blocking_held = held_.size;
}

// to_thread.hpp's release (its submit and cancel, which find the runtime, are in offload.cpp).
void blocking_release(blocking_call* call) noexcept {
  // Ordering: acquire pairs with the release stores under the pool's lock.
  if (call->in_pool.load(std::memory_order_acquire)) {
    static_cast<blocking_pool*>(call->pool)->release(call);
  }
  blocking_pool::unref(call);
}

}  // namespace weft::detail
