// tests/test_poller.cpp: the private poller thread (scheduler/poller.{hpp,cpp}): timers armed,
// cancelled and disarmed through it (never early, refused when due or cancelled first, an earlier
// timer wakes a poller that sleeps on a later one, disarm waits for a running callback),
// descriptor registration and the readiness slots (idle/ready/cancelled/parked), deregistration,
// virtual time (moves only when the pool is idle and nothing is queued, jumps to the next
// deadline), stop and clear_for_shutdown. Multi-threaded: threads arm and disarm timers against
// the running poller; every arm either fires exactly once or is disarmed, never both.
//
// The poller runs alone, on a fake host (poller_host, the seam between the poller and the pool):
// what it makes runnable lands in the host's list, where the test reads it; the "waiters" are
// addresses of bytes the test owns (nothing ever resumes them).
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <weft/scheduler/io.hpp>

#include "parker.hpp"
#include "poller.hpp"
#include "support/eventually.hpp"
#include "support/stress.hpp"
#include "support/watchdog.hpp"

using namespace std::chrono_literals;
using weft::detail::arm_result;
using weft::detail::callback_timer_entry;
using steady = weft::detail::clock;
using weft::detail::io_direction;
using weft::detail::io_registration;
using weft::detail::park_result;
using weft::detail::poller;
using weft::detail::timer_entry;

namespace {

using weft_test::eventually;

constexpr std::size_t arena_size = 1 << 20;
char* arena() {
  static const std::unique_ptr<char[]> bytes(new char[arena_size]);
  return bytes.get();
}
std::coroutine_handle<> fake_waiter(std::size_t id) {
  if (id >= arena_size) std::abort();
  return std::coroutine_handle<>::from_address(arena() + id);
}

// The poller's host, as the runtime's core would be (poller_host in poller.hpp): what the poller
// makes runnable is kept until the test takes it, and the pool counts as idle when the test has
// "parked" it and nothing injected is still untaken (the core: every worker parked and the
// injection queue empty). An injection "wakes" the pool, as the core's would wake a worker.
class fake_host final : public weft::detail::poller_host {
 public:
  void inject_batch(void* const* tasks, std::size_t count) override {
    std::lock_guard lock(mutex_);
    pending_.insert(pending_.end(), tasks, tasks + count);
    parked_ = false;
  }
  [[nodiscard]] bool pool_idle() const noexcept override {
    std::lock_guard lock(mutex_);
    return parked_ && pending_.empty();
  }
  void report(std::string_view message) const noexcept override {
    std::lock_guard lock(mutex_);
    reports_.emplace_back(message);
  }
  void park() {
    std::lock_guard lock(mutex_);
    parked_ = true;
  }
  [[nodiscard]] bool parked() const {
    std::lock_guard lock(mutex_);
    return parked_;
  }
  std::vector<void*> take() {
    std::lock_guard lock(mutex_);
    taken_ += pending_.size();
    return std::exchange(pending_, {});
  }
  // Everything injected so far, taken or not (for tests that take at the end).
  [[nodiscard]] std::size_t take_count() const {
    std::lock_guard lock(mutex_);
    return taken_ + pending_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::vector<void*> pending_;
  std::size_t taken_ = 0;
  bool parked_ = false;
  mutable std::vector<std::string> reports_;
};

// A poller with a fake host; the test drives the poller and reads what it injected.
struct rig {
  fake_host host;
  poller poll;

  explicit rig(bool virtual_time = false) : poll(host, {.virtual_time = virtual_time}) {}
  // Driver-in-park mode (poller.hpp): the thread is the watchdog, and the test's threads play the
  // parked workers that take the driver role.
  struct driver_in_park_t {};
  explicit rig(driver_in_park_t) : poll(host, {.driver_in_park = true}) {}
  // As the runtime's shutdown does: stop the thread, then free the deregistered records it had
  // not freed yet (ASan's leak check caught them when the rig left this out).
  ~rig() {
    poll.stop();
    poll.clear_for_shutdown();
  }
  rig(const rig&) = delete;
  rig& operator=(const rig&) = delete;

  poller& p() { return poll; }
  void start() { poll.start("tpoll"); }

