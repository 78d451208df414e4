// tests/scheduler/test_dump.cpp: runtime::dump() (every live task, its state, how long, what it
// waits on, its await chain), its completeness while a worker is busy in one long task, the
// SIGUSR1 dump (runtime_options::dump_on_signal), and runtime::counters() with its Prometheus
// text. The coroutines of the chains are named from the program's own symbol table.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "support/eventually.hpp"
#include "support/stress.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

// Polls rt.dump() until `pred` holds for the task named `name` (or 10 s pass); returns it.
template <class Pred>
std::optional<weft::task_dump> wait_for_task(weft::runtime& rt, const std::string& name,
                                             Pred pred) {
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < give_up) {
    for (const auto& t : rt.dump().tasks) {
      if (t.name == name && pred(t)) return t;
    }
    std::this_thread::sleep_for(2ms);
  }
  return std::nullopt;
}

// Waits (from the test's thread) for the task of `handle` to end; returns its result.
template <class T>
T finish(weft::join_handle<T>& handle) {
  while (!handle.done())
    std::this_thread::sleep_for(1ms);
  return handle.take_result();
}

bool waiting_on(const weft::task_dump& t, const std::string& what) {
  return t.state == weft::task_dump::state_type::waiting && t.waiting_on == what;
}

bool chain_mentions(const weft::task_dump& t, std::size_t index, const std::string& word) {
  return index < t.await_chain.size() && t.await_chain[index].find(word) != std::string::npos;
}

}  // namespace

// Named coroutines (outside the anonymous namespace, so that their symbols are exported).
weft::task<> dump_inner_lock(weft::mutex& m) { auto guard = co_await m.lock(); }
weft::task<> dump_outer_lock(weft::mutex& m) { co_await dump_inner_lock(m); }
weft::task<> dump_main_lock(weft::mutex& m) { co_await dump_outer_lock(m); }

weft::task<> dump_hold_lock(weft::mutex& m, weft::event& release, std::atomic<bool>& held) {
  auto guard = co_await m.lock();
  held = true;
  co_await release.wait();
}

weft::task<> dump_wait_event(weft::event& ev) { co_await ev.wait(); }
weft::task<> dump_nap(std::chrono::milliseconds d) { co_await weft::sleep(d); }
weft::task<> dump_join_child(weft::event& ev) {
  auto child = weft::spawn_named("child", dump_wait_event(ev));
  co_await std::move(child);
}

weft::task<int> dump_fork_waits(weft::event& ev) {
  co_await ev.wait();
  co_return 1;
}
weft::task<int> dump_fork_quick() { co_return 2; }
weft::task<int> dump_fork_parent(weft::event& ev) {
  auto [a, b, c] =
      co_await weft::fork_join(dump_fork_waits(ev), dump_fork_quick(), dump_fork_waits(ev));
  co_return a + b + c;
}

// The line of the function definition just above the call (the coroutine's first line).
constexpr int dump_located_line = __LINE__ + 1;
weft::task<> dump_located(weft::event& ev) { co_await ev.wait(); }

TEST_CASE("dump: a task waiting on a mutex shows its await chain down to the lock") {
  weft_test::watchdog dog(30s);
  weft::runtime rt({.worker_threads = 2});
  weft::mutex m;
  weft::event release;
  std::atomic<bool> held{false};
  auto holder = rt.spawn_named("holder", dump_hold_lock(m, release, held));
  while (!held)
    std::this_thread::sleep_for(1ms);
  auto waiter = rt.spawn_named("waiter", dump_main_lock(m));

  const auto t = wait_for_task(rt, "waiter", [](const weft::task_dump& d) {
    return waiting_on(d, "mutex::lock") && !d.await_chain.empty();
  });
  REQUIRE(t.has_value());
  // The task's coroutines, then the mutex's own slow path (a coroutine of the primitive).
  REQUIRE(t->await_chain.size() >= 3);
  CHECK(chain_mentions(*t, 0, "dump_main_lock"));
  CHECK(chain_mentions(*t, 1, "dump_outer_lock"));
  CHECK(chain_mentions(*t, 2, "dump_inner_lock"));
  REQUIRE(t->in_state.has_value());
  CHECK(t->in_state->count() >= 0);
  CHECK(t->in_state->count() < 10000);

  // The holder sets `held` just before it suspends on its event: wait until a dump shows that.
  REQUIRE(wait_for_task(rt, "holder", [](const weft::task_dump& d) {
            return waiting_on(d, "event::wait");
          }).has_value());
  const std::string text = rt.dump().to_string();
  CHECK(text.find("task 'waiter' waiting on mutex::lock") != std::string::npos);
  CHECK(text.find("dump_main_lock -> dump_outer_lock -> dump_inner_lock -> ") != std::string::npos);
  CHECK(text.find("-> mutex::lock\n") != std::string::npos);
  CHECK(text.find("task 'holder' waiting on event::wait") != std::string::npos);

  release.set();
  finish(holder);
  finish(waiter);
  CHECK(rt.dump().tasks.empty());
}

