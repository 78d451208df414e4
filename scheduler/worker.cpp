// scheduler/worker.cpp: the worker loop (see worker.hpp for the order in which work is found).
#include "worker.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <coroutine>
#include <string>

#include <weft/scheduler/detail/runtime_entry_points.hpp>

#include "heavy_fence.hpp"
#include "pool.hpp"
#include "simulation.hpp"
#include "trace.hpp"

namespace weft::detail {

// Declared in worker.hpp.
constinit __attribute__((tls_model("initial-exec"))) thread_local worker* this_worker = nullptr;

namespace {

// steady_clock in nanoseconds, for the busy-time counter.
std::uint64_t steady_ns() noexcept {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

constexpr std::size_t max_driven_reserve = 256;

std::uint32_t xorshift(std::uint32_t& state) noexcept {
  state ^= state << 13;
  state ^= state >> 17;
  state ^= state << 5;
  return state;
}
}  // namespace

// Declared in await_trampoline.hpp. initial-exec, as this_worker: read around every resumption.
__attribute__((tls_model("initial-exec"))) thread_local await_trampoline trampoline{};

void worker::resume(void* task) noexcept {
  // The trampoline (await_trampoline.hpp): a task resumed here may hand the coroutine it transfers
  // to back to this loop instead of resuming it on the stack; run those until none is left. In
  // builds with tail calls nothing is ever handed back, and this costs one store and one load of
  // this thread's own cache line per resumption. `next` is null whenever no hand-off is pending,
  // so it is cleared only after a hand-off. `running` is not cleared when the step ends: on a
  // worker thread every coroutine runs inside this function, which sets it first.
  await_trampoline& t = trampoline;
  for (;;) {
    t.running = task;
    std::coroutine_handle<>::from_address(task).resume();
    task = t.next;
    if (task == nullptr) return;
    t.next = nullptr;
  }
}

worker::worker(pool& shared, runtime_core& owner, std::size_t index, registry_shard& shard)
    : worker_identity(owner, index),
      pool_(shared),
      shard_(shard),
      injector_token_(shared.injector.make_token()),
      rng_(static_cast<std::uint32_t>(index * 0x9E3779B9U + 1)) {
  yielded_.reserve(64);
  shard_.owner = &park;
  park.set_driver_wake_fd(shared.poller.wake_fd());
  if (shared.poller.driver_in_park()) {
    driven_.reserve(max_driven_reserve);
    driven_callbacks_.reserve(16);
  }
}

void worker::start() {
  thread_ = std::thread([this] { run(); });
  std::string name = pool_.options.thread_name + "-w" + std::to_string(index());
  name.resize(std::min<std::size_t>(name.size(), 15));
  pthread_setname_np(thread_.native_handle(), name.c_str());
}

void worker::join() {
  if (thread_.joinable()) thread_.join();
}

void worker::push_local(void* task) {
  ++batch_pushed_;
  if (!deque_.push(task)) [[unlikely]] {
    push_overflowing(task);
  }
  if (bursting_) {
    // A burst (worker.hpp): the check without the fence; parking workers fence for us.
    if (pool_.idle.maybe_should_wake_for_local_work_light()) [[unlikely]]
      pool_.wake_for_local_work();
    return;
  }
  // The fenced check for this push, then, from the next push on, the burst's (entered once per
  // resumption: the count passes burst_after once).
  pool_.notify_for_local_work();
  if (batch_pushed_ == burst_after) [[unlikely]]
    enter_burst();
}

void worker::push_overflowing(void* task) {
  // Full: move the older half to the injection queue, where any worker can take it. Kept out of
  // push_local so that the common path does not set up this 1 KiB buffer on every spawn.
  do {
    void* overflow[local_queue_capacity / 2];
    const std::size_t moved = deque_.take_half_for_overflow(overflow);
    pool_.injector.push_bulk(overflow, moved);
  } while (!deque_.push(task));
}

void worker::push_lifo(void* task) {
  // The slot is empty at the start of every resumption (run_task drains it before the next), so
  // an occupied slot, or a task already pushed, means this is not the first task the running one
  // made ready: it queues behind them, on the deque, in order (order_batch).
  if (lifo_slot_ == nullptr && batch_pushed_ == 0) [[likely]] {
    lifo_slot_ = task;
    return;
  }
  push_local(task);
}

void worker::run_eager(void* task) {
  // The eager task runs nested inside the running one's resumption. The trampoline belongs to the
  // outer step (its `running` is the spawner, or null after a hand-off; `next` is null while a
  // step runs, see worker::resume): set it aside so that the nested resume runs its own hand-offs
  // to completion and cannot take or leave the outer one's, then put it back. Tasks the eager one
  // makes ready join the running resumption's batch (they are made ready during it, in order).
  const await_trampoline outer = trampoline;
  resume(task);
  trampoline = outer;
}

void worker::run_batch(void* task) {
  batch_pushed_ = 0;
  if (pool_.trace != nullptr) [[unlikely]]
    pool_.trace->run_begin(index(), task);
  resume(task);
  if (bursting_) [[unlikely]]
    leave_burst();
  if (pool_.trace != nullptr) [[unlikely]]
    pool_.trace->run_end(index());
  if (batch_pushed_ > 1) [[unlikely]] {
    order_batch();
  }
  batch_pushed_ = 0;
}

void worker::order_batch() {
  // The last resumption pushed batch_pushed_ tasks, which the owner's pops would take newest
  // first. Pop them and push them back in the order popped, so the oldest is at the bottom.
  // Safety: the pops take only tasks of this batch. The batch is the newest part of the deque
  // (only this worker pushes, and it ran nothing else since); thieves and overflows remove from
  // the top, the oldest end, so if any task of the batch was removed, every older task was removed
  // too, and the pops stop at an empty deque. These are the ordinary owner pop and push of the
  // Chase-Lev protocol, each safe against concurrent thieves; a thief that finds the deque empty
  // meanwhile searches again or parks, and the re-notify below wakes a worker if one is needed.
  // A batch larger than half the deque overflowed into the injection queue already; only the part
  // still here is reordered.
  void* batch[local_queue_capacity];
  std::size_t n = 0;
  const std::size_t limit = std::min<std::size_t>(batch_pushed_, local_queue_capacity);
  while (n < limit) {
    void* task = deque_.pop();
    if (task == nullptr) break;
    batch[n++] = task;
  }
  for (std::size_t i = 0; i < n; ++i) {
    // Cannot fail: the deque held these n tasks a moment ago and only thieves ran since.
    if (!deque_.push(batch[i])) push_overflowing(batch[i]);
  }
  if (n > 1) pool_.notify_for_local_work();
}

void worker::run() {
  if (pool_.sim != nullptr) [[unlikely]] {
    run_deterministic();  // once per thread, not per task: the loop below is unchanged
    return;
  }
  this_worker = this;
  counters.awake_since_ns.store(steady_ns(), std::memory_order_relaxed);
  clock_ms_ = coarse_clock_ms();
  while (!pool_.stopping()) {
    void* task = next_task();
    if (task == nullptr) {
      if (pool_.trace != nullptr) [[unlikely]]
        pool_.trace->search_begin(index());
      task = search();
    }
    if (task == nullptr) {
      park_until_notified();
      continue;
    }
    if (searching_) {
      // Found work (wherever it came from): stop counting as a searcher, or producers would keep
      // assuming someone is looking and never wake a parked worker. The last searcher to find
      // work wakes another if more work is visible, so the pool ramps up one worker at a time.
      // Only then: a lone task woken from outside (a to_thread or compute completion, a timer)
      // used to wake a second worker each time, which searched for 50 us and parked again, two
      // futex calls per wake-up (bench_to_thread: 26 -> 7.5 us of CPU per round trip). Work
      // published after the re-check is not lost: the re-check is the parking one (seq_cst RMW,
      // then seq_cst loads of every queue; idle.hpp's argument, model-checked in
      // test_model_parking.cpp), so either it sees the work or the producer sees no searcher.
      searching_ = false;
      if (pool_.idle.transition_from_searching() && work_visible()) {
        pool_.notify_one_if_needed();
      }
    }
    run_task(admit(task));
  }
  this_worker = nullptr;
}

void* worker::adopt(task_header* task) noexcept {
  // Shutdown's graceful phase: the task starts cancelled, as an eager spawn then does
  // (spawn_root). If `closing` is not seen here, this worker has not yet served shutdown's
  // request (its acquire of the request sees `closing`, serve_requests), so the cancel_all that
  // serves it finds the task listed below.
  if (pool_.closing()) [[unlikely]]
    request_cancel(task);
  registry::insert(shard_, task);
  // Ordering: release, after the listing: unlisted_queued()'s acquire load that sees this count
  // also sees the registry's count that includes the task, so the two never both miss it.
  counters.adopted.store(counters.adopted.load(std::memory_order_relaxed) + 1,
                         std::memory_order_release);
  return task->frame().address();
}

void worker::run_task(void* task) {
  budget_ = task_budget;
  // For runtime::dump (worker_counters::running): relaxed single-writer stores. The start is the
  // worker's clock stamp (clock_ms_), not a clock read: see worker.hpp.
  counters.running_since.store(clock_ms_, std::memory_order_relaxed);
  counters.running.store(task, std::memory_order_relaxed);
  if (pool_.options.debug) [[unlikely]] {
    resume_timed(task);
  } else {
    run_batch(task);
  }
  // Tasks woken by the one that ran go next, a bounded number of times.
  for (std::uint32_t polls = 0; lifo_slot_ != nullptr && polls < max_lifo_polls; ++polls) {
    void* next = std::exchange(lifo_slot_, nullptr);
    budget_ = task_budget;
    counters.running.store(next, std::memory_order_relaxed);  // the dump's view, as above
    run_batch(next);
  }
  if (lifo_slot_ != nullptr) {
    // Out of LIFO polls: the task goes onto the deque, where this worker runs it next unless a
    // thief takes it first, without waking a parked worker (tokio does the same). The woken
    // worker's only possible catch is this one task, which this worker is about to run anyway:
    // the futex wake delays this worker and usually hands the thief the task, moving a wake-up
    // chain to a cold core. In a 64-task mutex hand-off chain this wake parked and woke the other
    // worker 2,600 times per 6.4M acquisitions, and the chain moved cores as often; without it,
    // twice. No work is stranded: this worker cannot park while its own deque holds the task,
    // and work pushed by anyone else still wakes as usual.
    if (!deque_.push(lifo_slot_)) push_overflowing(lifo_slot_);
    lifo_slot_ = nullptr;
  }
  counters.running.store(nullptr, std::memory_order_relaxed);
}

void worker::resume_timed(void* task) {
  // Debug mode: a resumption that keeps the worker for more than 100 ms is a task that blocks
  // (or computes) without suspending, and starves every task queued behind it.
  const auto start = std::chrono::steady_clock::now();
  run_batch(task);
  const auto ran = std::chrono::steady_clock::now() - start;
  if (ran > std::chrono::milliseconds(100)) {
    pool_.report(
        "weft debug: a task ran " +
        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(ran).count()) +
        " ms without suspending on worker " + std::to_string(index()) +
        " (a blocking call? the other tasks of this worker waited meanwhile; run blocking calls "
        "with weft::to_thread and CPU-bound loops with weft::compute)");
  }
}

inline void worker::serve_requests() {
  // Unlink (and maybe free) this worker's tasks that finished on other workers.
  registry::drain_remote(shard_);
  if (shard_.request.load(std::memory_order_relaxed) != shard_.seen.load(std::memory_order_relaxed))
      [[unlikely]] {
    // Ordering: runtime::shutdown sets `closing`, then bumps `request` (acq_rel RMW). The acquire
    // load here reads that bump or a later RMW of its release sequence, so `closing` is visible
    // after it; every spawn this worker makes afterwards sees it too and starts cancelled
    // (spawn_root), so no task of this shard escapes the cancellation.
    (void)shard_.request.load(std::memory_order_acquire);
    if (!cancelled_for_shutdown_ && pool_.closing()) {
      cancelled_for_shutdown_ = true;
      pool_.cancel_shard_for_shutdown(shard_);
      // The cancellations woke tasks through wake(), which on a worker fills the LIFO slot; only
      // run_task drains that slot, so move its task where next_task looks (bug: a cancelled
      // task stayed there while its worker parked, and shutdown waited out its whole grace).
      if (lifo_slot_ != nullptr) push_local(std::exchange(lifo_slot_, nullptr));
    }
    registry::acknowledge(shard_);
  }
}

void* worker::next_task() {
  ++tick_;
  serve_requests();
  if (tick_ % injector_interval == 0) {
    clock_ms_ = coarse_clock_ms();  // the dump's clock stamp (worker.hpp)
    // Light mode outlives no fork burst: without a fork pop since the last tick, steals from
    // this deque go back to costing no heavy fence.
    if (deque_.light() && !std::exchange(forked_since_tick_, false)) leave_light_mode();
    // Maintenance tick. The tasks that yielded since the last tick go to the injection queue:
    // behind everything already waiting there, visible to every worker, and taken by this one at
    // a later tick (a batch of at most injector_batch < injector_interval, so older tasks on the
    // deque still get most of each interval). Without this they waited for the deque to run dry,
    // which a busy worker's never does: a yield_now() on one worker returned after 1.4 s while a
    // semaphore ping-pong ran there (issue 10, bug 5). Not onto the deque: its owner pops the
    // newest first, so yielders pushed there at every tick ran ahead of older tasks, and 250
    // yield_now() loops kept the other 250 tasks of a task group from ever starting (a livelock
    // the task_group S4 stress hit in CI: the fix of bug 5 caused it).
    if (pool_.trace != nullptr) [[unlikely]]
      pool_.trace->ready_sample(
          index(), static_cast<std::size_t>(std::max<std::int64_t>(0, deque_.size_estimate())),
          static_cast<std::size_t>(std::max<std::int64_t>(0, pool_.injector.length())));
    if (!yielded_.empty()) {
      pool_.inject_batch(yielded_.data(), yielded_.size());
      yielded_.clear();
    }
    if (void* task = take_injected()) return task;
    if (pool_.poller.driver_in_park()) [[unlikely]] {
      // Onto the deque: sending a tick's readiness through the injection queue instead changed
      // nothing measurable on tcp_echo (p99 and CPU alike), and the deque skips a shared queue.
      poll_driver_when_busy(found_tasks::own_deque);
    }
  }
  if (void* task = deque_.pop()) return task;
  if (!yielded_.empty()) {
    flush_yielded();
    if (void* task = deque_.pop()) return task;
  }
  return take_injected();
}

void worker::flush_yielded() {
  // Pushed newest first, so that the deque's LIFO pop runs the oldest yielder first.
  std::vector<void*> batch;
  batch.swap(yielded_);
  for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
    if (!deque_.push(*it)) push_overflowing(*it);
  }
  batch.clear();
  yielded_.swap(batch);
  pool_.notify_for_local_work();
}

