// tests/scheduler/test_frame_executor.cpp: weft::frame_executor and weft::resume_on (issue 16,
// "Frame-budget executor"): tasks run only inside run_for/run_until_idle and only on the host
// thread; run_for respects its budget and reports a resumption that overruns it; tasks move
// between a pool and the executor, and every primitive, timer and join works across the two;
// misuse (driving from a worker, re-entrantly, from two threads) is a std::logic_error; destroying
// the executor cancels its tasks and its visitors in either order of destruction; a stress case
// moves many tasks back and forth while the host runs frames.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <sys/syscall.h>
#include <unistd.h>

#include <weft/weft.hpp>

#include "support/eventually.hpp"
#include "support/stress.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

using weft_test::eventually;

// The calling thread's id. Not current_thread(): it calls pthread_self(), which glibc
// declares __attribute__((const)), so clang may reuse one call's value across a co_await that
// moved the coroutine to another thread (the test then sees the old thread). A system call is
// opaque to the optimizer.
long current_thread() { return static_cast<long>(::syscall(SYS_gettid)); }

// Records the thread of every resumption of the tasks that call it, and whether the host was
// inside a run_for/run_until_idle call at that moment.
struct thread_log {
  long host = current_thread();
  std::atomic<bool> driving{false};
  std::atomic<int> off_host{0};
  std::atomic<int> outside_calls{0};
  std::atomic<int> seen{0};

  void check() {
    seen.fetch_add(1);
    if (current_thread() != host) off_host.fetch_add(1);
    if (!driving.load()) outside_calls.fetch_add(1);
  }
};

weft::task<int> counted_steps(thread_log& log, int steps) {
  int total = 0;
  for (int i = 0; i < steps; ++i) {
    log.check();
    co_await weft::sleep(1ms);
    log.check();
    co_await weft::yield_now();
    ++total;
  }
  log.check();
  co_return total;
}

// Drives `exec` in frames until `done()`, sleeping between frames as a game loop would.
template <class Done>
void frames_until(weft::frame_executor& exec, thread_log* log, Done done,
                  std::chrono::nanoseconds budget = 2ms) {
  const auto give_up = steady::now() + 20s;
  while (!done()) {
    REQUIRE(steady::now() < give_up);
    if (log != nullptr) log->driving.store(true);
    (void)exec.run_for(budget);
    if (log != nullptr) log->driving.store(false);
    std::this_thread::sleep_for(500us);
  }
}

}  // namespace

// Named coroutines (outside the anonymous namespace, so that the dump can name them).
weft::task<> fx_dump_wait(weft::event& ev) { co_await ev.wait(); }
weft::task<> fx_dump_outer(weft::event& ev) { co_await fx_dump_wait(ev); }