TEST_CASE("dump: tasks waiting on an event and a sleep and a child name what they wait on") {
  weft_test::watchdog dog(30s);
  weft::runtime rt({.worker_threads = 2});
  weft::event ev;
  auto on_event = rt.spawn_named("on_event", dump_wait_event(ev));
  auto napping = rt.spawn_named("napping", dump_nap(1h));
  auto parent = rt.spawn_named("parent", dump_join_child(ev));

  const auto e = wait_for_task(
      rt, "on_event", [](const weft::task_dump& d) { return waiting_on(d, "event::wait"); });
  REQUIRE(e.has_value());
  CHECK(chain_mentions(*e, 0, "dump_wait_event"));
  const auto n =
      wait_for_task(rt, "napping", [](const weft::task_dump& d) { return waiting_on(d, "sleep"); });
  REQUIRE(n.has_value());
  CHECK(chain_mentions(*n, 0, "dump_nap"));
  const auto p = wait_for_task(rt, "parent", [](const weft::task_dump& d) {
    return waiting_on(d, "join_handle (a spawned task)");
  });
  REQUIRE(p.has_value());
  CHECK(chain_mentions(*p, 0, "dump_join_child"));
  CHECK(wait_for_task(rt, "child", [](const weft::task_dump& d) {
          return waiting_on(d, "event::wait");
        }).has_value());

  // The time in the state grows while the task keeps waiting.
  const auto before = *n->in_state;
  std::this_thread::sleep_for(60ms);
  const auto later =
      wait_for_task(rt, "napping", [](const weft::task_dump& d) { return waiting_on(d, "sleep"); });
  REQUIRE(later.has_value());
  CHECK(*later->in_state >= before + 40ms);

  ev.set();
  finish(on_event);
  finish(parent);
  napping.cancel();
  CHECK_THROWS_AS(finish(napping), weft::cancelled_error);
}

TEST_CASE("dump: a fork_join caller lists its waiting children under it with their chains") {
  weft_test::watchdog dog(30s);
  weft::runtime rt({.worker_threads = 2});
  weft::event ev;
  auto parent = rt.spawn_named("forker", dump_fork_parent(ev));
  const auto p = wait_for_task(rt, "forker", [](const weft::task_dump& d) {
    // Both waiting children listed (the quick one has ended and is left out).
    std::size_t waiting = 0;
    for (const auto& c : d.children)
      waiting += waiting_on(c, "event::wait") ? 1 : 0;
    return waiting == 2;
  });
  REQUIRE(p.has_value());
  CHECK(p->state == weft::task_dump::state_type::waiting);
  CHECK(p->waiting_on == "fork_join (its children)");
  CHECK(chain_mentions(*p, 0, "dump_fork_parent"));
  REQUIRE(p->children.size() == 2);
  CHECK(p->children[0].name == "fork_join child 0");
  CHECK(p->children[1].name == "fork_join child 2");
  for (const auto& c : p->children)
    CHECK(chain_mentions(c, 0, "dump_fork_waits"));
  const std::string text = rt.dump().to_string();
  CHECK(text.find("task 'forker' waiting on fork_join (its children)") != std::string::npos);
  CHECK(text.find("    task 'fork_join child 2' waiting on event::wait") != std::string::npos);
  ev.set();
  CHECK(finish(parent) == 4);
}

TEST_CASE("dump: debug mode gives each coroutine of a chain its source file and line") {
  weft_test::watchdog dog(30s);
  weft::event ev;
  {
    weft::runtime rt({.worker_threads = 1, .debug = true});
    auto h = rt.spawn_named("located", dump_located(ev));
    const auto t = wait_for_task(rt, "located", [](const weft::task_dump& d) {
      return waiting_on(d, "event::wait") && !d.await_chain.empty();
    });
    REQUIRE(t.has_value());
    REQUIRE(t->await_sources.size() == t->await_chain.size());
    const std::string& where = t->await_sources[0];
    CHECK_MESSAGE(where.find("test_dump.cpp:") != std::string::npos, where);
    CHECK_MESSAGE(where.substr(where.rfind(':') + 1) == std::to_string(dump_located_line), where);
    CHECK(rt.dump().to_string().find("(" + where + ") -> event::wait") != std::string::npos);
    ev.set();
    finish(h);
  }
  // Outside debug mode: no lookups, no sources.
  weft::event again;
  weft::runtime rt({.worker_threads = 1});
  auto h = rt.spawn_named("located", dump_located(again));
  const auto t = wait_for_task(rt, "located", [](const weft::task_dump& d) {
    return waiting_on(d, "event::wait") && !d.await_chain.empty();
  });
  REQUIRE(t.has_value());
  CHECK(t->await_sources.empty());
  again.set();
  finish(h);
}

