#include "iotmark/base/thread_pool.hpp"

#include <chrono>

namespace iotmark {

ThreadPool::ThreadPool(std::size_t threads) {
  workers_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) {
    workers_.emplace_back([this](const std::stop_token& stop) { WorkerLoop(stop); });
  }
}

ThreadPool::~ThreadPool() {
  for (auto& worker : workers_) worker.request_stop();
  ready_.notify_all();
  workers_.clear();
}

void ThreadPool::Push(std::function<void()> task) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(task));
  }
  ready_.notify_one();
}

bool ThreadPool::RunOne() {
  std::function<void()> task;
  {
    std::lock_guard lock(mutex_);
    if (queue_.empty()) return false;
    // Newest first: the waiting thread finishes the work it just spawned (depth first), which
    // keeps memory bounded by the nesting depth rather than by the breadth of the tree.
    task = std::move(queue_.back());
    queue_.pop_back();
  }
  task();
  return true;
}

void ThreadPool::WorkerLoop(const std::stop_token& stop) {
  while (true) {
    std::function<void()> task;
    {
      std::unique_lock lock(mutex_);
      if (!ready_.wait(lock, stop, [this] { return !queue_.empty(); })) return;
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

void TaskGroup::Run(std::function<void()> task) {
  {
    std::lock_guard lock(mutex_);
    ++pending_;
  }
  pool_.Push([this, task = std::move(task)] {
    task();
    std::lock_guard lock(mutex_);
    if (--pending_ == 0) done_.notify_all();
  });
}

void TaskGroup::Wait() {
  while (true) {
    {
      std::lock_guard lock(mutex_);
      if (pending_ == 0) return;
    }
    if (pool_.RunOne()) continue;
    // Nothing queued: our remaining tasks are running on workers. Sleep until one finishes,
    // waking now and then in case a running task queued more work we could help with.
    std::unique_lock lock(mutex_);
    done_.wait_for(lock, std::chrono::milliseconds(2), [this] { return pending_ == 0; });
  }
}

}  // namespace iotmark
