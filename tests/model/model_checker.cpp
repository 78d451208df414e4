// tests/model/model_checker.cpp: the search behind model_checker.hpp.
//
// Depth-first search over the choices an execution makes. Every choice (which thread runs at a
// scheduling point, which store a load reads) is a branch with a known number of alternatives. An
// execution follows the recorded path as far as it goes and takes alternative 0 at every new
// branch; afterwards the deepest branch with an untried alternative moves on to the next one and
// everything below it is forgotten. The code under test must be deterministic apart from these
// choices (the checker verifies that each replayed branch offers as many alternatives as before).
//
// Memory model. A view maps each location to the index (in modification order) of the newest
// store a thread must not read below. Each thread has one; a store carries the view that an
// acquire reading it inherits (the thread's view for a release store, the view at the thread's
// last release fence for a relaxed one, joined with the previous store's view for a
// read-modify-write, which continues a release sequence). The seq_cst rules of [atomics.order]
// (C++20, p4), with S = execution order, become two global views: `sc_ops_` (per location, the
// newest store written or read by a seq_cst operation) and `sc_fences_` (the join of the views of
// all seq_cst fences so far).
//   - A seq_cst load L reads no older than sc_ops_ (L coherence-ordered before an earlier seq_cst
//     operation B would need L before B in S) and sc_fences_ (nor before an earlier fence Y that
//     something L is coherence-ordered before happens before).
//   - A seq_cst fence X joins both into its thread's view (anything X happens before must not be
//     coherence-ordered before an operation or fence that precedes X in S), then adds its view to
//     sc_fences_.
#include "model_checker.hpp"

#include <ucontext.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define WEFT_MODEL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_MODEL_ASAN 1
#endif
#endif
#ifndef WEFT_MODEL_ASAN
#define WEFT_MODEL_ASAN 0
#endif

#if WEFT_MODEL_ASAN
extern "C" void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom,
                                               std::size_t size);
extern "C" void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old,
                                                std::size_t* size_old);
#endif

namespace weft::model {

namespace {

using detail::bits;
using view = std::vector<std::uint32_t>;

constexpr std::size_t max_threads = 4;
constexpr std::size_t stack_size = WEFT_MODEL_ASAN ? 1024 * 1024 : 256 * 1024;

std::uint32_t at(const view& v, int location) {
  return static_cast<std::size_t>(location) < v.size() ? v[static_cast<std::size_t>(location)] : 0;
}

void raise(view& v, int location, std::uint32_t index) {
  const auto i = static_cast<std::size_t>(location);
  if (v.size() <= i) v.resize(i + 1, 0);
  v[i] = std::max(v[i], index);
}

void join_into(view& into, const view& from) {
  if (into.size() < from.size()) into.resize(from.size(), 0);
  for (std::size_t i = 0; i < from.size(); ++i)
    into[i] = std::max(into[i], from[i]);
}

bool acquires(std::memory_order order) {
  return order == std::memory_order_acquire || order == std::memory_order_consume ||
         order == std::memory_order_acq_rel || order == std::memory_order_seq_cst;
}

bool releases(std::memory_order order) {
  return order == std::memory_order_release || order == std::memory_order_acq_rel ||
         order == std::memory_order_seq_cst;
}

const char* order_name(std::memory_order order) {
  switch (order) {
    case std::memory_order_relaxed:
      return "relaxed";
    case std::memory_order_consume:
      return "consume";
    case std::memory_order_acquire:
      return "acquire";
    case std::memory_order_release:
      return "release";
    case std::memory_order_acq_rel:
      return "acq_rel";
    case std::memory_order_seq_cst:
      return "seq_cst";
  }
  return "?";
}

struct store_record {
  bits value;
  bool seq_cst;
  view message;  // what an acquire that reads this store learns
};

struct location_state {
  std::vector<store_record> stores;  // modification order
  const char* kind;
};

enum class status { runnable, blocked, finished };
enum class block_reason { none, spin, futex, mutex, join };

struct thread_state {
  std::function<void()> fn;
  ucontext_t context{};
  void* fake_stack = nullptr;  // ASan's bookkeeping for the fiber switch
  status state = status::runnable;
  block_reason blocked_on = block_reason::none;
  int block_target = -1;
  bits spin_value = 0;
  std::uint64_t block_sequence = 0;  // FIFO order of futex waiters
  view hb;                           // happens-before view
  view pending_acquire;              // from relaxed loads, for a later acquire fence
  view release_fence;  // the view at the last release fence, carried by relaxed stores
  // Spin detection: the last operation was a load of this location, which read this store.
  int spin_location = -1;
  const char* spin_file = nullptr;
  int spin_line = 0;
  std::uint32_t spin_index = 0;
  bits spin_read = 0;
};

struct mutex_state {
  int owner = -1;
  view released;
};

struct trace_entry {
  int thread;
  const char* what;
  int location;
  bits value;
  std::uint32_t index;
  std::memory_order order;
  const char* file;
  int line;
};

struct branch {
  std::uint32_t chosen;
  std::uint32_t count;
};

class engine {
 public:
  explicit engine(const options& opts) : opts_(opts) {
    for (auto& s : stacks_)
      s = std::make_unique<char[]>(stack_size);
  }

