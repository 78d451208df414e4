// scheduler/frame_allocator.cpp: recycling allocation of coroutine frames.
//
// Each thread keeps one free list per 16-byte size class up to 2 KiB. Allocation pops from the
// calling thread's list (no atomic, no lock); freeing pushes to the freeing thread's list. A
// thread caches at most `max_cached_bytes` (256 KiB), which bounds what a thread that only frees
// (a consumer of frames allocated elsewhere, such as a worker running tasks spawned by foreign
// threads) can hoard. The surplus goes to the depot (frame_depot.hpp), shared by all threads, in
// batches of up to 32 frames; a thread whose list is empty takes a batch from there before it asks
// the system. The depot keeps 2 MiB for good, and a burst's surplus (up to 1 GiB) while it is
// being reused: a background thread (`weft-depot`, started when the depot first holds more than
// the kept amount, gone when it is back under it) returns the surplus to the system after a whole
// period (1 s) in which nobody took a batch. What the depot does not hold goes back to the system
// allocator.
// Lists are returned to the system when their thread exits. 16-byte classes (rather than 64)
// keep a suspended task's frame close to its real size: bench/run task_memory measured 208 bytes
// per sleeping task with 64-byte classes.
//
// Built with -DWEFT_FRAME_ALLOCATOR=system, frames come straight from operator new; bench/run fib
// and spawn_many compare the two (docs/architecture.md has the numbers).
#include <weft/scheduler/detail/frame_allocator.hpp>
#include <weft/scheduler/frame_allocator.hpp>

#include "frame_depot.hpp"
#include "frame_inspection.hpp"

#include <atomic>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <thread>

#include <pthread.h>

