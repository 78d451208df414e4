// scheduler/simulation.hpp: the deterministic mode of a runtime
// (runtime_options::deterministic_seed).
//
// A deterministic runtime has one worker thread and virtual time, and its worker runs a loop of
// its own (worker::run_deterministic) in which every choice the scheduler makes comes from one
// seeded generator:
//   - which ready task runs next: every runnable task (the LIFO slot, the deque, the yielders,
//     the injection queue) is moved into one ready set, and the generator picks one uniformly;
//     this explores the orders a multi-worker pool could produce (another worker may steal any
//     queued task and run it first), so the per-batch FIFO order of one real worker is not kept;
//   - which of several timers due at the same instant fires first: when nothing is ready, the
//     worker itself moves the virtual clock to the next deadline and fires every timer due then
//     (poller::advance_deterministic); their tasks join the ready set, and the timeout callbacks
//     run in a shuffled order;
//   - where a stolen or injected task would have gone: with one worker, into the same ready set.
// The poller thread never moves the virtual clock in this mode; it only waits for I/O readiness.
//
// Invariant (what "deterministic" means here): while only the worker thread makes tasks runnable,
// the sequence of picks, and so the event log, is a function of the program and the seed alone.
// Outside it, at real-time moments, are: spawns from other threads (runtime::spawn, block_on's
// first spawn, which arrives while the worker is idle, so it is harmless), I/O readiness from the
// poller thread, to_thread and compute results, tasks visiting with weft::resume_on, and
// shutdown's cancellations. docs/embedding.md, "Deterministic simulation", says this to users.
//
// The event log: spawned (with the spawning task), resumed (each pick) and completed events, with
// ids given in spawn order. A pick that resumes a coroutine that is not a task's own frame (a
// nested co_await woken inside a task) is named by a coroutine id given at first sight, from the
// same counter. Guarded by a mutex: spawns from other threads log too, and this mode is not a
// fast path.
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <weft/scheduler/runtime.hpp>

namespace weft::detail {

// splitmix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014):
// a 64-bit state advanced by a Weyl increment, then mixed by two xor-shift-multiply rounds. It
// passes BigCrush, has period 2^64, and every seed (0 included) is a good one, which is all a
// scheduler needs; it is written here so that the sequence never changes with a library version.
class splitmix64 {
 public:
  explicit splitmix64(std::uint64_t seed) noexcept : state_(seed) {}
  std::uint64_t next() noexcept {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // A number in [0, bound), bound > 0. The remainder's bias is below bound / 2^64, far below
  // anything a test could observe, and it keeps the sequence a plain function of the seed.
  std::uint64_t below(std::uint64_t bound) noexcept { return next() % bound; }

 private:
  std::uint64_t state_;
};

class simulation {
 public:
  explicit simulation(std::uint64_t seed) : seed_(seed), rng_(seed) {}

  [[nodiscard]] std::uint64_t seed() const noexcept { return seed_; }

  // Worker thread only: the ready set and the generator.
  std::vector<void*> ready;
  // Removes and returns a task of `ready` chosen by the generator (ready is not empty).
  void* pick() noexcept {
    const std::size_t index = static_cast<std::size_t>(rng_.below(ready.size()));
    void* chosen = ready[index];
    ready[index] = ready.back();
    ready.pop_back();
    return chosen;
  }
  // Fisher-Yates with the generator (the firing order of simultaneous timeout callbacks).
  template <class T>
  void shuffle(std::vector<T>& items) noexcept {
    for (std::size_t i = items.size(); i > 1; --i) {
      std::swap(items[i - 1], items[static_cast<std::size_t>(rng_.below(i))]);
    }
  }

  // The event log (any thread). `now` is the virtual clock in milliseconds.
  void spawned(const void* frame, std::uint64_t now);
  void resumed(const void* frame, std::uint64_t now);
  void completed(const void* frame, std::uint64_t now);
  [[nodiscard]] std::vector<task_event> events() const;

 private:
  std::uint64_t id_of(const void* frame);  // under mutex_

  const std::uint64_t seed_;
  splitmix64 rng_;
  mutable std::mutex mutex_;
  std::vector<task_event> events_;                      // guarded by mutex_
  std::unordered_map<const void*, std::uint64_t> ids_;  // guarded by mutex_
  std::uint64_t next_id_ = 1;                           // guarded by mutex_; 0 is "none"
  std::uint64_t running_ = 0;                           // guarded by mutex_: the last pick's id
};

}  // namespace weft::detail