  result run(const std::function<void()>& body) {
    result r;
    for (;;) {
      run_one(body);
      ++r.executions;
      if (failed_) {
        r.failed = true;
        r.message = failure_;
        return r;
      }
      if (!next_path()) return r;
      if (r.executions >= opts_.max_executions) {
        r.complete = false;
        return r;
      }
    }
  }

  // ---- called by the model's operations, on the current fiber ----

  int spawn(std::function<void()> fn) {
    if (threads_.size() >= max_threads) fail("model: more than 4 threads");
    auto t = std::make_unique<thread_state>();
    t->fn = std::move(fn);
    t->hb = threads_[static_cast<std::size_t>(current_)]->hb;  // spawning synchronizes
    const int id = static_cast<int>(threads_.size());
    prepare_fiber(*t, stacks_[static_cast<std::size_t>(id)].get());
    threads_.push_back(std::move(t));
    record("spawn", -1, static_cast<bits>(id), 0, std::memory_order_seq_cst);
    return id;
  }

  void join(int id) {
    if (id <= 0 || static_cast<std::size_t>(id) >= threads_.size() || id == current_)
      fail("model: join of an unknown thread");
    for (;;) {
      schedule_point();
      thread_state& target = *threads_[static_cast<std::size_t>(id)];
      if (target.state == status::finished) {
        join_into(me().hb, target.hb);
        record("join", -1, static_cast<bits>(id), 0, std::memory_order_seq_cst);
        return;
      }
      block(block_reason::join, id);
    }
  }

  int new_location(bits initial, const char* kind) {
    const int id = static_cast<int>(locations_.size());
    locations_.push_back(location_state{{store_record{initial, false, {}}}, kind});
    raise(me().hb, id, 0);
    return id;
  }

  bits load(int location, std::memory_order order, const char* file, int line) {
    for (;;) {
      schedule_point();
      thread_state& t = me();
      const location_state& l = locations_[static_cast<std::size_t>(location)];
      const bool sc = order == std::memory_order_seq_cst;
      std::uint32_t floor = at(t.hb, location);
      if (sc) floor = std::max({floor, at(sc_ops_, location), at(sc_fences_, location)});
      const bool spinning =
          t.spin_location == location && t.spin_line == line && t.spin_file == file;
      std::array<std::uint32_t, 64> candidates{};
      std::uint32_t n = 0;
      const auto last = static_cast<std::uint32_t>(l.stores.size() - 1);
      // Newest first: the first execution of a test reads the latest values.
      for (std::uint32_t i = last + 1; i-- > floor;) {
        if (spinning && (i <= t.spin_index || l.stores[i].value == t.spin_read)) continue;
        if (n == candidates.size()) break;  // older stores than the 64 newest are not explored
        candidates[n++] = i;
      }
      if (n == 0) {
        // Reading the same store again leaves the spinning thread where it was: wait for news.
        block(block_reason::spin, location, t.spin_read);
        continue;
      }
      const std::uint32_t index = candidates[choose(n)];
      const store_record& s = l.stores[index];
      raise(t.hb, location, index);
      join_into(acquires(order) ? t.hb : t.pending_acquire, s.message);
      if (sc) raise(sc_ops_, location, index);
      t.spin_location = location;
      t.spin_file = file;
      t.spin_line = line;
      t.spin_index = index;
      t.spin_read = s.value;
      record("load", location, s.value, index, order, file, line);
      return s.value;
    }
  }