void* worker::take_injected() {
  void* batch[injector_batch];
  const std::size_t n = pool_.injector.pop_bulk(injector_token_, batch, injector_batch);
  if (n == 0) return nullptr;
  // Run the first now, keep the rest locally (stealable).
  for (std::size_t i = n; i-- > 1;) {
    if (!deque_.push(batch[i])) {
      pool_.injector.push_bulk(batch + 1, i);
      break;
    }
  }
  if (n > 1) pool_.notify_for_local_work();
  return batch[0];
}

void* worker::steal_from_others() {
  const std::size_t count = pool_.workers.size();
  if (count < 2) return nullptr;
  const std::size_t start = xorshift(rng_) % count;
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t victim_index = (start + i) % count;
    if (victim_index == index()) continue;
    worker& victim = *pool_.workers[victim_index];
    // Take half of what the victim has (at least one), one CAS per item: a batch CAS on top would
    // race with the owner's CAS-free pop of other items (see deque.hpp).
    const std::int64_t available = victim.deque_.size_estimate();
    if (available == 0) continue;
    // From a deque in light mode, one item: each steal pays a heavy fence there (deque.hpp).
    std::int64_t want = victim.deque_.light_hint()
                            ? 1
                            : std::min<std::int64_t>((available + 1) / 2,
                                                     static_cast<std::int64_t>(max_steal_batch));
    void* first = nullptr;
    std::uint64_t taken = 0;
    while (want > 0) {
      void* item = nullptr;
      const auto result = victim.deque_.steal(item);
      if (result == work_deque<local_queue_capacity>::steal_result::empty) break;
      if (result == work_deque<local_queue_capacity>::steal_result::lost_race) continue;
      ++taken;
      --want;
      if (first == nullptr) {
        first = item;
      } else if (!deque_.push(item)) {
        pool_.injector.push(item);
      }
    }
    if (first != nullptr) {
      worker_counters::bump(counters.stolen, taken);
      return first;
    }
  }
  return nullptr;
}

