// weft/net/process_pool.hpp: weft::process_pool, Python's ProcessPoolExecutor where a crash fails
// only its own call.
//
//   WEFT_PROCESS_FUNCTION(checksum, [](const std::string& data) { return crc32(data); });
//
//   int main(int argc, char** argv) {
//     weft::process_pool::serve_if_worker(argc, argv);   // first: a worker never returns from it
//     return weft::run(async_main());
//   }
//   weft::task<int> async_main() {
//     weft::process_pool pool({.workers = 4});
//     std::uint32_t sum = co_await pool.call(checksum, std::string("payload"));
//     std::vector<std::uint32_t> all = co_await pool.map(checksum, files, /*chunk_size=*/16);
//     co_await pool.close();
//   }
//
// Workers are processes started with posix_spawn (never fork: a threaded process cannot fork
// safely) running the program's own executable (/proc/self/exe), or the one named in
// process_pool_options::executable, with the environment variable WEFT_PROCESS_WORKER set.
// serve_if_worker() sees it, serves calls on descriptor 3 (one end of a socketpair) until the pool
// closes that socket, and exits; in a normal run it returns at once. Call it before anything
// else in main, or from a static initializer placed after the registrations in the same
// translation unit (tests do that, since doctest owns their main). A worker dies with the thread
// that started it (PR_SET_PDEATHSIG, SIGKILL): the pool's runtime's threads, so a pool must not
// outlive its runtime.
//
// Functions cross by name: WEFT_PROCESS_FUNCTION(name, callable) at namespace scope defines a
// `const weft::process_function<R(Args...)> name` and registers it in every process that runs
// the program. Arguments are converted to the function's parameter types and encoded before the
// call is queued (so they need not outlive the call expression); results are decoded when they
// arrive. See <weft/net/process_codec.hpp> for the codec.
//
// What a call can end with:
//   the result                 the function returned
//   weft::remote_error         the function threw; the message carries its type and what()
//   weft::codec_error          an argument or the result could not be encoded or decoded
//   weft::worker_crashed       the worker died while running this call (a signal, exit(n), or
//                              running out of memory under memory_limit); it is replaced
//   weft::timeout_error        the call ran past call_timeout; its worker was killed and replaced
//   weft::cancelled_error      the awaiting task was cancelled: under on_cancel::kill_worker (the
//                              default) a running call's worker is killed and replaced; under
//                              on_cancel::finish the call runs to its end and its result is
//                              dropped. A call waiting for a place never starts; one already
//                              sent to a busy worker (pipeline_depth) runs, its result dropped.
//   weft::process_pool_closed  the pool was closed before the call got a worker
// Every other call, queued or running on another worker, is unaffected by any of these.
//
// Costs: one call is three coroutine frames, a zero-timeout poll when its worker was idle (is it
// alive?), one send and a recv or two on the socketpair, and a wake-up through the runtime's
// poller thread; the worker is a plain blocking loop. Up to pipeline_depth requests wait queued on
// a worker, so a busy worker goes on to the next one without sleeping.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <ranges>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include <weft/net/process_codec.hpp>
#include <weft/primitives/bounded.hpp>
#include <weft/scheduler/errors.hpp>
#include <weft/scheduler/export.hpp>
#include <weft/scheduler/task.hpp>

namespace weft {

struct process_pool_options {
  // Worker processes; 0 means the number of CPUs this process may run on.
  std::size_t workers = 0;
  // Requests queued on one worker at a time, the running one included (0 counts as 1). With more
  // than one, a worker reads its next request as soon as it replied, without waiting for the
  // parent (the throughput of short calls roughly doubles); a call may then wait behind a long
  // one on the same worker. A crash still fails only the call that was running: the requests
  // queued behind it never started and are sent to another worker.
  std::size_t pipeline_depth = 2;
  // The program workers run; empty means this program (/proc/self/exe). It must call
  // serve_if_worker() and register the same functions.
  std::string executable;
  // Extra command-line arguments for the workers (argv[0] is the executable).
  std::vector<std::string> arguments;
  // Extra "NAME=value" entries added to the workers' environment (e.g. sanitizer options).
  std::vector<std::string> environment;
  // Address space per worker in bytes (RLIMIT_AS, set by the worker itself); 0 means no limit. A
  // call that runs out (std::bad_alloc escapes the function) fails with worker_crashed and its
  // worker is replaced. Does not combine with AddressSanitizer or ThreadSanitizer builds, which
  // reserve terabytes of address space.
  std::size_t memory_limit = 0;
  // A call that runs longer is failed with timeout_error and its worker killed; 0 means none.
  std::chrono::milliseconds call_timeout{0};
  // A worker is retired (closed and replaced) after this many calls; 0 means never.
  std::size_t max_calls_per_worker = 0;
  // What cancelling the task that awaits a running call does to the worker.
  enum class on_cancel {
    kill_worker,  // kill it at once (the call's effects stop where they are) and start another
    finish,       // let the call finish, drop its result, and keep the worker
  };
  on_cancel cancel = on_cancel::kill_worker;
  // close() waits this long for running and queued calls, then kills the workers still busy.
  std::chrono::milliseconds shutdown_timeout{5000};
  // Largest request or reply in bytes; a bigger one is a codec_error of its call.
  std::size_t max_message_size = std::size_t{1} << 30;
};

// The worker died while running the call: killed by a signal (signal() != 0) or exited
// (exit_code() >= 0), or it ran out of memory under memory_limit (out_of_memory()).
class WEFT_API worker_crashed : public std::runtime_error {
 public:
  worker_crashed(const std::string& message, pid_t pid, int signal, int exit_code,
                 bool out_of_memory);
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] int signal() const noexcept { return signal_; }
  [[nodiscard]] int exit_code() const noexcept { return exit_code_; }
  [[nodiscard]] bool out_of_memory() const noexcept { return out_of_memory_; }

