// tests/scheduler/test_trace.cpp: the trace file (runtime_options::trace_file, WEFT_TRACE). Each
// case runs a program, parses the file it wrote (nlohmann::json) and checks the Chrome trace event
// format's rules that the viewers rely on: valid JSON, every B ended by an E on the same thread,
// timestamps non-decreasing per thread, every flow start finished (inside a slice on both ends),
// and a named track for every worker.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <weft/weft.hpp>

#include "support/watchdog.hpp"

using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

std::string temp_path(const char* name) {
  return (std::filesystem::temp_directory_path() /
          (std::string("weft-test-trace-") + std::to_string(::getpid()) + "-" + name + ".json"))
      .string();
}

json load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "no trace file at ", path);
  // Read whole, then parse: nlohmann's parser reads a stream one character at a time.
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  json doc;
  REQUIRE_NOTHROW(doc = json::parse(text));
  return doc;
}

// What the checks found, for the cases' own assertions.
struct summary {
  std::map<std::string, int> slices;  // B and X events by name
  std::map<std::string, int> flows;   // finished flows by name
  std::set<std::string> thread_names;
  std::set<std::string> counters;
  std::map<std::string, int> instants;
  std::vector<std::string> broken;  // the rules broken (the first few)
};

// The format's rules, as the viewers apply them (file order is the order within a thread). Every
// broken rule is collected (the first few are printed) and checked once at the end: a doctest
// assertion per event would cost more than the run under the sanitizers.
summary check_rules(const json& doc) {
  summary out;
  REQUIRE(doc.is_object());
  REQUIRE(doc.contains("traceEvents"));
  const json& events = doc["traceEvents"];
  REQUIRE(events.is_array());
  std::vector<std::string>& broken = out.broken;
  const auto expect = [&](bool ok, const std::string& rule, const json& e) {
    if (!ok && broken.size() < 10) broken.push_back(rule + ": " + e.dump());
  };
  struct thread_state {
    std::vector<std::string> open;  // B names not yet ended
    double last_ts = -1;
    double x_end = -1;  // the end of the last X slice
  };
  std::map<long, thread_state> threads;
  struct flow_state {
    std::string name;
    int starts = 0;
    int finishes = 0;
    double start_ts = 0;
  };
  std::map<unsigned long long, flow_state> flows;
  for (const json& e : events) {
    if (!e.contains("ph")) {
      expect(false, "an event without a phase", e);
      continue;
    }
    const std::string ph = e["ph"];
    if (ph == "M") {
      if (e["name"] == "thread_name") out.thread_names.insert(e["args"]["name"].get<std::string>());
      continue;
    }
    if (!e.contains("ts") || !e.contains("tid")) {
      expect(false, "an event without a time or a thread", e);
      continue;
    }
    const double ts = e["ts"].get<double>();
    thread_state& th = threads[e["tid"].get<long>()];
    expect(ts >= th.last_ts, "timestamps go back on a thread", e);
    th.last_ts = ts;
    const bool in_slice = !th.open.empty() || ts <= th.x_end;
    if (ph == "B") {
      th.open.push_back(e["name"]);
      ++out.slices[e["name"]];
    } else if (ph == "E") {
      expect(!th.open.empty(), "an E without its B", e);
      if (!th.open.empty()) {
        // speedscope matches an E to its B by name.
        expect(e.value("name", "") == th.open.back(), "an E names another slice than its B", e);
        th.open.pop_back();
      }
    } else if (ph == "X") {
      expect(e["dur"].get<double>() >= 0, "a negative duration", e);
      th.x_end = ts + e["dur"].get<double>();
      ++out.slices[e["name"]];
    } else if (ph == "s" || ph == "f") {
      expect(in_slice, "a flow event outside any slice", e);
      flow_state& f = flows[e["id"].get<unsigned long long>()];
      if (ph == "s") {
        ++f.starts;
        f.name = e["name"];
        f.start_ts = ts;
      } else {
        ++f.finishes;
        expect(e["name"] == f.name && ts >= f.start_ts, "a flow finishes before its start", e);
        expect(e["bp"] == "e", "a flow finish not bound to its enclosing slice", e);
      }
    } else if (ph == "C") {
      out.counters.insert(e["name"].get<std::string>());
      expect(e["args"].is_object(), "a counter without values", e);
    } else if (ph == "i") {
      ++out.instants[e["name"]];
    } else {
      expect(false, "an event of an unknown phase", e);
    }
  }
  for (const auto& [tid, th] : threads)
    expect(th.open.empty(), "a thread ends with open slices", json(tid));
  for (const auto& [id, f] : flows) {
    expect(f.starts == 1, "a flow started other than once", json(id));
    expect(f.finishes == 1, "a flow finished other than once", json(id));
    if (f.starts == 1 && f.finishes == 1) ++out.flows[f.name];
  }
  return out;
}

