// weft/scheduler/detail/task_header.hpp: the part of a task frame that the runtime manages.
//
// Every weft::task promise starts with a task_header. For a task that was only ever awaited, the
// header is inert. When a task is spawned, the header becomes the runtime's record of it: the
// spawned task is one heap object (the coroutine frame) and scheduling it moves a pointer.
//
// Ownership of a spawned frame is decided through one atomic word, `state`:
//
//   bits 4..63  the address of the join_waiter that awaits the task (0 if none)
//   bit 0 done       the task finished (its result or exception is published)
//   bit 1 detached   nobody holds a join_handle any more
//   bit 2 abandoned  the runtime shut down while the task was pending; it will never run again
//   bit 3 listed     the task is still linked into the runtime's registry (registry.hpp)
//
// Invariant: the frame is destroyed by whoever makes the state reach done + detached with listed
// clear, or, once the task is abandoned, by whoever sets detached. Three parties move these bits,
// each with one acq_rel read-modify-write: the completing thread (done, and clears listed when it
// can unlink the task itself), the join_handle (detached), and the registry's owning worker
// (clears listed after unlinking a task that completed on another thread). Exactly one of them
// sees the final combination; release publishes each party's writes (the result, the unlinking)
// and acquire makes the destroyer see them.
//
// This file holds the layout and the protocols on it. The out-of-line functions of libweft that
// inline code calls about a task (spawn_root, request_cancel, wake, ...) are declared in
// runtime_entry_points.hpp, which this header includes for the three its members call.
#pragma once

#include <atomic>
#include <cassert>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string_view>
#include <thread>
#include <utility>

#include <time.h>

#include <weft/scheduler/detail/atomic.hpp>
#include <weft/scheduler/detail/intrusive_list.hpp>
#include <weft/scheduler/detail/runtime_entry_points.hpp>
#include <weft/scheduler/errors.hpp>
#include <weft/scheduler/export.hpp>

namespace weft::detail {

class runtime_core;
class task_header;
struct registry_shard;
struct lazy_timeout;

// Something waiting for a spawned task to finish: an awaiting coroutine, gather's countdown, or a
// thread blocked in block_on. `notify` runs once, on the thread that completes the task (or, if the
// task's runtime shuts down before it finishes, on the thread that abandons it), after the result
// is published; it returns the coroutine to resume, or std::noop_coroutine(). That coroutine runs
// on `home`, the runtime of the worker that registered the waiter: by symmetric transfer when the
// completing thread is a worker of `home`, otherwise through `home`'s injection queue (a task on
// one runtime awaiting a task on another never runs on the other runtime's threads, and one whose
// awaited task is abandoned at shutdown is woken, not left hanging). `home` is null for waiters
// whose notify never returns a coroutine (block_on's blocked thread).
struct alignas(16) join_waiter {  // 16: the low four bits of `state` are flags
  using notify_fn = std::coroutine_handle<> (*)(join_waiter* self, task_header* task) noexcept;
  notify_fn notify = nullptr;
  runtime_core* home = nullptr;  // fills the alignment padding: no byte added
};

// What register_waiter did.
enum class join_registration : unsigned char {
  registered,  // the waiter will be notified once
  finished,    // the task finished or was abandoned already: nothing was registered
  busy,        // another waiter is registered (one at a time): nothing was registered
};

// A cancellable wait in progress (docs/cancellation.md). The awaiter publishes it in its task's
// header while it is suspended; cancel() takes it and runs on_cancel, which typically unlinks the
// waiter from where it waits and schedules the task, whose await_resume then throws
// cancelled_error. `finished` tells the awaiter, when it resumes, that a concurrent on_cancel
// (which touches the awaiter) has returned.
struct cancel_hook {
  using cancel_fn = void (*)(cancel_hook* self) noexcept;
  cancel_fn on_cancel = nullptr;
  atomic<bool> finished{false};
};

// A task group that a spawned task belongs to (task_group.hpp). child_done runs on the thread
// that completes the child, after its waiter (if any) was notified; it returns a coroutine to
// resume (the group's joiner) or std::noop_coroutine(). The group holds the child's handle, so the
// child's frame is alive during the call.
struct group_link {
  using child_done_fn = std::coroutine_handle<> (*)(group_link* self, task_header* child) noexcept;
  child_done_fn child_done = nullptr;
  // The runtime the joiner waits on (set before the joiner gives up its token): a child that ends
  // on another runtime (it moved there with weft::resume_on) wakes the joiner there, not where
  // the child ended. Null: the child's own runtime (a group never joined from elsewhere).
  runtime_core* joiner_home = nullptr;
};

// Milliseconds of CLOCK_MONOTONIC_COARSE (wrapping at 2^32): the timestamp of a wait's start for
// runtime::dump. The coarse clock is a read of the vDSO's page (a few ns, no TSC read), and its
// resolution (1-4 ms) is plenty for "waiting for 3.2 s".
inline std::uint32_t coarse_clock_ms() noexcept {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  return static_cast<std::uint32_t>(static_cast<std::uint64_t>(now.tv_sec) * 1000u +
                                    static_cast<std::uint64_t>(now.tv_nsec) / 1000000u);
}

class task_header {
 public:
  static constexpr std::uintptr_t done_bit = 1;
  static constexpr std::uintptr_t detached_bit = 2;
  static constexpr std::uintptr_t abandoned_bit = 4;
  static constexpr std::uintptr_t listed_bit = 8;
  static constexpr std::uintptr_t flag_mask = 15;