void worker::enter_light_mode() noexcept {
  fenced_fork_pops_ = 0;
  // Unavailable (heavy_fence.hpp): the count starts over, and the answer is a load next time.
  if (!heavy_fence_available()) return;
  deque_.enter_light();
  forked_since_tick_ = true;
}

// A spawn burst's two ends, as a deque's light mode's (deque.hpp, idle.hpp): a parking worker
// that reads the flag unset either read it before the point the entry's heavy fence placed in its
// program (so its seq_cst decrement came before that point too, and every burst push's check of
// the idle state after the fence reads that decrement or a later value: the pusher wakes it), or
// read the release store of the leaving (so its re-check sees every push of the burst). One that
// reads it set runs the heavy fence between its decrement and its re-check, which with the
// pusher's compiler barrier gives one of the two outcomes of a fence pair.
void worker::enter_burst() noexcept {
  // Unavailable (heavy_fence.hpp: old kernel, seccomp, TSan, the model checker): every push keeps
  // its fence.
  if (!heavy_fence_available()) return;
  // Ordering: relaxed store, ordered before the pushes that follow by the heavy fence (above).
  burst_.store(true, std::memory_order_relaxed);
  heavy_fence();
  bursting_ = true;
}

void worker::leave_burst() noexcept {
  bursting_ = false;
  // Ordering: release pairs with any_deque_light's acquire: the burst's pushes (their release
  // stores of bottom, or the injector's pushes) are visible to the parking worker's re-check.
  burst_.store(false, std::memory_order_release);
}

