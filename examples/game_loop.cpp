// examples/game_loop.cpp: an engine's main loop that gives async work a budget of each frame
// (weft::frame_executor). Docs: docs/embedding.md.
//
// A fixed-step loop at 60 frames per second runs for 2 seconds on the main thread. Each frame it
// moves the entities (the engine's own work), then calls frame.run_for(2ms): the tasks spawned on
// the frame executor run there, on the main thread, and only there, so they touch the scene without
// locks. Assets load in the background: each loader task hops to the pool with
// co_await weft::resume_on(pool) for the slow part (weft::sleep stands in for file I/O and
// decoding), then hops back with co_await weft::resume_on(frame) to add its entity to the scene.
// Each entity also has a "brain" task on the frame executor that changes its heading every
// 100-300 ms (weft::sleep on the executor: its timers wake it for a later frame).
//
//   Python (asyncio driven by a game loop)          weft
//   loop = asyncio.new_event_loop()                  weft::frame_executor frame;
//   loop.create_task(load(...))                      frame.spawn(load(...)).detach();
//   loop.call_soon(loop.stop); loop.run_forever()    frame.run_for(2ms);   // once per frame
//   await loop.run_in_executor(pool, decode, data)   co_await weft::resume_on(pool); ...
//                                                    co_await weft::resume_on(frame);
//
// The program prints the worst time the async slice took past its 2 ms budget and how many frames
// started late, and exits non-zero if an asset failed to load, the budget was overrun by more than
// 4 ms, or more than a tenth of the frames started more than 8 ms late (generous bounds: a shared
// CI machine).

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "example_support.hpp"

namespace examples::game_loop {

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

struct entity {
  std::string asset;
  double x = 0, y = 0;
  double vx = 0, vy = 0;
};

// The scene: touched only on the main thread (by the loop, and by tasks on the frame executor).
struct scene {
  std::vector<entity> entities;
  int assets_loaded = 0;
};

// Changes the heading of entity `index` every 100-300 ms, for as long as the game runs.
weft::task<> brain(scene& world, std::size_t index) {
  for (int turn = 1;; ++turn) {
    co_await weft::sleep(std::chrono::milliseconds(100 + (index * 37 + turn * 53) % 200));
    entity& e = world.entities[index];
    const double angle = static_cast<double>(turn) * 0.7 + static_cast<double>(index);
    e.vx = 40 * std::cos(angle);
    e.vy = 40 * std::sin(angle);
  }
}

// Loads one asset: the slow part on the pool, the scene update on the frame executor.
weft::task<> load_asset(weft::runtime& pool, weft::frame_executor& frame, scene& world,
                        std::string name, std::chrono::milliseconds io_time) {
  co_await weft::resume_on(pool);
  co_await weft::sleep(io_time);  // reading the file (to_thread would run a blocking read)
  std::size_t checksum = 0;       // "decoding", off the main thread
  for (char c : name)
    checksum = checksum * 31 + static_cast<unsigned char>(c);
  co_await weft::resume_on(frame);
  // Back on the main thread, inside a run_for: the scene is ours.
  world.entities.push_back(entity{name + "#" + std::to_string(checksum % 1000), 0, 0, 0, 0});
  ++world.assets_loaded;
  weft::spawn(brain(world, world.entities.size() - 1)).detach();
}

}  // namespace

int run() {
  constexpr auto step = std::chrono::microseconds(16'667);  // 60 frames per second
  constexpr int frames = 120;                               // 2 seconds
  constexpr auto async_budget = 2ms;
  constexpr int assets = 24;

  weft::runtime_options pool_options;
  pool_options.worker_threads = 2;
  weft::runtime pool(pool_options);
  scene world;
  world.entities.reserve(assets);
  // Declared after the pool, so destroyed before it: its destructor ends its tasks (the brains)
  // while the pool their loaders visited is still there.
  weft::frame_executor frame;
  for (int i = 0; i < assets; ++i) {
    frame
        .spawn(load_asset(pool, frame, world, "asset" + std::to_string(i),
                          std::chrono::milliseconds(100 + (i * 71) % 900)))
        .detach();
  }

  std::chrono::nanoseconds worst_overrun{0};
  std::chrono::nanoseconds worst_slice{0};
  std::chrono::nanoseconds worst_lateness{0};
  int late_frames = 0;
  std::size_t resumed = 0;
  const auto start = steady::now();
  auto next_frame = start;
  for (int f = 0; f < frames; ++f) {
    const auto lateness = steady::now() - next_frame;
    worst_lateness = std::max(worst_lateness, lateness);
    if (lateness > 8ms) ++late_frames;
    // 1. The engine's fixed update: move every entity one step.
    const double dt = std::chrono::duration<double>(step).count();
    for (entity& e : world.entities) {
      e.x += e.vx * dt;
      e.y += e.vy * dt;
    }
    // 2. Async work: at most ~2 ms of this frame.
    const weft::frame_result slice = frame.run_for(async_budget);
    worst_overrun = std::max(worst_overrun, slice.overrun);
    worst_slice = std::max(worst_slice, slice.elapsed);
    resumed += slice.resumed;
    // 3. (Render.) Wait for the next frame; a late loop does not try to catch up twice.
    next_frame += step;
    std::this_thread::sleep_until(next_frame);
  }
  const double took = std::chrono::duration<double>(steady::now() - start).count();

  double travelled = 0;
  for (const entity& e : world.entities)
    travelled += std::hypot(e.x, e.y);
  const auto us = [](std::chrono::nanoseconds d) {
    return static_cast<long long>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
  };
  std::printf("%d frames in %.2f s; %d of %d assets loaded; %zu resumptions on the main thread\n",
              frames, took, world.assets_loaded, assets, resumed);
  std::printf("async slice: longest %lld us of a %lld us budget, worst overrun %lld us\n",
              us(worst_slice), us(async_budget), us(worst_overrun));
  std::printf("frames started late by more than 8 ms: %d (worst %lld us); entities moved %.0f\n",
              late_frames, us(worst_lateness), travelled);

  bool ok = true;
  ok &= check(world.assets_loaded == assets, "every asset loaded within the 2 seconds");
  ok &= check(travelled > 0, "the brains steered the entities");
  // Wall-clock budgets depend on the machine's load: reported, not judged (bench/frame_budget
  // measures the overrun).
  ok &= note_timing(worst_overrun < 4ms, "the async slice stayed within 4 ms of its 2 ms budget");
  ok &= note_timing(late_frames <= frames / 10, "at most a tenth of the frames started late");
  return ok ? 0 : 1;
}

}  // namespace examples::game_loop

// The program `game_loop` (not part of weft_demo).
#ifndef WEFT_EXAMPLE_NO_MAIN
int main() { return examples::game_loop::run(); }
#endif
