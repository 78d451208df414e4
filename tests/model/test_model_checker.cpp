// tests/model/test_model_checker.cpp: the checker itself, on the classic litmus tests. Each test
// states an outcome the C++ memory model allows (the checker must find it) or forbids (the checker
// must never produce it), so a checker that explores too little or too much fails here first.
#include <doctest/doctest.h>

#include <cstdint>

#include "model_checker.hpp"

namespace model = weft::model;

// Several tests here end in a failed execution on purpose; the checker abandons its fibers
// mid-call, so what their frames own is never freed (see mutation.hpp).
extern "C" const char* __lsan_default_options() { return "detect_leaks=0"; }

namespace {

// Explores `body` and reports whether some execution fails a check whose message is "outcome":
// the litmus tests check(!outcome) so that finding the outcome fails the execution.
bool outcome_reachable(const std::function<void()>& body, unsigned preemptions = 2) {
  model::options opts;
  opts.preemption_bound = preemptions;
  const model::result r = model::explore(opts, body);
  REQUIRE(r.complete);
  return r.failed;
}

// Store buffering: each thread stores to one location and loads the other. Both loads reading 0
// is allowed unless the StoreLoad order is enforced by seq_cst operations or seq_cst fences.
bool store_buffering(std::memory_order store_order, std::memory_order load_order, bool fences) {
  return outcome_reachable([=] {
    model::atomic<int> x{0};
    model::atomic<int> y{0};
    int r1 = -1;
    int r2 = -1;
    const int a = model::spawn([&] {
      x.store(1, store_order);
      if (fences) model::atomic_thread_fence(std::memory_order_seq_cst);
      r1 = y.load(load_order);
    });
    const int b = model::spawn([&] {
      y.store(1, store_order);
      if (fences) model::atomic_thread_fence(std::memory_order_seq_cst);
      r2 = x.load(load_order);
    });
    model::join(a);
    model::join(b);
    model::check(!(r1 == 0 && r2 == 0), "both loads missed the other thread's store");
  });
}

// Message passing: data then flag; a reader that sees the flag must see the data when the flag is
// published with release and read with acquire (or through fences).
bool message_passing_stale(std::memory_order flag_store, std::memory_order flag_load) {
  return outcome_reachable([=] {
    model::atomic<int> data{0};
    model::atomic<int> flag{0};
    const int writer = model::spawn([&] {
      data.store(42, std::memory_order_relaxed);
      flag.store(1, flag_store);
    });
    const int reader = model::spawn([&] {
      if (flag.load(flag_load) == 1) {
        model::check(data.load(std::memory_order_relaxed) == 42, "flag seen without its data");
      }
    });
    model::join(writer);
    model::join(reader);
  });
}

}  // namespace