  void store(int location, bits value, std::memory_order order) {
    schedule_point();
    thread_state& t = me();
    t.spin_location = -1;
    location_state& l = locations_[static_cast<std::size_t>(location)];
    const auto index = static_cast<std::uint32_t>(l.stores.size());
    raise(t.hb, location, index);
    l.stores.push_back(store_record{value, order == std::memory_order_seq_cst,
                                    releases(order) ? t.hb : t.release_fence});
    if (order == std::memory_order_seq_cst) raise(sc_ops_, location, index);
    record("store", location, value, index, order);
    wake_spinners(location, value);
  }

  bits read_modify_write(int location, std::memory_order success, std::memory_order failure,
                         detail::rmw_fn update, void* context) {
    schedule_point();
    thread_state& t = me();
    t.spin_location = -1;
    location_state& l = locations_[static_cast<std::size_t>(location)];
    // Atomicity: a read-modify-write reads the newest store. (A failed compare-exchange is a
    // load and could read an older one in C++; the model does not explore that.)
    const auto read_index = static_cast<std::uint32_t>(l.stores.size() - 1);
    const bits old_value = l.stores[read_index].value;
    view carried = l.stores[read_index].message;
    bits new_value = 0;
    const bool write = update(context, old_value, new_value);
    const std::memory_order read_order = write ? success : failure;
    raise(t.hb, location, read_index);
    join_into(acquires(read_order) ? t.hb : t.pending_acquire, carried);
    if (read_order == std::memory_order_seq_cst) raise(sc_ops_, location, read_index);
    if (!write) {
      record("rmw-fail", location, old_value, read_index, failure);
      return old_value;
    }
    const auto index = read_index + 1;
    raise(t.hb, location, index);
    // Continues the release sequence of the store it read, so it carries that store's view too.
    join_into(carried, releases(success) ? t.hb : t.release_fence);
    l.stores.push_back(
        store_record{new_value, success == std::memory_order_seq_cst, std::move(carried)});
    if (success == std::memory_order_seq_cst) raise(sc_ops_, location, index);
    record("rmw", location, new_value, index, success);
    wake_spinners(location, new_value);
    return old_value;
  }

  void fence(std::memory_order order) {
    if (order == std::memory_order_relaxed) return;  // no effect ([atomics.fences])
    schedule_point();
    me().spin_location = -1;
    fence_effects(order);
    record("fence", -1, 0, 0, order);
  }

  void futex_wait(int location, bits expected) {
    schedule_point();
    thread_state& t = me();
    t.spin_location = -1;
    // The kernel compares the newest value under its hash-bucket lock, after a full barrier.
    fence_effects(std::memory_order_seq_cst);
    const location_state& l = locations_[static_cast<std::size_t>(location)];
    const auto index = static_cast<std::uint32_t>(l.stores.size() - 1);
    raise(t.hb, location, index);
    record("futex_wait", location, l.stores[index].value, index, std::memory_order_seq_cst);
    if (l.stores[index].value != expected) return;  // EAGAIN
    block(block_reason::futex, location);
    record("futex_woken", location, 0, 0, std::memory_order_seq_cst);
  }

  void futex_wake(int location, bool all) {
    schedule_point();
    me().spin_location = -1;
    fence_effects(std::memory_order_seq_cst);
    record("futex_wake", location, all ? 1 : 0, 0, std::memory_order_seq_cst);
    for (;;) {
      thread_state* first = nullptr;
      for (auto& t : threads_) {
        if (t->state == status::blocked && t->blocked_on == block_reason::futex &&
            t->block_target == location &&
            (first == nullptr || t->block_sequence < first->block_sequence)) {
          first = t.get();
        }
      }
      if (first == nullptr) return;
      unblock(*first);
      if (!all) return;
    }
  }

  int new_mutex() {
    mutexes_.emplace_back();
    return static_cast<int>(mutexes_.size() - 1);
  }

  void mutex_lock(int id) {
    while (!mutex_try_lock(id))
      block(block_reason::mutex, id);
  }

