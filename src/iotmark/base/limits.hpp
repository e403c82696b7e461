// Every limit that bounds work on untrusted input, in one place, and the shared budget that
// enforces them across threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "iotmark/base/result.hpp"

namespace iotmark {

struct Limits {
  // Total bytes written into the output tree, over the whole job.
  std::uint64_t max_total_bytes = std::uint64_t{16} << 30;
  // Largest single file an extractor may write.
  std::uint64_t max_file_bytes = std::uint64_t{4} << 30;
  // Output bytes per input byte of one chunk. Checked once a chunk's output passes
  // ratio_floor_bytes, so small, highly compressible files (zero padding) are not flagged.
  double max_ratio = 250.0;
  std::uint64_t ratio_floor_bytes = std::uint64_t{64} << 20;
  // Files, directories and links created, over the whole job.
  std::uint64_t max_entries = 1'000'000;
  // Containers inside containers; the image itself is depth 0.
  int max_depth = 24;
  // Wall-clock time for the whole job.
  std::chrono::milliseconds max_time = std::chrono::minutes(30);
  // Candidate signatures examined in one blob (random data is full of short magics).
  std::uint64_t max_candidates_per_blob = 200'000;
};

// Shared, thread-safe accounting against a Limits. Extractors charge it as they write; once a
// limit is hit every later charge fails too, and the job winds down, reporting what it has.
class Budget {
 public:
  explicit Budget(const Limits& limits);

  [[nodiscard]] const Limits& limits() const { return limits_; }

  // Charges `bytes` of output. Fails with kLimitExceeded when the total would pass the limit.
  Status ChargeBytes(std::uint64_t bytes);
  Status ChargeEntry();
  // Fails once the deadline has passed or Cancel() was called.
  Status CheckTime() const;
  void Cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  [[nodiscard]] bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

  [[nodiscard]] std::uint64_t bytes_written() const { return bytes_.load(); }
  [[nodiscard]] std::uint64_t entries_written() const { return entries_.load(); }

 private:
  Limits limits_;
  std::chrono::steady_clock::time_point deadline_;
  std::atomic<std::uint64_t> bytes_{0};
  std::atomic<std::uint64_t> entries_{0};
  std::atomic<bool> cancelled_{false};
};

// Tracks one chunk's expansion: output bytes against the chunk's input size.
class RatioGuard {
 public:
  RatioGuard(const Limits& limits, std::uint64_t input_bytes)
      : limits_(limits), input_bytes_(input_bytes == 0 ? 1 : input_bytes) {}
  Status Add(std::uint64_t output_bytes);
  [[nodiscard]] std::uint64_t output_bytes() const { return output_bytes_.load(); }

 private:
  const Limits& limits_;
  std::uint64_t input_bytes_;
  std::atomic<std::uint64_t> output_bytes_{0};
};

}  // namespace iotmark
