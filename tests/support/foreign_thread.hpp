// tests/support/foreign_thread.hpp: a thread outside every runtime that runs one job after another,
// handed to it through a mutex and condition variable mailbox. For a stress loop that needs a
// foreign thread for each of many short batches: starting a std::thread per batch costs more than
// the batch itself.
//
//   weft_test::foreign_thread t;
//   for (...) {
//     t.start([&] { sem.release(1); });   // runs at once on t, while this thread goes on
//     ...
//     t.wait();                           // returns once the job returned (as a join would)
//   }
//
// start() and wait() synchronize like the constructor and join() of a std::thread: what happens
// before start() happens before the job, and the job happens before wait() returns.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

namespace weft_test {

class foreign_thread {
 public:
  foreign_thread() : thread_([this] { loop(); }) {}
  foreign_thread(const foreign_thread&) = delete;
  foreign_thread& operator=(const foreign_thread&) = delete;
  ~foreign_thread() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  // Hands `job` to the thread, which starts it at once. Requires: no job is running (every
  // start() was followed by its wait()).
  void start(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = std::move(job);
      busy_ = true;
    }
    wake_.notify_all();
  }

  // Blocks until the job handed by the last start() has returned; returns at once if there is none.
  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    wake_.wait(lock, [this] { return !busy_; });
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return stop_ || busy_; });
      if (!busy_) return;  // stop_, and no job left
      auto job = std::move(job_);
      lock.unlock();
      job();
      lock.lock();
      busy_ = false;
      wake_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::function<void()> job_;
  bool busy_ = false;  // a job was started and has not returned
  bool stop_ = false;
  std::thread thread_;  // last: starts once the rest is constructed
};

}  // namespace weft_test
