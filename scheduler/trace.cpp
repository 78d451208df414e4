// scheduler/trace.cpp: recording into per-thread buffers, the writer thread that spills full
// chunks, and the final merge into Chrome trace event JSON (trace.hpp has the design).
#include "trace.hpp"

#include <pthread.h>
#include <unistd.h>

#include <cpuid.h>
#include <cxxabi.h>
#include <x86intrin.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <queue>
#include <string_view>
#include <system_error>
#include <unordered_map>

#include <weft/scheduler/runtime.hpp>

#include "worker_identity.hpp"

namespace weft::detail {

namespace {

enum trace_kind : std::uint8_t {
  run_begin_kind,     // data: the frame
  run_end_kind,       // recorded late, with the time of the event after it (record())
  park_begin_kind,    //
  park_end_kind,      //
  idle_kind,          // a worker starts searching: only a time (for the run_end before it)
  ready_kind,         // data: a worker's ready tasks (the counter's series is the buffer's)
  parked_kind,        // data: parked workers
  injected_kind,      // data: the injection queue's length
  spawn_kind,         // data: the frame
  spawn_eager_kind,   // data: the frame (runs at once, nested: no arrow)
  name_kind,          // data: the name of the frame of the spawn just before (a static string)
  complete_kind,      // data: the frame
  timers_begin_kind,  // data: how many tasks the expired timers make ready
  io_begin_kind,      // data: how many tasks the ready descriptors make ready
  batch_end_kind,     //
  call_begin_kind,    // data: the type_info name of a to_thread callable
  call_end_kind,      //
  flow_kind,          // flow_kind + flow_type: an arrow starts; data: the frame it goes to
};

// The kinds of arrow, and the event kind that starts each.
constexpr std::uint8_t spawn_flow = 0, wake_flow = 1, timer_flow = 2, io_flow = 3;
constexpr const char* flow_names[] = {"spawn", "wake", "timer", "I/O"};
constexpr std::uint8_t flow_start(std::uint8_t type) noexcept {
  return static_cast<std::uint8_t>(flow_kind + type);
}

constexpr std::uint8_t kind_of(std::uint64_t head) noexcept {
  return static_cast<std::uint8_t>(head & 0xff);
}
constexpr std::uint64_t ticks_of(std::uint64_t head) noexcept { return head >> 8; }

std::uint64_t steady_ns() noexcept {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

// The time-stamp counter, if it ticks at a constant rate through every power state (CPUID
// 0x80000007, EDX bit 8): about a third of the cost of reading the steady clock.
bool invariant_tsc() noexcept {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(0x80000000U, &eax, &ebx, &ecx, &edx) == 0 || eax < 0x80000007U) return false;
  __get_cpuid(0x80000007U, &eax, &ebx, &ecx, &edx);
  return (edx & (1U << 8)) != 0;
}
const bool use_tsc = invariant_tsc();

std::uint64_t raw_ticks() noexcept { return use_tsc ? __rdtsc() : steady_ns(); }
// Ticks count from the process's start, so that 56 bits (event heads) last for months.
const std::uint64_t tick_base = raw_ticks();
inline std::uint64_t ticks() noexcept { return raw_ticks() - tick_base; }

inline trace_event event(std::uint8_t kind, std::uint64_t data,
                         std::uint64_t at = ticks()) noexcept {
  return {at << 8 | kind, data};
}

std::uint64_t address(const void* p) noexcept { return reinterpret_cast<std::uintptr_t>(p); }

// Ordering: relaxed; the ids only have to differ (the thread-local cache's key).
std::atomic<std::uint64_t> next_tracer_id{1};
// WEFT_TRACE names one file; a second runtime of the same process writes "<stem>.2<ext>", ...
// Ordering: relaxed; only the uniqueness of the numbers matters.
std::atomic<unsigned> environment_uses{0};

struct local_cache {
  std::uint64_t tracer_id = 0;
  void* buffer = nullptr;
};
thread_local local_cache cache;

std::string numbered(const std::string& path, unsigned n) {
  if (n <= 1) return path;
  const std::size_t slash = path.rfind('/');
  std::size_t dot = path.rfind('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) dot = path.size();
  return path.substr(0, dot) + "." + std::to_string(n) + path.substr(dot);
}

}  // namespace

struct tracer::chunk {
  std::size_t count = 0;
  trace_event events[chunk_events];
};

struct tracer::buffer {
  std::uint32_t tid = 0;
  std::string name;
  // A thread that is not a worker: records take `lock`, and stop once `closed`.
  bool locked = false;
  std::mutex lock;
  bool closed = false;
  std::thread::id thread;
  chunk* current = nullptr;
  // The ticks of the run being recorded (0: none).
  std::uint64_t run_ticks = 0;
  // A run ended and its run_end is not recorded yet: the next event records it with its own time,
  // unless that event is the next run's begin, which implies it (one event per run when busy).
  bool end_pending = false;
  std::vector<spilled> spills;  // the writer's, then finish's
  std::vector<chunk*> kept;     // full chunks never spilled (finish)
  ~buffer() {
    delete current;
    for (chunk* c : kept)
      delete c;
  }
};

std::shared_ptr<tracer> tracer::make(const runtime_core* owner, const runtime_options& options,
                                     bool hosted) {
  std::string path = options.trace_file;
  if (const char* env = std::getenv("WEFT_TRACE"); env != nullptr && *env != '\0') {
    path = numbered(env, environment_uses.fetch_add(1, std::memory_order_relaxed) + 1);
  }
  if (path.empty()) return nullptr;
  std::FILE* out = std::fopen(path.c_str(), "w");
  if (out == nullptr) {
    throw std::system_error(errno, std::generic_category(),
                            "weft: cannot create the trace file '" + path + "'");
  }
  try {
    return std::make_shared<tracer>(owner, options, std::move(path), out, hosted);
  } catch (...) {
    std::fclose(out);
    throw;
  }
}

tracer::tracer(const runtime_core* owner, const runtime_options& options, std::string path,
               std::FILE* out, bool hosted)
    : owner_(owner),
      worker_threads_(options.worker_threads),
      thread_name_(options.thread_name),
      path_(std::move(path)),
      out_(out),
      id_(next_tracer_id.fetch_add(1, std::memory_order_relaxed)),
      epoch_(ticks()),
      epoch_ns_(steady_ns()),
      pid_(static_cast<int>(::getpid())) {
  const std::size_t workers = worker_threads_;
  buffers_.reserve(workers + 8);
  for (std::size_t i = 0; i < workers; ++i) {
    auto b = std::make_unique<buffer>();
    b->tid = static_cast<std::uint32_t>(i + 1);
    b->name = hosted ? thread_name_ + " (host thread)" : thread_name_ + "-w" + std::to_string(i);
    b->current = new chunk;
    buffers_.push_back(std::move(b));
  }
  writer_ = std::thread([this] { writer_main(); });
}

tracer::~tracer() {
  finish([](std::string_view message) {
    std::fprintf(stderr, "%.*s\n", static_cast<int>(message.size()), message.data());
  });
  if (scratch_ != nullptr) std::fclose(scratch_);
  for (chunk* c : spare_)
    delete c;
}

// ---- recording ----

void tracer::record(buffer& b, trace_event e) noexcept {
  if (b.end_pending) {
    b.end_pending = false;
    if (kind_of(e.head) != run_begin_kind)
      record(b, {(e.head & ~std::uint64_t{0xff}) | run_end_kind, 0});
  }
  if (b.current->count == chunk_events) [[unlikely]]
    rotate(b);
  b.current->events[b.current->count++] = e;
}

void tracer::rotate(buffer& b) noexcept {
  chunk* fresh = nullptr;
  {
    std::lock_guard guard(mutex_);
    if (!spare_.empty()) {
      fresh = spare_.back();
      spare_.pop_back();
    }
  }
  if (fresh == nullptr) fresh = new (std::nothrow) chunk;
  if (fresh == nullptr) {
    b.current->count = 0;  // out of memory: this chunk's events are lost, the file stays valid
    return;
  }
  fresh->count = 0;
  {
    std::lock_guard guard(mutex_);
    full_.emplace_back(&b, b.current);
  }
  wake_writer_.notify_one();
  b.current = fresh;
}

tracer::buffer* tracer::local() noexcept {
  if (cache.tracer_id == id_) return static_cast<buffer*>(cache.buffer);
  std::lock_guard guard(mutex_);
  if (finished_) return nullptr;
  const std::thread::id self = std::this_thread::get_id();
  buffer* found = nullptr;
  for (std::size_t i = worker_threads_; i < buffers_.size(); ++i) {
    if (buffers_[i]->thread == self) found = buffers_[i].get();
  }
  if (found == nullptr) {
    try {
      auto b = std::make_unique<buffer>();
      b->tid = static_cast<std::uint32_t>(buffers_.size() + 1);
      b->locked = true;
      b->thread = self;
      char name[32] = {};
      if (::pthread_getname_np(::pthread_self(), name, sizeof name) != 0) name[0] = '\0';
      b->name = std::string(name[0] != '\0' ? name : "thread") + " (" +
                std::to_string(static_cast<long>(::gettid())) + ")";
      b->current = new chunk;
      buffers_.push_back(std::move(b));
      found = buffers_.back().get();
    } catch (...) {
      return nullptr;  // out of memory: this thread records nothing
    }
  }
  cache = {id_, found};
  return found;
}

void tracer::record_local(std::uint8_t kind, std::uint64_t data) noexcept {
  buffer* b = local();
  if (b == nullptr) return;
  std::lock_guard guard(b->lock);
  if (!b->closed) record(*b, event(kind, data));
}

void tracer::record_any(const worker_identity* self, std::uint8_t kind,
                        std::uint64_t data) noexcept {
  if (self != nullptr && &self->runtime() == owner_) {
    record(worker_buffer(self->index()), event(kind, data));
  } else {
    record_local(kind, data);
  }
}

void tracer::run_begin(std::size_t w, void* frame) noexcept {
  buffer& b = worker_buffer(w);
  const std::uint64_t now = ticks();
  b.run_ticks = now;
  record(b, event(run_begin_kind, address(frame), now));
}

void tracer::run_end(std::size_t w) noexcept {
  buffer& b = worker_buffer(w);
  b.run_ticks = 0;
  // No clock read and no event yet: the next event of this buffer records it (record()).
  b.end_pending = true;
}

void tracer::search_begin(std::size_t w) noexcept { record(worker_buffer(w), event(idle_kind, 0)); }

void tracer::park_begin(std::size_t w) noexcept {
  // Ordering: relaxed; a gauge for the file, read by nobody else. Each RMW still sees the latest
  // value in the counter's modification order, so the count itself is exact.
  const int parked = parked_.fetch_add(1, std::memory_order_relaxed) + 1;
  buffer& b = worker_buffer(w);
  const std::uint64_t now = ticks();
  record(b, event(parked_kind, static_cast<std::uint64_t>(parked), now));
  record(b, event(park_begin_kind, 0, now));
}

void tracer::park_end(std::size_t w) noexcept {
  // Ordering: relaxed, as in park_begin.
  const int parked = parked_.fetch_sub(1, std::memory_order_relaxed) - 1;
  buffer& b = worker_buffer(w);
  const std::uint64_t now = ticks();
  record(b, event(park_end_kind, 0, now));
  record(b, event(parked_kind, static_cast<std::uint64_t>(std::max(parked, 0)), now));
}

void tracer::ready_sample(std::size_t w, std::size_t local_ready, std::size_t injected) noexcept {
  buffer& b = worker_buffer(w);
  const std::uint64_t now = ticks();
  record(b, event(ready_kind, local_ready, now));
  record(b, event(injected_kind, injected, now));
}

void tracer::spawned(const worker_identity* self, void* frame, const char* name,
                     bool eager) noexcept {
  if (self != nullptr && &self->runtime() == owner_) {
    buffer& b = worker_buffer(self->index());
    const std::uint64_t now = ticks();
    record(b, event(eager ? spawn_eager_kind : spawn_kind, address(frame), now));
    if (name != nullptr) record(b, event(name_kind, address(name), now));
    return;
  }
  buffer* b = local();
  if (b == nullptr) return;
  std::lock_guard guard(b->lock);
  if (b->closed) return;
  const std::uint64_t now = ticks();
  record(*b, event(eager ? spawn_eager_kind : spawn_kind, address(frame), now));
  if (name != nullptr) record(*b, event(name_kind, address(name), now));
}

void tracer::completed(const worker_identity* self, void* frame) noexcept {
  if (self != nullptr && &self->runtime() == owner_) {
    // The run's begin will do (names only need the order against later spawns, which read the
    // clock): no clock read.
    buffer& b = worker_buffer(self->index());
    record(b, b.run_ticks != 0 ? event(complete_kind, address(frame), b.run_ticks)
                               : event(complete_kind, address(frame)));
    return;
  }
  record_local(complete_kind, address(frame));
}

void tracer::woke(const worker_identity* self, void* frame) noexcept {
  record_any(self, flow_start(wake_flow), address(frame));
}

void tracer::poller_batch(std::uint8_t begin_kind, std::uint8_t flow, void* const* frames,
                          std::size_t count) noexcept {
  buffer* b = local();
  if (b == nullptr) return;
  std::lock_guard guard(b->lock);
  if (b->closed) return;
  const std::uint64_t now = ticks();
  record(*b, event(begin_kind, count, now));
  for (std::size_t i = 0; i < count; ++i)
    record(*b, event(flow, address(frames[i]), now));
  record(*b, event(batch_end_kind, 0));
}

void tracer::timers_fired(void* const* frames, std::size_t count) noexcept {
  poller_batch(timers_begin_kind, flow_start(timer_flow), frames, count);
}

void tracer::io_ready(void* const* frames, std::size_t count) noexcept {
  poller_batch(io_begin_kind, flow_start(io_flow), frames, count);
}

void tracer::call_begin(const std::type_info* type) noexcept {
  record_local(call_begin_kind, type != nullptr ? address(type->name()) : 0);
}

void tracer::call_end() noexcept { record_local(call_end_kind, 0); }

std::uint64_t tracer::to_ns(std::uint64_t t) const noexcept {
  if (t <= epoch_) return 0;
  return static_cast<std::uint64_t>(static_cast<double>(t - epoch_) * ns_per_tick_);
}

// ---- the writer thread ----

void tracer::writer_main() {
  std::unique_lock guard(mutex_);
  for (;;) {
    wake_writer_.wait(guard, [this] { return stop_ || !full_.empty(); });
    if (stop_) return;  // finish() takes what is left
    std::vector<std::pair<buffer*, chunk*>> batch;
    batch.swap(full_);
    guard.unlock();
    for (auto [b, c] : batch)
      spill(*b, c);
    guard.lock();
  }
}

void tracer::spill(buffer& b, chunk* c) {
  // Writer thread (or finish, after joining it). A chunk that cannot be spilled stays in memory.
  if (scratch_ == nullptr && !scratch_failed_) {
    scratch_ = std::tmpfile();
    if (scratch_ == nullptr) {
      scratch_failed_ = true;
      writer_error_ = std::string("cannot create a scratch file: ") + std::strerror(errno);
    }
  }
  if (scratch_ != nullptr) {
    const long offset = std::ftell(scratch_);
    if (offset >= 0 &&
        std::fwrite(c->events, sizeof(trace_event), c->count, scratch_) == c->count) {
      b.spills.push_back({offset, c->count});
      std::lock_guard guard(mutex_);
      if (spare_.size() < 64) {
        spare_.push_back(c);
      } else {
        delete c;
      }
      return;
    }
  }
  b.kept.push_back(c);
}

// ---- the final merge ----

// One buffer's events in order: its spilled chunks, then those kept in memory, then its last.
struct tracer::stream {
  buffer* b = nullptr;
  std::FILE* scratch = nullptr;
  std::size_t next_spill = 0;
  std::size_t next_kept = 0;
  bool current_done = false;
  std::vector<trace_event> loaded;
  const trace_event* at = nullptr;
  const trace_event* end = nullptr;

