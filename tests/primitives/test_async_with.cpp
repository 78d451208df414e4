// tests/test_async_with.cpp: async context managers (patterns.md row 6): async_with over a class
// with close() or enter()/exit(), and over a generator-style weft::resource<T>. The cleanup runs
// exactly once when the body returns, throws, or is cancelled; it is shielded from the
// cancellation that ended the body (its awaits do not throw), and the cancellation is rethrown.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <optional>
#include <utility>
#include <stdexcept>
#include <string>
#include <thread>

#include <weft/weft.hpp>

#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

weft::runtime_options two_workers() { return {.worker_threads = 2}; }

struct counters {
  std::atomic<int> opened{0};
  std::atomic<int> closed{0};
  std::atomic<int> cleanup_cancelled{0};
  std::atomic<bool> saw_error{false};
};

// Class-based, close() only.
class connection {
 public:
  explicit connection(counters& c) : c_(&c) { ++c_->opened; }
  connection(connection&& other) noexcept : c_(std::exchange(other.c_, nullptr)) {}
  weft::task<int> query(int v) {
    co_await weft::yield_now();
    co_return v * 2;
  }
  weft::task<> close() {
    try {
      co_await weft::sleep(2ms);  // awaiting cleanup
    } catch (const weft::cancelled_error&) {
      ++c_->cleanup_cancelled;
      throw;
    }
    ++c_->closed;
  }

 private:
  counters* c_;
};

// Class-based with enter()/exit(error), as __aenter__/__aexit__.
class session {
 public:
  explicit session(counters& c) : c_(&c) {}
  weft::task<connection&> enter() {
    co_await weft::yield_now();
    conn_.emplace(*c_);
    co_return *conn_;
  }
  weft::task<> exit(std::exception_ptr error) {
    if (error) c_->saw_error = true;
    co_await conn_->close();
  }

 private:
  counters* c_;
  std::optional<connection> conn_;
};

// Generator-based.
weft::resource<connection> open_connection(counters& c) {
  co_await weft::yield_now();  // connecting
  connection conn(c);
  std::exception_ptr error = co_yield conn;
  if (error) c.saw_error = true;
  co_await conn.close();
}

enum class ending { success, failure, cancellation };

// Runs `body_of(ending)` under async_with through `use` and reports how it ended.
template <class Use>
void check_three_endings(Use use) {
  for (ending how : {ending::success, ending::failure, ending::cancellation}) {
    CAPTURE(static_cast<int>(how));
    counters c;
    weft::runtime rt(two_workers());
    auto handle = rt.spawn(use(c, [how](connection& conn) -> weft::task<int> {
      int v = co_await conn.query(21);
      if (how == ending::failure) throw std::runtime_error("query failed");
      if (how == ending::cancellation) co_await weft::sleep(60s);
      co_return v;
    }));
    if (how == ending::cancellation) {
      while (c.opened == 0) std::this_thread::sleep_for(1ms);
      std::this_thread::sleep_for(10ms);
      handle.cancel();
    }
    enum { value, failed, cancelled } result = value;
    int got = 0;
    rt.block_on([&]() -> weft::task<> {
      try {
        got = co_await handle;
      } catch (const std::runtime_error&) {
        result = failed;
      } catch (const weft::cancelled_error&) {
        result = cancelled;
      }
    }());
    CHECK(c.opened == 1);
    CHECK(c.closed == 1);
    CHECK(c.cleanup_cancelled == 0);
    switch (how) {
      case ending::success:
        CHECK(result == value);
        CHECK(got == 42);
        CHECK_FALSE(c.saw_error);
        break;
      case ending::failure:
        CHECK(result == failed);
        break;
      case ending::cancellation:
        CHECK(result == cancelled);
        CHECK(handle.cancelled());
        break;
    }
  }
}

}  // namespace

TEST_CASE("async_with: a class with close is cleaned up once in all three endings") {
  weft_test::watchdog dog(20s);
  check_three_endings([](counters& c, auto body) -> weft::task<int> {
    co_return co_await weft::async_with(connection(c), std::move(body));
  });
}

TEST_CASE("async_with: a class with enter and exit sees the body's exception") {
  weft_test::watchdog dog(20s);
  check_three_endings([](counters& c, auto body) -> weft::task<int> {
    co_return co_await weft::async_with(session(c), std::move(body));
  });
  counters c;
  weft::run(
      [&]() -> weft::task<> {
        try {
          co_await weft::async_with(session(c), [](connection&) -> weft::task<> {
            throw std::runtime_error("x");
            co_return;
          });
        } catch (const std::runtime_error&) {
        }
      }(),
      two_workers());
  CHECK(c.saw_error);
  CHECK(c.closed == 1);
}

TEST_CASE("async_with: a generator-style resource is cleaned up once in all three endings") {
  weft_test::watchdog dog(20s);
  check_three_endings([](counters& c, auto body) -> weft::task<int> {
    co_return co_await weft::using_resource(open_connection(c), std::move(body));
  });
}

TEST_CASE("async_with: the resource's co_yield gives the body's exception to the cleanup") {
  weft_test::watchdog dog(10s);
  counters c;
  weft::run(
      [&]() -> weft::task<> {
        bool threw = false;
        try {
          co_await weft::async_with(open_connection(c), [](connection&) -> weft::task<> {
            throw std::runtime_error("bad query");
            co_return;
          });
        } catch (const std::runtime_error& e) {
          threw = std::string(e.what()) == "bad query";
        }
        CHECK(threw);
      }(),
      two_workers());
  CHECK(c.saw_error);
  CHECK(c.closed == 1);
}

TEST_CASE("async_with: a cancellation pending when the body ends is thrown after the cleanup") {
  weft_test::watchdog dog(10s);
  counters c;
  weft::runtime rt(two_workers());
  weft::join_handle<int>* self = nullptr;
  std::atomic<bool> ready{false};
  // Named: the lambda (and its captures) must outlive the spawned coroutine.
  auto body = [&]() -> weft::task<int> {
    while (!ready) co_await weft::yield_now();
    co_return co_await weft::async_with(open_connection(c), [&](connection&) -> weft::task<int> {
      self->cancel();  // a request that no cancellation point sees before the body ends
      co_return 1;
    });
  };
  auto handle = rt.spawn(body());
  self = &handle;
  ready = true;
  rt.block_on([&]() -> weft::task<> {
    try {
      (void)co_await handle;
    } catch (const weft::cancelled_error&) {
    }
  }());
  CHECK(handle.cancelled());
  CHECK(c.closed == 1);
  CHECK(c.cleanup_cancelled == 0);
}

TEST_CASE("async_with: a resource that fails to acquire runs no body and no cleanup") {
  weft_test::watchdog dog(10s);
  weft::run(
      []() -> weft::task<> {
        bool body_ran = false;
        bool threw = false;
        auto failing = []() -> weft::resource<int> {
          co_await weft::yield_now();
          throw std::runtime_error("connect failed");
          int x = 0;
          co_yield x;
        };
        try {
          co_await weft::async_with(failing(), [&](int&) -> weft::task<> {
            body_ran = true;
            co_return;
          });
        } catch (const std::runtime_error&) {
          threw = true;
        }
        CHECK(threw);
        CHECK_FALSE(body_ran);
        auto silent = []() -> weft::resource<int> { co_return; };
        bool logic = false;
        try {
          co_await weft::async_with(silent(), [](int&) -> weft::task<> { co_return; });
        } catch (const std::logic_error&) {
          logic = true;
        }
        CHECK(logic);
      }(),
      two_workers());
}