TEST_SUITE("frame_executor") {
  TEST_CASE("tasks spawned on a frame executor run only inside its calls and on the host thread") {
    weft_test::watchdog dog(60s);
    weft::frame_executor exec;
    thread_log log;
    std::vector<weft::join_handle<int>> handles;
    for (int i = 0; i < 8; ++i)
      handles.push_back(exec.spawn(counted_steps(log, 5)));
    // Nothing runs before the host drives it, even with time passing.
    std::this_thread::sleep_for(20ms);
    CHECK(log.seen.load() == 0);
    CHECK(exec.pending() == 8);
    frames_until(exec, &log, [&] {
      for (auto& h : handles)
        if (!h.done()) return false;
      return true;
    });
    for (auto& h : handles)
      CHECK(h.take_result() == 5);
    CHECK(log.seen.load() == 8 * 11);
    CHECK(log.off_host.load() == 0);
    CHECK(log.outside_calls.load() == 0);
  }

  TEST_CASE(
      "a task spawned before any frame counts as live and not started until a frame runs it") {
    weft::frame_executor exec;
    weft::event go;
    weft::join_handle<void> handle = exec.spawn(fx_dump_outer(go));
    // Spawned from the host thread outside a frame: queued, listed by the frame that takes it.
    CHECK(exec.stats().live_tasks == 1);
    weft::runtime_dump before = exec.dump();
    CHECK(before.not_started == 1);
    CHECK(before.tasks.empty());
    CHECK(before.to_string().find("1 spawned and not started yet") != std::string::npos);
    (void)exec.run_until_idle();
    weft::runtime_dump waiting = exec.dump();
    CHECK(waiting.not_started == 0);
    REQUIRE(waiting.tasks.size() == 1);
    CHECK(waiting.tasks[0].state == weft::task_dump::state_type::waiting);
    CHECK(exec.stats().live_tasks == 1);
    go.set();
    (void)exec.run_until_idle();
    CHECK(handle.done());
    CHECK(exec.stats().live_tasks == 0);
  }

  TEST_CASE("an executor destroyed before its first frame abandons the tasks it never started") {
    std::atomic<int> started{0};
    weft::join_handle<void> handle;
    {
      weft::frame_executor exec(weft::frame_executor_options{.shutdown_timeout = 0ms});
      handle = exec.spawn([](std::atomic<int>& s) -> weft::task<> {
        s.fetch_add(1);
        co_return;
      }(started));
      CHECK(exec.stats().live_tasks == 1);
    }
    CHECK(started.load() == 0);
    REQUIRE(handle.done());
    CHECK_THROWS_AS(handle.take_result(), weft::runtime_stopped);
  }

  TEST_CASE("an executor destroyed with a grace runs its never started tasks cancelled") {
    std::atomic<int> started{0};
    std::atomic<int> cancelled{0};
    weft::join_handle<void> handle;
    {
      weft::frame_executor exec;
      handle = exec.spawn([](std::atomic<int>& s, std::atomic<int>& c) -> weft::task<> {
        s.fetch_add(1);
        try {
          co_await weft::sleep(1h);
        } catch (const weft::cancelled_error&) {
          c.fetch_add(1);
          throw;
        }
      }(started, cancelled));
    }
    CHECK(started.load() == 1);
    CHECK(cancelled.load() == 1);
    REQUIRE(handle.done());
    CHECK_THROWS_AS(handle.take_result(), weft::runtime_stopped);
  }

  TEST_CASE("run_until_idle runs every ready task and reports idleness") {
    weft::frame_executor exec;
    std::atomic<int> ran{0};
    for (int i = 0; i < 100; ++i) {
      exec.spawn(
              [](std::atomic<int>& r) -> weft::task<> {
                r.fetch_add(1);
                co_await weft::yield_now();
                r.fetch_add(1);
              },
              std::ref(ran))
          .detach();
    }
    const weft::frame_result result = exec.run_until_idle();
    CHECK(ran.load() == 200);
    CHECK(result.idle);
    CHECK(result.resumed == 200);
    CHECK(exec.pending() == 0);
    CHECK(exec.run_until_idle().resumed == 0);
  }

  TEST_CASE("run_for stops when its budget is spent and leaves the rest for the next frame") {
    weft::frame_executor_options options;
    options.overrun_report = 1s;  // each task runs about 1 ms: not worth a report here
    weft::frame_executor exec(options);
    std::atomic<int> ran{0};
    // 200 tasks of about 1 ms each; a 5 ms budget runs a handful per call.
    for (int i = 0; i < 200; ++i) {
      exec.spawn(
              [](std::atomic<int>& r) -> weft::task<> {
                const auto until = steady::now() + 1ms;
                while (steady::now() < until) {
                }
                r.fetch_add(1);
                co_return;
              },
              std::ref(ran))
          .detach();
    }
    // A host preempted for longer than the budget before its first resumption spends a frame on
    // nothing (legitimately); the first frame that ran anything is the one checked.
    weft::frame_result first = exec.run_for(5ms);
    for (int frame = 0; frame < 1000 && first.resumed == 0; ++frame)
      first = exec.run_for(5ms);
    CHECK_FALSE(first.idle);
    CHECK(first.resumed >= 1);
    CHECK(first.resumed < 100);  // generous: a loaded machine may stretch each task
    CHECK(ran.load() == static_cast<int>(first.resumed));
    CHECK(exec.pending() == 200 - first.resumed);
    while (exec.pending() != 0)
      (void)exec.run_for(5ms);
    CHECK(ran.load() == 200);
  }

  TEST_CASE("a resumption that overruns the budget is reported with the task name and time") {
    std::mutex m;
    std::vector<std::string> reports;
    weft::frame_executor_options options;
    options.overrun_report = 2ms;
    options.log = [&](std::string_view line) {
      std::lock_guard lock(m);
      reports.emplace_back(line);
    };
    weft::frame_executor exec(options);
    std::atomic<bool> hog_ran{false};
    exec.spawn_named(
            "hog",
            [](std::atomic<bool>& ran) -> weft::task<> {
              ran.store(true);
              const auto until = steady::now() + 10ms;
              while (steady::now() < until) {
              }
              co_await weft::yield_now();  // alive after the resumption, so the report can name it
            }(hog_ran))
        .detach();
    exec.spawn_named("polite", []() -> weft::task<> { co_return; }()).detach();
    // Frames until the hog has run: a host preempted for longer than the budget between the call
    // and its first resumption spends the frame on nothing (CI's TSan run, loaded, saw that once).
    weft::frame_result result;
    for (int frame = 0; frame < 1000 && !hog_ran.load(); ++frame)
      result = exec.run_for(1ms);
    REQUIRE(hog_ran.load());
    CHECK(result.overrun >= 5ms);  // the frame the hog ran in
    std::lock_guard lock(m);
    // The hog's report; a preemption in another resumption may add one of its own.
    const auto hog = std::find_if(reports.begin(), reports.end(), [](const std::string& r) {
      return r.find("'hog'") != std::string::npos;
    });
    REQUIRE(hog != reports.end());
    CHECK(hog->find("past the frame's budget") != std::string::npos);
  }

  TEST_CASE("driving the executor from a worker or re-entrantly from its own task is an error") {
    weft::frame_executor exec;
    weft::runtime pool(weft::runtime_options{.worker_threads = 1});
    CHECK_THROWS_AS(pool.block_on([](weft::frame_executor& e) -> weft::task<> {
      (void)e.run_for(1ms);
      co_return;
    }(exec)),
                    std::logic_error);
    auto inner = exec.spawn([](weft::frame_executor& e) -> weft::task<bool> {
      try {
        (void)e.run_until_idle();
      } catch (const std::logic_error&) {
        co_return true;
      }
      co_return false;
    }(exec));
    (void)exec.run_until_idle();
    REQUIRE(inner.done());
    CHECK(inner.take_result());
  }

  TEST_CASE("block_on drives the executor until the task ends including its sleeps") {
    weft::frame_executor exec;
    const auto start = steady::now();
    const int value = exec.block_on([]() -> weft::task<int> {
      co_await weft::sleep(20ms);
      co_return 42;
    }());
    CHECK(value == 42);
    CHECK(steady::now() - start >= 20ms);
    CHECK_THROWS_AS(exec.block_on([]() -> weft::task<> {
      throw std::runtime_error("boom");
      co_return;
    }()),
                    std::runtime_error);
  }

  TEST_CASE("resume_on moves a task from the pool to the executor and back") {
    weft_test::watchdog dog(60s);
    weft::runtime pool(weft::runtime_options{.worker_threads = 2});
    weft::frame_executor exec;
    const auto host = current_thread();
    struct seen {
      long on_exec, back_on_pool;
    };
    auto handle = pool.spawn([](weft::runtime& p, weft::frame_executor& e) -> weft::task<seen> {
      seen s;
      co_await weft::resume_on(e);
      s.on_exec = current_thread();
      co_await weft::sleep(2ms);    // a timer of the executor's poller
      co_await weft::resume_on(e);  // already there: no-op
      co_await weft::resume_on(p);
      s.back_on_pool = current_thread();
      co_return s;
    }(pool, exec));
    frames_until(exec, nullptr, [&] { return handle.done(); });
    const seen s = handle.take_result();
    CHECK(s.on_exec == host);
    CHECK(s.back_on_pool != host);
    // The task belongs to the pool: its listing there is gone once it ended.
    CHECK(eventually([&] { return pool.stats().live_tasks == 0; }));
  }

  TEST_CASE("an executor task awaits a pool task and a pool task awaits an executor task") {
    weft_test::watchdog dog(60s);
    weft::runtime pool(weft::runtime_options{.worker_threads = 2});
    weft::frame_executor exec;
    auto pool_work = pool.spawn([]() -> weft::task<int> {
      co_await weft::sleep(3ms);
      co_return 7;
    }());
    auto on_exec = exec.spawn([](weft::join_handle<int> h) -> weft::task<int> {
      co_return co_await h + 1;
    }(std::move(pool_work)));
    auto on_pool = pool.spawn([](weft::join_handle<int> h) -> weft::task<int> {
      co_return co_await h * 2;
    }(std::move(on_exec)));
    frames_until(exec, nullptr, [&] { return on_pool.done(); });
    CHECK(on_pool.take_result() == 16);
  }

  TEST_CASE("every primitive works between a pool task and an executor task") {
    weft_test::watchdog dog(60s);
    weft::runtime pool(weft::runtime_options{.worker_threads = 2});
    weft::frame_executor exec;
    weft::mutex m;
    weft::semaphore sem(1);
    weft::event ev;
    weft::queue<int> q(1);
    weft::channel<int> ch(1);
    constexpr int rounds = 200;
    int shared = 0;  // guarded by m
    auto side = [&](bool sender) -> weft::task<int> {
      int received = 0;
      for (int i = 0; i < rounds; ++i) {
        {
          auto guard = co_await m.lock();
          ++shared;
        }
        {
          auto permit = co_await sem.acquire();
          co_await weft::yield_now();
        }
        if (sender) {
          co_await q.put(i);
          co_await ch.send(i);
        } else {
          received += co_await q.get();
          received += *co_await ch.receive();
        }
      }
      if (sender) {
        ev.set();
      } else {
        co_await ev.wait();
      }
      co_return received;
    };
    auto sender = pool.spawn(side(true));
    auto receiver = exec.spawn(side(false));
    frames_until(exec, nullptr, [&] { return sender.done() && receiver.done(); });
    (void)sender.take_result();
    CHECK(receiver.take_result() == rounds * (rounds - 1));
    CHECK(shared == 2 * rounds);
  }

  TEST_CASE("a task group child that moves to the executor wakes its joiner on the pool") {
    weft_test::watchdog dog(60s);
    weft::runtime pool(weft::runtime_options{.worker_threads = 2});
    weft::frame_executor exec;
    const auto host = current_thread();
    auto handle = pool.spawn([](weft::frame_executor& e) -> weft::task<long> {
      weft::task_group group;
      for (int i = 0; i < 4; ++i) {
        group.spawn([](weft::frame_executor& ex) -> weft::task<> {
          co_await weft::resume_on(ex);
          co_await weft::sleep(1ms);
        }(e));
      }
      co_await group.join();
      co_return current_thread();
    }(exec));
    frames_until(exec, nullptr, [&] { return handle.done(); });
    CHECK(handle.take_result() != host);
  }

  TEST_CASE("cancelling a task that visits the executor ends it there") {
    weft::runtime pool(weft::runtime_options{.worker_threads = 1});
    weft::frame_executor exec;
    auto handle = pool.spawn([](weft::frame_executor& e) -> weft::task<> {
      co_await weft::resume_on(e);
      co_await weft::sleep(1h);
    }(exec));
    frames_until(exec, nullptr, [&] { return exec.stats().timers == 1; });
    handle.cancel();
    frames_until(exec, nullptr, [&] { return handle.done(); });
    CHECK_THROWS_AS(handle.take_result(), weft::cancelled_error);
  }

  TEST_CASE("destroying the executor cancels its tasks and its visitors and sends nothing back") {
    weft_test::watchdog dog(60s);
    weft::runtime pool(weft::runtime_options{.worker_threads = 2});
    std::atomic<int> cleaned{0};
    weft::join_handle<void> visitor;
    {
      weft::frame_executor exec;
      for (int i = 0; i < 10; ++i) {
        exec.spawn([](std::atomic<int>& c) -> weft::task<> {
              struct cleanup {
                std::atomic<int>& c;
                ~cleanup() { c.fetch_add(1); }
              } guard{c};
              co_await weft::sleep(1h);
            }(cleaned))
            .detach();
      }
      visitor = pool.spawn([](weft::frame_executor& e, std::atomic<int>& c) -> weft::task<> {
        co_await weft::resume_on(e);
        try {
          co_await weft::sleep(1h);
        } catch (const weft::cancelled_error&) {
          c.fetch_add(1);
          throw;
        }
      }(exec, cleaned));
      frames_until(exec, nullptr, [&] { return exec.stats().timers == 11; });
    }
    CHECK(cleaned.load() == 11);
    REQUIRE(visitor.done());
    CHECK_THROWS(visitor.take_result());
    CHECK(eventually([&] { return pool.stats().live_tasks == 0; }));
  }

  TEST_CASE("destroying the pool first cancels executor tasks that visit it") {
    weft_test::watchdog dog(60s);
    weft::frame_executor exec;
    weft::join_handle<int> handle;
    {
      weft::runtime pool(weft::runtime_options{.worker_threads = 1});
      handle = exec.spawn([](weft::runtime& p) -> weft::task<int> {
        co_await weft::resume_on(p);
        try {
          co_await weft::sleep(1h);
        } catch (const weft::cancelled_error&) {
        }
        co_return 5;  // ends on the pool, which reports it to the executor's registry
      }(pool));
      frames_until(exec, nullptr, [&] { return pool.stats().timers == 1; });
    }
    (void)exec.run_until_idle();  // unlinks the task that ended on the pool
    REQUIRE(handle.done());
    CHECK(handle.take_result() == 5);
    CHECK(exec.stats().live_tasks == 0);
  }

  TEST_CASE("resume_on a runtime that is shutting down throws runtime_stopped") {
    weft::frame_executor exec;
    auto pool = std::make_unique<weft::runtime>(weft::runtime_options{.worker_threads = 1});
    (void)pool->shutdown(0ms);
    auto handle = exec.spawn([](weft::runtime& p) -> weft::task<bool> {
      try {
        co_await weft::resume_on(p);
      } catch (const weft::runtime_stopped&) {
        co_return true;
      }
      co_return false;
    }(*pool));
    (void)exec.run_until_idle();
    REQUIRE(handle.done());
    CHECK(handle.take_result());
  }

  TEST_CASE("resume_on in a nested coroutine moves the whole task") {
    weft::runtime pool(weft::runtime_options{.worker_threads = 1});
    weft::frame_executor exec;
    const auto host = current_thread();
    auto handle = pool.spawn([](weft::frame_executor& e) -> weft::task<long> {
      co_await [](weft::frame_executor& ex) -> weft::task<> { co_await weft::resume_on(ex); }(e);
      co_await weft::sleep(1ms);
      co_return current_thread();
    }(exec));
    frames_until(exec, nullptr, [&] { return handle.done(); });
    CHECK(handle.take_result() == host);
  }

  TEST_CASE("dump lists the executor's tasks with their await chains from any thread") {
    weft_test::watchdog dog(30s);
    weft::frame_executor exec;
    weft::event ev;
    auto handle = exec.spawn_named("fx waiter", fx_dump_outer(ev));
    exec.spawn_named("fx queued", fx_dump_wait(ev)).detach();
    exec.run_until_idle();
    weft::runtime_dump d;
    std::thread other([&] { d = exec.dump(); });  // not the host: the dump never waits for it
    other.join();
    REQUIRE(d.workers.size() == 1);
    CHECK_FALSE(d.workers[0].running);
    const weft::task_dump* waiter = nullptr;
    for (const auto& t : d.tasks)
      if (t.name == "fx waiter") waiter = &t;
    REQUIRE(waiter != nullptr);
    CHECK(waiter->state == weft::task_dump::state_type::waiting);
    CHECK(waiter->waiting_on == "event::wait");
    REQUIRE(waiter->await_chain.size() >= 2);
    CHECK(waiter->await_chain[0].find("fx_dump_outer") != std::string::npos);
    CHECK(waiter->await_chain[1].find("fx_dump_wait") != std::string::npos);
    CHECK(d.to_string().find("task 'fx queued' waiting on event::wait") != std::string::npos);
    ev.set();
    exec.run_until_idle();
    CHECK(handle.done());
    CHECK(exec.dump().tasks.empty());
  }
}