  bool load_next() {
    while (at == end) {
      if (next_spill < b->spills.size()) {
        const spilled s = b->spills[next_spill++];
        loaded.resize(s.count);
        if (std::fseek(scratch, s.offset, SEEK_SET) != 0 ||
            std::fread(loaded.data(), sizeof(trace_event), s.count, scratch) != s.count) {
          loaded.clear();  // unreadable: the chunk is skipped
        }
        at = loaded.data();
        end = at + loaded.size();
      } else if (next_kept < b->kept.size()) {
        const chunk* c = b->kept[next_kept++];
        at = c->events;
        end = at + c->count;
      } else if (!current_done) {
        current_done = true;
        at = b->current->events;
        end = at + b->current->count;
      } else {
        return false;
      }
    }
    return true;
  }
};

namespace {

class json_out {
 public:
  json_out(std::FILE* f, int pid) : f_(f), pid_(pid) {}

  void begin_event() {
    std::fputs(first_ ? "\n" : ",\n", f_);
    first_ = false;
  }
  void str(std::string_view s) { std::fputs(quoted(s).c_str(), f_); }
  static std::string quoted(std::string_view s) {
    std::string q = "\"";
    for (const char ch : s) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == '"' || c == '\\') {
        q += '\\';
        q += ch;
      } else if (c < 0x20) {
        char escaped[8];
        std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
        q += escaped;
      } else {
        q += ch;
      }
    }
    return q + "\"";
  }
  // Microseconds with nanosecond digits.
  void ts(std::uint64_t ns) {
    std::fprintf(f_, "%llu.%03llu", static_cast<unsigned long long>(ns / 1000),
                 static_cast<unsigned long long>(ns % 1000));
  }
  void head(const char* ph, std::uint32_t tid, std::uint64_t t) {
    begin_event();
    std::fprintf(f_, "{\"ph\":\"%s\",\"pid\":%d,\"tid\":%u,\"ts\":", ph, pid_, tid);
    ts(t);
  }
  void raw(const char* s) { std::fputs(s, f_); }
  std::FILE* file() { return f_; }