TEST_CASE("dump: a worker busy in a 500 ms task still lists its tasks") {
  weft_test::watchdog dog(30s);
  weft::runtime rt({.worker_threads = 1});
  std::atomic<bool> spinning{false};
  weft::event ev;
  // The busy task spawns three children onto its own worker (they cannot start: the only worker
  // is busy) and then computes for 500 ms without suspending.
  // A named lambda that outlives its task (the coroutine refers to its captures).
  auto busy_body = [&]() -> weft::task<> {
    for (int i = 0; i < 3; ++i)
      weft::spawn_named("queued", dump_wait_event(ev)).detach();
    spinning = true;
    const auto until = std::chrono::steady_clock::now() + 500ms;
    while (std::chrono::steady_clock::now() < until) {
    }
    co_return;
  };
  auto busy = rt.spawn_named("busy", busy_body());
  while (!spinning)
    std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(100ms);

  const auto start = std::chrono::steady_clock::now();
  const weft::runtime_dump d = rt.dump();
  const auto dump_took = std::chrono::steady_clock::now() - start;
  const std::vector<weft::task_info> listed = rt.tasks();
  const auto both_took = std::chrono::steady_clock::now() - start;
  // Neither waited for the busy worker (which runs for 400 ms more).
  CHECK(dump_took < 300ms);
  CHECK(both_took < 300ms);
  // The three children have not started (the only worker is busy): counted, not listed. A task
  // is listed by the worker that starts it (registry.hpp).
  CHECK(listed.size() == 1);
  CHECK(d.not_started == 3);
  CHECK(rt.stats().live_tasks == 4);

  REQUIRE(d.tasks.size() == 1);
  const auto b = std::find_if(d.tasks.begin(), d.tasks.end(),
                              [](const weft::task_dump& t) { return t.name == "busy"; });
  REQUIRE(b != d.tasks.end());
  CHECK(b->state == weft::task_dump::state_type::running);
  REQUIRE(b->worker.has_value());
  CHECK(*b->worker == 0);
  REQUIRE(b->in_state.has_value());
  CHECK(*b->in_state >= 50ms);
  CHECK(*b->in_state < 5s);
  REQUIRE(d.workers.size() == 1);
  CHECK(d.workers[0].running);
  CHECK(d.workers[0].running_for >= 50ms);
  CHECK(d.workers[0].queued == 3);
  CHECK(d.to_string().find("task 'busy' running on worker 0 for") != std::string::npos);
  CHECK(d.to_string().find("3 spawned and not started yet") != std::string::npos);

  finish(busy);
  // Once the worker is free it starts them, and they are listed (waiting on the event).
  REQUIRE(weft_test::eventually([&] {
    const weft::runtime_dump now = rt.dump();
    return now.not_started == 0 &&
           std::count_if(now.tasks.begin(), now.tasks.end(), [](const weft::task_dump& t) {
             return t.name == "queued" && t.state == weft::task_dump::state_type::waiting;
           }) == 3;
  }));
  ev.set();
}

TEST_CASE("dump: chains read while tasks churn are whole or empty") {
  weft_test::watchdog dog(120s);
  weft::runtime rt({.worker_threads = 2});
  const std::size_t rounds = weft_test::stress_count(300, 3000);
  std::atomic<bool> stop{false};
  std::atomic<long> loops{0};
  // Tasks that wake each other through nested awaits: their frames are created and freed all
  // the time while the dumps below walk their chains.
  auto level2 = [](weft::semaphore& s) -> weft::task<> {
    auto permit = co_await s.acquire();
    co_await weft::yield_now();  // holds the permit: the others queue behind it
  };
  auto level1 = [&level2](weft::semaphore& s) -> weft::task<> { co_await level2(s); };
  weft::semaphore sem(1);
  auto churn = [&]() -> weft::task<> {
    while (!stop.load(std::memory_order_relaxed)) {
      co_await level1(sem);
      co_await weft::yield_now();
      ++loops;
    }
  };
  std::vector<weft::join_handle<void>> workers;
  for (int i = 0; i < 8; ++i)
    workers.push_back(rt.spawn_named("churn", churn()));
  while (loops.load() < 100)
    std::this_thread::sleep_for(1ms);
  std::size_t chains = 0;
  // Every round dumps; the rounds go on until the tasks also made progress meanwhile.
  const long loops_before = loops.load();
  for (std::size_t i = 0; i < rounds || loops.load() < loops_before + 1000; ++i) {
    for (const auto& t : rt.dump().tasks) {
      REQUIRE(t.name == "churn");
      if (!t.await_chain.empty()) {
        ++chains;
        // The task's own lambda, then level1, then level2 (or fewer: between awaits).
        CHECK(t.await_chain.size() <= 3);
        CHECK(t.state == weft::task_dump::state_type::waiting);
      }
    }
  }
  stop = true;
  for (auto& h : workers)
    finish(h);
  CHECK(chains > 0);
}

