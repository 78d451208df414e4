// tests/test_task_group.cpp: weft::task_group, with_task_group and exception_group (patterns.md
// row 15, asyncio.TaskGroup): every child has finished when join returns; the first failure
// cancels the siblings (collect_all lets them run); failures come back together as an
// exception_group whose handle<E>/split<E>/rethrow_if_any work like except*; groups nest;
// cancelling the joiner or calling cancel() cancels the children; spawn after join throws;
// results come through group_handle; a group destroyed with running children terminates.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "support/eventually.hpp"
#include "support/outcomes.hpp"
#include "support/stress.hpp"
#include "support/tracker.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

struct http_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using weft_test::sleep_then;

template <class E>
weft::task<int> throw_after(std::chrono::milliseconds d, std::string what) {
  co_await weft::sleep(d);
  throw E(what);
}

// Sleeps long; counts a cancellation in `cancelled` (after a cleanup that waits) and rethrows.
weft::task<int> sleeper(std::atomic<int>& cancelled) {
  std::exception_ptr error;
  try {
    co_await weft::sleep(10s);
  } catch (const weft::cancelled_error&) {
    error = std::current_exception();
  }
  if (error) {
    co_await weft::sleep(1ms);
    ++cancelled;
    std::rethrow_exception(error);
  }
  co_return 0;
}

std::vector<std::string> messages_of(const weft::exception_group& eg) {
  std::vector<std::string> out;
  for (const auto& e : eg.exceptions()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      out.emplace_back(x.what());
    } catch (...) {
      out.emplace_back("?");
    }
  }
  return out;
}

}  // namespace

TEST_CASE("task_group: every child has finished when join returns") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::atomic<int> finished{0};
    weft::task_group group;
    for (int i = 0; i < 20; ++i) {
      group.spawn(
          [](std::atomic<int>& f, int ms) -> weft::task<> {
            co_await weft::sleep(std::chrono::milliseconds(ms));
            ++f;
          },
          std::ref(finished), i % 7);
    }
    co_await group.join();
    CHECK(finished.load() == 20);
    CHECK(group.running() == 0);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("task_group: running counts the children that have not finished before and after join") {
  weft_test::watchdog dog(10s);
  weft::runtime rt({.worker_threads = 2});
  rt.block_on([]() -> weft::task<> {
    weft::event first;
    weft::event rest;
    weft::task_group group;
    CHECK(group.running() == 0);
    group.spawn([](weft::event& e) -> weft::task<> { co_await e.wait(); }, std::ref(first));
    for (int i = 0; i < 3; ++i)
      group.spawn([](weft::event& e) -> weft::task<> { co_await e.wait(); }, std::ref(rest));
    CHECK(group.running() == 4);
    first.set();
    while (group.running() != 3)
      co_await weft::yield_now();
    // join() counts differently once it has begun (it takes the bias out of the count) while
    // three children still wait: running() is theirs on both sides of that.
    auto join = weft::spawn([](weft::task_group& g) -> weft::task<> { co_await g.join(); },
                            std::ref(group));
    co_await weft::sleep(5ms);
    CHECK(group.running() == 3);
    rest.set();
    co_await join;
    CHECK(group.running() == 0);
  }());
}

TEST_CASE("task_group: a child that spawns into its group while it joins is waited for") {
  weft_test::watchdog dog(10s);
  weft::runtime rt({.worker_threads = 2});
  std::atomic<int> finished{0};
  rt.block_on([](std::atomic<int>& done) -> weft::task<> {
    weft::task_group group;
    // Each child spawns two more into the same group, three levels deep, after a pause that
    // lets join() start first: 1 + 2 + 4 + 8 = 15 children in all.
    struct tree {
      static weft::task<> node(weft::task_group& g, std::atomic<int>& d, int level) {
        co_await weft::sleep(2ms);
        if (level < 3) {
          g.spawn(node, std::ref(g), std::ref(d), level + 1);
          g.spawn(node, std::ref(g), std::ref(d), level + 1);
        }
        ++d;
      }
    };
    group.spawn(tree::node, std::ref(group), std::ref(done), 0);
    co_await group.join();
    CHECK(done.load() == 15);
    CHECK(group.running() == 0);
  }(finished));
  CHECK(finished.load() == 15);
}