  // Everything injected so far.
  std::vector<void*> take() { return host.take(); }
  // Waits until at least `count` items were injected (or `limit` passed); returns them.
  std::vector<void*> take_at_least(std::size_t count, std::chrono::milliseconds limit = 5s) {
    std::vector<void*> out;
    const auto deadline = steady::now() + limit;
    while (out.size() < count && steady::now() < deadline) {
      auto more = take();
      out.insert(out.end(), more.begin(), more.end());
      if (out.size() < count) std::this_thread::sleep_for(200us);
    }
    return out;
  }
};

// A plain timer (it resumes a waiter) whose waiter is byte `id` of the arena.
struct waiter_timer : timer_entry {
  explicit waiter_timer(std::size_t id) { waiter = fake_waiter(id); }
};

struct socket_pair {
  int fds[2] = {-1, -1};
  socket_pair() { REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0); }
  ~socket_pair() {
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
  }
  void send_byte(int end = 1) {
    const char c = 'x';
    REQUIRE(::write(fds[end], &c, 1) == 1);
  }
};

std::uintptr_t slot(io_registration* reg, io_direction dir) {
  return reg->waiters[static_cast<int>(dir)].load();
}

}  // namespace

TEST_CASE("poller: a timer fires at its deadline and not before and its waiter is injected") {
  weft_test::watchdog dog(30s);
  rig r;
  r.start();
  waiter_timer e(1);
  const auto armed_at = steady::now();
  REQUIRE(r.p().arm(&e, armed_at + 30ms) == arm_result::armed);
  CHECK(r.p().timer_count() == 1);
  const auto fired = r.take_at_least(1);
  const auto elapsed = steady::now() - armed_at;
  REQUIRE(fired.size() == 1);
  CHECK(fired[0] == e.waiter.address());
  CHECK(elapsed >= 30ms);
  CHECK(r.p().timer_count() == 0);
  CHECK_FALSE(r.p().disarm(&e));  // fired already: nothing to disarm
  CHECK(r.take().empty());        // and only once
}

TEST_CASE("poller: arm refuses a deadline that has passed and on the virtual clock one due now") {
  rig r;
  waiter_timer past(1);
  CHECK(r.p().arm(&past, steady::now() - 5ms) == arm_result::due);
  CHECK_FALSE(past.linked);
  CHECK(r.p().timer_count() == 0);
  // On the real clock "now" rounds up to the next tick (never early); the virtual clock sits on a
  // tick, so its now() is due at once.
  rig v(true);
  waiter_timer current(2), next(3);
  CHECK(v.p().arm(&current, v.p().now()) == arm_result::due);
  CHECK_FALSE(current.linked);
  CHECK(v.p().arm(&next, v.p().now() + 1ns) == arm_result::armed);  // rounded up to tick 1
  CHECK(next.deadline == 1);
  CHECK(v.p().disarm(&next));
}

TEST_CASE("poller: a cancel before the arm makes the arm refuse") {
  rig r;
  waiter_timer e(1);
  CHECK_FALSE(r.p().cancel(&e));  // not armed: marked
  CHECK(e.cancelled);
  CHECK(r.p().arm(&e, steady::now() + 1h) == arm_result::cancelled);
  CHECK_FALSE(e.linked);
  CHECK(r.p().timer_count() == 0);
}

TEST_CASE("poller: a cancelled or disarmed timer is unlinked and never fires") {
  weft_test::watchdog dog(30s);
  rig r;
  r.start();
  waiter_timer cancelled(1), disarmed(2), witness(3);
  REQUIRE(r.p().arm(&cancelled, steady::now() + 20ms) == arm_result::armed);
  REQUIRE(r.p().arm(&disarmed, steady::now() + 20ms) == arm_result::armed);
  REQUIRE(r.p().arm(&witness, steady::now() + 60ms) == arm_result::armed);
  CHECK(r.p().timer_count() == 3);
  CHECK(r.p().cancel(&cancelled));
  CHECK_FALSE(cancelled.linked);
  CHECK(r.p().disarm(&disarmed));
  CHECK_FALSE(disarmed.linked);
  CHECK(r.p().timer_count() == 1);
  CHECK_FALSE(r.p().disarm(&disarmed));  // a second disarm finds nothing
  // The witness fires after both deadlines have passed: it alone comes out.
  const auto fired = r.take_at_least(1);
  REQUIRE(fired.size() == 1);
  CHECK(fired[0] == witness.waiter.address());
}

