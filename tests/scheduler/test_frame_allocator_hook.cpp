// tests/test_frame_allocator_hook.cpp: weft::set_frame_allocator (issue 16, "Allocator hook"). An
// arena allocator in the style an engine would use (chunks aligned to their size, each with a
// header that the allocator finds from any frame's address) is installed before the first frame;
// every frame that weft allocates (spawned, awaited, on a pool, on a frame executor, freed on
// another thread than the one that made it) goes through it, and is freed through it, exactly
// once. A second installation is refused.
//
// This file is its own process, and CTest runs each case in a process of its own: each case
// installs the allocator first (once per process), before any weft frame exists (doctest's main
// creates none).
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include <weft/weft.hpp>

#include "support/watchdog.hpp"

using namespace std::chrono_literals;

namespace {

// Chunks of 64 KiB aligned to 64 KiB; a frame's chunk is its address rounded down. Each chunk is
// a bump arena that counts its live frames and is returned when the count drops to zero (an
// "arena per game frame" would open a new chunk each frame the same way). Every frame is also
// recorded (address -> size) to check that deallocate gets exactly what allocate gave.
class arena_allocator final : public weft::frame_allocator {
 public:
  static constexpr std::size_t chunk_size = 64 << 10;

  void* allocate(std::size_t size) override {
    const std::size_t rounded = (size + 15) & ~std::size_t{15};
    std::lock_guard lock(mutex_);
    if (current_ == nullptr || current_->used + rounded > chunk_size) open_chunk(rounded);
    chunk* c = current_;
    void* frame = reinterpret_cast<char*>(c) + c->used;
    c->used += rounded;
    ++c->live;
    live_.emplace(frame, size);
    ++allocated;
    return frame;
  }

  void deallocate(void* frame, std::size_t size) noexcept override {
    std::lock_guard lock(mutex_);
    const auto it = live_.find(frame);
    if (it == live_.end() || it->second != size) {
      ++mismatched;
      return;
    }
    live_.erase(it);
    ++freed;
    auto* c = reinterpret_cast<chunk*>(reinterpret_cast<std::uintptr_t>(frame) & ~(chunk_size - 1));
    if (--c->live == 0 && c != current_) {
      std::free(c);
      --chunks;
    }
  }

  std::size_t live() {
    std::lock_guard lock(mutex_);
    return live_.size();
  }

  std::atomic<std::size_t> allocated{0};
  std::atomic<std::size_t> freed{0};
  std::atomic<std::size_t> mismatched{0};
  std::atomic<std::size_t> chunks{0};

 private:
  struct alignas(16) chunk {
    std::size_t used;
    std::size_t live;
  };

  void open_chunk(std::size_t rounded) {
    if (rounded + sizeof(chunk) > chunk_size) throw std::bad_alloc();
    if (current_ != nullptr && current_->live == 0) {
      std::free(current_);
      --chunks;
    }
    void* memory = std::aligned_alloc(chunk_size, chunk_size);
    if (memory == nullptr) throw std::bad_alloc();
    current_ = new (memory) chunk{sizeof(chunk), 0};
    ++chunks;
  }

  std::mutex mutex_;
  chunk* current_ = nullptr;
  std::unordered_map<void*, std::size_t> live_;
};

arena_allocator arena;

weft::task<int> leaf(int i) {
  co_await weft::yield_now();
  co_return i;
}

weft::task<int> parent(int n) {
  int sum = 0;
  for (int i = 0; i < n; ++i)
    sum += co_await leaf(i);           // awaited frames
  auto handle = weft::spawn(leaf(n));  // a spawned frame, freed by whoever lets go last
  sum += co_await handle;
  co_return sum;
}

// Installs `arena` in this process, once; it must be accepted.
void install_arena() {
  static bool installed = false;
  if (installed) return;
  weft::set_frame_allocator(arena);
  installed = true;
}

}  // namespace

TEST_CASE("every frame goes through the installed allocator and is freed through it") {
  weft_test::watchdog dog(120s);
  REQUIRE_NOTHROW(install_arena());
  {
    weft::runtime pool(weft::runtime_options{.worker_threads = 2});
    // Spawned from this thread, ended on the workers, handles dropped here: freed across threads.
    std::vector<weft::join_handle<int>> handles;
    for (int i = 0; i < 200; ++i)
      handles.push_back(pool.spawn(parent(10)));
    long total = 0;
    for (auto& h : handles)
      total += pool.block_on([](weft::join_handle<int> mine) -> weft::task<int> {
        co_return co_await mine;
      }(std::move(h)));
    CHECK(total == 200 * (45 + 10));
    // A frame executor and a task that moves between the two.
    weft::frame_executor exec;
    auto moved = pool.spawn([](weft::frame_executor& e, weft::runtime& p) -> weft::task<int> {
      co_await weft::resume_on(e);
      const int a = co_await leaf(1);
      co_await weft::resume_on(p);
      co_return a + co_await leaf(2);
    }(exec, pool));
    while (!moved.done())
      (void)exec.run_for(1ms);
    CHECK(moved.take_result() == 3);
    CHECK(exec.block_on(parent(3)) == 3 + 3);
    // Detached tasks left sleeping: the shutdown sweeps free their frames through the hook too.
    for (int i = 0; i < 20; ++i)
      pool.spawn([]() -> weft::task<> { co_await weft::sleep(1h); }()).detach();
  }
  // 200 * (1 parent + 10 leaves + 1 spawned leaf) + the rest: at least 2,400 frames.
  CHECK(arena.allocated.load() >= 2400);
  CHECK(arena.freed.load() == arena.allocated.load());
  CHECK(arena.mismatched.load() == 0);
  CHECK(arena.live() == 0);
}

TEST_CASE("a second allocator is refused") {
  REQUIRE_NOTHROW(install_arena());
  arena_allocator other;
  CHECK_THROWS_AS(weft::set_frame_allocator(other), std::logic_error);
  // Frames still go to the first one.
  const std::size_t before = arena.allocated.load();
  CHECK(weft::run(leaf(7)) == 7);
  CHECK(arena.allocated.load() > before);
  CHECK(arena.freed.load() == arena.allocated.load());
}
