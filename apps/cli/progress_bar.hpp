// A progress bar on stderr for jobs that take more than a moment; silent in pipes and CI logs.
#pragma once

#include <cstdint>
#include <thread>

#include "iotmark/unpack/unpacker.hpp"

namespace iotmark::cli {

class ProgressBar {
 public:
  // Draws only if `enabled` and stderr is a terminal and $CI is unset.
  ProgressBar(const unpack::Progress& progress, std::uint64_t total_bytes, bool enabled);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

 private:
  void Loop(const std::stop_token& stop);
  void Draw(bool final_draw);

  const unpack::Progress& progress_;
  std::uint64_t total_bytes_;
  bool drawn_ = false;
  std::jthread thread_;
};

}  // namespace iotmark::cli
