// scheduler/trace.hpp: the trace file (runtime_options::trace_file, WEFT_TRACE), in the Chrome
// trace event format that Perfetto, chrome://tracing and speedscope open (docs/diagnostics.md).
//
// Recording. Every thread records into its own buffer, a chain of fixed-size chunks of 16-byte
// events (a timestamp and a kind in one word, a frame address or a value in the other); a worker's
// buffer is found by its index, any other thread's (the poller, the blocking pool's threads, the
// thread that calls block_on) through a thread-local cache. A worker records without any lock or
// atomic: its buffer is touched by that worker alone until the runtime has joined it. Other threads
// may still record while the runtime shuts down (a blocking call that outlives it, a cancel() from
// outside), so each of their buffers has its own mutex, contended only by the final flush. A full
// chunk is handed to the tracer's writer thread (one short lock per 4,096 events), which appends it
// to a scratch file and returns at once; nothing on a worker ever waits for the disk.
//
// Writing. At shutdown (after the workers and the poller are joined) every buffer is merged in
// timestamp order (each buffer is in order already: a k-way merge) and the JSON is written. The
// merge resolves what the recording threads could not know: the name of a resumed frame (from the
// spawn that made it), which flow start a resumption finishes (a spawn or wake of the same frame,
// the latest one not yet finished), slices left open, and flows left unfinished by tasks that
// were still queued at shutdown, so the file is well formed however the run ended.
//
// Overhead when off: each hook is one load and one predictable branch on runtime_core::trace (null
// when tracing is off), set before any thread starts and never changed.
//
// Overhead when on (bench/trace_overhead): the clock is the CPU's time-stamp counter where it is
// invariant (scaled to the steady clock at the end), else the steady clock. A task run reads it
// once: at its begin. Its end is stamped with the next event its worker records (the next run's
// begin, when busy; the search or park that follows, when not), so a slice includes the few
// instructions that pick the next task, and a busy worker records one event per run. A yield draws
// no arrow (the task is back in a later run; the event would double the cost of yield-heavy code).
// Every arrow reads the clock: a wake stamped earlier than it happened could be paired with a run
// of the same frame that came before it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <typeinfo>
#include <vector>

namespace weft {
struct runtime_options;
}

namespace weft::detail {

class runtime_core;
class worker_identity;

struct trace_event {
  std::uint64_t head;  // clock ticks << 8 | kind (trace.cpp)
  std::uint64_t data;  // a frame's address, a count, a static string
};

class tracer {
 public:
  // A tracer for the runtime `owner` if tracing is asked for (WEFT_TRACE, else
  // options.trace_file), else null. Throws std::system_error naming the path if the file cannot
  // be created. `owner` only identifies the runtime's workers (worker_identity::runtime()); the
  // tracer never reaches into it, so it may outlive it (the blocking pool shares it). `hosted`: a
  // frame executor's core, whose one worker's track is its host thread's.
  static std::shared_ptr<tracer> make(const runtime_core* owner, const runtime_options& options,
                                      bool hosted = false);
  tracer(const runtime_core* owner, const runtime_options& options, std::string path,
         std::FILE* out, bool hosted = false);
  ~tracer();
  tracer(const tracer&) = delete;
  tracer& operator=(const tracer&) = delete;