TEST_CASE("poller: an earlier timer wakes a poller that sleeps until a later one") {
  weft_test::watchdog dog(30s);
  rig r;
  r.start();
  waiter_timer late(1), early(2);
  REQUIRE(r.p().arm(&late, steady::now() + 20s) == arm_result::armed);
  std::this_thread::sleep_for(20ms);  // the poller now sleeps until `late`
  const auto armed_at = steady::now();
  REQUIRE(r.p().arm(&early, armed_at + 10ms) == arm_result::armed);
  const auto fired = r.take_at_least(1, 3s);
  REQUIRE(fired.size() == 1);
  CHECK(fired[0] == early.waiter.address());
  CHECK(steady::now() - armed_at < 2s);
  CHECK(r.p().disarm(&late));
}

TEST_CASE("poller: timers fire in the order of their deadlines") {
  weft_test::watchdog dog(30s);
  rig r;
  r.start();
  std::deque<waiter_timer> entries;
  for (std::size_t i = 0; i < 4; ++i)
    entries.emplace_back(i);
  const auto base = steady::now();
  // Armed out of order; 15 ms apart, so each fires in its own loop of the poller.
  for (std::size_t i : {2U, 0U, 3U, 1U})
    REQUIRE(r.p().arm(&entries[i], base + 20ms + 15ms * i) == arm_result::armed);
  const auto fired = r.take_at_least(4);
  REQUIRE(fired.size() == 4);
  for (std::size_t i = 0; i < 4; ++i)
    CHECK(fired[i] == entries[i].waiter.address());
}

namespace {
struct slow_callback : callback_timer_entry {
  std::atomic<bool> started{false};
  std::atomic<bool> returned{false};
  std::thread::id ran_on;
  slow_callback() : callback_timer_entry(&fire) {}
  static void fire(timer_entry* self) noexcept {
    auto* me = static_cast<slow_callback*>(self);
    me->ran_on = std::this_thread::get_id();
    me->started.store(true);
    std::this_thread::sleep_for(50ms);
    me->returned.store(true);
  }
};
}  // namespace

TEST_CASE("poller: a callback timer runs on the poller thread and disarm waits until it returns") {
  weft_test::watchdog dog(30s);
  rig r;
  r.start();
  slow_callback e;
  REQUIRE(r.p().arm(&e, steady::now() + 5ms) == arm_result::armed);
  REQUIRE(eventually([&] { return e.started.load(); }));
  CHECK(e.ran_on != std::this_thread::get_id());
  // on_fire is running now (it sleeps 50 ms): disarm must not return before it has.
  CHECK_FALSE(r.p().disarm(&e));
  CHECK(e.returned.load());
  CHECK_FALSE(e.firing.load());
  CHECK(r.take().empty());  // a callback timer injects nothing
}

TEST_CASE("poller: stop joins the thread and keeps the timers; clear_for_shutdown unlinks them") {
  weft_test::watchdog dog(30s);
  rig r;
  r.start();
  waiter_timer a(1), b(2);
  REQUIRE(r.p().arm(&a, steady::now() + 1h) == arm_result::armed);
  REQUIRE(r.p().arm(&b, steady::now() + 2h) == arm_result::armed);
  r.p().stop();
  r.p().stop();  // a second stop is a no-op
  CHECK(r.p().timer_count() == 2);
  CHECK(a.linked);
  r.p().clear_for_shutdown();
  CHECK(r.p().timer_count() == 0);
  CHECK_FALSE(a.linked);
  CHECK_FALSE(b.linked);
  CHECK_FALSE(r.p().disarm(&a));  // the entries are disconnected: nothing to do
}

TEST_CASE("poller: a fresh registration reports the socket writable and readable after a send") {
  weft_test::watchdog dog(30s);
  rig r;
  r.start();
  socket_pair s;
  io_registration* reg = r.p().register_fd(s.fds[0]);
  CHECK(reg->fd == s.fds[0]);
  CHECK(reg->owner == &r.p());
  // Nobody waits: readiness is remembered in the slot.
  CHECK(eventually([&] { return slot(reg, io_direction::write) == io_registration::ready; }));
  CHECK(slot(reg, io_direction::read) == io_registration::idle);
  s.send_byte();
  CHECK(eventually([&] { return slot(reg, io_direction::read) == io_registration::ready; }));
  CHECK(weft::detail::io_take_readiness(reg, io_direction::read));
  CHECK_FALSE(weft::detail::io_take_readiness(reg, io_direction::read));  // consumed
  CHECK(r.take().empty());  // nobody was parked: nothing to run
  r.p().deregister(reg);
}