 private:
  std::FILE* f_;
  int pid_;
  bool first_ = true;
};

std::string demangled(const char* mangled) {
  if (mangled == nullptr) return "?";
  int status = 0;
  char* readable = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string name = status == 0 && readable != nullptr ? readable : mangled;
  std::free(readable);
  return name;
}

}  // namespace

void tracer::finish(const report_fn& report) noexcept {
  {
    std::lock_guard guard(mutex_);
    if (finished_) return;
    finished_ = true;
    stop_ = true;
  }
  wake_writer_.notify_one();
  if (writer_.joinable()) writer_.join();
  try {
    // No buffer is added from now on (local() sees finished_); close the other threads' buffers.
    std::vector<buffer*> all;
    {
      std::lock_guard guard(mutex_);
      for (auto& b : buffers_)
        all.push_back(b.get());
    }
    for (buffer* b : all) {
      if (!b->locked) continue;  // a worker's: its thread was joined
      std::lock_guard guard(b->lock);
      b->closed = true;
    }
    // Chunks handed over after the writer stopped follow their buffers' spilled ones.
    std::vector<std::pair<buffer*, chunk*>> rest;
    {
      std::lock_guard guard(mutex_);
      rest.swap(full_);
    }
    for (auto [b, c] : rest)
      b->kept.push_back(c);
    // Ticks to nanoseconds: the counter's rate over the whole trace, against the steady clock.
    const std::uint64_t end_ticks = ticks();
    const std::uint64_t end_ns = steady_ns();
    if (use_tsc && end_ticks > epoch_ && end_ns > epoch_ns_) {
      ns_per_tick_ =
          static_cast<double>(end_ns - epoch_ns_) / static_cast<double>(end_ticks - epoch_);
    }
    write_json(all);
  } catch (const std::exception& e) {
    report(std::string("weft: writing the trace file '") + path_ + "' failed: " + e.what());
  }
  const bool failed = std::ferror(out_) != 0;
  if (std::fclose(out_) != 0 || failed) {
    report("weft: writing the trace file '" + path_ + "' failed: " + std::strerror(errno));
  }
  if (!writer_error_.empty()) {
    report("weft: trace file '" + path_ + "': " + writer_error_ +
           "; the events were kept in memory");
  }
}

