// Options shared by the verbs that unpack an image (scan, unpack): limits, threads, output.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <filesystem>
#include <string>

#include "iotmark/base/limits.hpp"

namespace iotmark::cli {

struct UnpackFlags {
  std::string image;
  std::string json_path;  // "" = none, "-" = stdout
  unsigned threads = 0;   // 0 = all cores
  bool quiet = false;
  bool no_progress = false;
  std::uint64_t max_bytes = 0;
  std::uint64_t max_file_bytes = 0;
  double max_ratio = 0;
  std::uint64_t max_entries = 0;
  int max_depth = -1;
  double timeout_seconds = 0;
};

void AddUnpackFlags(CLI::App& command, UnpackFlags& flags);
Limits LimitsFrom(const UnpackFlags& flags);
std::size_t WorkerThreads(const UnpackFlags& flags);
// --data-dir if given, else $IOTMARK_DATA_DIR, else the data/ directory of the source tree.
std::filesystem::path DataDirectory(const std::string& flag);
// Writes `text` to `path` ("-" = standard output); false on failure.
bool WriteText(const std::string& path, const std::string& text);

// Runs one unpack job and prints/writes what the flags ask for; returns the exit code.
int RunUnpackJob(const UnpackFlags& flags, const std::string& output_dir, bool keep_output);

}  // namespace iotmark::cli