  bool mutex_try_lock(int id) {
    schedule_point();
    thread_state& t = me();
    t.spin_location = -1;
    mutex_state& m = mutexes_[static_cast<std::size_t>(id)];
    if (m.owner == current_) fail("model: a thread locked a mutex it holds");
    if (m.owner != -1) return false;
    m.owner = current_;
    join_into(t.hb, m.released);
    record("lock", -1, static_cast<bits>(id), 0, std::memory_order_acquire);
    return true;
  }

  void mutex_unlock(int id) {
    schedule_point();
    thread_state& t = me();
    t.spin_location = -1;
    mutex_state& m = mutexes_[static_cast<std::size_t>(id)];
    if (m.owner != current_) fail("model: unlock of a mutex the thread does not hold");
    m.owner = -1;
    m.released = t.hb;
    record("unlock", -1, static_cast<bits>(id), 0, std::memory_order_release);
    for (auto& other : threads_) {
      if (other->state == status::blocked && other->blocked_on == block_reason::mutex &&
          other->block_target == id) {
        unblock(*other);
      }
    }
  }

  [[noreturn]] void fail(const std::string& message) {
    failed_ = true;
    failure_ = message + "\n" + format_trace();
    jump_to_main(/*dying=*/true);
    std::abort();  // main never resumes a failed execution
  }

  int current() const { return current_; }

  static void trampoline();

 private:
  thread_state& me() { return *threads_[static_cast<std::size_t>(current_)]; }

  void fence_effects(std::memory_order order) {
    thread_state& t = me();
    if (acquires(order)) join_into(t.hb, t.pending_acquire);
    if (order == std::memory_order_seq_cst) {
      join_into(t.hb, sc_ops_);
      join_into(t.hb, sc_fences_);
      join_into(sc_fences_, t.hb);
    }
    if (releases(order)) t.release_fence = t.hb;
  }

  std::uint32_t choose(std::uint32_t count) {
    if (count == 1) return 0;
    if (depth_ < path_.size()) {
      const branch& b = path_[depth_++];
      if (b.count != count) {
        fail("model: the code under test is not deterministic (a replayed choice offered " +
             std::to_string(count) + " alternatives, " + std::to_string(b.count) + " before)");
      }
      return b.chosen;
    }
    path_.push_back(branch{0, count});
    ++depth_;
    return 0;
  }

  bool next_path() {
    path_.resize(depth_);
    while (!path_.empty() && path_.back().chosen + 1 >= path_.back().count)
      path_.pop_back();
    if (path_.empty()) return false;
    ++path_.back().chosen;
    return true;
  }

  void schedule_point() {
    if (++steps_ > opts_.max_steps) {
      fail("model: livelock? an execution took more than " + std::to_string(opts_.max_steps) +
           " steps");
    }
    std::array<int, max_threads> candidates{};
    std::uint32_t n = 0;
    candidates[n++] = current_;
    if (preemptions_ < opts_.preemption_bound) {
      for (std::size_t i = 0; i < threads_.size(); ++i) {
        if (static_cast<int>(i) != current_ && threads_[i]->state == status::runnable)
          candidates[n++] = static_cast<int>(i);
      }
    }
    const std::uint32_t k = choose(n);
    if (k != 0) {
      ++preemptions_;
      switch_to(candidates[k]);
    }
  }

  // The current thread cannot go on: run another one, or end the execution.
  void run_other(bool dying) {
    std::array<int, max_threads> candidates{};
    std::uint32_t n = 0;
    bool unfinished = false;
    for (std::size_t i = 0; i < threads_.size(); ++i) {
      if (threads_[i]->state == status::runnable) candidates[n++] = static_cast<int>(i);
      if (threads_[i]->state != status::finished) unfinished = true;
    }
    if (n == 0) {
      if (unfinished) fail("model: deadlock, every unfinished thread is blocked:" + blocked_list());
      jump_to_main(dying);
      return;
    }
    switch_to(candidates[choose(n)], dying);
  }

  void block(block_reason reason, int target, bits spin_value = 0) {
    thread_state& t = me();
    t.state = status::blocked;
    t.blocked_on = reason;
    t.block_target = target;
    t.spin_value = spin_value;
    t.block_sequence = ++block_counter_;
    run_other(false);
  }

  static void unblock(thread_state& t) {
    t.state = status::runnable;
    t.blocked_on = block_reason::none;
  }