TEST_CASE(
    "dump: dump and tasks walk the registry while workers spawn and end tasks at full speed") {
  // Every spawn links a task into its worker's shard and every end unlinks it (a stolen one
  // through its owner's drain), each in the owner's section; the walks below are visitors'
  // sections (registry.hpp, the asymmetric exclusion where membarrier is available). A task a
  // walk reaches must be alive: ASan reports a read of a freed frame, and every name must be one
  // of the two given here.
  weft_test::watchdog dog(120s);
  weft::runtime rt({.worker_threads = 2});
  const std::size_t walks = weft_test::stress_count(300, 5000);
  std::atomic<bool> stop{false};
  std::atomic<long> spawned{0};
  auto spawner = [&]() -> weft::task<> {
    while (!stop.load(std::memory_order_relaxed)) {
      std::vector<weft::join_handle<int>> children;
      for (int i = 0; i < 64; ++i) {
        children.push_back(weft::spawn_named("child", [](int k) -> weft::task<int> {
          if (k % 2 == 0) co_await weft::yield_now();
          co_return k;
        }(i)));
      }
      for (auto& c : children)
        (void)co_await c;
      spawned.fetch_add(64, std::memory_order_relaxed);
    }
  };
  std::vector<weft::join_handle<void>> spawners;
  for (int i = 0; i < 2; ++i)
    spawners.push_back(rt.spawn_named("spawner", spawner()));
  while (spawned.load() < 1000)
    std::this_thread::sleep_for(1ms);
  std::size_t seen = 0;
  const long before = spawned.load();
  for (std::size_t i = 0; i < walks || spawned.load() < before + 10000; ++i) {
    for (const auto& t : rt.tasks()) {
      REQUIRE((t.name == "child" || t.name == "spawner"));
      ++seen;
    }
    if (i % 16 == 0) {
      for (const auto& t : rt.dump().tasks)
        REQUIRE((t.name == "child" || t.name == "spawner"));
    }
  }
  stop = true;
  for (auto& h : spawners)
    finish(h);
  CHECK(seen >= walks);  // the spawners are listed in every walk
}

TEST_CASE("dump: SIGUSR1 prints the dump to stderr when the runtime asked for it") {
  weft_test::watchdog dog(30s);
  weft::runtime rt({.worker_threads = 1, .dump_on_signal = true});
  weft::event ev;
  auto waiting = rt.spawn_named("signalled", dump_wait_event(ev));
  REQUIRE(wait_for_task(rt, "signalled", [](const weft::task_dump& d) {
            return waiting_on(d, "event::wait");
          }).has_value());

  // Redirect stderr into a pipe, signal, read until the dump's line about the task arrives.
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
  const int saved = dup(STDERR_FILENO);
  dup2(fds[1], STDERR_FILENO);
  REQUIRE(kill(getpid(), SIGUSR1) == 0);
  std::string captured;
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (captured.find("dump_wait_event -> event::wait") == std::string::npos &&
         std::chrono::steady_clock::now() < give_up) {
    char buffer[4096];
    const ssize_t n = read(fds[0], buffer, sizeof buffer);
    if (n > 0) {
      captured.append(buffer, static_cast<std::size_t>(n));
    } else {
      std::this_thread::sleep_for(2ms);
    }
  }
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(fds[0]);
  close(fds[1]);
  CHECK(captured.find("weft: SIGUSR1: runtime 'weft'") != std::string::npos);
  CHECK(captured.find("task 'signalled' waiting on event::wait") != std::string::npos);
  CHECK(captured.find("dump_wait_event -> event::wait") != std::string::npos);

  ev.set();
  finish(waiting);
}