TEST_CASE("poller: readiness resumes a parked waiter exactly once") {
  weft_test::watchdog dog(30s);
  rig r;
  r.start();
  socket_pair s;
  io_registration* reg = r.p().register_fd(s.fds[0]);
  // Let the poller report the registration's first edge (writable) before the test sends.
  // Otherwise the send can wake the socket while the poller is still collecting that first
  // event: Linux then reports the item a second time (edge-triggered epoll may repeat an edge
  // that lands during collection), the second report finds nobody parked and leaves the slot
  // `ready`. That is correct for the runtime (a spurious edge costs one failed read), but it
  // breaks this exact-count check. (This check failed 2 runs in 30 on a loaded machine once;
  // the repeated edge is the one path to that state we found, and it did not recur in 300 runs.)
  CHECK(eventually([&] { return slot(reg, io_direction::write) == io_registration::ready; }));
  const auto waiter = fake_waiter(7);
  REQUIRE(weft::detail::io_park(reg, io_direction::read, waiter) == park_result::parked);
  CHECK(slot(reg, io_direction::read) == reinterpret_cast<std::uintptr_t>(waiter.address()));
  s.send_byte();
  const auto fired = r.take_at_least(1);
  REQUIRE(fired.size() == 1);
  CHECK(fired[0] == waiter.address());
  CHECK(slot(reg, io_direction::read) == io_registration::idle);  // swapped back, not "ready"
  s.send_byte();  // a second edge with nobody parked is remembered, not injected
  CHECK(eventually([&] { return slot(reg, io_direction::read) == io_registration::ready; }));
  CHECK(r.take().empty());
  r.p().deregister(reg);
}

TEST_CASE("poller: the readiness slot settles each race of park and cancel and readiness one way") {
  rig r;  // no thread: the slot protocol alone
  socket_pair s;
  io_registration* reg = r.p().register_fd(s.fds[0]);
  const auto waiter = fake_waiter(3), other = fake_waiter(4);

  // Parked, then cancelled: the canceller takes it back and resumes it itself.
  REQUIRE(weft::detail::io_park(reg, io_direction::read, waiter) == park_result::parked);
  CHECK_THROWS_AS(weft::detail::io_park(reg, io_direction::read, other), std::logic_error);
  CHECK_FALSE(weft::detail::io_cancel(reg, io_direction::read, other));  // not the parked one
  CHECK(weft::detail::io_cancel(reg, io_direction::read, waiter));
  CHECK(slot(reg, io_direction::read) == io_registration::idle);

  // Cancelled before parking: the park refuses and leaves "ready" (an edge may have been missed).
  CHECK_FALSE(weft::detail::io_cancel(reg, io_direction::read, waiter));
  CHECK(slot(reg, io_direction::read) == io_registration::cancelled);
  CHECK(weft::detail::io_park(reg, io_direction::read, waiter) == park_result::cancelled);
  CHECK(slot(reg, io_direction::read) == io_registration::ready);

  // Ready before parking: the park consumes it and says "retry".
  CHECK(weft::detail::io_park(reg, io_direction::read, waiter) == park_result::ready);
  CHECK(slot(reg, io_direction::read) == io_registration::idle);

  // The two directions are independent.
  REQUIRE(weft::detail::io_park(reg, io_direction::write, waiter) == park_result::parked);
  CHECK(slot(reg, io_direction::read) == io_registration::idle);
  CHECK(weft::detail::io_cancel(reg, io_direction::write, waiter));
  r.p().deregister(reg);
}

TEST_CASE("poller: a hang-up makes both directions ready") {
  weft_test::watchdog dog(30s);
  rig r;
  r.start();
  socket_pair s;
  io_registration* reg = r.p().register_fd(s.fds[0]);
  CHECK(eventually([&] { return slot(reg, io_direction::write) == io_registration::ready; }));
  CHECK(weft::detail::io_take_readiness(reg, io_direction::write));
  const auto reader = fake_waiter(10), writer = fake_waiter(11);
  REQUIRE(weft::detail::io_park(reg, io_direction::read, reader) == park_result::parked);
  REQUIRE(weft::detail::io_park(reg, io_direction::write, writer) == park_result::parked);
  ::shutdown(s.fds[0], SHUT_RDWR);  // EPOLLHUP on our end
  auto fired = r.take_at_least(2);
  REQUIRE(fired.size() == 2);
  std::sort(fired.begin(), fired.end());
  std::vector<void*> expected{reader.address(), writer.address()};
  std::sort(expected.begin(), expected.end());
  CHECK(fired == expected);
  r.p().deregister(reg);
}

