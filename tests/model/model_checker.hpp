// tests/model/model_checker.hpp: a small model checker for weft's lock-free core, in the spirit of
// tokio's loom.
//
// A test hands explore() a body. The body runs as model thread 0, builds the objects under test,
// starts up to three more model threads with spawn() and joins them. explore() runs the body again
// and again, once per execution, until it has tried every schedule of the model threads up to a
// preemption bound and, for every load, every value the C++ memory model (as approximated below)
// lets it read. The code under test uses weft::model::atomic<T> (the seam in
// weft/scheduler/detail/atomic.hpp maps weft::detail::atomic to it when WEFT_MODEL_CHECK is
// defined), so the real headers run unchanged.
//
// The model, in one paragraph (docs/model-checking.md has the details and the gaps):
// - Model threads are fibers (ucontext) on one OS thread; only one runs at a time. Every atomic
//   operation, fence, mutex operation and futex call is a scheduling point where the checker may
//   switch to another thread. A switch away from a thread that could go on is a preemption;
//   executions with more than `preemption_bound` of them are not explored.
// - Each atomic location keeps its history of stores in modification order, which is the order in
//   which the stores executed. A load may read any store that is not hidden: not older than the
//   newest store the thread has already seen there (its view, which acquire synchronization
//   and fences extend, so happens-before coherence holds), and, for seq_cst loads, not older than
//   what earlier seq_cst operations and fences ([atomics.order]) require. Each such choice is a
//   branch of the search. Read-modify-writes read the newest store.
// - seq_cst operations and fences are totally ordered in execution order (the order S).
// - A thread that loads the same location from the same source line twice in a row (no other
//   operation between) and would read the same store again is spinning: it blocks until another
//   thread stores a different value there. If every unfinished
//   thread is blocked (on a mutex, a futex, a join or a spin), the execution deadlocked, and the
//   checker reports it: that is how a lost wake-up shows up.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <type_traits>

namespace weft::model {

struct options {
  // Context switches away from a thread that could have continued, per execution.
  unsigned preemption_bound = 2;
  // Stop (and report `complete == false`) after this many executions.
  std::uint64_t max_executions = 5'000'000;
  // Scheduling points per execution before the checker calls it a livelock.
  std::uint64_t max_steps = 20'000;
};

struct result {
  bool failed = false;
  std::string message;  // what failed, then the trace of the failing execution
  std::uint64_t executions = 0;
  bool complete = true;  // false: max_executions cut the search short
};

// Runs `body` as model thread 0 once per execution until the search space is exhausted or an
// execution fails (a check, a deadlock, an exception, a livelock).
result explore(const options& opts, const std::function<void()>& body);

// Inside an execution: starts a model thread (at most 4 in all); returns its id.
int spawn(std::function<void()> fn);
// Waits for a model thread to finish; everything it did happens before the return.
void join(int thread);
// Fails the execution (and the search) with `message` unless `ok`.
void check(bool ok, const char* message);
// The id of the calling model thread.
int current_thread();

namespace detail {
using bits = std::uint64_t;
using rmw_fn = bool (*)(void* context, bits old_value, bits& new_value);

int new_location(bits initial, const char* kind);
bits load(int location, std::memory_order order, const char* file, int line);
void store(int location, bits value, std::memory_order order);
// Reads the newest value; if `update` returns true, writes `new_value` (success order), else the
// operation is a load with `failure` order. Returns the value read.
bits read_modify_write(int location, std::memory_order success, std::memory_order failure,
                       rmw_fn update, void* context);
void fence(std::memory_order order);
void futex_wait(int location, bits expected);
void futex_wake(int location, bool all);
int new_mutex();
void mutex_lock(int mutex);
bool mutex_try_lock(int mutex);
void mutex_unlock(int mutex);

constexpr std::memory_order failure_order_for(std::memory_order order) noexcept {
  if (order == std::memory_order_acq_rel) return std::memory_order_acquire;
  if (order == std::memory_order_release) return std::memory_order_relaxed;
  return order;
}
}  // namespace detail

// std::atomic's interface (the parts weft uses) over a model location. T: trivially copyable, at
// most 8 bytes. Construct inside an execution only.
template <class T>
class atomic {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= sizeof(detail::bits));

 public:
  atomic() noexcept : atomic(T{}) {}
  atomic(T initial) noexcept : location_(detail::new_location(to_bits(initial), "atomic")) {}
  atomic(const atomic&) = delete;
  atomic& operator=(const atomic&) = delete;