TEST_SUITE("stress") {
  TEST_CASE("many tasks hop between the pool and the executor while the host runs frames") {
    weft_test::watchdog dog(240s);
    const std::size_t tasks = weft_test::stress_count(200, 5000);
    const int hops = weft_test::sanitized() ? 10 : 40;
    weft::runtime pool(weft::runtime_options{.worker_threads = 2});
    weft::frame_executor exec;
    thread_log log;
    weft::mutex m;
    long shared = 0;
    std::vector<weft::join_handle<int>> handles;
    handles.reserve(tasks);
    for (std::size_t i = 0; i < tasks; ++i) {
      auto body = [](weft::runtime& p, weft::frame_executor& e, thread_log& l, weft::mutex& mx,
                     long& sh, int n, bool start_on_exec) -> weft::task<int> {
        int on_exec = 0;
        for (int h = 0; h < n; ++h) {
          if ((h % 2 == 0) != start_on_exec) {
            co_await weft::resume_on(e);
            l.check();
            ++on_exec;
          } else {
            co_await weft::resume_on(p);
          }
          {
            auto guard = co_await mx.lock();
            ++sh;
          }
          if (h % 7 == 0) co_await weft::sleep(100us);
        }
        co_return on_exec;
      };
      const bool start_on_exec = i % 2 == 0;
      if (start_on_exec) {
        handles.push_back(exec.spawn(body(pool, exec, log, m, shared, hops, true)));
      } else {
        handles.push_back(pool.spawn(body(pool, exec, log, m, shared, hops, false)));
      }
    }
    frames_until(
        exec, &log,
        [&] {
          for (auto& h : handles)
            if (!h.done()) return false;
          return true;
        },
        1ms);
    long exec_visits = 0;
    for (auto& h : handles)
      exec_visits += h.take_result();
    CHECK(shared == static_cast<long>(tasks) * hops);
    CHECK(exec_visits == static_cast<long>(tasks) * hops / 2);
    CHECK(log.off_host.load() == 0);
    CHECK(log.outside_calls.load() == 0);
    CHECK(eventually([&] { return pool.stats().live_tasks == 0; }));
    CHECK(eventually([&] {
      (void)exec.run_until_idle();  // the host unlinks its tasks that ended on the pool
      return exec.stats().live_tasks == 0;
    }));
  }
}