TEST_CASE("poller: a deregistered descriptor no longer wakes anyone and its record is freed") {
  weft_test::watchdog dog(30s);
  rig r;
  r.start();
  socket_pair s;
  io_registration* reg = r.p().register_fd(s.fds[0]);
  REQUIRE(weft::detail::io_park(reg, io_direction::read, fake_waiter(5)) == park_result::parked);
  r.p().deregister(reg);  // the poller frees `reg` at the top of its next loop (ASan watches)
  s.send_byte();
  std::this_thread::sleep_for(30ms);
  waiter_timer tick(6);  // makes the poller loop at least once more
  REQUIRE(r.p().arm(&tick, steady::now() + 5ms) == arm_result::armed);
  const auto fired = r.take_at_least(1);
  REQUIRE(fired.size() == 1);
  CHECK(fired[0] == tick.waiter.address());
}

TEST_CASE("poller: register_fd throws for a descriptor epoll refuses") {
  rig r;
  CHECK_THROWS_AS(r.p().register_fd(-1), std::system_error);
}

TEST_CASE("poller: clear_for_shutdown orphans live registrations and frees deregistered ones") {
  rig r;  // never started: deregistered records wait in to_free_ until the clear
  socket_pair s, t;
  io_registration* live = r.p().register_fd(s.fds[0]);
  io_registration* gone = r.p().register_fd(t.fds[0]);
  r.p().deregister(gone);  // freed by clear_for_shutdown (ASan's leak check watches)
  r.p().clear_for_shutdown();
  CHECK(live->orphaned);
  delete live;  // as its io_source would
}

TEST_CASE("poller: virtual time stands still while the pool is busy then jumps to the deadline") {
  weft_test::watchdog dog(30s);
  rig r(true);
  CHECK(r.p().virtual_time());
  CHECK(r.p().now_tick() == 0);
  r.start();
  waiter_timer first(1), second(2);
  REQUIRE(r.p().arm(&first, r.p().now() + 1000ms) == arm_result::armed);
  REQUIRE(r.p().arm(&second, r.p().now() + 5000ms) == arm_result::armed);
  CHECK(first.deadline == 1000);

  // Worker 0 is "running": the clock must not move, whatever real time does.
  r.p().pool_went_idle();
  std::this_thread::sleep_for(30ms);
  CHECK(r.p().now_tick() == 0);
  CHECK(r.take().empty());

  // It parks: the poller jumps to the first deadline (not the second) and fires it, which wakes
  // the pool again (the host's injection does).
  r.host.park();
  r.p().pool_went_idle();
  const auto fired = r.take_at_least(1);
  REQUIRE(fired.size() == 1);
  CHECK(fired[0] == first.waiter.address());
  CHECK(r.p().now_tick() == 1000);
  CHECK_FALSE(r.host.parked());  // woken by the injection

  // Parked again but with work still queued (not yet taken): time must not move.
  waiter_timer queued_marker(3);
  r.host.inject_batch(std::array<void*, 1>{queued_marker.waiter.address()}.data(), 1);
  r.host.park();
  r.p().pool_went_idle();
  std::this_thread::sleep_for(30ms);
  CHECK(r.p().now_tick() == 1000);
  CHECK(r.take().size() == 1);
  r.p().pool_went_idle();  // now idle and empty: on to the next deadline
  const auto later = r.take_at_least(1);
  REQUIRE(later.size() == 1);
  CHECK(later[0] == second.waiter.address());
  CHECK(r.p().now_tick() == 5000);
}

TEST_CASE("poller: virtual time stays put with no timer at all") {
  weft_test::watchdog dog(30s);
  rig r(true);
  r.start();
  r.host.park();
  r.p().pool_went_idle();
  std::this_thread::sleep_for(20ms);
  CHECK(r.p().now_tick() == 0);
  waiter_timer e(1);
  // A timer armed now is relative to the virtual clock, which still reads 0.
  REQUIRE(r.p().arm(&e, r.p().now() + 250ms) == arm_result::armed);
  r.p().pool_went_idle();
  REQUIRE(r.take_at_least(1).size() == 1);
  CHECK(r.p().now_tick() == 250);
}

