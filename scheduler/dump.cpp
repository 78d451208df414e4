// scheduler/dump.cpp: runtime::dump(), every live task with its state and await chain.
//
// The dump never waits for a worker (beyond the few stores of a link or unlink in progress). It
// walks each registry shard in a visitor's section (registry.hpp: a listed task is alive while
// the section lasts), and for each task reads only
// atomics of its header, written by the task itself with relaxed stores that a seq_cst hook
// publication orders (task_header::awaiting, waiting_on, wait_since):
//
//   - cancel_state's pending bit: cancelling;
//   - the hook (seq_cst load): published means the task is suspended in a cancellable wait, and
//     waiting_on / wait_since say on what and since when; the chain is read then (below);
//   - a worker's `running` pointer equal to the task's frame: running there, since running_since;
//   - otherwise ready (queued, or suspended outside a cancellable wait).
//
// The chain of a waiting task runs through frames that its worker frees as soon as the task is
// woken. A frame_inspection (frame_inspection.hpp) keeps every frame freed during the dump, and
// the argument there shows that every frame the walk reaches is one of those or still alive.
// Reading a frame the task is writing at that instant is a race the protocol tolerates: the
// walk re-reads the hook at the end and drops a chain whose wait ended (or changed) meanwhile.
//
// Names come from each frame's resume function (the first word of a GCC or Clang coroutine frame)
// through symbolizer.hpp, after every lock is released.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include <weft/scheduler/diagnostics.hpp>
#include <weft/scheduler/runtime.hpp>

#include <weft/scheduler/detail/cancellable_wait.hpp>

#include "dump.hpp"
#include "frame_inspection.hpp"
#include "runtime_core.hpp"
#include "symbolizer.hpp"

