#include "progress_bar.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "format_text.hpp"

namespace iotmark::cli {

ProgressBar::ProgressBar(const unpack::Progress& progress, std::uint64_t total_bytes, bool enabled)
    : progress_(progress), total_bytes_(total_bytes == 0 ? 1 : total_bytes) {
  const char* ci = std::getenv("CI");
  if (enabled && ::isatty(STDERR_FILENO) == 1 && (ci == nullptr || *ci == '\0')) {
    thread_ = std::jthread([this](const std::stop_token& stop) { Loop(stop); });
  }
}

ProgressBar::~ProgressBar() {
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
  }
  if (drawn_) std::fputs("\r\033[K", stderr);
}

void ProgressBar::Loop(const std::stop_token& stop) {
  using std::chrono::milliseconds;
  // Quick jobs finish before the bar would appear.
  const auto start = std::chrono::steady_clock::now();
  while (!stop.stop_requested()) {
    std::this_thread::sleep_for(milliseconds(100));
    if (std::chrono::steady_clock::now() - start > milliseconds(400)) Draw(false);
  }
}

void ProgressBar::Draw(bool /*final_draw*/) {
  constexpr int kWidth = 30;
  const std::uint64_t carved = progress_.image_bytes_carved.load();
  const double fraction =
      std::min(1.0, static_cast<double>(carved) / static_cast<double>(total_bytes_));
  const int filled = static_cast<int>(fraction * kWidth);
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.append(static_cast<std::size_t>(kWidth - filled), '.');
  std::fprintf(stderr, "\r\033[K[%s] %3d%%  %s written, %llu/%llu blobs", bar.c_str(),
               static_cast<int>(fraction * 100), HumanBytes(progress_.bytes_written.load()).c_str(),
               static_cast<unsigned long long>(progress_.blobs_done.load()),
               static_cast<unsigned long long>(progress_.blobs_seen.load()));
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace iotmark::cli