 private:
  pid_t pid_;
  int signal_;
  int exit_code_;
  bool out_of_memory_;
};

// The function threw in the worker. what() is "<function>: <exception type>: <its what()>".
class WEFT_API remote_error : public std::runtime_error {
 public:
  remote_error(const std::string& message, std::string type_name);
  // The C++ type of the exception thrown in the worker, demangled.
  [[nodiscard]] const std::string& type_name() const noexcept { return type_name_; }

 private:
  std::string type_name_;
};

// The pool was closed (close() or its destructor) before the call got a worker.
class WEFT_API process_pool_closed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <class Signature>
class process_function;

namespace detail {

enum class process_request_kind : unsigned char { call = 1, chunk = 2 };

// The type-erased part of a registered function, used by the worker's serve loop.
class WEFT_API process_function_base {
 public:
  process_function_base(const char* name, const std::type_info& signature);
  process_function_base(const process_function_base&) = delete;
  process_function_base& operator=(const process_function_base&) = delete;

  [[nodiscard]] const char* name() const noexcept { return name_; }
  [[nodiscard]] std::uint64_t signature() const noexcept { return signature_; }
  // Worker side: decodes the arguments in `in`, runs the function and appends the encoded result
  // to `out`. Throws what the function throws, or codec_error.
  virtual void invoke(std::string_view in, std::string& out) const = 0;
  // Worker side, for map: `in` is a count and that many encoded arguments; appends the count
  // and the encoded results.
  virtual void invoke_chunk(std::string_view in, std::string& out) const = 0;

 protected:
  ~process_function_base() = default;

 private:
  const char* name_;
  std::uint64_t signature_;
};

WEFT_API std::string demangle(const char* mangled);
template <class T>
std::string type_name() {
  return demangle(typeid(T).name());
}

// codec_error for a failed encode or decode: "<function>: cannot <what> (type <type>): <why>".
[[noreturn]] WEFT_API void throw_codec_failure(const char* function, const char* what,
                                               const std::string& type, const std::exception& why);

// Starts a request frame in `out` (the header, the function's name and signature); the encoded
// arguments follow.
WEFT_API void begin_request(std::string& out, process_request_kind kind,
                            const process_function_base& function);

class process_pool_core;
// Runs one encoded request on a worker and returns the encoded result (the reply's payload).
WEFT_API task<std::string> run_process_request(std::shared_ptr<process_pool_core> core,
                                               const process_function_base* function,
                                               std::string request);
WEFT_API std::size_t process_pool_width(const process_pool_core& core) noexcept;

template <class P, class A>
void encode_argument(byte_writer& out, A&& value, const process_function_base& fn,
                     std::size_t index) {
  try {
    if constexpr (std::is_same_v<std::remove_cvref_t<A>, P>) {
      codec<P>::encode(out, value);
    } else {
      codec<P>::encode(out, P(std::forward<A>(value)));
    }
  } catch (const std::exception& e) {
    const std::string what = "encode argument " + std::to_string(index + 1);
    throw_codec_failure(fn.name(), what.c_str(), type_name<P>(), e);
  }
}

template <class T>
T decode_value(byte_reader& in, const process_function_base& fn, const char* what) {
  try {
    return codec<T>::decode(in);
  } catch (const std::exception& e) {
    throw_codec_failure(fn.name(), what, type_name<T>(), e);
  }
}

inline void expect_end(const byte_reader& in, const process_function_base& fn, const char* what) {
  if (in.remaining() != 0) {
    throw_codec_failure(fn.name(), what, "the whole message",
                        codec_error(std::to_string(in.remaining()) + " bytes left over"));
  }
}

template <class R>
task<R> finish_process_call(std::shared_ptr<process_pool_core> core,
                            const process_function_base* fn, std::string request,
                            std::exception_ptr encode_failure) {
  if (encode_failure) std::rethrow_exception(encode_failure);
  std::string reply = co_await run_process_request(std::move(core), fn, std::move(request));
  byte_reader in(reply);
  if constexpr (!std::is_void_v<R>) {
    R result = decode_value<R>(in, *fn, "decode the result");
    expect_end(in, *fn, "decode the result");
    co_return result;
  } else {
    expect_end(in, *fn, "decode the result");
  }
}

template <class R>
constexpr bool result_encodable() {
  if constexpr (std::is_void_v<R>) {
    return true;
  } else {
    return encodable<R>;
  }
}

template <class F>
struct function_signature;
template <class R, class... P>
struct function_signature<std::function<R(P...)>> {
  using type = R(P...);
};

template <class F>
auto make_process_function(const char* name, F fn) {
  using signature = typename function_signature<decltype(std::function(fn))>::type;
  return process_function<signature>(name, std::move(fn));
}

}  // namespace detail