void worker::leave_light_mode() noexcept {
  fenced_fork_pops_ = 0;
  if (deque_.light()) deque_.leave_light();
}

void* worker::search() {
  // The deque ran dry: a later fork burst earns light mode anew (deque.hpp), and thieves meanwhile
  // steal from this deque without a heavy fence.
  leave_light_mode();
  if (!searching_) {
    if (!pool_.idle.transition_to_searching()) return nullptr;
    searching_ = true;
  }
  // runtime_options::spin_before_park bounds the search (docs/architecture.md has the
  // measurements).
  const auto give_up = std::chrono::steady_clock::now() + pool_.options.spin_before_park;
  for (std::uint32_t round = 0;; ++round) {
    void* task = steal_from_others();
    if (task == nullptr) task = take_injected();
    if (task != nullptr) return task;
    if (pool_.stopping()) return nullptr;
    // The clock is read every 16 rounds while spinning (it costs about as much as a round), and
    // every round once they yield (a yield may take a whole time slice).
    if (((round & 15) == 15 || round >= search_pause_rounds ||
         pool_.options.spin_before_park.count() == 0) &&
        std::chrono::steady_clock::now() >= give_up) {
      return nullptr;
    }
    // A few rounds of pure spinning, then each round gives the CPU away: the thread that will
    // produce the work (a blocking-pool thread, the poller, a foreign spawner) may be waiting
    // for this very core, and a spin that does not yield holds it for the whole spin_before_park
    // (to_thread round trips with the pool thread on the same core: 58-110 us, 5.6 with the
    // yield). On an idle core sched_yield returns at once.
    if (round < search_pause_rounds) {
      __builtin_ia32_pause();
    } else if (pool_.compute_calls.load(std::memory_order_relaxed) != 0) {
      // compute() calls run: the oneTBB threads are CPU-bound with the kernel's default slice, and
      // the yield below would hand one of them this core until the kernel's next tick (4 ms at
      // HZ=250), while the pool counts this worker as its searcher and wakes nobody else for the
      // work that comes meanwhile (a timer's task). Parking instead leaves the core to them as
      // well, and the wake-up that ends the park preempts at once (the short slice,
      // time_slice.hpp). bench offload_latency: the loaded ticker's p99 fell from 2.6-4.4 ms to
      // 0.9-1.9 ms (docs/architecture.md, "Offload and the event loop's latency").
      return nullptr;
    } else {
      // Driver-in-park: while the role is free nobody watches the descriptors (the workers that
      // park take it; this one has not parked yet), so a searcher looks too: a reply that lands
      // during the spin is found now, not when the spin ends and this worker parks. What it finds
      // goes to the injection queue, and this worker takes it after the sched_yield below, which
      // lets the threads that the replies just woke (a co-located client, say) have the core
      // first. Measured on tcp_echo, full size (docs/architecture.md, "Readiness found while
      // searching"): the p99 round trip fell from 2.8 to 1.2 ms for 0.9 us more server CPU per
      // request; taking the tasks at once, without the yield, brought the 2.7 ms tail back.
      if (pool_.poller.driver_in_park()) [[unlikely]] {
        poll_driver_when_busy(found_tasks::injection_queue);
        if (void* found = deque_.pop()) return found;
      }
      sched_yield();
    }
  }
}

