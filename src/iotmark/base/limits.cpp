#include "iotmark/base/limits.hpp"

#include <string>

namespace iotmark {

Budget::Budget(const Limits& limits)
    : limits_(limits), deadline_(std::chrono::steady_clock::now() + limits.max_time) {}

Status Budget::ChargeBytes(std::uint64_t bytes) {
  const std::uint64_t total = bytes_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  if (total > limits_.max_total_bytes) {
    return Fail(ErrorCode::kLimitExceeded, "total extracted size passed the limit of " +
                                               std::to_string(limits_.max_total_bytes) + " bytes");
  }
  return Ok();
}

Status Budget::ChargeEntry() {
  const std::uint64_t total = entries_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (total > limits_.max_entries) {
    return Fail(ErrorCode::kLimitExceeded, "number of extracted entries passed the limit of " +
                                               std::to_string(limits_.max_entries));
  }
  return Ok();
}

Status Budget::CheckTime() const {
  if (cancelled()) return Fail(ErrorCode::kLimitExceeded, "job cancelled");
  if (std::chrono::steady_clock::now() > deadline_) {
    return Fail(ErrorCode::kLimitExceeded,
                "time limit of " + std::to_string(limits_.max_time.count() / 1000) + " s passed");
  }
  return Ok();
}

Status RatioGuard::Add(std::uint64_t output_bytes) {
  const std::uint64_t total = output_bytes_.fetch_add(output_bytes) + output_bytes;
  if (total > limits_.ratio_floor_bytes &&
      static_cast<double>(total) > limits_.max_ratio * static_cast<double>(input_bytes_)) {
    return Fail(ErrorCode::kLimitExceeded, "compression ratio passed the limit of " +
                                               std::to_string(static_cast<int>(limits_.max_ratio)) +
                                               ":1 (" + std::to_string(input_bytes_) +
                                               " bytes expanding past " + std::to_string(total) +
                                               ")");
  }
  return Ok();
}

}  // namespace iotmark