// A function registered for process_pool calls (made by WEFT_PROCESS_FUNCTION). Parameters and
// the result must be encodable (void results are allowed); parameters are taken by value or by
// const reference.
template <class R, class... P>
class process_function<R(P...)> final : public detail::process_function_base {
 public:
  template <class F>
  process_function(const char* name, F fn)
      : process_function_base(name, typeid(R(P...))), fn_(std::move(fn)) {
    static_assert((encodable<std::decay_t<P>> && ...),
                  "weft: every parameter of a process function needs a codec");
    static_assert(detail::result_encodable<R>(),
                  "weft: the result of a process function needs a codec");
  }

  void invoke(std::string_view in, std::string& out) const override {
    byte_reader reader(in);
    auto args = decode_arguments(reader, std::index_sequence_for<P...>{});
    detail::expect_end(reader, *this, "decode the arguments");
    if constexpr (std::is_void_v<R>) {
      std::apply(fn_, std::move(args));
    } else {
      R result = std::apply(fn_, std::move(args));
      encode_result(out, result);
    }
  }

  void invoke_chunk(std::string_view in, std::string& out) const override {
    if constexpr (sizeof...(P) == 1 && !std::is_void_v<R>) {
      using arg = std::decay_t<std::tuple_element_t<0, std::tuple<P...>>>;
      byte_reader reader(in);
      const std::size_t count = reader.get_count(1);
      byte_writer writer(out);
      writer.put(static_cast<std::uint64_t>(count));
      for (std::size_t i = 0; i < count; ++i) {
        R result = fn_(detail::decode_value<arg>(reader, *this, "decode an item"));
        encode_result(out, result);
      }
      detail::expect_end(reader, *this, "decode the items");
    } else {
      throw std::logic_error(std::string(name()) + " takes no single argument: it cannot map");
    }
  }

 private:
  template <std::size_t... I>
  auto decode_arguments(byte_reader& in, std::index_sequence<I...>) const {
    // Braced initialization evaluates left to right, the order the arguments were encoded.
    return std::tuple<std::decay_t<P>...>{detail::decode_value<std::decay_t<P>>(
        in, *this, ("decode argument " + std::to_string(I + 1)).c_str())...};
  }
  template <class V>
  void encode_result(std::string& out, const V& value) const {
    try {
      byte_writer writer(out);
      codec<V>::encode(writer, value);
    } catch (const std::exception& e) {
      detail::throw_codec_failure(name(), "encode the result", detail::type_name<V>(), e);
    }
  }

  std::function<R(P...)> fn_;
};

