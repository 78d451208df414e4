// bench/asio_pool.hpp: the thread pool of the Asio peers: one io_context run by `threads` threads
// (the same number as weft's workers), kept running between the timed runs by a work guard.
//
//   bench::asio_pool pool(opts.threads);
//   asio::co_spawn(pool.io(), ..., asio::detached);
//
// stop() (or the destructor) releases the work guard, stops the io_context and joins the threads.
#pragma once

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include <thread>
#include <vector>

namespace bench {

class asio_pool {
 public:
  explicit asio_pool(int threads) : io_(threads), guard_(asio::make_work_guard(io_)) {
    for (int i = 0; i < threads; ++i)
      threads_.emplace_back([this] { io_.run(); });
  }
  asio_pool(const asio_pool&) = delete;
  asio_pool& operator=(const asio_pool&) = delete;
  ~asio_pool() { stop(); }

  asio::io_context& io() noexcept { return io_; }

  void stop() {
    guard_.reset();
    io_.stop();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::vector<std::thread> threads_;
};

}  // namespace bench