  // `file` and `line` name the call site (spin detection and traces; callers never pass them).
  T load(std::memory_order order = std::memory_order_seq_cst, const char* file = __builtin_FILE(),
         int line = __builtin_LINE()) const noexcept {
    return from_bits(detail::load(location_, order, file, line));
  }
  void store(T value, std::memory_order order = std::memory_order_seq_cst) noexcept {
    detail::store(location_, to_bits(value), order);
  }
  T exchange(T value, std::memory_order order = std::memory_order_seq_cst) noexcept {
    return update(order, order, [value](T) { return std::pair{true, value}; });
  }
  bool compare_exchange_strong(T& expected, T desired, std::memory_order success,
                               std::memory_order failure) noexcept {
    const detail::bits want = to_bits(expected);
    const T seen = update(success, failure, [want, desired](T old) {
      return std::pair{to_bits(old) == want, desired};
    });
    const bool ok = to_bits(seen) == want;
    expected = seen;
    return ok;
  }
  bool compare_exchange_strong(T& expected, T desired,
                               std::memory_order order = std::memory_order_seq_cst) noexcept {
    return compare_exchange_strong(expected, desired, order, detail::failure_order_for(order));
  }
  // Never fails spuriously in the model (docs/model-checking.md).
  bool compare_exchange_weak(T& expected, T desired, std::memory_order success,
                             std::memory_order failure) noexcept {
    return compare_exchange_strong(expected, desired, success, failure);
  }
  bool compare_exchange_weak(T& expected, T desired,
                             std::memory_order order = std::memory_order_seq_cst) noexcept {
    return compare_exchange_strong(expected, desired, order, detail::failure_order_for(order));
  }
  T fetch_add(T arg, std::memory_order order =
                         std::memory_order_seq_cst) noexcept requires std::is_integral_v<T> {
    return update(order, order, [arg](T old) { return std::pair{true, T(old + arg)}; });
  }
  T fetch_sub(T arg, std::memory_order order =
                         std::memory_order_seq_cst) noexcept requires std::is_integral_v<T> {
    return update(order, order, [arg](T old) { return std::pair{true, T(old - arg)}; });
  }
  T fetch_and(T arg, std::memory_order order =
                         std::memory_order_seq_cst) noexcept requires std::is_integral_v<T> {
    return update(order, order, [arg](T old) { return std::pair{true, T(old & arg)}; });
  }
  T fetch_or(T arg, std::memory_order order =
                        std::memory_order_seq_cst) noexcept requires std::is_integral_v<T> {
    return update(order, order, [arg](T old) { return std::pair{true, T(old | arg)}; });
  }

  // For the futex model (weft::model::futex_*).
  [[nodiscard]] int location() const noexcept { return location_; }

 private:
  static detail::bits to_bits(T value) noexcept {
    detail::bits b = 0;
    std::memcpy(&b, &value, sizeof(T));
    return b;
  }
  static T from_bits(detail::bits b) noexcept {
    T value;
    std::memcpy(&value, &b, sizeof(T));
    return value;
  }
  template <class F>
  T update(std::memory_order success, std::memory_order failure, F f) noexcept {
    auto thunk = [](void* context, detail::bits old_value, detail::bits& new_value) {
      const auto [write, value] = (*static_cast<F*>(context))(from_bits(old_value));
      new_value = to_bits(value);
      return write;
    };
    return from_bits(detail::read_modify_write(location_, success, failure, thunk, &f));
  }

  const int location_;
};

inline void atomic_thread_fence(std::memory_order order) noexcept { detail::fence(order); }

// A mutex whose lock blocks the model thread (a blocked thread runs again only after an unlock).
// unlock() releases, lock() acquires, like std::mutex.
class mutex {
 public:
  mutex() : id_(detail::new_mutex()) {}
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;
  void lock() { detail::mutex_lock(id_); }
  bool try_lock() { return detail::mutex_try_lock(id_); }
  void unlock() { detail::mutex_unlock(id_); }

 private:
  const int id_;
};

// The futex system call as a blocking operation: futex::wait blocks the calling model thread if
// the word holds `expected` (read as the newest value, after a full barrier, as the kernel does)
// until a futex wake on the same word. Spurious wake-ups are not explored. (A namespace of its own:
// argument-dependent lookup must not offer these next to weft::detail's futex wrappers.)
namespace futex {
inline void wait(atomic<std::uint32_t>* word, std::uint32_t expected) noexcept {
  detail::futex_wait(word->location(), expected);
}
inline void wake_one(atomic<std::uint32_t>* word) noexcept {
  detail::futex_wake(word->location(), false);
}
inline void wake_all(atomic<std::uint32_t>* word) noexcept {
  detail::futex_wake(word->location(), true);
}
}  // namespace futex

}  // namespace weft::model