TEST_CASE("task_group: the first failure cancels the siblings and join throws only the failure") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::atomic<int> cancelled{0};
    const auto start = steady::now();
    std::vector<std::string> messages;
    try {
      co_await weft::with_task_group([&](weft::task_group& tg) -> weft::task<> {
        for (int i = 0; i < 5; ++i)
          tg.spawn(sleeper(cancelled));
        tg.spawn(throw_after<http_error>(5ms, "first"));
        co_await weft::sleep(10s);  // the body is a child too: it is cancelled as well
      });
    } catch (const weft::exception_group& eg) {
      messages = messages_of(eg);
      CHECK(cancelled.load() == 5);  // the siblings had finished their cleanup
    }
    REQUIRE(messages.size() == 1);  // the cancellations the group caused are not failures
    CHECK(messages[0] == "first");
    CHECK(steady::now() - start < 5s);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("task_group: collect_all lets the others run and collects every failure in order") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::atomic<int> finished{0};
    weft::task_group group(weft::task_group::policy::collect_all);
    group.spawn(throw_after<std::runtime_error>(20ms, "b"));
    group.spawn(throw_after<std::runtime_error>(1ms, "a"));
    auto ok = group.spawn(
        [](std::atomic<int>& f) -> weft::task<int> {
          co_await weft::sleep(40ms);
          ++f;
          co_return 7;
        },
        std::ref(finished));
    group.spawn(throw_after<std::logic_error>(60ms, "c"));
    std::vector<std::string> messages;
    try {
      co_await group.join();
    } catch (const weft::exception_group& eg) {
      messages = messages_of(eg);
      CHECK(eg.size() == 3);
      CHECK_FALSE(eg.empty());
    }
    CHECK(messages == std::vector<std::string>{"a", "b", "c"});
    CHECK(finished.load() == 1);
    CHECK_FALSE(ok.cancelled());
    CHECK(ok.result() == 7);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("exception_group: handle and split and rethrow_if_any work like except star") {
  std::vector<std::exception_ptr> errors{
      std::make_exception_ptr(http_error("h1")), std::make_exception_ptr(std::logic_error("l1")),
      std::make_exception_ptr(weft::timeout_error()), std::make_exception_ptr(http_error("h2"))};
  const weft::exception_group eg(errors);
  CHECK(eg.size() == 4);
  CHECK(std::string(eg.what()).find("4 tasks failed") != std::string::npos);

  std::vector<std::string> http_seen;
  int timeouts = 0;
  const weft::exception_group rest =
      eg.handle<http_error>([&](const http_error& e) {
          http_seen.emplace_back(e.what());
        }).handle<weft::timeout_error>([&](const weft::timeout_error&) { ++timeouts; });
  CHECK(http_seen == std::vector<std::string>{"h1", "h2"});
  CHECK(timeouts == 1);
  REQUIRE(rest.size() == 1);
  CHECK(messages_of(rest) == std::vector<std::string>{"l1"});
  bool rethrown = false;
  try {
    rest.rethrow_if_any();
  } catch (const weft::exception_group& again) {
    rethrown = true;
    CHECK(messages_of(again) == std::vector<std::string>{"l1"});
  }
  CHECK(rethrown);
  CHECK_NOTHROW(eg.handle<std::exception>([](const std::exception&) {}).rethrow_if_any());

  // timeout_error and http_error both derive from runtime_error.
  auto [runtime_errors, others] = eg.split<std::runtime_error>();
  CHECK(runtime_errors.size() == 3);
  CHECK(messages_of(others) == std::vector<std::string>{"l1"});
  auto [none, all] = eg.split<std::bad_alloc>();
  CHECK(none.empty());
  CHECK(all.size() == 4);
}

