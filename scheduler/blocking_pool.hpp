// scheduler/blocking_pool.hpp: the runtime's elastic pool of threads for blocking calls
// (weft::to_thread; the awaiter is in to_thread.hpp).
//
// One lock guards everything: the idle threads, the queue behind a full pool, the submits held
// back behind a full queue, and every call's state. A blocking call costs microseconds to
// milliseconds, so the lock is held for a few pointer moves per call and never contended for long;
// in exchange every race (cancel against submit, cancel against completion, completion against
// shutdown) is settled by reading the call's state under it.
//
// A call's state, all transitions under the lock:
//
//   fresh --submit--> running | queued | held
//   held --a queue slot frees--> queued --a thread takes it--> running --its thread ends it--> done
//   fresh | queued | held --cancel or release--> removed      (never runs)
//   running --cancel or release--> detached --its thread ends it--> done (nobody is woken)
//
// The task is woken by exactly one party: the completing thread (running -> done) or the
// canceller (queued/held -> removed, running -> detached), never both, because each transition
// happens under the lock and only from the states named. The completing thread decides under the
// lock and wakes after dropping it (the woken task's next submit takes the lock at once); such a
// wake is counted in wakes_in_flight_, which shutdown waits to see at zero after clearing host_.
//
// The pool object is shared (std::shared_ptr) by the runtime and every pool thread: a thread whose
// call outlives the runtime's shutdown (a straggler) still finds the pool, sees that the runtime is
// gone (`host_` null), wakes nobody and exits.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <weft/scheduler/runtime.hpp>
#include <weft/scheduler/to_thread.hpp>

namespace weft::detail {

class offload_host;
class tracer;

class blocking_pool : public std::enable_shared_from_this<blocking_pool> {
 public:
  // `trace` is the runtime's trace recorder, or null.
  blocking_pool(offload_host& host, const runtime_options& options, std::shared_ptr<tracer> trace);
  blocking_pool(const blocking_pool&) = delete;
  blocking_pool& operator=(const blocking_pool&) = delete;

  blocking_submit_result submit(blocking_call* call);
  bool cancel(blocking_call* call) noexcept;
  void release(blocking_call* call) noexcept;

  // runtime shutdown, when its workers stop (after the grace): no queued call starts from now on,
  // and new submits are refused as cancelled. No task can take a result any more, so a queued
  // call started now would only run for nothing, whenever a running one happened to end before
  // shutdown() below removed it.
  void stop_starting() noexcept;

  // runtime shutdown, after the task sweep: calls never started are removed, idle threads exit,
  // running calls get up to `timeout` to end; each one still running then is reported. From then
  // on no thread of the pool touches the runtime.
  void shutdown(std::chrono::milliseconds timeout);

  void add_stats(runtime_stats& stats) const;

  // Drops one reference (the pool's or the awaiter's); frees the call at zero.
  static void unref(blocking_call* call) noexcept;

 private:
  struct thread_state;
  struct call_list {
    blocking_call* head = nullptr;
    blocking_call* tail = nullptr;
    std::size_t size = 0;
    void push_back(blocking_call* call) noexcept;
    blocking_call* pop_front() noexcept;
    void unlink(blocking_call* call) noexcept;
  };

  void thread_main(thread_state* self);
  // Under the lock: `call` starts on `thread` (handed over or taken).
  void start_locked(blocking_call* call, thread_state* thread);
  // Under the lock: the next call for a thread that just finished one, if any; refills the queue
  // from the held submits.
  blocking_call* next_queued_locked() noexcept;
  // An idle thread waits for a hand-off (a short spin, then its condition variable) for up to
  // keep_alive_; null means it left the pool (its state is freed) and must exit.
  blocking_call* wait_for_work(thread_state* self);

  offload_host* host_;  // the owning runtime; null once shut down; guarded by mutex_
  const std::size_t max_threads_;
  const std::size_t queue_capacity_;
  const std::chrono::milliseconds keep_alive_;
  const std::chrono::microseconds spin_;
  const std::string thread_name_;
  // The runtime's trace recorder (trace.hpp), or null; shared, since a thread may outlive the
  // runtime (its records after the trace was written are dropped).
  const std::shared_ptr<tracer> trace_;

  mutable std::mutex mutex_;
  call_list queue_;                  // submitted, waiting for a thread (at most queue_capacity_)
  call_list held_;                   // submitted beyond the queue's bound: back-pressure
  std::vector<thread_state*> idle_;  // most recently idle last (taken first)
  std::vector<thread_state*> all_;   // every live thread (for shutdown reports)
  std::size_t running_ = 0;
  bool closed_ = false;
  bool starting_stopped_ = false;    // stop_starting ran: queued calls stay queued until shutdown
  std::condition_variable changed_;  // a thread exited or finished a call (shutdown waits)
  // Wakes of awaiting tasks begun under the lock while host_ was set and not yet returned (a pool
  // thread wakes its task after dropping the lock); shutdown waits for zero after clearing host_.
  std::atomic<int> wakes_in_flight_{0};
};

}  // namespace weft::detail