bool worker::any_deque_light() const noexcept {
  bool light = false;
  // Ordering: acquire for both flags, pairing with their release stores on leaving (see
  // leave_burst and deque.hpp's leave_light).
  for (const auto& other : pool_.workers)
    light = light || other->deque_.light_flag() || other->burst_.load(std::memory_order_acquire);
  return light;
}

bool worker::work_visible() const noexcept {
  // seq_cst loads (length(), size_estimate()): the re-check half of idle.hpp's Dekker pattern.
  bool work_left = pool_.injector.length() > 0;
  for (const auto& other : pool_.workers)
    work_left = work_left || other->has_stealable_work();
  return work_left;
}

void worker::park_until_notified() {
  registry::drain_remote(shard_);
  const bool last_searcher = pool_.idle.transition_to_parked(index(), searching_);
  searching_ = false;
  (void)last_searcher;
  // A worker in light mode pushes fork children, and one in a spawn burst its spawns, without the
  // fence of the no-lost-wake-up argument: this side runs the heavy fence in its place (idle.hpp,
  // maybe_should_wake_for_local_work_light). Rare: parking while another worker forks or spawns
  // hundreds of tasks in one resumption.
  if (any_deque_light()) heavy_fence();
  // Re-check everything after the seq_cst transition (idle.hpp): work published before it is
  // visible now; work published after it will find this worker parked and wake one.
  if (work_visible() || pool_.stopping()) pool_.notify_one_if_needed();
  // Virtual time moves only when the pool is idle: the last worker to park tells the poller.
  if (pool_.poller.virtual_time() && pool_.idle.all_parked()) pool_.poller.pool_went_idle();
  if (!pool_.stopping()) {
    worker_counters::bump(counters.parked);
    // Busy time (runtime::counters): the awake interval ends here. Relaxed, single writer.
    const std::uint64_t slept_at = steady_ns();
    counters.busy_ns.store(counters.busy_ns.load(std::memory_order_relaxed) + slept_at -
                               counters.awake_since_ns.load(std::memory_order_relaxed),
                           std::memory_order_relaxed);
    counters.asleep.store(true, std::memory_order_relaxed);
    if (pool_.trace != nullptr) [[unlikely]]
      pool_.trace->park_begin(index());
    if (!pool_.poller.driver_in_park() || !park_as_driver()) park.park();
    if (pool_.trace != nullptr) [[unlikely]]
      pool_.trace->park_end(index());
    counters.awake_since_ns.store(steady_ns(), std::memory_order_relaxed);
    counters.asleep.store(false, std::memory_order_relaxed);
    clock_ms_ = coarse_clock_ms();
  }
  searching_ = pool_.idle.transition_from_parked(index());
  if (!driven_.empty() || lifo_slot_ != nullptr) take_driven();
}