// Defines `const weft::process_function<...> name` for `callable` (a function or a lambda with
// one call signature) and registers it under "name" in every process of the program.
#define WEFT_PROCESS_FUNCTION(name, ...) \
  inline const auto name = ::weft::detail::make_process_function(#name, __VA_ARGS__)

// Counters since the pool started.
struct process_pool_stats {
  std::uint64_t started = 0;   // worker processes started (first ones and replacements)
  std::uint64_t crashed = 0;   // workers that died while running a call
  std::uint64_t killed = 0;    // workers killed by the pool (timeout, cancellation, shutdown)
  std::uint64_t recycled = 0;  // workers retired after max_calls_per_worker
  std::uint64_t calls = 0;     // requests that completed with a reply (chunks count once)
};

class WEFT_API process_pool {
 public:
  // Starts the workers. Must be called from a task of the runtime that will run the calls (the
  // workers' pipes are watched by its poller); throws std::system_error if a worker cannot be
  // started, std::logic_error outside a runtime or inside a worker.
  explicit process_pool(process_pool_options options = {});
  // Without close(): kills the workers (SIGKILL); calls still running fail with worker_crashed,
  // queued ones with process_pool_closed. Every worker is still reaped.
  ~process_pool();
  process_pool(const process_pool&) = delete;
  process_pool& operator=(const process_pool&) = delete;

  // In a process started as a worker: serves calls until the pool closes the connection, then
  // exits the process (never returns). Elsewhere: returns at once.
  static void serve_if_worker();
  static void serve_if_worker(int /*argc*/, char** /*argv*/) { serve_if_worker(); }

  // fn(args...) in a worker process. The arguments are converted to fn's parameter types and
  // encoded now; a codec failure is thrown when the returned task is awaited.
  template <class R, class... P, class... A>
  requires(sizeof...(P) == sizeof...(A) && (std::is_constructible_v<std::decay_t<P>, A&&> &&
                                            ...)) task<R> call(const process_function<R(P...)>& fn,
                                                               A&&... args)
  const {
    std::string request;
    std::exception_ptr failure;
    try {
      detail::begin_request(request, detail::process_request_kind::call, fn);
      byte_writer out(request);
      encode_all<P...>(out, fn, std::index_sequence_for<A...>{}, std::forward<A>(args)...);
    } catch (...) {
      failure = std::current_exception();
    }
    return detail::finish_process_call<R>(core_, &fn, std::move(request), failure);
  }

  // fn(item) for every item of `items`, results in input order. Items go to the workers in chunks
  // of `chunk_size` (one request each), at most pipeline_depth chunks per worker in flight. Fails
  // as gather does: the first failed chunk cancels the others (which then follow the on_cancel
  // option) and its error is rethrown. `items` must outlive the call (it does when awaited at
  // once).
  template <class R, class P, std::ranges::forward_range Range>
  task<std::vector<R>> map(const process_function<R(P)>& fn, const Range& items,
                           std::size_t chunk_size = 1) const {
    static_assert(!std::is_void_v<R>, "weft::process_pool::map: the function returns nothing");
    if (chunk_size == 0) throw std::invalid_argument("weft::process_pool::map: chunk_size is 0");
    using iterator = std::ranges::iterator_t<const Range>;
    std::vector<std::pair<iterator, std::size_t>> chunks;
    for (auto it = std::ranges::begin(items); it != std::ranges::end(items);) {
      std::size_t n = 0;
      auto start = it;
      while (n < chunk_size && it != std::ranges::end(items)) {
        ++it;
        ++n;
      }
      chunks.emplace_back(start, n);
    }
    auto run_chunk = [core = core_,
                      &fn](const std::pair<iterator, std::size_t>& chunk) -> task<std::vector<R>> {
      std::string request;
      detail::begin_request(request, detail::process_request_kind::chunk, fn);
      byte_writer out(request);
      out.put(static_cast<std::uint64_t>(chunk.second));
      auto it = chunk.first;
      for (std::size_t i = 0; i < chunk.second; ++i, ++it)
        detail::encode_argument<std::decay_t<P>>(out, *it, fn, 0);
      std::string reply = co_await detail::run_process_request(core, &fn, std::move(request));
      byte_reader in(reply);
      auto results = detail::decode_value<std::vector<R>>(in, fn, "decode the results");
      detail::expect_end(in, fn, "decode the results");
      if (results.size() != chunk.second) {
        detail::throw_codec_failure(
            fn.name(), "decode the results", detail::type_name<R>(),
            codec_error("a chunk of " + std::to_string(chunk.second) + " items came back with " +
                        std::to_string(results.size()) + " results"));
      }
      co_return results;
    };
    const std::size_t lanes = std::max<std::size_t>(1, detail::process_pool_width(*core_));
    auto per_chunk = co_await map_bounded(chunks, lanes, run_chunk);
    std::vector<R> results;
    for (auto& part : per_chunk)
      for (auto& value : part)
        results.push_back(std::move(value));
    co_return results;
  }

  // Closes the pool: new calls fail with process_pool_closed; running and queued calls get up to
  // shutdown_timeout to finish, then the workers still busy are killed (their calls fail with
  // worker_crashed). Returns when every worker has exited and been reaped and every descriptor of
  // the pool is closed. Later calls return at once.
  task<void> close();

  [[nodiscard]] std::size_t size() const noexcept;
  [[nodiscard]] process_pool_stats stats() const;
  // The pids of the current workers (for diagnostics and tests).
  [[nodiscard]] std::vector<pid_t> pids() const;

 private:
  template <class... P, class... A, std::size_t... I>
  static void encode_all(byte_writer& out, const detail::process_function_base& fn,
                         std::index_sequence<I...>, A&&... args) {
    (detail::encode_argument<std::decay_t<P>>(out, std::forward<A>(args), fn, I), ...);
  }

  std::shared_ptr<detail::process_pool_core> core_;
};

}  // namespace weft