namespace weft::detail {

namespace {

// Who allocates frames, decided once for the process (weft::set_frame_allocator):
//   0                 nobody yet
//   1                 weft's own allocator (the first frame was allocated without a hook)
//   otherwise         the address of the installed weft::frame_allocator
// Invariant: the word leaves 0 exactly once, by a CAS: either the first default allocation or
// set_frame_allocator wins, so a frame is always freed by the allocator that made it.
// Ordering: the installer's CAS is a release (the allocator object is constructed before it);
// allocate_frame's acquire load pairs with it. deallocate_frame's load may be relaxed: a frame
// being freed was allocated after its allocating thread had read the final value, and the frame's
// hand-over to the freeing thread (a queue, a join) carries that read's happens-before.
std::atomic<std::uintptr_t> frame_source{0};
constexpr std::uintptr_t weft_own = 1;

// The default allocator's first use (its slow path, and the system build's every call): marks
// the source so that a later set_frame_allocator refuses.
inline void claim_default() noexcept {
  if (frame_source.load(std::memory_order_relaxed) == 0) {
    std::uintptr_t expected = 0;
    frame_source.compare_exchange_strong(expected, weft_own, std::memory_order_relaxed);
  }
}

}  // namespace

// The calling thread's lists (detail/frame_allocator.hpp, whose inline paths pop and push them).
// With the system allocator they stay empty with cache_limit 0, so the inline paths always call
// the slow ones. Why the inline paths need no check of frame_source: a thread's cache_limit
// becomes non-zero only in register_cleanup, and frames enter its lists only through
// release_frame and refill, all reached only with weft's own allocator in charge (frame_source
// 0 or 1), and set_frame_allocator refuses once weft allocated a frame. So a non-empty list and a
// non-zero limit both imply that no frame_allocator will ever be installed.
constinit thread_local frame_cache thread_frame_cache{};

#if defined(WEFT_FRAME_ALLOCATOR_SYSTEM)

void* allocate_frame_slow(std::size_t size) {
  // Ordering: acquire pairs with the installer's release CAS (frame_source).
  const std::uintptr_t source = frame_source.load(std::memory_order_acquire);
  if (source > weft_own) [[unlikely]] {
    return reinterpret_cast<frame_allocator*>(source)->allocate(size);
  }
  if (source == 0) claim_default();
  return ::operator new(size);
}
void release_frame(void* frame, std::size_t size) noexcept {
  const std::uintptr_t source = frame_source.load(std::memory_order_relaxed);
  if (source > weft_own) [[unlikely]] {
    reinterpret_cast<frame_allocator*>(source)->deallocate(frame, size);
    return;
  }
  ::operator delete(frame);
}
std::size_t cached_frame_bytes() noexcept { return 0; }
std::size_t depot_frame_bytes() noexcept { return 0; }

#else

namespace {

// Blocks of 8 .. 2040 bytes (see block_size). 2 KiB rather than 1: a task that awaits a
// fork_join of ten children holds ten fork_slots in its frame (1,136 bytes in bench_skynet), and
// with 1 KiB every such frame went to malloc and back (perf: half of skynet's time in malloc and
// _int_free).
constexpr std::size_t class_count = frame_class_count;
// Per thread. A thread that frees frames it did not allocate (a worker finishing tasks spawned by
// foreign threads, which never reuse them) fills its cache up to this bound and keeps it until the
// thread exits: 4 MiB per worker let RSS grow from 3.6 to 12.4 MB over 56,000 spawning foreign
// threads on 2 workers. 256 KiB (about 1,000 frames of a typical 200-300 bytes) still covers the
// frames a worker recycles in fork-join and spawn loops: bench/run fib and spawn_many measured
// no difference (docs/architecture.md, Frame allocator).
constexpr std::size_t max_cached_bytes = max_cached_frame_bytes;

using free_node = free_frame;

// Shared by every thread (frame_depot.hpp). 2 MiB kept: frames in transit from the threads that
// free them to the threads that allocate them need a few batches per class in use. Up to 1 GiB
// held while a burst's frames are being reused (the trimmer below returns the rest).
constinit frame_depot<class_count> depot{kept_depot_frame_bytes, max_depot_frame_bytes};

struct cache_cleanup {
  ~cache_cleanup() {
    for (std::size_t c = 0; c < class_count; ++c) {
      while (free_node* node = thread_frame_cache.heads[c]) {
        thread_frame_cache.heads[c] = node->next;
        ::operator delete(node);
      }
    }
    thread_frame_cache.cached_bytes = 0;
    thread_frame_cache.cache_limit = 0;
    thread_frame_cache.thread_exiting = true;
  }
};

void register_cleanup() {
  // A thread_local with a destructor, touched once per thread, empties the lists at thread exit.
  static thread_local cache_cleanup cleanup;
  (void)cleanup;
  thread_frame_cache.cleanup_registered = true;
  if (!thread_frame_cache.thread_exiting) thread_frame_cache.cache_limit = max_cached_bytes;
}

// Block sizes are 16k - 8 bytes (8, 24, 40, ... 2040), not 16k: glibc's malloc puts an 8-byte
// size word before each block and hands out 16-byte-aligned chunks, so a 16k - 8 request fills a
// 16k chunk exactly, while a 16k request takes 16k + 16. A 248-byte frame (a task waiting on an
// event) thus costs 256 bytes instead of 272 (bench/run task_memory). Blocks stay 16-byte
// aligned: the alignment comes from the chunk, whatever the requested size.
constexpr std::size_t class_of(std::size_t size) noexcept { return frame_class_of(size); }
constexpr std::size_t block_size(std::size_t c) noexcept { return frame_block_size(c); }
// The first class whose blocks can hold a depot_batch (class 0's are 8 bytes; no coroutine frame
// is that small, so its frames simply skip the depot).
constexpr std::size_t first_depot_class = 1;
static_assert(block_size(first_depot_class) >= sizeof(depot_batch));

// ---- The depot's trimmer ----------------------------------------------------------------------
//
// One background thread at most, running while the depot holds more than its kept amount. Each
// period it compares the depot's count of taken batches with the one a period before: unchanged
// means no thread reused the surplus for a whole period (the burst is over, or its frames are not
// wanted), and the surplus goes back to the system. So a surplus lives at most two periods after
// its last reuse, whether or not any weft thread is awake: a parked pool does not keep it.
//
// Invariant: whenever the depot holds more than its kept amount, a trimmer is running or about to
// start. `trimmer_running` is set by whoever starts one (an exchange: at most one start at a time)
// and cleared by the trimmer when it finds the depot back under the kept amount. The two sides
// form a Dekker pattern, each with a seq_cst fence between its write and its read:
//   - a spill: its put() adds to the depot's bytes, fence, then it reads `trimmer_running`;
//   - the trimmer: it clears `trimmer_running`, fence, then reads the depot's bytes again.
// Whichever fence comes second in the total order sees the other side's write: either the spill
// sees the flag clear and starts a trimmer, or the trimmer sees the new bytes, takes the flag
// back (an exchange, so that it and a spill that also saw it clear do not both go on) and stays.
std::atomic<bool> trimmer_running{false};
// No thread could be started (the process's thread limit): the depot keeps no surplus from then
// on, as before it had a trimmer. Ordering: relaxed; a policy flag that only selects a bound.
std::atomic<bool> surplus_refused{false};

void trim_depot() noexcept {
  (void)depot.trim([](std::size_t c) { return block_size(c); },
                   [](void* frame) { ::operator delete(frame); });
}

void run_trimmer() noexcept {
  ::pthread_setname_np(::pthread_self(), "weft-depot");
  std::uint64_t seen = depot.takes();
  for (;;) {
    std::this_thread::sleep_for(depot_surplus_period);
    const std::uint64_t takes = depot.takes();
    if (takes == seen) trim_depot();
    seen = takes;
    if (depot.bytes() > depot.kept_bytes()) continue;
    // Ordering: the trimmer's half of the Dekker pattern above: the store, a seq_cst fence, then
    // the load of bytes.
    trimmer_running.store(false, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (depot.bytes() <= depot.kept_bytes()) return;
    // A spill raised the depot meanwhile and may have seen the flag set: stay, unless it started
    // a new trimmer first. Ordering: acq_rel, as the starter's exchange (one winner).
    if (trimmer_running.exchange(true, std::memory_order_acq_rel)) return;
  }
}

// A spill that left the depot above its kept amount: makes sure a trimmer runs.
void ensure_trimmer() noexcept {
  // Ordering: the spill's half of the Dekker pattern above: put()'s RMW of bytes, this fence,
  // then the load of the flag.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (trimmer_running.load(std::memory_order_relaxed)) return;
  // Ordering: acq_rel; only elects the one starter.
  if (trimmer_running.exchange(true, std::memory_order_acq_rel)) return;
  static const bool fork_handler = [] {
    // A child forked from a process with a trimmer has no thread behind the flag.
    ::pthread_atfork(nullptr, nullptr, [] {
      // Ordering: relaxed; the child is single-threaded here.
      trimmer_running.store(false, std::memory_order_relaxed);
    });
    return true;
  }();
  (void)fork_handler;
  try {
    std::thread(run_trimmer).detach();
  } catch (...) {  // std::system_error (the thread limit) or std::bad_alloc
    // Ordering: relaxed (see surplus_refused).
    surplus_refused.store(true, std::memory_order_relaxed);
    trim_depot();
    // Ordering: relaxed; nothing was started, and no surplus is accepted any more.
    trimmer_running.store(false, std::memory_order_relaxed);
  }
}

// The bound a spill fills the depot up to.
std::size_t depot_limit() noexcept {
  // Ordering: relaxed (see surplus_refused).
  return surplus_refused.load(std::memory_order_relaxed) ? depot.kept_bytes() : depot.max_bytes();
}

// The thread's cache is full and `frame` (class c, `bytes` long) is freed: hands it, with up to
// batch_frames - 1 more of the same class from the thread's list, to the depot. If the depot is
// full, the list stays as it was and only `frame` goes back to the system.
void spill(std::size_t c, free_node* frame, std::size_t bytes) noexcept {
  // A full depot stays full while a burst is freed (a million frames at once): one load, rather
  // than walking the list for a batch that put() would refuse, for every frame of the burst.
  const std::size_t limit = depot_limit();
  if (depot.bytes() + depot.batch_frames * bytes > limit) {
    ::operator delete(frame);
    return;
  }
  free_node* tail = frame;
  std::size_t count = 1;
  frame->next = thread_frame_cache.heads[c];
  while (count < depot.batch_frames && tail->next != nullptr) {
    tail = tail->next;
    ++count;
  }
  free_node* const rest = tail->next;
  tail->next = nullptr;
  if (depot.put(c, frame, count, bytes, limit)) {
    thread_frame_cache.heads[c] = rest;
    thread_frame_cache.cached_bytes -= (count - 1) * bytes;
    if (depot.bytes() > depot.kept_bytes()) ensure_trimmer();
    return;
  }
  tail->next = rest;  // the chain after `frame` is the list as it was
  ::operator delete(frame);
}

// The thread's list of class c is empty: a batch from the depot, if it has one and the thread's
// cache has room for the rest of it (the per-thread bound holds for frames taken as well).
void* refill(std::size_t c, std::size_t bytes) noexcept {
  if (c < first_depot_class || thread_frame_cache.thread_exiting ||
      thread_frame_cache.cached_bytes + (depot.batch_frames - 1) * bytes > max_cached_bytes) {
    return nullptr;
  }
  std::size_t count = 0;
  free_node* first = depot.take(c, count, bytes);
  if (first == nullptr) return nullptr;
  if (count > 1) {
    if (!thread_frame_cache.cleanup_registered) register_cleanup();
    thread_frame_cache.heads[c] = first->next;
    thread_frame_cache.cached_bytes += (count - 1) * bytes;
  }
  return first;
}

}  // namespace

void* allocate_frame_slow(std::size_t size) {
  // One load and a branch that is always taken the same way in a process (no hook: the word is 1
  // after the first frame).
  // Ordering: acquire pairs with the installer's release CAS (frame_source).
  const std::uintptr_t source = frame_source.load(std::memory_order_acquire);
  if (source > weft_own) [[unlikely]] {
    return reinterpret_cast<frame_allocator*>(source)->allocate(size);
  }
  const std::size_t c = class_of(size);
  if (c < class_count) {
    if (free_node* node = thread_frame_cache.heads[c]) {
      thread_frame_cache.heads[c] = node->next;
      thread_frame_cache.cached_bytes -= block_size(c);
      return node;
    }
    if (void* frame = refill(c, block_size(c))) return frame;
  }
  if (source == 0) claim_default();
  return ::operator new(c < class_count ? block_size(c) : size);
}

void release_frame(void* frame, std::size_t size) noexcept {
  if (const std::uintptr_t source = frame_source.load(std::memory_order_relaxed); source > weft_own)
      [[unlikely]] {
    reinterpret_cast<frame_allocator*>(source)->deallocate(frame, size);
    return;
  }
  const std::size_t c = class_of(size);
  if (c >= class_count) {
    ::operator delete(frame);
    return;
  }
  const std::size_t bytes = block_size(c);
  if (thread_frame_cache.thread_exiting) {
    ::operator delete(frame);
    return;
  }
  if (thread_frame_cache.cached_bytes + bytes > max_cached_bytes) {
    if (c >= first_depot_class) {
      spill(c, static_cast<free_node*>(frame), bytes);
    } else {
      ::operator delete(frame);
    }
    return;
  }
  if (!thread_frame_cache.cleanup_registered) register_cleanup();
  auto* node = static_cast<free_node*>(frame);
  node->next = thread_frame_cache.heads[c];
  thread_frame_cache.heads[c] = node;
  thread_frame_cache.cached_bytes += bytes;
}

std::size_t cached_frame_bytes() noexcept { return thread_frame_cache.cached_bytes; }
std::size_t depot_frame_bytes() noexcept { return depot.bytes(); }

#endif

void deallocate_frame_slow(void* frame, std::size_t size) noexcept {
  // Ordering: seq_cst (a plain load on x86), step 3 of frame_inspection.hpp's argument, as in the
  // inline path (which came here for this reason or another).
  if (frame_inspectors.load(std::memory_order_seq_cst) != 0) [[unlikely]] {
    defer_frame(frame, size);
    return;
  }
  release_frame(frame, size);
}

}  // namespace weft::detail

namespace weft {

void set_frame_allocator(frame_allocator& allocator) {
  std::uintptr_t expected = 0;
  // Ordering: release publishes the allocator object to allocate_frame's acquire load.
  if (!detail::frame_source.compare_exchange_strong(
          expected, reinterpret_cast<std::uintptr_t>(&allocator), std::memory_order_release,
          std::memory_order_relaxed)) {
    throw std::logic_error(
        expected == detail::weft_own
            ? "weft::set_frame_allocator: weft frames were allocated already (install the "
              "allocator first, before any weft task exists)"
            : "weft::set_frame_allocator: an allocator is installed already (one per process)");
  }
}

}  // namespace weft