bool worker::park_as_driver() {
  poller& io = pool_.poller;
  for (std::uint32_t spins = 0;; ++spins) {
    if (io.try_acquire_driver()) break;
    // The watchdog holds the role only for a non-blocking cycle (microseconds): wait for it
    // rather than sleep on the futex, which would leave the role free while this worker sleeps
    // (the watchdog would then poll every interval, and readiness would take the classic path).
    // A worker holding it is either in epoll_wait or about to run what it found and park again.
    // The wait spins, and does not yield: with a CPU-bound thread on the core (a compute() job),
    // sched_yield gave the core away until the kernel's next tick (4 ms at HZ=250) while the
    // watchdog's cycle injected a timer's task that only this worker, still awake, would take
    // (bench offload_latency: a 1 ms ticker 1-3 ms late a few times per 400 ticks). A watchdog
    // preempted in its cycle (the cap) leaves this worker to the futex, the classic path.
    if (!io.driver_held_by_poller() || spins >= max_driver_wait_spins) return false;
    __builtin_ia32_pause();
  }
  driven_.clear();
  if (park.begin_driving()) {
    // Sleep as the driver until readiness or a timer resumes something, or unpark() (new work,
    // shutdown) writes the eventfd. A wake-up that resumed nothing (an earlier timer armed
    // elsewhere, a stale eventfd write) keeps driving: leaving would cost this worker a search
    // and a park for nothing.
    while (!park.driving_notified() && !pool_.stopping()) {
      io.drive(driven_, driven_callbacks_, /*block=*/true);
      // A timer callback (a timeout) may have woken a task onto this worker's queues.
      if (!driven_.empty() || lifo_slot_ != nullptr || deque_.size_estimate() > 0) break;
    }
    park.end_driving();
  }
  // Released before anything found runs: the next worker to park takes the role at once.
  io.release_driver();
  return true;
}