summary validate(const json& doc) {
  summary out = check_rules(doc);
  for (const std::string& rule : out.broken)
    MESSAGE(rule);
  CHECK(out.broken.empty());
  return out;
}

bool has_prefix(const std::set<std::string>& names, const std::string& prefix) {
  for (const auto& n : names)
    if (n.rfind(prefix, 0) == 0) return true;
  return false;
}

weft::task<> sleeper(int i) { co_await weft::sleep(std::chrono::milliseconds(1 + i % 3)); }

weft::task<> locker(weft::mutex& m, int& shared) {
  for (int i = 0; i < 50; ++i) {
    auto guard = co_await m.lock();
    ++shared;
    co_await weft::yield_now();
  }
}

weft::task<> pipe_reader(int fd, int& got) {
  weft::io_source source(fd);
  char buf[16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      got = static_cast<int>(n);
      co_return;
    }
    REQUIRE((n < 0 && errno == EAGAIN));
    co_await source.readable();
  }
}

// True once the task named `name` is suspended in a wait (runtime::tasks()).
bool is_waiting(weft::runtime& rt, const std::string& name) {
  for (const auto& info : rt.tasks()) {
    if (info.name == name && info.state == weft::task_info::state_type::waiting) return true;
  }
  return false;
}

weft::task<int> traced_program(weft::runtime& rt) {
  std::vector<weft::join_handle<void>> handles;
  for (int i = 0; i < 8; ++i)
    handles.push_back(weft::spawn_named("sleeper", sleeper(i)));
  weft::mutex m;
  int shared = 0;
  for (int i = 0; i < 4; ++i)
    handles.push_back(weft::spawn_named("locker", locker(m, shared)));
  int fds[2];
  REQUIRE(::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
  int got = 0;
  handles.push_back(weft::spawn_named("pipe reader", pipe_reader(fds[0], got)));
  const int blocking = co_await weft::to_thread([] {
    std::this_thread::sleep_for(2ms);
    return 7;
  });
  co_await weft::sleep(3ms);
  // The reader must have found the pipe empty and be waiting, or it would read without an I/O
  // wake-up (one slice, no "I/O ready"): on a loaded machine it may not have run yet at all.
  while (!is_waiting(rt, "pipe reader"))
    co_await weft::sleep(1ms);
  REQUIRE(::write(fds[1], "hello", 5) == 5);
  for (auto& h : handles)
    co_await h;
  ::close(fds[0]);
  ::close(fds[1]);
  CHECK(shared == 200);
  CHECK(got == 5);
  co_return blocking;
}

weft::task<> yielder(int yields) {
  for (int i = 0; i < yields; ++i)
    co_await weft::yield_now();
}

weft::task<> yield_root(int tasks, int yields) {
  std::vector<weft::join_handle<void>> handles;
  for (int i = 0; i < tasks; ++i)
    handles.push_back(weft::spawn_named("yielder", yielder(yields)));
  for (auto& h : handles)
    co_await h;
}

weft::task<> forever() { co_await weft::sleep(1h); }

// The total time of the B/E slices named `name` (microseconds, as the file's ts).
double slice_time(const json& doc, const std::string& name) {
  std::map<long, std::vector<std::pair<std::string, double>>> open;
  double total = 0;
  for (const json& e : doc["traceEvents"]) {
    const std::string ph = e.value("ph", "");
    if (ph != "B" && ph != "E") continue;
    auto& stack = open[e["tid"].get<long>()];
    if (ph == "B") {
      stack.emplace_back(e["name"].get<std::string>(), e["ts"].get<double>());
    } else if (!stack.empty()) {
      if (stack.back().first == name) total += e["ts"].get<double>() - stack.back().second;
      stack.pop_back();
    }
  }
  return total;
}

weft::task<> leave_tasks_behind(int n) {
  for (int i = 0; i < n; ++i)
    weft::spawn_named("forever", forever()).detach();
  co_return;
}

}  // namespace