namespace weft {
namespace detail {
namespace {

// Longest chain kept (deeper awaits are summarized): a recursion a million deep stays readable.
constexpr std::size_t max_chain = 64;
// fork_join children listed per caller, and nested fork_joins followed (a recursive fork_join
// such as fib's is summarized after a few levels).
constexpr std::size_t max_children = 16;
constexpr int max_fork_depth = 4;

// A task as read under its shard's lock: raw pointers only, named after the lock is released.
struct raw_task {
  const char* name = nullptr;
  std::size_t child_index = 0;  // a fork_join child: its place among its siblings
  bool is_child = false;
  task_dump::state_type state = task_dump::state_type::ready;
  std::uint32_t since = 0;
  bool has_since = false;
  const char* waiting_on = nullptr;
  std::vector<const void*> chain;  // resume functions, outermost first
  bool chain_truncated = false;
  std::optional<std::size_t> worker;
  std::vector<raw_task> children;  // fork_join children
};

using running_list = std::vector<std::pair<void*, std::uint32_t>>;

// The resume function of the coroutine frame `frame` (its first word, in the GCC and Clang ABI;
// null once the coroutine reached its final suspension).
// Safety: the frame is alive or put aside (frame_inspection.hpp); TSan cannot see that protocol,
// and the task may write its frame meanwhile (then the chain is dropped), hence no_sanitize.
__attribute__((no_sanitize("thread"))) const void* resume_function_of(const void* frame) noexcept {
  return frame == nullptr ? nullptr : *static_cast<const void* const*>(frame);
}

// The frame of an awaited task, derived from its header's address (task_header::frame_prefix):
// nothing is read, the attribute only matches its neighbours'.
__attribute__((no_sanitize("thread"))) const void* frame_of(const task_header* t) noexcept {
  return t->frame().address();
}

// The task `t` awaits (its `awaiting` link; task.hpp stores it relaxed). While t's hook is
// published the link is frozen, and read_state's seq_cst load of the hook synchronized with that
// publication, so the link and the linked header are visible. If t moved on meanwhile, the link may
// name a frame whose header is being constructed right now: the read then races with the
// constructor's plain stores by design (the chain is dropped by read_wait's re-check, and the
// memory is alive or put aside, frame_inspection.hpp). TSan cannot see that protocol and reports
// the race even for an atomic load (it did, in CI: 1 run in about 60 of test_dump's churn case), so
// this is a plain volatile read, as cancellable_wait::kind_of does for the same reason.
__attribute__((no_sanitize("thread"))) task_header* awaited_of(task_header* t) noexcept {
  static_assert(sizeof(std::atomic<task_header*>) == sizeof(task_header*));
  task_header* next = *reinterpret_cast<task_header* const volatile*>(&t->awaiting_link());
  // Ordering: acquire fence after the read, standing for the acquire load it replaces: what is
  // read through `next` (its frame's first word, its own link) is ordered after the link itself,
  // which pairs with the hook's publication (release, after the link's store) in the frozen case.
  std::atomic_thread_fence(std::memory_order_acquire);
  return next;
}

void read_state(task_header* t, const void* frame, const running_list& running, int depth,
                raw_task& out);

// The chain of `t`, waiting on `hook`, from its own coroutine `frame` down; and, if the wait is
// a fork_join's, its children. `t` is a spawned task (frame: its header's) or a fork_join child
// (frame: its slot's).
void read_wait(task_header* t, const void* frame, cancel_hook* hook, const running_list& running,
               int depth, raw_task& out) {
  // The awaiter behind the hook is in a frame that is alive or put aside (frame_inspection.hpp);
  // what is read here is dropped if the wait ended meanwhile (the re-check below).
  const wait_kind kind = cancellable_wait::kind_of(hook);
  out.since = cancellable_wait::since_of(hook);
  out.has_since = true;
  out.chain.push_back(resume_function_of(frame));
  task_header* next = awaited_of(t);  // the link was published before the hook (awaited_of)
  while (next != nullptr) {
    if (out.chain.size() == max_chain) {
      out.chain_truncated = true;
      break;
    }
    out.chain.push_back(resume_function_of(frame_of(next)));
    next = awaited_of(next);
  }
  fork_child children[max_children];
  std::size_t count = 0;
  const fork_listing fork = fork_children_of(hook, children, max_children, count);
  if (fork == fork_listing::listed && depth < max_fork_depth) {
    for (std::size_t i = 0; i < count; ++i) {
      // A child ended: its frame is at its final suspension (null resume function); left out.
      if (resume_function_of(children[i].frame) == nullptr) continue;
      raw_task child;
      child.is_child = true;
      child.child_index = i;
      read_state(children[i].header, children[i].frame, running, depth + 1, child);
      out.children.push_back(std::move(child));
    }
  }
  // The wait is still the one whose chain was read: the chain is consistent. (A wait that ended
  // and a new one at the same awaiter address would pass; the chain is then the new wait's, read
  // from frames that are alive or put aside, so it is still memory-safe.)
  // Ordering: seq_cst, as every access to the hook word (task_header::hook): the re-check is
  // ordered after the reads of the chain above, which a weaker load would not guarantee.
  if (t->hook_slot().load(std::memory_order_seq_cst) != hook) {
    out.chain.clear();
    out.chain_truncated = false;
    out.children.clear();
    out.waiting_on = "a wait that just ended";
    return;
  }
  out.waiting_on =
      fork != fork_listing::not_fork ? "fork_join (its children)" : wait_kind_name(kind);
}

void read_state(task_header* t, const void* frame, const running_list& running, int depth,
                raw_task& out) {
  if ((t->cancel_word().load(std::memory_order_relaxed) & task_header::cancel_pending) != 0) {
    out.state = task_dump::state_type::cancelling;
    return;
  }
  // Ordering: seq_cst, step 1 of frame_inspection.hpp's argument (after the inspection's RMW).
  cancel_hook* hook = t->hook_slot().load(std::memory_order_seq_cst);
  if (hook == nullptr) {
    // Not in a wait: running if a worker's current run is this task's own frame, else ready.
    for (std::size_t w = 0; w < running.size(); ++w) {
      if (running[w].first != nullptr && running[w].first == frame) {
        out.state = task_dump::state_type::running;
        out.worker = w;
        out.since = running[w].second;
        out.has_since = true;
        return;
      }
    }
    return;  // ready
  }
  out.state = task_dump::state_type::waiting;
  read_wait(t, frame, hook, running, depth, out);
}

void read_task(task_header* t, const running_list& running, raw_task& out) {
  out.name = t->name();
  read_state(t, t->frame().address(), running, 0, out);
}

// "ns::fetch_all(int) [clone .actor]" -> "ns::fetch_all".
std::string short_function_name(std::string name) {
  for (const char* suffix : {" [clone", " (.resume)", " (.actor)"}) {
    if (const auto at = name.find(suffix); at != std::string::npos) name.erase(at);
  }
  if (!name.empty() && name.back() == ')') {
    int depth = 0;
    for (std::size_t i = name.size(); i-- > 0;) {
      if (name[i] == ')') ++depth;
      if (name[i] == '(' && --depth == 0) {
        name.erase(i);
        break;
      }
    }
  }
  return name;
}

std::string function_name(const void* fn) {
  if (fn == nullptr) return "<finished coroutine>";
  return short_function_name(symbolize(fn));
}

std::chrono::milliseconds elapsed_since(std::uint32_t since, std::uint32_t now);

task_dump named(const raw_task& r, std::uint32_t now, bool debug) {
  task_dump d;
  if (r.is_child) {
    d.name = "fork_join child " + std::to_string(r.child_index);
  } else if (r.name != nullptr) {
    d.name = r.name;
  }
  d.state = r.state;
  if (r.has_since) d.in_state = elapsed_since(r.since, now);
  if (r.waiting_on != nullptr) d.waiting_on = r.waiting_on;
  d.worker = r.worker;
  for (const void* fn : r.chain) {
    d.await_chain.push_back(function_name(fn));
    if (debug) d.await_sources.push_back(fn != nullptr ? source_location_of(fn) : std::string());
  }
  if (r.chain_truncated) {
    d.await_chain.emplace_back("...");
    if (debug) d.await_sources.emplace_back();
  }
  for (const raw_task& c : r.children)
    d.children.push_back(named(c, now, debug));
  return d;
}

std::chrono::milliseconds elapsed_since(std::uint32_t since, std::uint32_t now) {
  // Unsigned subtraction: right across the 49-day wrap of the 32-bit millisecond clock.
  return std::chrono::milliseconds(static_cast<std::uint32_t>(now - since));
}

}  // namespace

runtime_dump dump_runtime(runtime_core& rt) {
  runtime_dump out;
  // Every worker's running coroutine, read first: a task that a worker runs now is reported as
  // running (a snapshot: it may have suspended since).
  running_list running(rt.workers.size());
  for (std::size_t i = 0; i < rt.workers.size(); ++i) {
    const worker_counters& c = rt.workers[i]->counters;
    // Relaxed: single-writer diagnostics (worker.hpp).
    running[i] = {c.running.load(std::memory_order_relaxed),
                  c.running_since.load(std::memory_order_relaxed)};
    worker_dump w;
    w.index = i;
    w.parked = c.asleep.load(std::memory_order_relaxed);
    w.running = running[i].first != nullptr;
    w.queued = rt.workers[i]->local_queue_depth();
    out.workers.push_back(w);
  }

  out.not_started = static_cast<std::size_t>(rt.unlisted_queued());
  std::vector<raw_task> raw;
  {
    const frame_inspection hold;  // before the first hook is read (frame_inspection.hpp)
    registry& reg = rt.registry;
    for (std::size_t i = 0; i < reg.shard_count(); ++i) {
      registry_shard& shard = i + 1 < reg.shard_count() ? reg.worker_shard(i) : reg.foreign_shard();
      // Reserve outside the lock, so that the owner rarely spins behind an allocation.
      raw.reserve(raw.size() + shard.count.load(std::memory_order_relaxed) + 16);
      const registry::visit visiting(shard);  // see registry.hpp
      for (task_header& task : shard.tasks) {
        task_header* t = &task;
        // Relaxed: a listed task is alive (the lock); a finished one is only waiting to be
        // unlinked by its owner.
        if ((t->state_word().load(std::memory_order_relaxed) & task_header::done_bit) != 0)
          continue;
        raw.emplace_back();
        raw.back().chain.reserve(8);
        read_task(t, running, raw.back());
      }
    }
  }  // frames put aside meanwhile are released here

  const std::uint32_t now = coarse_clock_ms();
  for (std::size_t i = 0; i < out.workers.size(); ++i) {
    if (out.workers[i].running) out.workers[i].running_for = elapsed_since(running[i].second, now);
  }
  out.tasks.reserve(raw.size());
  for (const raw_task& r : raw)
    out.tasks.push_back(named(r, now, rt.options.debug));
  return out;
}

}  // namespace detail

const char* to_string(task_dump::state_type state) noexcept {
  switch (state) {
    case task_dump::state_type::running:
      return "running";
    case task_dump::state_type::ready:
      return "ready";
    case task_dump::state_type::waiting:
      return "waiting";
    case task_dump::state_type::cancelling:
      return "cancelling";
  }
  return "unknown";
}

namespace {
std::string seconds_text(std::chrono::milliseconds ms) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.3f s", static_cast<double>(ms.count()) / 1000.0);
  return buffer;
}

// One task's paragraph at `depth` (fork_join children one level deeper than their caller).
void append_task(std::string& text, const task_dump& t, int depth) {
  const std::string indent(static_cast<std::size_t>(depth) * 2, ' ');
  text += indent + "task " + (t.name.empty() ? std::string("(unnamed)") : "'" + t.name + "'") +
          " " + weft::to_string(t.state);
  if (t.worker) text += " on worker " + std::to_string(*t.worker);
  if (!t.waiting_on.empty()) text += " on " + t.waiting_on;
  if (t.in_state) text += " for " + seconds_text(*t.in_state);
  text += "\n";
  if (!t.await_chain.empty()) {
    text += indent + "  ";
    for (std::size_t i = 0; i < t.await_chain.size(); ++i) {
      text += t.await_chain[i];
      if (i < t.await_sources.size() && !t.await_sources[i].empty()) {
        text += " (" + t.await_sources[i] + ")";
      }
      text += " -> ";
    }
    text += t.waiting_on + "\n";
  }
  for (const task_dump& child : t.children)
    append_task(text, child, depth + 1);
}

}  // namespace

std::string runtime_dump::to_string() const {
  std::string text =
      "weft runtime dump: " + std::to_string(tasks.size()) + " live task" +
      (tasks.size() == 1 ? "" : "s") + ", " + std::to_string(workers.size()) + " worker" +
      (workers.size() == 1 ? "" : "s") +
      (not_started != 0 ? ", " + std::to_string(not_started) + " spawned and not started yet"
                        : std::string()) +
      "\n";
  for (const worker_dump& w : workers) {
    text += "  worker " + std::to_string(w.index) + ": ";
    if (w.running) {
      text += "running for " + seconds_text(w.running_for);
    } else {
      text += w.parked ? "parked" : "idle";
    }
    text += ", " + std::to_string(w.queued) + " queued\n";
  }
  for (const task_dump& t : tasks)
    append_task(text, t, 1);
  return text;
}

runtime_dump runtime::dump() const { return detail::dump_runtime(*core_); }

}  // namespace weft