TEST_CASE("task_group: nested groups report the inner group as one failure of the outer") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::atomic<int> cancelled{0};
    bool caught = false;
    try {
      co_await weft::with_task_group([&](weft::task_group& outer) -> weft::task<> {
        outer.spawn(sleeper(cancelled));
        outer.spawn([&]() -> weft::task<> {
          co_await weft::with_task_group([&](weft::task_group& inner) -> weft::task<> {
            inner.spawn(sleeper(cancelled));
            inner.spawn(throw_after<http_error>(3ms, "deep"));
            co_return;
          });
        });
        co_return;
      });
    } catch (const weft::exception_group& eg) {
      caught = true;
      REQUIRE(eg.size() == 1);
      auto [groups, rest] = eg.split<weft::exception_group>();
      CHECK(rest.empty());
      REQUIRE(groups.size() == 1);
      try {
        std::rethrow_exception(groups.exceptions()[0]);
      } catch (const weft::exception_group& inner) {
        CHECK(messages_of(inner) == std::vector<std::string>{"deep"});
      }
    }
    CHECK(caught);
    CHECK(cancelled.load() == 2);  // the inner sibling and the outer one
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE(
    "task_group: cancelling the joining task cancels every child then throws cancelled_error") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::atomic<int> cancelled{0};
    std::atomic<int> started{0};
    auto parent = weft::spawn(
        [](std::atomic<int>& c, std::atomic<int>& s) -> weft::task<> {
          co_await weft::with_task_group([&](weft::task_group& tg) -> weft::task<> {
            for (int i = 0; i < 4; ++i) {
              tg.spawn(
                  [](std::atomic<int>& c2, std::atomic<int>& s2) -> weft::task<int> {
                    ++s2;
                    co_return co_await sleeper(c2);
                  },
                  std::ref(c), std::ref(s));
            }
            co_return;
          });
        },
        std::ref(cancelled), std::ref(started));
    while (started.load() < 4)
      co_await weft::sleep(1ms);
    parent.cancel();
    bool was_cancelled = false;
    try {
      co_await parent;
    } catch (const weft::cancelled_error&) {
      was_cancelled = true;
    }
    CHECK(was_cancelled);
    CHECK(parent.cancelled());
    CHECK(cancelled.load() == 4);  // every child finished its cleanup first
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("task_group: an outside cancellation during the cancelling after a failure is not lost") {
  // test_taskgroups (cancellation of the parent while the group cancels its children after one
  // failed): the group raises its exception group, and the parent's cancellation is re-armed, so
  // the parent's next await raises CancelledError and the parent ends cancelled.
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    weft::event cleaning;         // the surviving child is in its cancellation cleanup
    weft::event owner_cancelled;  // the test has cancelled the owner
    std::atomic<bool> group_failed{false};
    std::atomic<bool> owner_went_on{false};
    auto owner = weft::spawn(
        [](weft::event& clean, weft::event& told, std::atomic<bool>& failed,
           std::atomic<bool>& went_on) -> weft::task<> {
          try {
            co_await weft::with_task_group([&](weft::task_group& tg) -> weft::task<> {
              tg.spawn(
                  [](weft::event& c, weft::event& t) -> weft::task<> {
                    std::exception_ptr error;
                    try {
                      co_await weft::sleep(10s);
                    } catch (const weft::cancelled_error&) {
                      error = std::current_exception();
                    }
                    c.set();
                    co_await t.wait();  // the cleanup lasts until the owner was cancelled
                    std::rethrow_exception(error);
                  },
                  std::ref(clean), std::ref(told));
              tg.spawn(throw_after<http_error>, 1ms, std::string("boom"));
              co_return;
            });
          } catch (const weft::exception_group& eg) {
            failed = eg.size() == 1;
          }
          co_await weft::sleep(10s);  // must throw the cancellation at once
          went_on = true;
        },
        std::ref(cleaning), std::ref(owner_cancelled), std::ref(group_failed),
        std::ref(owner_went_on));
    co_await cleaning.wait();
    owner.cancel();
    owner_cancelled.set();
    bool was_cancelled = false;
    try {
      co_await owner;
    } catch (const weft::cancelled_error&) {
      was_cancelled = true;
    }
    CHECK(group_failed.load());
    CHECK(was_cancelled);
    CHECK(owner.cancelled());
    CHECK_FALSE(owner_went_on.load());
  };
  const auto start = steady::now();
  weft::run(main_task(), {.worker_threads = 2});
  CHECK(steady::now() - start < 5s);  // not the owner's 10 s sleep
}

TEST_CASE("task_group: a failure without an outside cancellation leaves the owner running") {
  // The re-arming above applies only to a cancellation of the owner: a group that failed on its
  // own lets its owner catch the exception_group and go on awaiting.
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<int> {
    try {
      co_await weft::with_task_group([](weft::task_group& tg) -> weft::task<> {
        tg.spawn(throw_after<http_error>, 1ms, std::string("boom"));
        co_return;
      });
    } catch (const weft::exception_group&) {
    }
    co_await weft::sleep(1ms);
    co_return 7;
  };
  CHECK(weft::run(main_task(), {.worker_threads = 2}) == 7);
}