  // ---- hooks (each called behind `if (trace != nullptr)`) ----
  // Worker `w` resumes `frame` (one slice per resumption) / returns from it.
  void run_begin(std::size_t w, void* frame) noexcept;
  void run_end(std::size_t w) noexcept;
  // Worker `w` parks / wakes from parking (a slice, and the "parked workers" counter).
  void park_begin(std::size_t w) noexcept;
  void park_end(std::size_t w) noexcept;
  // Worker `w` found nothing to run and starts searching (stamps the end of its last run).
  void search_begin(std::size_t w) noexcept;
  // A frame executor's host thread returns from run_for / run_until_idle (stamps the end of its
  // last run, which would otherwise stretch over the host's own work until the next frame).
  void host_returns(std::size_t w) noexcept { search_begin(w); }
  // Worker `w`'s maintenance tick: its ready tasks and the injection queue's length.
  void ready_sample(std::size_t w, std::size_t local_ready, std::size_t injected) noexcept;
  // A task spawned, completed, or woken, on the calling thread (`self`: its worker).
  void spawned(const worker_identity* self, void* frame, const char* name, bool eager) noexcept;
  void completed(const worker_identity* self, void* frame) noexcept;
  void woke(const worker_identity* self, void* frame) noexcept;
  // The poller makes `count` tasks ready: timers that expired, or descriptors that became ready.
  void timers_fired(void* const* frames, std::size_t count) noexcept;
  void io_ready(void* const* frames, std::size_t count) noexcept;
  // A blocking-pool thread starts / ends a to_thread call of `type`.
  void call_begin(const std::type_info* type) noexcept;
  void call_end() noexcept;

  // Writes the file: the runtime's threads are joined. Later records are dropped. Reports a
  // write error through `report` (the runtime's log; stderr when the tracer's destructor has to
  // finish a trace nobody finished). Idempotent.
  using report_fn = std::function<void(std::string_view)>;
  void finish(const report_fn& report) noexcept;

  [[nodiscard]] const std::string& path() const noexcept { return path_; }

  static constexpr std::size_t chunk_events = 4096;

 private:
  struct chunk;
  struct buffer;
  struct stream;
  struct spilled {
    long offset;
    std::size_t count;
  };

  buffer& worker_buffer(std::size_t w) noexcept { return *buffers_[w]; }
  // The calling thread's buffer (not a worker of this runtime), made on first use.
  buffer* local() noexcept;
  void record(buffer& b, trace_event e) noexcept;
  void record_local(std::uint8_t kind, std::uint64_t data) noexcept;
  void record_any(const worker_identity* self, std::uint8_t kind, std::uint64_t data) noexcept;
  void poller_batch(std::uint8_t begin_kind, std::uint8_t flow_kind, void* const* frames,
                    std::size_t count) noexcept;
  // Hands `b`'s full chunk to the writer and starts a new one (b's owner, or b's lock held).
  void rotate(buffer& b) noexcept;
  // Ticks to nanoseconds since the trace began (finish() calibrates).
  [[nodiscard]] std::uint64_t to_ns(std::uint64_t ticks) const noexcept;
  void writer_main();
  void spill(buffer& b, chunk* c);
  void write_json(std::vector<buffer*>& all);

  const runtime_core* const owner_;
  const std::size_t worker_threads_;  // the owner's, one buffer each, made up front
  const std::string thread_name_;     // the owner's, the trace's process name
  const std::string path_;
  std::FILE* out_;
  std::FILE* scratch_ = nullptr;
  const std::uint64_t id_;        // unique in the process: the thread-local cache's key
  const std::uint64_t epoch_;     // ticks when the trace began
  const std::uint64_t epoch_ns_;  // the steady clock then
  double ns_per_tick_ = 1.0;      // set by finish()
  const int pid_;
  // Workers' buffers first (index = worker), then the other threads' in order of first use.
  std::vector<std::unique_ptr<buffer>> buffers_;
  std::mutex mutex_;  // guards: buffers_ past the workers, full_, stop_, finished_
  std::condition_variable wake_writer_;
  std::vector<std::pair<buffer*, chunk*>> full_;
  std::vector<chunk*> spare_;  // spilled chunks, for reuse (no page faults on the hot path)
  bool stop_ = false;
  bool finished_ = false;
  bool scratch_failed_ = false;  // writer only (then finish)
  std::thread writer_;
  std::string writer_error_;  // writer only (then finish)
  // Parked workers now, for the counter (tracing on only: an RMW per park and per wake-up).
  std::atomic<int> parked_{0};
};

}  // namespace weft::detail