  static constexpr std::uint32_t cancel_pending = 1;
  static constexpr std::uint32_t cancel_has_message = 2;
  static constexpr std::uint32_t cancel_request = 4;

  // ending_'s bits (see there).
  static constexpr std::uint8_t has_exception = 1;
  static constexpr std::uint8_t ended_cancelled_bit = 2;
  static constexpr std::uint8_t ended_by_shutdown_bit = 4;

  // Where the header lies in its coroutine frame. On the Itanium C++ ABI's coroutine layout, which
  // GCC and Clang share, a frame starts with its resume and destroy function pointers and the
  // promise follows at the next multiple of the promise's alignment. Every weft promise starts with
  // its task_header (single, non-virtual inheritance) and is aligned to at most 16 bytes
  // (max_promise_alignment, asserted where each promise type is complete), so the frame begins
  // exactly two pointers before the header: frame() derives it rather than storing it.
  static constexpr std::size_t frame_prefix = 2 * sizeof(void*);
  static constexpr std::size_t max_promise_alignment = frame_prefix;

  // Not `= default`: the unions' members have non-trivial constructors, so the defaulted one would
  // be deleted; each union starts as its first member, by its initializer.
  task_header() noexcept {}
  task_header(const task_header&) = delete;
  task_header& operator=(const task_header&) = delete;
  ~task_header() {
    // A message nobody threw (the task finished first, or was never cancelled at a point).
    if ((cancel_state_.load(std::memory_order_relaxed) & cancel_has_message) != 0) {
      release_cancel_message(take_cancel_message_of(this));
    }
    if ((ending_ & has_exception) != 0) std::destroy_at(&exception_);
  }

  // Takes the message for the cancelled_error a cancellation point is about to throw (null:
  // none). Called by the task itself, after take_pending_cancel delivered (or when it throws a
  // cancellation whose request was taken back). The common case, no message, is one plain load:
  // the canceller sets cancel_has_message before its request (both RMWs of cancel_state_), and
  // the delivery acquired the request, so the bit of a message written before it is seen here.
  cancel_message* take_cancel_message() noexcept {
    if ((cancel_state_.load(std::memory_order_relaxed) & cancel_has_message) == 0) return nullptr;
    return take_cancel_message_of(this);
  }

  // Consumes a pending cancellation: true means the caller throws cancelled_error now.
  bool take_pending_cancel() noexcept {
    // Every cancellation point passes here before it suspends: a timeout waiting to be armed is
    // armed first, so that a deadline that has passed already is requested (and delivered) here,
    // exactly as if the timer had fired on time while the task ran.
    if (timeout_to_arm_ != nullptr) arm_lazy_timeout(this);
    // A fork_join child: the forker's cancellation is connected to it at its first cancellation
    // point, so that forks whose children never reach one publish nothing (fork_join.cpp).
    if (fork_child_) [[unlikely]]
      arm_fork_scope(this);
    if ((cancel_state_.load(std::memory_order_relaxed) & cancel_pending) == 0) return false;
    // Ordering: the relaxed load is a hint, the RMW decides. acq_rel: the acquire pairs with the
    // canceller's RMW (its message and what it wrote before are visible to the handler that runs
    // next), the release orders this delivery before a later request's RMW.
    if ((cancel_state_.fetch_and(~cancel_pending, std::memory_order_acq_rel) & cancel_pending) ==
        0) {
      return false;
    }
    cancel_delivered_ = true;  // only the task itself delivers, on its own thread
    return true;
  }