// ---- driver-in-park mode (poller.hpp): the role, the watchdog, a worker's drive ----

TEST_CASE("poller: in driver-in-park mode the watchdog fires timers while nobody drives") {
  weft_test::watchdog dog(30s);
  rig r(rig::driver_in_park_t{});
  REQUIRE(r.p().driver_in_park());
  r.start();
  waiter_timer e(1);
  const auto armed_at = steady::now();
  REQUIRE(r.p().arm(&e, armed_at + 20ms) == arm_result::armed);
  const auto fired = r.take_at_least(1);
  REQUIRE(fired.size() == 1);
  CHECK(fired[0] == e.waiter.address());
  CHECK(steady::now() - armed_at >= 20ms);
  CHECK(r.p().timer_count() == 0);
}

TEST_CASE("poller: in driver-in-park mode the watchdog injects readiness while nobody drives") {
  weft_test::watchdog dog(30s);
  rig r(rig::driver_in_park_t{});
  r.start();
  socket_pair s;
  io_registration* reg = r.p().register_fd(s.fds[0]);
  CHECK(r.p().has_registrations());
  CHECK(eventually([&] { return slot(reg, io_direction::write) == io_registration::ready; }));
  const auto waiter = fake_waiter(11);
  REQUIRE(weft::detail::io_park(reg, io_direction::read, waiter) == park_result::parked);
  s.send_byte();
  const auto fired = r.take_at_least(1);
  REQUIRE(fired.size() == 1);
  CHECK(fired[0] == waiter.address());
  r.p().deregister(reg);
  CHECK_FALSE(r.p().has_registrations());
}

TEST_CASE(
    "poller: a thread holding the driver role gets readiness itself and nothing is injected") {
  weft_test::watchdog dog(30s);
  rig r(rig::driver_in_park_t{});
  r.start();
  socket_pair s;
  io_registration* reg = r.p().register_fd(s.fds[0]);
  CHECK(eventually([&] { return slot(reg, io_direction::write) == io_registration::ready; }));
  // Take the role (the watchdog may hold it for a moment: it gives it back at once).
  REQUIRE(eventually([&] { return r.p().try_acquire_driver(); }));
  CHECK_FALSE(r.p().try_acquire_driver());  // one holder at a time
  const auto waiter = fake_waiter(12);
  REQUIRE(weft::detail::io_park(reg, io_direction::read, waiter) == park_result::parked);
  std::thread sender([&] {
    std::this_thread::sleep_for(20ms);  // the driver is (most likely) asleep in epoll_wait
    s.send_byte();
  });
  std::vector<void*> ready;
  std::vector<timer_entry*> callbacks;
  const auto deadline = steady::now() + 5s;
  while (ready.empty() && steady::now() < deadline)
    r.p().drive(ready, callbacks, /*block=*/true);
  sender.join();
  r.p().release_driver();
  REQUIRE(ready.size() == 1);
  CHECK(ready[0] == waiter.address());
  std::this_thread::sleep_for(5ms);  // the watchdog had its chance: nothing left to inject
  CHECK(r.take().empty());
  r.p().deregister(reg);
}

TEST_CASE("poller: an earlier timer ends the driver's wait and fires on the driving thread") {
  weft_test::watchdog dog(30s);
  rig r(rig::driver_in_park_t{});
  r.start();
  waiter_timer late(1), early(2);
  REQUIRE(r.p().arm(&late, steady::now() + 10s) == arm_result::armed);
  REQUIRE(eventually([&] { return r.p().try_acquire_driver(); }));
  std::thread armer([&] {
    std::this_thread::sleep_for(20ms);
    REQUIRE(r.p().arm(&early, steady::now() + 10ms) == arm_result::armed);
  });
  std::vector<void*> ready;
  std::vector<timer_entry*> callbacks;
  const auto started = steady::now();
  while (ready.empty() && steady::now() - started < 5s)
    r.p().drive(ready, callbacks, /*block=*/true);
  armer.join();
  r.p().release_driver();
  REQUIRE(ready.size() == 1);
  CHECK(ready[0] == early.waiter.address());
  CHECK(steady::now() - started < 5s);  // generous: the wait ended long before `late`
  CHECK(r.p().disarm(&late));
  CHECK(r.take().empty());
}