void worker::poll_driver_when_busy(found_tasks where) {
  // Only with descriptors registered: timers alone are the watchdog's (it sleeps until the next
  // deadline), and a pool without I/O should not pay a syscall every injector_interval tasks.
  poller& io = pool_.poller;
  if (!io.has_registrations() || !io.try_acquire_driver()) return;
  driven_.clear();
  io.drive(driven_, driven_callbacks_, /*block=*/false);
  io.release_driver();
  if (where == found_tasks::injection_queue && !driven_.empty()) {
    pool_.inject_batch(driven_.data(), driven_.size());
    driven_.clear();
  }
  if (!driven_.empty() || lifo_slot_ != nullptr) take_driven();
}

void worker::take_driven() {
  // Pushed newest first, so the owner's LIFO pops run them in the order the driver found them
  // (thieves take the newest-found first, which is fair enough across workers).
  const std::size_t found = driven_.size() + (lifo_slot_ != nullptr ? 1 : 0);
  if (lifo_slot_ != nullptr) {
    if (!deque_.push(lifo_slot_)) push_overflowing(lifo_slot_);
    lifo_slot_ = nullptr;
  }
  for (auto it = driven_.rbegin(); it != driven_.rend(); ++it) {
    if (!deque_.push(*it)) push_overflowing(*it);
  }
  driven_.clear();
  if (driven_.capacity() > 4 * max_driven_reserve) driven_.shrink_to_fit();
  // One task: this worker runs it next, and waking another worker would only hand it the task
  // (or nothing). More: let the idle protocol wake a helper, as for a spawn.
  if (found > 1) pool_.notify_for_local_work();
}

// ---- deterministic mode (simulation.hpp) ----