  // Makes a cancellation that this task consumed pending again, without counting a new request:
  // the task's next cancellation point throws it. Called by the task itself (task_group's join,
  // which had to throw something else first), so no hook is published and nothing is to be woken.
  // Ordering: acq_rel RMW, as take_pending_cancel's; a concurrent request_cancel merges with it.
  void restore_pending_cancel() noexcept {
    cancel_state_.fetch_or(cancel_pending, std::memory_order_acq_rel);
  }

  // Publishes `h` while the task waits. Returns false if a cancellation was requested before `h`
  // became visible and this call took `h` back: the caller must then undo its wait itself (nobody
  // else will run on_cancel). Ordering: seq_cst store of the hook, then seq_cst load of the
  // state, against the canceller's seq_cst RMW of the state, then seq_cst exchange of the hook:
  // at least one side sees the other's write (the Dekker pattern).
  bool publish_hook(cancel_hook* h) noexcept {
    h->finished.store(false, std::memory_order_relaxed);
    hook_.store(h, std::memory_order_seq_cst);
    if ((cancel_state_.load(WEFT_ORDER(cancel_publish_load, std::memory_order_seq_cst,
                                       std::memory_order_acquire)) &
         cancel_pending) == 0) {
      return true;
    }
    // Ordering: seq_cst, the Dekker pattern's last step (above).
    return hook_.exchange(nullptr, std::memory_order_seq_cst) != h;
  }

  // Withdraws `h` when the task resumes. If a canceller took it, waits until its on_cancel has
  // returned, since on_cancel may still be reading the awaiter that is about to be destroyed.
  // The wait lasts as long as on_cancel, a few pointer moves under a primitive's lock; but the
  // canceller may be preempted in it, so after a short spin the thread yields (on two cores a
  // pure spin could burn its whole slice against a preempted canceller; detail/spinlock.hpp
  // measured the same for the registry's lock).
  void withdraw_hook(cancel_hook* h) noexcept {
    // Ordering: seq_cst (the same instruction as acq_rel on x86); acquire pairs with the
    // canceller's seq_cst exchange when it lost the race (nothing to read then), release orders
    // the awaiter's last writes before a later publish. seq_cst also places this exchange before
    // the frees that follow it in the single total order, which runtime::dump's frame inspection
    // relies on (frame_inspection.hpp): a dump that saw the hook still published keeps every
    // frame freed after this point.
    if (hook_.exchange(nullptr, std::memory_order_seq_cst) == h) return;
    // Acquire pairs with request_cancel's release store of `finished`: everything on_cancel did
    // to the awaiter is visible before it is destroyed or reused.
    for (int spins = 0; !h->finished.load(std::memory_order_acquire); ++spins) {
      if (spins < 128) {
        __builtin_ia32_pause();
      } else {
        std::this_thread::yield();
      }
    }
  }

  // Removes a registered waiter again (a shielded await that was cancelled). False if the task
  // finished meanwhile (then its completer notifies, or notified, the waiter) or if `waiter` is not
  // the one registered.
  bool unregister_waiter(join_waiter* waiter) noexcept {
    // Ordering: acquire pairs with the completer's release RMW that sets done_bit; the CAS is
    // seq_cst as register_waiter's (below), so taking the waiter back and the completer taking
    // it to notify are decided by one total order on the word; acquire on failure re-reads.
    std::uintptr_t expected = state_.load(std::memory_order_acquire);
    for (;;) {
      if ((expected & (done_bit | abandoned_bit)) != 0) return false;
      if ((expected & ~flag_mask) != reinterpret_cast<std::uintptr_t>(waiter)) return false;
      // Ordering: seq_cst, acquire on failure (the argument above).
      if (state_.compare_exchange_weak(expected, expected & flag_mask, std::memory_order_seq_cst,
                                       std::memory_order_acquire)) {
        return true;
      }
    }
  }