void tracer::write_json(std::vector<buffer*>& all) {
  json_out out(out_, pid_);
  out.raw("{\"displayTimeUnit\":\"ns\",\"otherData\":{\"producer\":\"weft\"},\"traceEvents\":[");
  out.begin_event();
  std::fprintf(out_,
               "{\"ph\":\"M\",\"pid\":%d,\"name\":\"process_name\",\"args\":{\"name\":", pid_);
  out.str(thread_name_);
  out.raw("}}");
  const auto thread_meta = [&](std::uint32_t tid, const std::string& name, std::size_t order) {
    out.begin_event();
    std::fprintf(out_,
                 "{\"ph\":\"M\",\"pid\":%d,\"tid\":%u,\"name\":\"thread_name\",\"args\":{\"name\":",
                 pid_, tid);
    out.str(name);
    out.raw("}}");
    out.begin_event();
    std::fprintf(out_,
                 "{\"ph\":\"M\",\"pid\":%d,\"tid\":%u,\"name\":\"thread_sort_index\",\"args\":{"
                 "\"sort_index\":%zu}}",
                 pid_, tid, order);
  };
  for (std::size_t i = 0; i < all.size(); ++i)
    thread_meta(all[i]->tid, all[i]->name, i);

  // The k-way merge, by time; at equal times, arrows start first (a wake and the run it causes
  // may read the same clock value on two cores). A run_end not stamped (its buffer's last event)
  // sorts first and ends its slice at its thread's last time.
  std::vector<stream> streams(all.size());
  struct head_entry {
    std::uint64_t ns;
    int rank;
    std::size_t stream;
    bool operator>(const head_entry& o) const {
      return ns != o.ns ? ns > o.ns : rank != o.rank ? rank > o.rank : stream > o.stream;
    }
  };
  const auto entry_of = [this](const trace_event& e, std::size_t i) {
    const std::uint8_t kind = kind_of(e.head);
    const int rank = kind >= flow_kind || kind == spawn_kind || kind == spawn_eager_kind ? 0 : 1;
    return head_entry{to_ns(ticks_of(e.head)), rank, i};
  };
  std::priority_queue<head_entry, std::vector<head_entry>, std::greater<>> heads;
  for (std::size_t i = 0; i < all.size(); ++i) {
    streams[i].b = all[i];
    streams[i].scratch = scratch_;
    if (streams[i].load_next()) heads.push(entry_of(*streams[i].at, i));
  }

  struct thread_state {
    std::uint64_t last = 0;  // the last time written on this track (kept non-decreasing)
    // The open slices' name, category and arguments: an E repeats its B's (speedscope matches
    // them by name).
    std::vector<std::string> open;
    bool run_open = false;  // the top slice is a task run (the next run's begin ends it)
  };
  std::vector<thread_state> threads(all.size());
  std::unordered_map<std::uint64_t, const char*> names;  // spawned frames (null: no name)
  std::uint64_t last_spawn = 0;                          // the frame a name_kind names
  struct open_flow {
    std::uint64_t id;
    std::uint32_t type;
  };
  std::unordered_map<std::uint64_t, open_flow> pending;  // frame -> flow not finished yet
  std::vector<open_flow> unfinished;                     // replaced before they finished
  std::unordered_map<const char*, std::string> type_names;
  std::uint64_t next_flow = 0;
  std::uint64_t last_ns = 0;

  while (!heads.empty()) {
    const head_entry h = heads.top();
    heads.pop();
    stream& s = streams[h.stream];
    const trace_event e = *s.at++;
    if (s.load_next()) heads.push(entry_of(*s.at, h.stream));

    thread_state& th = threads[h.stream];
    const std::uint32_t tid = all[h.stream]->tid;
    const std::uint8_t kind = kind_of(e.head);
    std::uint64_t t = std::max(h.ns, th.last);
    last_ns = std::max(last_ns, t);
    const auto begin = [&](std::string tail) {
      out.head("B", tid, t);
      out.raw(tail.c_str());
      th.open.push_back(std::move(tail));
    };
    const auto counter = [&](const char* name, const std::string& series) {
      out.head("C", tid, t);
      std::fprintf(out_, ",\"name\":\"%s\",\"args\":{\"%s\":%llu}}", name, series.c_str(),
                   static_cast<unsigned long long>(e.data));
    };
    const auto start_flow = [&](std::uint32_t type) {
      const open_flow flow{++next_flow, type};
      if (auto it = pending.find(e.data); it != pending.end()) {
        unfinished.push_back(it->second);
        it->second = flow;
      } else {
        pending.emplace(e.data, flow);
      }
      if (th.open.empty()) {
        // Outside any slice (a thread that is not a worker, or a worker between tasks): a short
        // slice of its own, which the arrow starts from.
        out.head("X", tid, t);
        std::fprintf(out_, ",\"dur\":0.002,\"name\":\"%s\",\"cat\":\"weft\"}", flow_names[type]);
        ++t;
        out.head("s", tid, t);
        std::fprintf(out_, ",\"name\":\"%s\",\"cat\":\"flow\",\"id\":%llu}", flow_names[type],
                     static_cast<unsigned long long>(flow.id));
        ++t;
      } else {
        out.head("s", tid, t);
        std::fprintf(out_, ",\"name\":\"%s\",\"cat\":\"flow\",\"id\":%llu}", flow_names[type],
                     static_cast<unsigned long long>(flow.id));
      }
    };
    switch (kind) {
      case run_begin_kind: {
        if (th.run_open && !th.open.empty()) {
          // A busy worker records no end: the next run's begin is the previous one's end.
          out.head("E", tid, t);
          out.raw(th.open.back().c_str());
          th.open.pop_back();
        }
        th.run_open = true;
        const auto it = names.find(e.data);
        begin(",\"name\":" +
              json_out::quoted(it != names.end() && it->second != nullptr ? it->second : "task") +
              ",\"cat\":\"task\"}");
        if (auto flow = pending.find(e.data); flow != pending.end()) {
          ++t;  // inside the slice just begun
          out.head("f", tid, t);
          std::fprintf(out_, ",\"bp\":\"e\",\"name\":\"%s\",\"cat\":\"flow\",\"id\":%llu}",
                       flow_names[flow->second.type],
                       static_cast<unsigned long long>(flow->second.id));
          pending.erase(flow);
        }
        break;
      }
      case run_end_kind:
        th.run_open = false;
        [[fallthrough]];
      case park_end_kind:
      case batch_end_kind:
      case call_end_kind:
        if (!th.open.empty()) {
          out.head("E", tid, t);
          out.raw(th.open.back().c_str());
          th.open.pop_back();
        }
        break;
      case park_begin_kind:
        begin(",\"name\":\"parked\",\"cat\":\"idle\"}");
        break;
      case ready_kind:
        counter("ready tasks", all[h.stream]->name);
        break;
      case parked_kind:
        counter("parked workers", "value");
        break;
      case injected_kind:
        counter("injection queue", "value");
        break;
      case spawn_kind:
      case spawn_eager_kind:
        names[e.data] = nullptr;
        last_spawn = e.data;
        if (kind == spawn_kind) start_flow(spawn_flow);
        break;
      case name_kind:
        names[last_spawn] = reinterpret_cast<const char*>(e.data);
        break;
      case complete_kind:
        names.erase(e.data);
        break;
      case timers_begin_kind:
      case io_begin_kind:
        begin(std::string(",\"name\":\"") +
              (kind == timers_begin_kind ? "timers fired" : "I/O ready") +
              "\",\"cat\":\"poller\",\"args\":{\"tasks\":" + std::to_string(e.data) + "}}");
        break;
      case call_begin_kind: {
        const auto* mangled = reinterpret_cast<const char*>(e.data);
        auto it = type_names.find(mangled);
        if (it == type_names.end()) it = type_names.emplace(mangled, demangled(mangled)).first;
        begin(",\"name\":\"to_thread\",\"cat\":\"blocking\",\"args\":{\"call\":" +
              json_out::quoted(it->second) + "}}");
        break;
      }
      default:
        if (kind >= flow_kind && kind <= flow_start(io_flow)) start_flow(kind - flow_kind);
        break;
    }
    th.last = t;
  }

  // Slices still open (a blocking call that outlived the runtime) end with their thread's last
  // event; flows whose task never ran again (queued when the runtime stopped, or woken twice
  // before running) finish on a track of their own at the end of the trace.
  for (std::size_t i = 0; i < all.size(); ++i) {
    for (; !threads[i].open.empty(); threads[i].open.pop_back()) {
      out.head("E", all[i]->tid, threads[i].last);
      out.raw(threads[i].open.back().c_str());
    }
  }
  for (auto& [frame, flow] : pending)
    unfinished.push_back(flow);
  if (!unfinished.empty()) {
    const auto tid = static_cast<std::uint32_t>(all.size() + 1);
    thread_meta(tid, "not run before shutdown", all.size());
    const std::uint64_t end = last_ns + 1000;
    out.head("B", tid, end);
    const char* tail = ",\"name\":\"queued at shutdown\",\"cat\":\"weft\"}";
    out.raw(tail);
    for (const open_flow& flow : unfinished) {
      out.head("f", tid, end + 1);
      std::fprintf(out_, ",\"bp\":\"e\",\"name\":\"%s\",\"cat\":\"flow\",\"id\":%llu}",
                   flow_names[flow.type], static_cast<unsigned long long>(flow.id));
    }
    out.head("E", tid, end + 2);
    out.raw(tail);
  }
  out.raw("\n]}\n");
}

}  // namespace weft::detail