TEST_CASE("task_group: spawning after a child failed throws and starts nothing") {
  // test_taskgroups (create_task on a group that is shutting down raises RuntimeError): the task
  // is not started, and the body's error joins the group's failures.
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::atomic<bool> late_ran{false};
    std::atomic<bool> refused{false};
    weft::task_group group;
    group.spawn(throw_after<http_error>, 0ms, std::string("boom"));
    while (group.running() != 0)
      co_await weft::sleep(1ms);
    try {
      group.spawn(
          [](std::atomic<bool>& ran) -> weft::task<> {
            ran = true;
            co_return;
          },
          std::ref(late_ran));
    } catch (const std::runtime_error&) {
      refused = true;
    }
    CHECK_THROWS_AS(co_await group.join(), weft::exception_group);
    CHECK(refused.load());
    CHECK_FALSE(late_ran.load());
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("task_group: with collect_all a failure does not stop new spawns") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    weft::task_group group(weft::task_group::policy::collect_all);
    group.spawn(throw_after<http_error>, 0ms, std::string("boom"));
    while (group.running() != 0)
      co_await weft::sleep(1ms);
    auto late = group.spawn([]() -> weft::task<int> { co_return 5; });
    CHECK_THROWS_AS(co_await group.join(), weft::exception_group);
    CHECK(late.result() == 5);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("task_group: spawn_named children are listed by name in tasks") {
  // test_taskgroups (create_task with name=): the name shows in the runtime's task listing.
  weft_test::watchdog dog(10s);
  weft::runtime rt({.worker_threads = 2});
  auto main_task = [&]() -> weft::task<> {
    weft::event release;
    weft::task_group group;
    auto child = group.spawn_named(
        "fetcher",
        [](weft::event& e) -> weft::task<int> {
          co_await e.wait();
          co_return 3;
        },
        std::ref(release));
    co_await weft::sleep(2ms);
    bool listed = false;
    for (const auto& info : rt.tasks())
      listed = listed || info.name == "fetcher";
    CHECK(listed);
    release.set();
    co_await group.join();
    CHECK(child.result() == 3);
  };
  rt.block_on(main_task());
}

TEST_CASE("task_group: cancel cancels every child and join reports no failure") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::atomic<int> cancelled{0};
    weft::task_group group;
    std::vector<weft::group_handle<int>> handles;
    for (int i = 0; i < 6; ++i)
      handles.push_back(group.spawn(sleeper(cancelled)));
    co_await weft::sleep(2ms);
    group.cancel();
    auto late = group.spawn(sleeper(cancelled));  // spawned after cancel(): cancelled too
    const auto start = steady::now();
    co_await group.join();
    CHECK(steady::now() - start < 5s);
    CHECK(cancelled.load() == 7);
    for (auto& h : handles)
      CHECK(h.cancelled());
    CHECK(late.cancelled());
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("task_group: spawn after join throws logic_error") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    weft::task_group group;
    group.spawn(sleep_then(1ms, 1));
    co_await group.join();
    CHECK_THROWS_AS(group.spawn(sleep_then(1ms, 2)), std::logic_error);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("task_group: results come through group_handle after join") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    weft::task_group group(weft::task_group::policy::collect_all);
    auto a = group.spawn(sleep_then(3ms, 1));
    auto b = group.spawn(
        [](int x) -> weft::task<std::string> {
          co_await weft::sleep(1ms);
          co_return std::to_string(x);
        },
        42);
    auto c = group.spawn(throw_after<http_error>(2ms, "bad"));
    auto d = group.spawn(sleep_then(200ms, 4));
    CHECK_FALSE(d.done());
    CHECK_THROWS_AS((void)d.result(), std::logic_error);  // not finished yet
    try {
      co_await group.join();
    } catch (const weft::exception_group&) {
    }
    CHECK(a.done());
    CHECK(a.result() == 1);
    CHECK(b.result() == "42");
    CHECK_THROWS_WITH_AS((void)c.result(), "bad", http_error);
    CHECK(d.result() == 4);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("task_group: a failing child cancels the body of with_task_group") {
  weft_test::watchdog dog(10s);
  auto main_task = []() -> weft::task<> {
    std::atomic<bool> body_cancelled{false};
    const auto start = steady::now();
    bool caught = false;
    try {
      co_await weft::with_task_group([&](weft::task_group& tg) -> weft::task<> {
        tg.spawn(throw_after<http_error>(2ms, "x"));
        try {
          co_await weft::sleep(10s);
        } catch (const weft::cancelled_error&) {
          body_cancelled = true;
          throw;
        }
      });
    } catch (const weft::exception_group& eg) {
      caught = eg.size() == 1;
    }
    CHECK(caught);
    CHECK(body_cancelled.load());
    CHECK(steady::now() - start < 5s);
  };
  weft::run(main_task(), {.worker_threads = 2});
}

TEST_CASE("task_group: a group destroyed with running children terminates loudly") {
  // Checked in a forked child, so the terminate does not end this test binary. The fork happens
  // before this process starts any thread (the watchdog comes after it).
  int err_pipe[2];
  REQUIRE(::pipe(err_pipe) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(err_pipe[1], STDERR_FILENO);
    ::close(err_pipe[0]);
    // doctest's crash handler reports the abort on stdout; keep that out of this test's output.
    if (FILE* null = std::freopen("/dev/null", "w", stdout); null == nullptr) ::_exit(3);
    // And let the abort kill the child directly: doctest's handler is not async-signal-safe.
    std::signal(SIGABRT, SIG_DFL);
    ::alarm(20);  // a hang in the child ends it with SIGALRM, which fails the check below
    auto main_task = []() -> weft::task<> {
      {
        weft::task_group group;
        group.spawn(sleep_then(10s, 1));
        co_await weft::sleep(2ms);
      }  // never joined
      co_return;
    };
    try {
      weft::run(main_task(), {.worker_threads = 1});
    } catch (...) {
    }
    ::_exit(0);  // not reached if the group terminated
  }
  weft_test::watchdog dog(30s);
  ::close(err_pipe[1]);
  std::string output;
  char buffer[256];
  for (;;) {
    const ssize_t n = ::read(err_pipe[0], buffer, sizeof buffer);
    if (n <= 0) break;
    output.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(err_pipe[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  INFO("child stderr: " << output);
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGABRT);
  CHECK(output.find("task_group destroyed while children still run") != std::string::npos);
}

namespace {
// Counts the children alive (frames not yet destroyed) and running (body not yet left).
struct child_probe {
  static inline std::atomic<long> running{0};
  child_probe() { ++running; }
  ~child_probe() { --running; }
  child_probe(const child_probe&) = delete;
  child_probe& operator=(const child_probe&) = delete;
};
}  // namespace

TEST_SUITE("stress") {
  TEST_CASE(
      "task_group: S4 group cancellations of many children leave no leak and no child running") {
    const std::size_t rounds = weft_test::stress_count(20, 1000);
    const std::size_t children = weft_test::stress_count(500, 10000);
    weft_test::watchdog dog(weft_test::stress_scaled_up() ? 3600s : 120s);
    weft::runtime rt({.worker_threads = 2});
    auto round_task = [](std::size_t n, std::size_t round) -> weft::task<std::size_t> {
      std::atomic<std::size_t> started{0};
      bool failed_round = round % 3 == 0;  // a child failure cancels the group
      std::size_t failures = 0;
      try {
        co_await weft::with_task_group([&](weft::task_group& tg) -> weft::task<> {
          for (std::size_t i = 0; i < n; ++i) {
            tg.spawn(
                [](std::atomic<std::size_t>& s, std::size_t k) -> weft::task<> {
                  weft_test::tracker alive;
                  child_probe probe;
                  ++s;
                  if (k % 3 == 0) {
                    co_await weft::sleep(10s);
                  } else {
                    for (;;)
                      co_await weft::yield_now();
                  }
                },
                std::ref(started), i);
          }
          while (started.load() < n / 2)
            co_await weft::sleep(1ms);
          if (failed_round) {
            tg.spawn([]() -> weft::task<> {
              co_await weft::yield_now();
              throw std::runtime_error("child failed");
            });
            co_await weft::sleep(10s);  // cancelled by the failure
          } else {
            tg.cancel();
          }
        });
      } catch (const weft::exception_group& eg) {
        failures = eg.size();
      }
      // The group's scope has ended: no child runs and no child frame is left.
      CHECK(child_probe::running.load() == 0);
      CHECK(weft_test::tracker::live.load() == 0);
      CHECK(failures == (failed_round ? 1u : 0u));
      co_return failures;
    };
    for (std::size_t r = 0; r < rounds; ++r) {
      (void)rt.block_on(round_task(children, r));
      REQUIRE(child_probe::running.load() == 0);
      REQUIRE(weft_test::tracker::live.load() == 0);
    }
    weft::runtime_stats s{};
    for (int i = 0; i < 2000; ++i) {
      s = rt.stats();
      if (s.live_tasks == 0 && s.timers == 0) break;
      std::this_thread::sleep_for(1ms);
    }
    CHECK(s.live_tasks == 0);
    CHECK(s.timers == 0);
  }
}

TEST_SUITE("stress") {
  TEST_CASE("task_group: spawns that race with join are all waited for") {
    // with_task_group runs its body as a child and joins at once, so the body's spawns race
    // with join() taking the bias out of the count: each must land on one side of it.
    const std::size_t rounds = weft_test::stress_count(200, 5000);
    weft_test::watchdog dog(weft_test::stress_scaled_up() ? 3600s : 120s);
    weft::runtime rt({.worker_threads = 2});
    for (std::size_t r = 0; r < rounds; ++r) {
      std::atomic<std::size_t> finished{0};
      const std::size_t n = 1 + r % 64;
      rt.block_on(weft::with_task_group([&finished, n](weft::task_group& tg) -> weft::task<> {
        for (std::size_t i = 0; i < n; ++i) {
          tg.spawn(
              [](std::atomic<std::size_t>& d, std::size_t k) -> weft::task<> {
                if (k % 2 == 0) co_await weft::yield_now();
                ++d;
              },
              std::ref(finished), i);
          if (i % 8 == 0) co_await weft::yield_now();
        }
      }));
      // with_task_group returned: every child has finished.
      REQUIRE(finished.load() == n);
    }
  }
}

TEST_SUITE("stress") {
  TEST_CASE("task_group: a spawn from another task that races with the end of a join is refused") {
    // An intruder (a task that is not a child of the group) keeps spawning into the group while
    // the group's owner joins it. Each spawn must either be waited for by the join or be refused
    // with logic_error: one that slipped in after the count reached zero would run unjoined and
    // resume the joiner a second time when it ended.
    const std::size_t rounds = weft_test::stress_count(300, 5000);
    weft_test::watchdog dog(weft_test::stress_scaled_up() ? 3600s : 120s);
    weft::runtime rt({.worker_threads = 2});
    std::size_t refused_rounds = 0;
    for (std::size_t r = 0; r < rounds; ++r) {
      refused_rounds += rt.block_on([](std::size_t round) -> weft::task<std::size_t> {
        std::atomic<std::size_t> admitted{0};
        std::atomic<std::size_t> finished{0};
        std::atomic<bool> refused{false};
        auto counted = [](std::atomic<std::size_t>& done, bool yield) -> weft::task<> {
          if (yield) co_await weft::yield_now();
          ++done;
        };
        weft::task_group group;
        for (std::size_t i = 0; i < 1 + round % 4; ++i) {
          group.spawn(counted, std::ref(finished), i % 2 == 0);
          ++admitted;
        }
        auto intruder = weft::spawn(
            [](weft::task_group& g, std::atomic<std::size_t>& in, std::atomic<std::size_t>& done,
               std::atomic<bool>& no, decltype(counted) make) -> weft::task<> {
              for (std::size_t i = 0; i < 200; ++i) {
                try {
                  g.spawn(make, std::ref(done), false);
                  ++in;
                } catch (const std::logic_error&) {
                  no = true;
                  co_return;
                }
                if (i % 4 == 0) co_await weft::yield_now();
              }
            },
            std::ref(group), std::ref(admitted), std::ref(finished), std::ref(refused), counted);
        co_await group.join();
        // Every spawn the group admitted has ended when join returns: none slipped past it.
        const std::size_t ended_at_join = finished.load();
        co_await intruder;
        CHECK(ended_at_join == admitted.load());
        co_return refused.load() ? 1 : 0;
      }(r));
    }
    weft_test::stress_summary("rounds in which a spawn was refused: " +
                              std::to_string(refused_rounds) + " of " + std::to_string(rounds));
  }

  TEST_CASE(
      "task_group: a spawn from outside the runtime that fails while the last child ends "
      "still lets the join end") {
    // A thread outside the runtime cannot spawn (logic_error), but its spawn is counted before
    // it fails and taken back after. When the group's last child ends in between, taking the
    // count back is what brings it to zero, and that must resume the joiner.
    const std::size_t rounds = weft_test::stress_count(300, 5000);
    weft_test::watchdog dog(weft_test::stress_scaled_up() ? 3600s : 120s);
    weft::runtime rt({.worker_threads = 2});
    for (std::size_t r = 0; r < rounds; ++r) {
      weft::task_group* shared = nullptr;
      std::atomic<int> phase{0};  // 1: the group exists; 2: join returned; 3: the thread stopped
      std::atomic<std::size_t> attempts{0};
      std::size_t refused = 0;
      std::thread outsider([&] {
        while (phase.load() == 0)
          std::this_thread::yield();
        while (phase.load() == 1) {
          ++attempts;
          try {
            shared->spawn([]() -> weft::task<> { co_return; });
          } catch (const std::logic_error&) {
            ++refused;
          }
        }
        phase = 3;
      });
      rt.block_on([](std::size_t round, weft::task_group*& out, std::atomic<int>& step,
                     std::atomic<std::size_t>& tries) -> weft::task<> {
        weft::task_group group;
        // The child ends a little after the outsider's first attempt, so that its end falls
        // among the attempts.
        group.spawn(
            [](std::size_t yields, std::atomic<std::size_t>& seen) -> weft::task<> {
              while (seen.load() == 0)
                co_await weft::yield_now();
              for (std::size_t i = 0; i < yields; ++i)
                co_await weft::yield_now();
            },
            round % 8, std::ref(tries));
        out = &group;
        step = 1;
        co_await group.join();
        step = 2;
        while (step.load() != 3)
          co_await weft::yield_now();  // the group outlives its spawner
      }(r, shared, phase, attempts));
      outsider.join();
      CHECK(refused > 0);
    }
  }
}

TEST_CASE("task_group: a child cancelled through its own handle is not a failure") {
  weft_test::watchdog dog(10s);
  weft::runtime rt({.worker_threads = 2});
  const int result = rt.block_on([]() -> weft::task<int> {
    weft::task_group group;
    auto doomed = group.spawn(sleep_then(1h, 1));
    auto fine = group.spawn(sleep_then(20ms, 2));
    co_await weft::sleep(5ms);
    doomed.cancel();
    co_await group.join();  // must not throw: a cancelled child is not a failure (asyncio)
    CHECK(doomed.cancelled());
    co_return fine.result();
  }());
  CHECK(result == 2);
}

// start_soon: children whose result nobody takes, freed soon after they end (a server's loop).

TEST_CASE("task_group: join waits for every start_soon child") {
  weft_test::watchdog dog(10s);
  std::atomic<int> finished{0};
  weft::run(
      [&finished]() -> weft::task<> {
        co_await weft::with_task_group([&finished](weft::task_group& tg) -> weft::task<> {
          for (int i = 0; i < 300; ++i) {
            tg.start_soon(
                [](std::atomic<int>& f, int k) -> weft::task<int> {
                  if (k % 3 == 0) co_await weft::sleep(1ms);
                  ++f;
                  co_return k;  // a value nobody takes is dropped with the frame
                },
                std::ref(finished), i);
          }
          co_return;
        });
        CHECK(finished.load() == 300);
      }(),
      {.worker_threads = 2});
  CHECK(finished.load() == 300);
}

TEST_CASE("task_group: a long-lived group frees its ended start_soon children while it runs") {
  // A server's shape: one group, a child per connection, children that end while the group lives
  // on. Each child's value is a tracker, destroyed with its frame. With spawn the group would hold
  // all 3000 until it ends; start_soon reaps them in batches (task_group::reap_batch).
  weft_test::watchdog dog(30s);
  const int total = 3000;
  int peak = 0;
  weft::run(
      [&peak, total]() -> weft::task<> {
        co_await weft::with_task_group([&peak, total](weft::task_group& tg) -> weft::task<> {
          for (int i = 0; i < total; ++i) {
            tg.start_soon(
                []() -> weft::task<weft_test::tracker> { co_return weft_test::tracker{}; });
            // Let the child end before the next connection "arrives" (the body itself is a child
            // of the group, hence 1).
            while (tg.running() > 1)
              co_await weft::yield_now();
            peak = std::max(peak, weft_test::tracker::live.load());
          }
        });
      }(),
      {.worker_threads = 2});
  // Ended children wait for a batch of reap_batch, and half of the group's start_soon children;
  // a frame freed by a stolen child's home worker may lag a little behind.
  CHECK(peak > 0);
  CHECK(peak <= static_cast<int>(4 * weft::task_group::reap_batch));
  CHECK(weft_test::eventually([] { return weft_test::tracker::live.load() == 0; }));
}

TEST_CASE("task_group: a failing start_soon child cancels its siblings and fails the group") {
  weft_test::watchdog dog(10s);
  std::atomic<int> cancelled{0};
  std::vector<std::string> failures;
  weft::run(
      [&]() -> weft::task<> {
        try {
          co_await weft::with_task_group([&cancelled](weft::task_group& tg) -> weft::task<> {
            tg.start_soon(sleeper(cancelled));
            tg.start_soon(sleeper(cancelled));
            tg.start_soon(throw_after<http_error>(2ms, "bad gateway"));
            co_await weft::sleep(10s);  // cancelled by the failure
          });
        } catch (const weft::exception_group& eg) {
          failures = messages_of(eg);
        }
      }(),
      {.worker_threads = 2});
  CHECK(failures == std::vector<std::string>{"bad gateway"});
  CHECK(cancelled.load() == 2);
}

TEST_CASE("task_group: cancel reaches start_soon children and start_soon after join throws") {
  weft_test::watchdog dog(10s);
  std::atomic<int> cancelled{0};
  weft::run(
      [&cancelled]() -> weft::task<> {
        weft::task_group group;
        group.start_soon(sleeper(cancelled));
        group.start_soon_named("idle connection", sleeper(cancelled));
        co_await weft::sleep(2ms);
        group.cancel();
        co_await group.join();  // cancelled children are not failures
        CHECK(cancelled.load() == 2);
        CHECK_THROWS_AS(group.start_soon(sleep_then(1ms, 1)), std::logic_error);
        CHECK_THROWS_AS(group.start_soon(weft::task<int>{}), std::invalid_argument);
      }(),
      {.worker_threads = 2});
  CHECK(cancelled.load() == 2);
}

TEST_SUITE("stress") {
  TEST_CASE("task_group: start_soon children ending on other workers are reaped exactly once") {
    // Two starters feed one group while the children end on both workers, so reaping (under the
    // group's lock, by a starter) races with children ending (on_loose_child_done) and with
    // frames freed by their home worker. Every frame must be freed once: the trackers count them,
    // and ASan/TSan watch the frees.
    const std::size_t rounds = weft_test::stress_count(20, 400);
    const int per_starter = static_cast<int>(weft_test::stress_count(2000, 20000));
    weft_test::watchdog dog(weft_test::stress_scaled_up() ? 3600s : 120s);
    weft::runtime rt({.worker_threads = 2});
    for (std::size_t r = 0; r < rounds; ++r) {
      std::atomic<int> ended{0};
      rt.block_on(
          weft::with_task_group([&ended, per_starter](weft::task_group& tg) -> weft::task<> {
            auto starter = [](weft::task_group& g, std::atomic<int>& e, int n) -> weft::task<> {
              for (int i = 0; i < n; ++i) {
                g.start_soon(
                    [](std::atomic<int>& done, int k) -> weft::task<weft_test::tracker> {
                      if (k % 4 == 0) co_await weft::yield_now();
                      ++done;
                      co_return weft_test::tracker{};
                    },
                    std::ref(e), i);
                if (i % 16 == 0) co_await weft::yield_now();
              }
            };
            tg.start_soon(starter, std::ref(tg), std::ref(ended), per_starter);
            tg.start_soon(starter, std::ref(tg), std::ref(ended), per_starter);
            co_return;
          }));
      REQUIRE(ended.load() == 2 * per_starter);
      REQUIRE(weft_test::eventually([] { return weft_test::tracker::live.load() == 0; }));
    }
  }
}