  // Registers `waiter` to be notified when the task finishes. Registers nothing if the task already
  // finished or was abandoned (its result, if any, is then visible to the caller), or if another
  // waiter is registered: one waiter at a time, and a second one is refused rather than merged
  // into the word (two addresses ORed together were once jumped through; issue 10).
  join_registration register_waiter(join_waiter* waiter) noexcept {
    // Ordering: acquire pairs with the completer's release RMW: a finished task's result is
    // visible to the caller that sees done_bit here.
    std::uintptr_t expected = state_.load(std::memory_order_acquire);
    for (;;) {
      if ((expected & (done_bit | abandoned_bit)) != 0) return join_registration::finished;
      if ((expected & ~flag_mask) != 0) return join_registration::busy;
      // Ordering: release publishes the waiter (and whatever the waiting side prepared) to the
      // completer, which reads it after its acq_rel RMW; acquire on failure re-reads the flags.
      // seq_cst rather than release: a shielded await re-checks its cancellation flag after
      // registering (cancellable_wait.hpp); on x86 the CAS costs the same.
      if (state_.compare_exchange_weak(expected,
                                       expected | reinterpret_cast<std::uintptr_t>(waiter),
                                       std::memory_order_seq_cst, std::memory_order_acquire)) {
        return join_registration::registered;
      }
    }
  }

  [[nodiscard]] bool finished() const noexcept {
    // Ordering: acquire pairs with the completer's release so that a caller that sees `done`
    // also sees the result.
    return (state_.load(std::memory_order_acquire) & (done_bit | abandoned_bit)) != 0;
  }

 private:
  // The registry links and unlinks the task (registry_links_, shard_): it owns those two fields,
  // and an accessor that hands out a task's links would only be them under another name.
  friend class registry;

  // What exception() returns while the union below is not an exception.
  static inline const std::exception_ptr no_exception{};

  // See the file comment for the protocol.
  atomic<std::uintptr_t> state_{0};
  // Set once at spawn, before the task is published to any queue; null for a task never spawned
  // (an awaited one): final_suspend and root_of tell the two kinds apart by it.
  runtime_core* runtime_ = nullptr;
  // One word, two uses that never overlap in time, told apart by ending_'s has_exception bit:
  //   - while the body runs (has_exception clear): timeout_to_arm_, the innermost weft::timeout of
  //     this task if its timer is not armed yet (timer_entry.hpp, lazy_timeout). A timeout around
  //     work that finishes without reaching a cancellation point never touches the timer wheel:
  //     its timer is armed by the first cancellation point the task reaches
  //     (take_pending_cancel), which is also the first place where an expiry could be seen. At
  //     most one timeout of a task is unarmed at a time: entering a nested timeout arms the
  //     pending outer one first. Only a root uses it (a timeout registers on its root).
  //   - once the body has ended by an exception (has_exception set): exception_, that exception,
  //     written by the task before `done` is published. Every timeout of the body has left by then
  //     (a timeout leaves in its await_resume, or in its guard's destructor, which the unwinding
  //     ran before unhandled_exception), so the word no longer names one (set_exception asserts it
  //     in debug builds).
  // Neither is atomic: both are read and written only by the task itself (whichever worker runs
  // it; the run queues order those accesses like every other task-local field), and the exception
  // by others only after `done` (acquire) or, for an awaited task, after it resumed its awaiter.
  union {
    lazy_timeout* timeout_to_arm_ = nullptr;
    std::exception_ptr exception_;
  };
  // Optional name for diagnostics; points to storage that outlives the task (a string literal).
  const char* name_ = nullptr;
  // One pair of words, two kinds of task that never share one, told apart by runtime_:
  //   - a spawned task (runtime_ set): the intrusive links of the runtime's registry of live
  //     spawned tasks, guarded by the shard's lock;
  //   - an awaited task (runtime_ null): awaited_, the coroutine that awaits it and the spawned
  //     task it runs as part of (promise_base's continuation and root).
  // A fork_join child (runtime_ set, never listed) uses neither: it resumes its caller through its
  // slot and is its own root, as a spawned task is.
  struct awaited_links {
    void* continuation;  // a coroutine_handle's address
    task_header* root;
  };
  union {
    list_links<task_header> registry_links_{};
    awaited_links awaited_;
  };
  registry_shard* shard_ = nullptr;
  // One word, two uses that never overlap in time (so no byte is added: test_task's budget):
  //   - while the coroutine runs or waits: the weft::task it awaits now (task.hpp's awaiter sets
  //     it in await_suspend and clears it in await_resume), the next link of runtime::dump's
  //     await chain. Ordering: relaxed; the hook's seq_cst publication (publish_hook), sequenced
  //     after it, publishes it to the dump's seq_cst load of the hook.
  //   - after a spawned task completed on another thread: the link of its shard's stack of such
  //     tasks (registry.hpp, remote_done), published by that stack's release CAS.
  // std::atomic, not the model checker's: diagnostics outside the protocols it checks.
  std::atomic<task_header*> awaiting_{nullptr};