  void wake_spinners(int location, bits value) {
    for (auto& t : threads_) {
      if (t->state == status::blocked && t->blocked_on == block_reason::spin &&
          t->block_target == location && t->spin_value != value) {
        unblock(*t);
      }
    }
  }

  void finish_current() {
    thread_state& t = me();
    t.state = status::finished;
    record("exit", -1, 0, 0, std::memory_order_seq_cst);
    for (auto& other : threads_) {
      if (other->state == status::blocked && other->blocked_on == block_reason::join &&
          other->block_target == current_) {
        unblock(*other);
      }
    }
    run_other(true);
  }

  void run_one(const std::function<void()>& body) {
    threads_.clear();
    locations_.clear();
    mutexes_.clear();
    sc_ops_.clear();
    sc_fences_.clear();
    trace_.clear();
    depth_ = 0;
    steps_ = 0;
    preemptions_ = 0;
    block_counter_ = 0;
    auto t = std::make_unique<thread_state>();
    t->fn = [&body] { body(); };
    prepare_fiber(*t, stacks_[0].get());
    threads_.push_back(std::move(t));
    current_ = 0;
    in_main_ = true;
    swap_contexts(main_context_, main_fake_stack_, *threads_[0], false);
  }

  void prepare_fiber(thread_state& t, char* stack) {
    getcontext(&t.context);
    t.context.uc_stack.ss_sp = stack;
    t.context.uc_stack.ss_size = stack_size;
    t.context.uc_link = nullptr;
    makecontext(&t.context, &engine::trampoline, 0);
  }

  void switch_to(int next, bool dying = false) {
    if (next == current_) return;
    thread_state& from = me();
    current_ = next;
    swap_contexts(from.context, from.fake_stack, *threads_[static_cast<std::size_t>(next)], dying);
  }

  void jump_to_main(bool dying) {
    thread_state& from = me();
    in_main_ = true;
#if WEFT_MODEL_ASAN
    __sanitizer_start_switch_fiber(dying ? nullptr : &from.fake_stack, main_stack_bottom_,
                                   main_stack_size_);
#else
    (void)dying;
#endif
    swapcontext(&from.context, &main_context_);
#if WEFT_MODEL_ASAN
    __sanitizer_finish_switch_fiber(from.fake_stack, nullptr, nullptr);
#endif
  }

  void swap_contexts(ucontext_t& from, void*& from_fake, thread_state& to, bool dying) {
    in_main_ = false;
#if WEFT_MODEL_ASAN
    __sanitizer_start_switch_fiber(dying ? nullptr : &from_fake, to.context.uc_stack.ss_sp,
                                   to.context.uc_stack.ss_size);
#else
    (void)dying;
    (void)from_fake;
#endif
    swapcontext(&from, &to.context);
    // Back on `from` (a fiber, or main when the execution ended).
#if WEFT_MODEL_ASAN
    __sanitizer_finish_switch_fiber(from_fake, nullptr, nullptr);
#endif
  }

  void record(const char* what, int location, bits value, std::uint32_t index,
              std::memory_order order, const char* file = nullptr, int line = 0) {
    if (trace_.size() < 4096)
      trace_.push_back(trace_entry{current_, what, location, value, index, order, file, line});
  }

  std::string format_trace() const {
    std::string out = "trace of the failing execution (thread: operation):\n";
    char line[200];
    for (const auto& e : trace_) {
      if (e.location >= 0) {
        std::snprintf(line, sizeof line, "  t%d: %-11s %s#%d = %#llx (store %u, %s)", e.thread,
                      e.what, locations_[static_cast<std::size_t>(e.location)].kind, e.location,
                      static_cast<unsigned long long>(e.value), e.index, order_name(e.order));
        out += line;
        if (e.file != nullptr) {
          const char* base = std::strrchr(e.file, '/');
          std::snprintf(line, sizeof line, " at %s:%d", base != nullptr ? base + 1 : e.file,
                        e.line);
          out += line;
        }
        out += "\n";
        continue;
      } else {
        std::snprintf(line, sizeof line, "  t%d: %-11s %llu %s\n", e.thread, e.what,
                      static_cast<unsigned long long>(e.value), order_name(e.order));
      }
      out += line;
    }
    return out;
  }