void worker::collect_ready(std::vector<void*>& ready) {
  // Every source of runnable tasks, in a fixed order; the order matters only as the input of the
  // generator's pick, and it is the same on every run of the same seed.
  if (lifo_slot_ != nullptr) ready.push_back(std::exchange(lifo_slot_, nullptr));
  while (void* task = deque_.pop())
    ready.push_back(admit(task));
  ready.insert(ready.end(), yielded_.begin(), yielded_.end());
  yielded_.clear();
  void* batch[injector_batch];
  while (const std::size_t n = pool_.injector.pop_bulk(injector_token_, batch, injector_batch)) {
    for (std::size_t i = 0; i < n; ++i)
      ready.push_back(admit(batch[i]));
  }
}

void worker::run_deterministic() {
  this_worker = this;
  simulation& sim = *pool_.sim;
  std::vector<timer_entry*> callbacks;
  while (!pool_.stopping()) {
    serve_requests();
    collect_ready(sim.ready);
    if (sim.ready.empty()) {
      // Nothing runnable: time moves to the next deadline, here rather than on the poller thread
      // (whose wake-up is a real-time moment). Timeout callbacks run in a seeded order; what they
      // wake lands in the LIFO slot or the deque, and the next collect_ready takes it.
      callbacks.clear();
      if (pool_.poller.advance_deterministic(sim.ready, callbacks)) {
        sim.shuffle(callbacks);
        for (timer_entry* entry : callbacks)
          poller::fire_callback(entry);
        continue;
      }
      // No task and no timer: only another thread can bring work (a spawn, I/O, to_thread).
      park_until_notified();
      continue;
    }
    if (searching_) {
      // Woken from parking as a searcher (idle.hpp): found work, stop counting as one, as run().
      searching_ = false;
      if (pool_.idle.transition_from_searching()) pool_.notify_one_if_needed();
    }
    void* task = sim.pick();
    sim.resumed(task, pool_.poller.now_tick());
    budget_ = task_budget;
    if (pool_.options.debug) [[unlikely]] {
      resume_timed(task);
    } else {
      run_batch(task);
    }
  }
  this_worker = nullptr;
}

void worker::clear_queues(std::vector<task_header*>& unlisted) {
  lifo_slot_ = nullptr;
  if (pool_.sim != nullptr) pool_.sim->ready.clear();
  yielded_.clear();
  while (void* item = deque_.pop()) {
    if (task_header* task = unlisted_task_in(item)) unlisted.push_back(task);
  }
}

// ---- hosted mode (frame_executor.cpp) ----

void* worker::next_hosted_task() {
  if (lifo_slot_ != nullptr) {
    // As run_task: a woken task runs next while its data is hot, a bounded number of times.
    if (hosted_lifo_polls_ < max_lifo_polls) {
      ++hosted_lifo_polls_;
      return std::exchange(lifo_slot_, nullptr);
    }
    if (!deque_.push(lifo_slot_)) push_overflowing(lifo_slot_);
    lifo_slot_ = nullptr;
  }
  hosted_lifo_polls_ = 0;
  void* task = next_task();
  return task != nullptr ? admit(task) : nullptr;
}

std::size_t worker::hosted_ready() const noexcept {
  const std::int64_t queued = std::max<std::int64_t>(0, deque_.size_estimate()) +
                              std::max<std::int64_t>(0, pool_.injector.length());
  return (lifo_slot_ != nullptr ? 1 : 0) + static_cast<std::size_t>(queued) + yielded_.size();
}

worker* worker::exchange_current(worker* w) noexcept { return std::exchange(this_worker, w); }

// ---- the calling thread's queries and requests (declared in task_header.hpp) ----

void require_not_on_worker(const char* what) {
  if (current_worker() != nullptr) {
    throw std::logic_error(std::string(what) +
                           " called on a worker thread: it would block a thread the runtime "
                           "needs (and could deadlock); co_await the task instead");
  }
}

void throw_outside_runtime(const char* what) {
  throw std::logic_error(std::string(what) + " called outside a weft runtime");
}

runtime_core* current_runtime_core() noexcept {
  worker* self = current_worker();
  return self != nullptr ? &self->runtime() : nullptr;
}

bool budget_exhausted() noexcept {
  worker* self = current_worker();
  return self != nullptr && self->spend_budget();
}

void schedule_yield(std::coroutine_handle<> waiter) noexcept {
  current_worker()->push_yielded(waiter.address());
}

}  // namespace weft::detail