  // Cancellation. Bit 0: a cancellation waits to be delivered (thrown at the next cancellation
  // point); bit 1: a cancel("reason") message waits in the runtime's message table for this task
  // (cancel_message.cpp; kept out of the header, which has no byte to spare, since messages are
  // rare); bits 2..31: how many times cancel was requested and not taken back (timeouts take
  // back the request they made, like asyncio's uncancel()).
  // (Declared before hook only for packing: with the four bytes below it fills one 8-byte word.)
  atomic<std::uint32_t> cancel_state_{0};
  // How the body ended (the constants above): has_exception (the union above holds exception_), and
  // for a spawned task ended_cancelled (with weft::cancelled_error) and ended_by_shutdown
  // (cancelled while its runtime was shutting down: its join_handle reports runtime_stopped rather
  // than cancelled_error). Written by the task before `done` is published, read after it.
  std::uint8_t ending_ = 0;
  // A cancellation was thrown into the task (debug mode reports a task that then finishes
  // normally: it swallowed the cancellation).
  bool cancel_delivered_ = false;
  // The task is on a runtime other than the one that spawned it (weft::resume_on): that runtime
  // lists it among its visitors (scheduler/visitors.hpp). Read and written only by the task itself.
  bool visiting_ = false;
  // The task is a weft::fork_join child (fork_join.hpp): set by the fork before the child runs,
  // read by the child's own final_suspend and cancellation points.
  bool fork_child_ = false;
  // The cancellable wait the task is suspended in, if any.
  atomic<cancel_hook*> hook_{nullptr};
  // The task group the task belongs to, if any; set before the task is published. A fork_join
  // child's is its fork_slot. Once child_done was called nobody reads it as a group: a
  // task_group reuses it for a start_soon child from then on (group_ref()).
  group_link* group_ = nullptr;

 public:
  // ---- Accessors -------------------------------------------------------------------------
  // The fields are private (above, each with its protocol); the scheduler, the promise and the
  // layers above reach them through these inline accessors, which compile to the same loads and
  // stores as the fields did.
  //
  // The four atomic words (state, cancel_state, hook, awaiting) are handed out as the atomics
  // themselves: each is a protocol between several parties (task_lifecycle.cpp, the registry,
  // join_handle, the canceller, runtime::dump), and every operation on them carries its ordering
  // argument at its own site (tests/architecture/check_atomics.py), which wrapping each
  // operation in a member here would separate from the code it argues about. What is private is
  // the layout: which word sits where, and the plain fields around them.

  // The ownership word (file comment).
  atomic<std::uintptr_t>& state_word() noexcept { return state_; }
  // The cancellation word: cancel_pending, cancel_has_message, the request count (see there).
  atomic<std::uint32_t>& cancel_word() noexcept { return cancel_state_; }
  [[nodiscard]] const atomic<std::uint32_t>& cancel_word() const noexcept { return cancel_state_; }
  // The cancellable wait the task is suspended in (publish_hook, withdraw_hook, request_cancel).
  atomic<cancel_hook*>& hook_slot() noexcept { return hook_; }
  // The awaited task, or the remote_done link (see the field).
  std::atomic<task_header*>& awaiting_link() noexcept { return awaiting_; }

  // Set once at spawn, before the task is published; null for a task never spawned.
  [[nodiscard]] runtime_core* runtime() const noexcept { return runtime_; }
  void set_runtime(runtime_core* rt) noexcept { runtime_ = rt; }
  // The same field as an atomic: resume_on moves a live task to another runtime while a handle
  // holder may read it in release_root (frame_executor.cpp argues the relaxed order).
  std::atomic_ref<runtime_core*> runtime_ref() noexcept {
    return std::atomic_ref<runtime_core*>(runtime_);
  }
  // The coroutine frame the header is part of (frame_prefix). Only for a header inside a weft
  // promise (tests that build a bare header never call it).
  [[nodiscard]] std::coroutine_handle<> frame() const noexcept {
    return std::coroutine_handle<>::from_address(
        const_cast<char*>(reinterpret_cast<const char*>(this)) - frame_prefix);
  }
  // A weft::fork_join child (fork_join_core::start marks it before it runs).
  [[nodiscard]] bool fork_child() const noexcept { return fork_child_; }
  void set_fork_child() noexcept { fork_child_ = true; }
  [[nodiscard]] const char* name() const noexcept { return name_; }
  void set_name(const char* name) noexcept { name_ = name; }
  [[nodiscard]] group_link* group() const noexcept { return group_; }
  void set_group(group_link* group) noexcept { group_ = group; }
  // For task_group's start_soon children: their end (in child_done) and the group's reaping
  // access the field concurrently, both through this (task_group.hpp, reap_locked).
  std::atomic_ref<group_link*> group_ref() noexcept { return std::atomic_ref<group_link*>(group_); }