TEST_SUITE("model") {
  TEST_CASE("model checker: relaxed store buffering lets both loads miss") {
    CHECK(store_buffering(std::memory_order_relaxed, std::memory_order_relaxed, false));
  }

  TEST_CASE("model checker: release stores and acquire loads still let both loads miss") {
    CHECK(store_buffering(std::memory_order_release, std::memory_order_acquire, false));
  }

  TEST_CASE("model checker: seq_cst stores and loads forbid store buffering") {
    CHECK_FALSE(store_buffering(std::memory_order_seq_cst, std::memory_order_seq_cst, false));
  }

  TEST_CASE("model checker: a seq_cst store with an acquire load allows store buffering") {
    CHECK(store_buffering(std::memory_order_seq_cst, std::memory_order_acquire, false));
  }

  TEST_CASE("model checker: seq_cst fences between relaxed accesses forbid store buffering") {
    CHECK_FALSE(store_buffering(std::memory_order_relaxed, std::memory_order_relaxed, true));
  }

  TEST_CASE("model checker: relaxed message passing can show the flag without the data") {
    CHECK(message_passing_stale(std::memory_order_relaxed, std::memory_order_acquire));
    CHECK(message_passing_stale(std::memory_order_release, std::memory_order_relaxed));
  }

  TEST_CASE("model checker: release and acquire message passing always shows the data") {
    CHECK_FALSE(message_passing_stale(std::memory_order_release, std::memory_order_acquire));
  }

  TEST_CASE("model checker: fences turn relaxed message passing into synchronization") {
    CHECK_FALSE(outcome_reachable([] {
      model::atomic<int> data{0};
      model::atomic<int> flag{0};
      const int writer = model::spawn([&] {
        data.store(42, std::memory_order_relaxed);
        model::atomic_thread_fence(std::memory_order_release);
        flag.store(1, std::memory_order_relaxed);
      });
      const int reader = model::spawn([&] {
        if (flag.load(std::memory_order_relaxed) == 1) {
          model::atomic_thread_fence(std::memory_order_acquire);
          model::check(data.load(std::memory_order_relaxed) == 42, "flag seen without its data");
        }
      });
      model::join(writer);
      model::join(reader);
    }));
  }

  TEST_CASE("model checker: a relaxed read-modify-write continues a release sequence") {
    CHECK_FALSE(outcome_reachable([] {
      model::atomic<int> data{0};
      model::atomic<int> count{0};
      const int writer = model::spawn([&] {
        data.store(42, std::memory_order_relaxed);
        count.store(1, std::memory_order_release);
      });
      const int bumper = model::spawn([&] { count.fetch_add(1, std::memory_order_relaxed); });
      const int reader = model::spawn([&] {
        if (count.load(std::memory_order_acquire) == 2) {
          model::check(data.load(std::memory_order_relaxed) == 42, "release sequence broken");
        }
      });
      model::join(writer);
      model::join(bumper);
      model::join(reader);
    }));
  }

  TEST_CASE("model checker: a read-modify-write always reads the newest value") {
    CHECK_FALSE(outcome_reachable([] {
      model::atomic<int> count{0};
      const int a = model::spawn([&] { count.fetch_add(1, std::memory_order_relaxed); });
      const int b = model::spawn([&] { count.fetch_add(1, std::memory_order_relaxed); });
      model::join(a);
      model::join(b);
      model::check(count.load(std::memory_order_relaxed) == 2, "lost increment");
    }));
  }

  TEST_CASE("model checker: reads of one location never go back in modification order") {
    CHECK_FALSE(outcome_reachable([] {
      model::atomic<int> x{0};
      model::atomic<int> gap{0};
      const int writer = model::spawn([&] {
        x.store(1, std::memory_order_relaxed);
        x.store(2, std::memory_order_relaxed);
      });
      const int reader = model::spawn([&] {
        const int first = x.load(std::memory_order_relaxed);
        gap.store(1, std::memory_order_relaxed);  // so that the two loads are not a spin loop
        const int second = x.load(std::memory_order_relaxed);
        model::check(second >= first, "read-read coherence broken");
      });
      model::join(writer);
      model::join(reader);
    }));
  }

  TEST_CASE("model checker: a thread blocked on a futex nobody wakes is reported as a deadlock") {
    model::options opts;
    const model::result r = model::explore(opts, [] {
      model::atomic<std::uint32_t> word{0};
      const int sleeper = model::spawn([&] { model::futex::wait(&word, 0); });
      const int waker = model::spawn([&] {
        word.store(1, std::memory_order_relaxed);  // no futex_wake: the sleeper may never wake
      });
      model::join(sleeper);
      model::join(waker);
    });
    CHECK(r.failed);
    CHECK(r.message.find("deadlock") != std::string::npos);
  }

  TEST_CASE("model checker: a futex wait and wake pair never loses the wake-up") {
    model::options opts;
    const model::result r = model::explore(opts, [] {
      model::atomic<std::uint32_t> word{0};
      const int sleeper = model::spawn([&] {
        while (word.load(std::memory_order_acquire) == 0)
          model::futex::wait(&word, 0);
      });
      const int waker = model::spawn([&] {
        word.store(1, std::memory_order_release);
        model::futex::wake_all(&word);
      });
      model::join(sleeper);
      model::join(waker);
    });
    CHECK_FALSE(r.failed);
    CHECK(r.executions > 1);
  }

  TEST_CASE("model checker: a spin loop waits for the value it spins on instead of looping") {
    model::options opts;
    const model::result r = model::explore(opts, [] {
      model::atomic<bool> ready{false};
      const int spinner = model::spawn([&] {
        while (!ready.load(std::memory_order_acquire)) {
        }
      });
      const int setter = model::spawn([&] { ready.store(true, std::memory_order_release); });
      model::join(spinner);
      model::join(setter);
    });
    CHECK_FALSE(r.failed);
  }

  TEST_CASE("model checker: a mutex serializes its critical sections") {
    model::options opts;
    const model::result r = model::explore(opts, [] {
      model::mutex m;
      model::atomic<int> inside{0};
      int counter = 0;
      auto body = [&] {
        m.lock();
        model::check(inside.fetch_add(1, std::memory_order_relaxed) == 0, "two threads inside");
        ++counter;
        inside.fetch_sub(1, std::memory_order_relaxed);
        m.unlock();
      };
      const int a = model::spawn(body);
      const int b = model::spawn(body);
      model::join(a);
      model::join(b);
      model::check(counter == 2, "lost update under the mutex");
    });
    CHECK_FALSE(r.failed);
  }
}