TEST_SUITE("stress") {
  // The bug this pins (TSan, CI of 2026-12-06): a pool worker woke an executor task by queueing
  // it and then still counted the item and looked for a worker to notify, while the host had
  // already run the task to its end and destroyed the executor. The waker now pins the runtime it
  // wakes into, and shutdown waits for it. The host spins rather than sleeps between frames, so
  // it destroys the executor as soon after the wake-up as it can.
  TEST_CASE("an executor destroyed as soon as its task joined a pool task outlives the wake-up") {
    weft_test::watchdog dog(240s);
    const std::size_t rounds = weft_test::stress_count(100, 1000);
    weft::runtime pool(weft::runtime_options{.worker_threads = 2});
    for (std::size_t round = 0; round < rounds; ++round) {
      weft::frame_executor exec;
      auto pool_work = pool.spawn([](int n) -> weft::task<int> {
        co_await weft::sleep(100us);  // ends after the executor task is waiting for it
        co_return n;
      }(static_cast<int>(round)));
      auto on_exec = exec.spawn([](weft::join_handle<int> h) -> weft::task<int> {
        co_return co_await h + 1;
      }(std::move(pool_work)));
      const auto give_up = steady::now() + 20s;
      while (!on_exec.done()) {
        REQUIRE(steady::now() < give_up);
        (void)exec.run_for(1ms);
      }
      CHECK(on_exec.take_result() == static_cast<int>(round) + 1);
    }
  }
}