  std::string blocked_list() const {
    std::string out;
    for (std::size_t i = 0; i < threads_.size(); ++i) {
      const thread_state& t = *threads_[i];
      if (t.state != status::blocked) continue;
      out += " t" + std::to_string(i) + " on ";
      switch (t.blocked_on) {
        case block_reason::spin:
          out += "a spin over location #" + std::to_string(t.block_target);
          break;
        case block_reason::futex:
          out += "a futex on location #" + std::to_string(t.block_target);
          break;
        case block_reason::mutex:
          out += "mutex " + std::to_string(t.block_target);
          break;
        case block_reason::join:
          out += "joining t" + std::to_string(t.block_target);
          break;
        case block_reason::none:
          out += "?";
          break;
      }
      out += ";";
    }
    return out;
  }

  const options opts_;
  std::array<std::unique_ptr<char[]>, max_threads> stacks_;
  std::vector<std::unique_ptr<thread_state>> threads_;
  std::vector<location_state> locations_;
  std::vector<mutex_state> mutexes_;
  view sc_ops_;
  view sc_fences_;
  std::vector<branch> path_;
  std::size_t depth_ = 0;
  std::uint64_t steps_ = 0;
  unsigned preemptions_ = 0;
  std::uint64_t block_counter_ = 0;
  int current_ = 0;
  bool in_main_ = true;
  ucontext_t main_context_{};
  void* main_fake_stack_ = nullptr;
  const void* main_stack_bottom_ = nullptr;
  std::size_t main_stack_size_ = 0;
  bool failed_ = false;
  std::string failure_;
  std::vector<trace_entry> trace_;
};

engine* active = nullptr;

engine& require_active() {
  if (active == nullptr) throw std::logic_error("weft::model: used outside explore()");
  return *active;
}

void engine::trampoline() {
  engine& e = *active;
#if WEFT_MODEL_ASAN
  // The first switch into a fiber tells where the main stack is (for switching back).
  const void* bottom = nullptr;
  std::size_t size = 0;
  __sanitizer_finish_switch_fiber(nullptr, &bottom, &size);
  if (e.main_stack_bottom_ == nullptr && bottom != nullptr) {
    e.main_stack_bottom_ = bottom;
    e.main_stack_size_ = size;
  }
#endif
  try {
    e.me().fn();
  } catch (const std::exception& ex) {
    e.fail(std::string("model: an exception escaped model thread ") + std::to_string(e.current_) +
           ": " + ex.what());
  } catch (...) {
    e.fail("model: an exception escaped model thread " + std::to_string(e.current_));
  }
  e.finish_current();
  std::abort();  // a finished fiber is never resumed
}

}  // namespace

result explore(const options& opts, const std::function<void()>& body) {
  if (active != nullptr) throw std::logic_error("weft::model::explore: nested call");
  engine e(opts);
  active = &e;
  result r;
  try {
    r = e.run(body);
  } catch (...) {
    active = nullptr;
    throw;
  }
  active = nullptr;
  return r;
}

int spawn(std::function<void()> fn) { return require_active().spawn(std::move(fn)); }
void join(int thread) { require_active().join(thread); }
void check(bool ok, const char* message) {
  if (!ok) require_active().fail(std::string("check failed: ") + message);
}
int current_thread() { return require_active().current(); }

namespace detail {
int new_location(bits initial, const char* kind) {
  return require_active().new_location(initial, kind);
}
bits load(int location, std::memory_order order, const char* file, int line) {
  return require_active().load(location, order, file, line);
}
void store(int location, bits value, std::memory_order order) {
  require_active().store(location, value, order);
}
bits read_modify_write(int location, std::memory_order success, std::memory_order failure,
                       rmw_fn update, void* context) {
  return require_active().read_modify_write(location, success, failure, update, context);
}
void fence(std::memory_order order) { require_active().fence(order); }
void futex_wait(int location, bits expected) { require_active().futex_wait(location, expected); }
void futex_wake(int location, bool all) { require_active().futex_wake(location, all); }
int new_mutex() { return require_active().new_mutex(); }
void mutex_lock(int mutex) { require_active().mutex_lock(mutex); }
bool mutex_try_lock(int mutex) { return require_active().mutex_try_lock(mutex); }
void mutex_unlock(int mutex) { require_active().mutex_unlock(mutex); }
}  // namespace detail

}  // namespace weft::model