TEST_SUITE("trace") {
  TEST_CASE("a traced run writes a file that follows the trace event format's rules") {
    weft_test::watchdog dog(60s);
    const std::string path = temp_path("rules");
    {
      weft::runtime rt({.worker_threads = 2, .thread_name = "tr", .trace_file = path});
      CHECK(rt.block_on(traced_program(rt)) == 7);
    }
    const summary s = validate(load(path));
    // A track per worker, for the poller and for the blocking pool's thread.
    CHECK(s.thread_names.count("tr-w0") == 1);
    CHECK(s.thread_names.count("tr-w1") == 1);
    CHECK(has_prefix(s.thread_names, "tr-io"));
    CHECK(has_prefix(s.thread_names, "tr-b"));
    // Slices named after the tasks, the poller's batches and the blocking call.
    CHECK(s.slices.at("sleeper") >= 8);
    CHECK(s.slices.at("locker") >= 4 * 50);
    CHECK(s.slices.at("pipe reader") >= 2);
    CHECK(s.slices.at("to_thread") == 1);
    CHECK(s.slices.at("timers fired") >= 1);
    CHECK(s.slices.at("I/O ready") >= 1);
    // Arrows: spawn to first run, and every kind of wake-up the program made.
    CHECK(s.flows.at("spawn") >= 13);
    CHECK(s.flows.at("timer") >= 8);
    CHECK(s.flows.at("I/O") >= 1);
    CHECK(s.flows.at("wake") >= 1);  // the to_thread completion, joins, the mutex
    CHECK(s.counters.count("parked workers") == 1);
    std::remove(path.c_str());
  }

  TEST_CASE("the checks catch a trace that breaks each rule") {
    // The checks themselves: each event below breaks one rule the cases rely on.
    const json bad = json::parse(R"({"traceEvents":[
      {"ph":"B","pid":1,"tid":1,"ts":5,"name":"a"},
      {"ph":"E","pid":1,"tid":1,"ts":4,"name":"a"},
      {"ph":"E","pid":1,"tid":2,"ts":1,"name":"x"},
      {"ph":"B","pid":1,"tid":3,"ts":1,"name":"b"},
      {"ph":"E","pid":1,"tid":3,"ts":2,"name":"c"},
      {"ph":"s","pid":1,"tid":4,"ts":1,"name":"wake","id":7},
      {"ph":"B","pid":1,"tid":5,"ts":1,"name":"open"},
      {"ph":"s","pid":1,"tid":5,"ts":2,"name":"wake","id":8}
    ]})");
    const summary s = check_rules(bad);
    const auto found = [&](const std::string& rule) {
      for (const std::string& b : s.broken)
        if (b.rfind(rule, 0) == 0) return true;
      return false;
    };
    CHECK(found("timestamps go back"));
    CHECK(found("an E without its B"));
    CHECK(found("an E names another slice"));
    CHECK(found("a flow event outside any slice"));
    CHECK(found("a thread ends with open slices"));
    CHECK(found("a flow finished other than once"));
  }

  TEST_CASE("a trace larger than the buffers spills and still holds every resumption") {
    weft_test::watchdog dog(60s);
    const std::string path = temp_path("spill");
    constexpr int tasks = 20;
    constexpr int yields = 1000;  // about 20,000 runs: several chunks per worker
    {
      weft::runtime rt({.worker_threads = 2, .thread_name = "sp", .trace_file = path});
      rt.block_on(yield_root(tasks, yields));
    }
    const summary s = validate(load(path));
    CHECK(s.slices.at("yielder") == tasks * (yields + 1));
    CHECK(s.flows.at("spawn") == tasks + 1);  // and the root, spawned by block_on
    CHECK(s.counters.count("ready tasks") == 1);
    std::remove(path.c_str());
  }

  TEST_CASE("a run that ends with live and queued tasks still writes a well formed trace") {
    weft_test::watchdog dog(60s);
    const std::string path = temp_path("live");
    {
      weft::runtime rt({.worker_threads = 2, .shutdown_timeout = 0ms, .trace_file = path});
      rt.block_on(leave_tasks_behind(500));
      // Spawned from outside and never run: their spawn arrows end on the shutdown track.
      for (int i = 0; i < 50; ++i)
        rt.spawn(forever()).detach();
      CHECK(rt.shutdown(0ms) >= 50);
    }
    const summary s = validate(load(path));
    CHECK(s.flows.at("spawn") == 551);
    std::remove(path.c_str());
  }

  TEST_CASE("threads outside the pool record while the runtime shuts down and a call outlives it") {
    // Spawns from other threads race with the final write (their buffers are locked and closed
    // by it), and a blocking call outlives the runtime: its end is recorded after the file was
    // written, into a tracer kept alive by the blocking pool, and dropped. The sanitizer runs
    // check the races and the lifetimes; the file must still be well formed.
    weft_test::watchdog dog(60s);
    const std::string path = temp_path("outside");
    std::atomic<bool> straggler_done{false};
    {
      weft::runtime rt({.worker_threads = 2,
                        .shutdown_timeout = 50ms,
                        .blocking_shutdown_timeout = 10ms,
                        .trace_file = path,
                        .log = [](std::string_view) {}});
      rt.spawn([&]() -> weft::task<> {
          co_await weft::to_thread([&] {
            std::this_thread::sleep_for(300ms);
            straggler_done = true;
          });
        }).detach();
      std::atomic<bool> stop{false};
      std::vector<std::thread> spawners;
      for (int t = 0; t < 4; ++t) {
        spawners.emplace_back([&] {
          while (!stop) {
            try {
              rt.spawn(sleeper(0)).detach();
            } catch (const weft::runtime_stopped&) {
              return;
            }
            std::this_thread::yield();
          }
        });
      }
      std::this_thread::sleep_for(20ms);
      rt.shutdown(50ms);
      stop = true;
      for (auto& t : spawners)
        t.join();
    }
    while (!straggler_done)
      std::this_thread::sleep_for(10ms);
    std::this_thread::sleep_for(20ms);  // its thread records the call's end, and exits
    const summary s = validate(load(path));
    CHECK(s.slices.at("to_thread") == 1);
    CHECK(s.flows.at("spawn") >= 1);
    std::remove(path.c_str());
  }

  TEST_CASE("a frame executor's runs are slices on its host thread's track and end with the call") {
    weft_test::watchdog dog(60s);
    const std::string path = temp_path("frame");
    constexpr int tasks = 4;
    constexpr int yields = 30;
    constexpr int frames = 10;
    {
      weft::frame_executor exec({.name = "fx", .trace_file = path});
      for (int i = 0; i < tasks; ++i)
        exec.spawn_named("frame yielder", yielder(yields)).detach();
      // A few runs per frame, then the host's own work: none of it may be in a slice.
      for (int f = 0; f < frames; ++f) {
        exec.run_for(0ns);
        std::this_thread::sleep_for(5ms);
      }
      exec.run_until_idle();
    }
    const json doc = load(path);
    const summary s = validate(doc);
    CHECK(s.thread_names.count("fx (host thread)") == 1);
    CHECK(s.slices.at("frame yielder") == tasks * (yields + 1));
    CHECK(s.flows.at("spawn") == tasks);
    // The frames' 5 ms sleeps are outside every slice (generous: the runs themselves are short).
    CHECK(slice_time(doc, "frame yielder") < frames * 5000.0 / 2);
    std::remove(path.c_str());
  }

  TEST_CASE("WEFT_TRACE overrides trace_file and numbers the files of later runtimes") {
    weft_test::watchdog dog(60s);
    const std::string from_env = temp_path("env");
    const std::string second = from_env.substr(0, from_env.size() - 5) + ".2.json";
    const std::string from_options = temp_path("options");
    REQUIRE(::setenv("WEFT_TRACE", from_env.c_str(), 1) == 0);
    for (int run = 0; run < 2; ++run) {
      weft::runtime rt({.worker_threads = 1, .trace_file = from_options});
      rt.block_on(sleeper(0));
    }
    ::unsetenv("WEFT_TRACE");
    CHECK(std::filesystem::exists(from_env));
    CHECK(std::filesystem::exists(second));
    CHECK_FALSE(std::filesystem::exists(from_options));
    const summary s = validate(load(second));
    CHECK(s.slices.count("task") == 1);
    std::remove(from_env.c_str());
    std::remove(second.c_str());
  }

  TEST_CASE("a trace file that cannot be created is a clear error from the constructor") {
    const std::string path = "/nonexistent-weft-dir/trace.json";
    try {
      weft::runtime rt({.trace_file = path});
      FAIL("the runtime started without its trace file");
    } catch (const std::system_error& e) {
      CHECK(std::string(e.what()).find(path) != std::string::npos);
      CHECK(e.code() == std::errc::no_such_file_or_directory);
    }
  }
}