TEST_CASE("poller: unparking a worker that drives ends its epoll wait") {
  weft_test::watchdog dog(30s);
  rig r(rig::driver_in_park_t{});
  r.start();
  weft::detail::parker park;
  park.set_driver_wake_fd(r.p().wake_fd());
  REQUIRE(eventually([&] { return r.p().try_acquire_driver(); }));
  REQUIRE(park.begin_driving());
  std::thread waker([&] {
    std::this_thread::sleep_for(20ms);
    park.unpark();
  });
  std::vector<void*> ready;
  std::vector<timer_entry*> callbacks;
  const auto started = steady::now();
  while (!park.driving_notified() && steady::now() - started < 5s)
    r.p().drive(ready, callbacks, /*block=*/true);
  CHECK(park.driving_notified());
  park.end_driving();
  r.p().release_driver();
  waker.join();
  CHECK(ready.empty());
  // A token that arrives before begin_driving is consumed by it, as park() consumes one.
  park.unpark();
  CHECK_FALSE(park.begin_driving());
  REQUIRE(park.begin_driving());
  park.end_driving();
}

TEST_SUITE("stress") {
  // Threads play parked workers: each takes the driver role when it is free and drives (blocking
  // until readiness, a timer or a wake), while writers make socket pairs readable, timers come
  // due and the watchdog takes the role whenever it sees it free. Every parked waiter is resumed
  // exactly once, by a driver or by the watchdog's injection, and never by two holders at once.
  TEST_CASE(
      "poller: drivers and the watchdog racing for the role resume each waiter exactly once") {
    weft_test::watchdog dog(120s);
    const std::size_t rounds = weft_test::stress_count(400, 20000);
    constexpr std::size_t pairs = 4;
    constexpr std::size_t drivers = 3;
    rig r(rig::driver_in_park_t{});
    r.start();
    std::vector<std::unique_ptr<socket_pair>> sockets;
    std::vector<io_registration*> regs;
    for (std::size_t i = 0; i < pairs; ++i) {
      sockets.push_back(std::make_unique<socket_pair>());
      regs.push_back(r.p().register_fd(sockets[i]->fds[0]));
    }
    std::atomic<int> holders{0};
    std::atomic<int> overlap{0};
    std::atomic<bool> done{false};
    std::mutex found_mutex;
    std::vector<void*> found;  // what the drivers resumed
    std::vector<std::thread> threads;
    std::vector<std::unique_ptr<weft::detail::parker>> parks;
    for (std::size_t d = 0; d < drivers; ++d) {
      parks.push_back(std::make_unique<weft::detail::parker>());
      parks.back()->set_driver_wake_fd(r.p().wake_fd());
    }
    for (std::size_t d = 0; d < drivers; ++d) {
      threads.emplace_back([&, d] {
        std::vector<void*> ready;
        std::vector<timer_entry*> callbacks;
        while (!done.load()) {
          if (!r.p().try_acquire_driver()) {
            std::this_thread::yield();
            continue;
          }
          if (holders.fetch_add(1) != 0) ++overlap;
          ready.clear();
          if (parks[d]->begin_driving()) {
            r.p().drive(ready, callbacks, /*block=*/true);
            parks[d]->end_driving();
          }
          holders.fetch_sub(1);
          r.p().release_driver();
          if (!ready.empty()) {
            std::lock_guard lock(found_mutex);
            found.insert(found.end(), ready.begin(), ready.end());
          }
        }
      });
    }
    // Each round: park a waiter on every pair's read side, arm a timer, make every pair readable,
    // then wait until all of them were resumed (by a driver or the watchdog) before the next.
    std::mt19937 rng(7);
    std::size_t expected = 0;
    std::vector<std::unique_ptr<waiter_timer>> timers;
    for (std::size_t round = 0; round < rounds; ++round) {
      char sink[64];
      for (std::size_t i = 0; i < pairs; ++i) {
        const auto waiter = fake_waiter(1000 + round * pairs + i);
        // A repeated edge of the last round may still mark the slot ready: drain and retry.
        for (;;) {
          while (::read(sockets[i]->fds[0], sink, sizeof sink) > 0) {
          }
          const park_result parked = weft::detail::io_park(regs[i], io_direction::read, waiter);
          if (parked == park_result::parked) break;
          REQUIRE(parked == park_result::ready);
        }
      }
      timers.push_back(std::make_unique<waiter_timer>(500000 + round));
      // The deadline is 1-2.5 ms away when computed; a thread preempted for longer before the
      // arm (TSan on a loaded machine did it) finds it passed: `due`, nothing armed, nobody
      // resumes that waiter, so it is not counted. (A REQUIRE of `armed` failed there once.)
      const arm_result timer = r.p().arm(
          timers.back().get(), steady::now() + std::chrono::microseconds(rng() % 1500 + 1000));
      REQUIRE((timer == arm_result::armed || timer == arm_result::due));
      for (std::size_t i = 0; i < pairs; ++i) {
        sockets[i]->send_byte();
        if (rng() % 4 == 0) parks[rng() % drivers]->unpark();  // a spurious wake of a driver
      }
      expected += pairs + (timer == arm_result::armed ? 1 : 0);
      const bool all = eventually([&] {
        std::size_t have = 0;
        {
          std::lock_guard lock(found_mutex);
          have = found.size();
        }
        return have + r.host.take_count() >= expected;
      });
      REQUIRE(all);
    }
    done.store(true);
    for (auto& p : parks)
      p->unpark();
    for (auto& t : threads)
      t.join();
    r.p().stop();
    std::vector<void*> all = r.take();
    all.insert(all.end(), found.begin(), found.end());
    std::sort(all.begin(), all.end());
    CHECK(std::adjacent_find(all.begin(), all.end()) == all.end());  // nobody resumed twice
    CHECK(all.size() == expected);
    CHECK(overlap.load() == 0);
    for (io_registration* reg : regs)
      r.p().deregister(reg);
    weft_test::stress_summary(std::to_string(expected) + " resumptions");
  }

  // Threads arm short timers (some callbacks) and disarm them at random moments while the poller
  // fires them. For each arm exactly one of two things happens: disarm returns true and the timer
  // never fires, or it fires exactly once (waiter injected, or on_fire finished before disarm
  // returned false).
  TEST_CASE(
      "poller: racing arms and disarms: every timer fires once or is disarmed but never both") {
    weft_test::watchdog dog(120s);
    constexpr std::size_t threads_count = 3;
    const std::size_t per_thread = weft_test::stress_count(300, 20000);
    rig r;
    r.start();
    struct counted_callback : callback_timer_entry {
      std::atomic<int> fires{0};
      counted_callback() : callback_timer_entry(&fire) {}
      static void fire(timer_entry* self) noexcept {
        static_cast<counted_callback*>(self)->fires.fetch_add(1, std::memory_order_relaxed);
      }
    };
    std::vector<std::size_t> disarmed_waiters(threads_count), fired_waiters(threads_count);
    std::atomic<std::size_t> callback_errors{0};
    std::vector<std::thread> threads;
    for (std::size_t th = 0; th < threads_count; ++th) {
      threads.emplace_back([&, th] {
        std::mt19937 rng(static_cast<unsigned>(th) + 1);
        waiter_timer plain(th);
        counted_callback callback;
        for (std::size_t i = 0; i < per_thread; ++i) {
          const bool use_callback = rng() % 3 == 0;
          timer_entry& e = use_callback ? static_cast<timer_entry&>(callback) : plain;
          const int fires_before = callback.fires.load();
          const auto when = steady::now() + std::chrono::microseconds(rng() % 3000);
          if (r.p().arm(&e, when) != arm_result::armed) continue;
          if (rng() % 2 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2500));
          const bool disarmed = r.p().disarm(&e);
          if (use_callback) {
            // disarm returned: on_fire ran completely, or never will.
            if (callback.fires.load() - fires_before != (disarmed ? 0 : 1)) ++callback_errors;
          } else if (disarmed) {
            ++disarmed_waiters[th];
          } else {
            ++fired_waiters[th];
          }
        }
        // A disarmed timer must never fire later: give the poller a moment, then recheck.
        std::this_thread::sleep_for(5ms);
      });
    }
    for (auto& t : threads)
      t.join();
    r.p().stop();  // every injection has happened now
    std::vector<std::size_t> injected(threads_count);
    for (void* item : r.take())
      ++injected[static_cast<std::size_t>(static_cast<char*>(item) - arena())];
    std::size_t total = 0;
    for (std::size_t th = 0; th < threads_count; ++th) {
      CAPTURE(th);
      CHECK(injected[th] == fired_waiters[th]);
      total += fired_waiters[th] + disarmed_waiters[th];
    }
    CHECK(callback_errors.load() == 0);
    CHECK(r.p().timer_count() == 0);
    weft_test::stress_summary(std::to_string(total) + " plain timers");
  }
}