TEST_CASE("counters: spawns and completions and busy time move as the runtime works") {
  weft_test::watchdog dog(30s);
  weft::runtime rt({.worker_threads = 2});
  const weft::runtime_counters before = rt.counters();
  REQUIRE(before.workers.size() == 2);
  for (int i = 0; i < 100; ++i) {
    rt.block_on([]() -> weft::task<> {
      std::vector<weft::join_handle<void>> children;
      for (int j = 0; j < 10; ++j)
        children.push_back(weft::spawn([]() -> weft::task<> { co_await weft::yield_now(); }));
      for (auto& c : children)
        co_await std::move(c);
    }());
  }
  const weft::runtime_counters after = rt.counters();
  CHECK(after.spawned >= before.spawned + 1100);
  CHECK(after.completed >= before.completed + 1100);
  std::uint64_t worker_spawned = 0;
  double busy = 0;
  for (const auto& w : after.workers) {
    worker_spawned += w.spawned;
    busy += w.busy_seconds;
    CHECK(w.busy_seconds >= 0);
  }
  CHECK(worker_spawned >= 1000);  // the children, spawned on the workers
  CHECK(busy > 0);
  CHECK(busy < 60);

  // Once idle, the workers park, and the gauges say so.
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  weft::runtime_counters idle = rt.counters();
  while (idle.parked_workers < 2 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(5ms);
    idle = rt.counters();
  }
  CHECK(idle.parked_workers == 2);
  CHECK(idle.live_tasks == 0);
  CHECK(idle.injection_queue == 0);
  for (const auto& w : idle.workers) {
    CHECK(w.parked);
    CHECK(w.local_queue == 0);
  }
  // Busy time stops growing while parked (give or take a park in the middle of a read).
  const double busy_idle = idle.workers[0].busy_seconds;
  std::this_thread::sleep_for(50ms);
  CHECK(rt.counters().workers[0].busy_seconds < busy_idle + 0.03);
}

TEST_CASE("counters: the blocking pool's threads are counted while a call runs") {
  weft_test::watchdog dog(30s);
  weft::runtime rt({.worker_threads = 1});
  std::atomic<bool> inside{false};
  std::atomic<bool> leave{false};
  auto call = rt.spawn([&]() -> weft::task<> {
    co_await weft::to_thread([&] {
      inside = true;
      while (!leave)
        std::this_thread::sleep_for(1ms);
    });
  });
  while (!inside)
    std::this_thread::sleep_for(1ms);
  const weft::runtime_counters c = rt.counters();
  CHECK(c.blocking_threads >= 1);
  CHECK(c.blocking_busy == 1);
  CHECK(c.to_prometheus().find("weft_blocking_busy_threads 1\n") != std::string::npos);
  leave = true;
  finish(call);
}

TEST_CASE("counters: the Prometheus text has a HELP and TYPE for every metric and parses") {
  weft::runtime rt({.worker_threads = 2});
  rt.block_on([]() -> weft::task<> { co_await weft::sleep(1ms); }());
  const std::string text = rt.counters().to_prometheus("weft", "runtime=\"test\"");
  const std::regex sample(R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")"
                          R"((,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*\})? [-+0-9.eE]+(inf|nan)?$)");
  const std::regex help(R"(^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .+$)");
  const std::regex type(R"(^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge)$)");
  std::istringstream lines(text);
  std::string line;
  std::string typed;  // the metric of the last # TYPE line
  std::size_t samples = 0;
  REQUIRE(!text.empty());
  CHECK(text.back() == '\n');
  while (std::getline(lines, line)) {
    if (line.rfind("# HELP ", 0) == 0) {
      CHECK_MESSAGE(std::regex_match(line, help), line);
    } else if (line.rfind("# TYPE ", 0) == 0) {
      CHECK_MESSAGE(std::regex_match(line, type), line);
      typed = line.substr(7, line.find(' ', 7) - 7);
    } else {
      CHECK_MESSAGE(std::regex_match(line, sample), line);
      // Every sample belongs to the metric whose TYPE came last.
      CHECK_MESSAGE(line.rfind(typed, 0) == 0, line);
      CHECK_MESSAGE(line.find("runtime=\"test\"") != std::string::npos, line);
      ++samples;
    }
  }
  CHECK(samples >= 11 + 6 * 2);
  CHECK(text.find("weft_worker_busy_seconds_total{runtime=\"test\",worker=\"0\"} ") !=
        std::string::npos);
  CHECK(text.find("weft_worker_busy_seconds_total{runtime=\"test\",worker=\"1\"} ") !=
        std::string::npos);
  CHECK(text.find("# TYPE weft_workers_parked gauge") != std::string::npos);
}
