// tests/primitives/test_wait_kinds.cpp: every primitive's wait names itself in runtime::dump (the
// wait_kind each awaiter passes to the one suspend sequence, scheduler/dump.cpp). One table: the
// primitive, how a task is made to wait on it, and the name the dump must show; queue and channel
// waits used to show only as "a cancellable wait".
#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include <weft/weft.hpp>

#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

// The primitives a task may be left waiting on, each set up so that its wait blocks.
struct blockers {
  weft::queue<int> empty_queue;
  weft::queue<int> full_queue{1};
  weft::queue<int> unfinished_queue;  // an item put and never marked done: join waits
  weft::channel<int> empty_channel;
  weft::channel<int> full_channel{1};
  weft::mutex held_mutex;
  weft::semaphore no_permits{0};
  weft::event unset_event;
  weft::barrier two_parties{2};

  blockers() {
    full_queue.put_nowait(0);
    unfinished_queue.put_nowait(0);
    REQUIRE(full_channel.try_send(0));
  }
};

struct wait_case {
  const char* shown;  // the dump's waiting_on
  std::function<weft::task<>(blockers&)> wait;
};

const wait_case cases[] = {
    {"queue::get", [](blockers& b) -> weft::task<> { (void)co_await b.empty_queue.get(); }},
    {"queue::put", [](blockers& b) -> weft::task<> { co_await b.full_queue.put(1); }},
    {"queue::join", [](blockers& b) -> weft::task<> { co_await b.unfinished_queue.join(); }},
    {"channel::receive",
     [](blockers& b) -> weft::task<> { (void)co_await b.empty_channel.receive(); }},
    {"channel::send", [](blockers& b) -> weft::task<> { co_await b.full_channel.send(1); }},
    {"mutex::lock", [](blockers& b) -> weft::task<> { auto g = co_await b.held_mutex.lock(); }},
    {"semaphore::acquire",
     [](blockers& b) -> weft::task<> { auto p = co_await b.no_permits.acquire(); }},
    {"event::wait", [](blockers& b) -> weft::task<> { co_await b.unset_event.wait(); }},
    {"barrier::arrive_and_wait",
     [](blockers& b) -> weft::task<> { (void)co_await b.two_parties.wait(); }},
};

// Polls the dump until the task named `name` shows as waiting (or 10 s pass); returns what on.
std::string waiting_on(weft::runtime& rt, const std::string& name) {
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < give_up) {
    for (const auto& t : rt.dump().tasks) {
      if (t.name == name && t.state == weft::task_dump::state_type::waiting) return t.waiting_on;
    }
    std::this_thread::sleep_for(2ms);
  }
  return "(never seen waiting)";
}

}  // namespace

TEST_CASE("wait kinds: each primitive's wait is named in the dump") {
  weft_test::watchdog dog(60s);
  weft::runtime rt({.worker_threads = 1});
  blockers b;
  auto guard = b.held_mutex.try_lock();
  REQUIRE(guard.has_value());
  for (const wait_case& c : cases) {
    CAPTURE(c.shown);
    auto h = rt.spawn_named(c.shown, c.wait(b));
    CHECK(waiting_on(rt, c.shown) == c.shown);
    h.cancel();  // every one of these waits is a cancellation point
    while (!h.done())
      std::this_thread::sleep_for(1ms);
    CHECK(h.cancelled());
  }
}