  // How the task ended; written by the task before `done` is published, read after it.
  // The exception that ended the body, or a null one.
  [[nodiscard]] const std::exception_ptr& exception() const noexcept {
    return (ending_ & has_exception) != 0 ? exception_ : no_exception;
  }
  // The body ended by an exception (the cheap form of `exception() != nullptr`).
  [[nodiscard]] bool failed() const noexcept { return (ending_ & has_exception) != 0; }
  // Called once, by unhandled_exception: the word stops being timeout_to_arm_ (field comment).
  void set_exception(std::exception_ptr error) noexcept {
    assert((ending_ & has_exception) != 0 || timeout_to_arm_ == nullptr);
    if ((ending_ & has_exception) != 0) {
      exception_ = std::move(error);
      return;
    }
    std::construct_at(&exception_, std::move(error));
    ending_ |= has_exception;
  }
  // Moves the exception out (a generator rethrows it once); the word is timeout_to_arm_ again.
  std::exception_ptr take_exception() noexcept {
    if ((ending_ & has_exception) == 0) return nullptr;
    std::exception_ptr error = std::move(exception_);
    std::destroy_at(&exception_);
    ending_ &= static_cast<std::uint8_t>(~has_exception);
    timeout_to_arm_ = nullptr;
    return error;
  }
  [[nodiscard]] bool ended_cancelled() const noexcept {
    return (ending_ & ended_cancelled_bit) != 0;
  }
  [[nodiscard]] bool ended_by_shutdown() const noexcept {
    return (ending_ & ended_by_shutdown_bit) != 0;
  }
  // finish_root: the task ended with cancelled_error, during its runtime's shutdown or not.
  void set_ended_cancelled(bool by_shutdown) noexcept {
    ending_ |= by_shutdown ? ended_cancelled_bit | ended_by_shutdown_bit : ended_cancelled_bit;
  }

  // An awaited task's links (awaited_, runtime_ null): the coroutine resumed at its end, and the
  // spawned task it runs as part of. set_awaited is called by its awaiter before it starts.
  [[nodiscard]] std::coroutine_handle<> continuation() const noexcept {
    return std::coroutine_handle<>::from_address(awaited_.continuation);
  }
  void set_awaited(std::coroutine_handle<> continuation, task_header* root) noexcept {
    awaited_.continuation = continuation.address();
    awaited_.root = root;
  }
  // The spawned task (or fork_join child) this coroutine runs as part of: itself if it is one,
  // else its awaiter's root (null outside any spawned task).
  [[nodiscard]] task_header* root() noexcept { return runtime_ != nullptr ? this : awaited_.root; }
  [[nodiscard]] bool cancel_delivered() const noexcept { return cancel_delivered_; }

  // The task's own fields (read and written only by the task itself, see there).
  [[nodiscard]] bool visiting() const noexcept { return visiting_; }
  void set_visiting(bool value) noexcept { visiting_ = value; }
  // Only while the body runs (the union's first use).
  lazy_timeout*& unarmed_timeout() noexcept { return timeout_to_arm_; }

  // The registry's links (registry.hpp): the shard the task is listed in, and the list type that
  // threads the shards through the task's private links. The registry is the only writer of both
  // (a friend, below), every other reader walks a shard through registry_list.
  [[nodiscard]] registry_shard* shard() const noexcept { return shard_; }
  using registry_list = intrusive_head_list<task_header, &task_header::registry_links_>;
};
// The cancelled_error for `task`'s cancellation point to throw, with the message if one is waiting
// (task_header::take_cancel_message). Null `task`: no message.
inline cancelled_error cancellation_of(task_header* task) noexcept {
  return cancelled_error(adopt_message, task != nullptr ? task->take_cancel_message() : nullptr);
}

}  // namespace weft::detail
