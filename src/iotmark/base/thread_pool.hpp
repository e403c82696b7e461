// A fixed pool of worker threads and task groups whose Wait() helps run queued work, so nested
// parallelism (a SquashFS extractor inside a recursive unpack) cannot deadlock the pool.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace iotmark {

class ThreadPool {
 public:
  // `threads` == 0 means no workers: every task runs on the thread that waits for it.
  explicit ThreadPool(std::size_t threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  [[nodiscard]] std::size_t size() const { return workers_.size(); }
  // Threads that run a task group's tasks: the workers plus the thread waiting in Wait().
  [[nodiscard]] std::size_t concurrency() const { return workers_.size() + 1; }

 private:
  friend class TaskGroup;
  void Push(std::function<void()> task);
  // Runs one queued task on the calling thread; false if the queue was empty.
  bool RunOne();
  void WorkerLoop(const std::stop_token& stop);

  std::mutex mutex_;
  std::condition_variable_any ready_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::jthread> workers_;
};

// A set of tasks to wait for. Tasks must not throw.
class TaskGroup {
 public:
  explicit TaskGroup(ThreadPool& pool) : pool_(pool) {}
  ~TaskGroup() { Wait(); }
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;

  void Run(std::function<void()> task);
  // Blocks until every task of this group has finished, running queued tasks meanwhile.
  void Wait();

 private:
  ThreadPool& pool_;
  std::mutex mutex_;
  std::condition_variable done_;
  std::size_t pending_ = 0;
};

}  // namespace iotmark
