#include "commands/unpack_options.hpp"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "exit_codes.hpp"
#include "format_text.hpp"
#include "iotmark/model/unpack_report.hpp"
#include "iotmark/unpack/unpacker.hpp"
#include "progress_bar.hpp"

namespace iotmark::cli {

void AddUnpackFlags(CLI::App& command, UnpackFlags& flags) {
  const Limits defaults;
  command.add_option("IMAGE", flags.image, "Firmware image to unpack")->required();
  command.add_option("--json", flags.json_path,
                     "Write the full JSON report (extraction tree, inventory, gaps) to FILE; "
                     "'-' for standard output");
  command.add_option("-j,--threads", flags.threads, "Worker threads (default: all cores)");
  command.add_flag("-q,--quiet", flags.quiet, "Print nothing but errors");
  command.add_flag("--no-progress", flags.no_progress, "Never draw a progress bar");
  auto* limits = command.add_option_group("Limits", "Bounds on the work an image may cause");
  limits->add_option("--max-bytes", flags.max_bytes,
                     "Total bytes to extract (default " +
                         std::to_string(defaults.max_total_bytes >> 30) + " GiB)");
  limits->add_option("--max-file-bytes", flags.max_file_bytes,
                     "Largest single extracted file (default " +
                         std::to_string(defaults.max_file_bytes >> 30) + " GiB)");
  limits->add_option("--max-ratio", flags.max_ratio,
                     "Largest expansion of one chunk, output:input (default " +
                         std::to_string(static_cast<int>(defaults.max_ratio)) + ")");
  limits->add_option("--max-files", flags.max_entries,
                     "Files, directories and links to create (default " +
                         std::to_string(defaults.max_entries) + ")");
  limits->add_option(
      "--max-depth", flags.max_depth,
      "Containers nested in containers (default " + std::to_string(defaults.max_depth) + ")");
  limits->add_option("--timeout", flags.timeout_seconds,
                     "Seconds before the job stops and reports what it has (default " +
                         std::to_string(defaults.max_time.count() / 1000) + ")");
}

Limits LimitsFrom(const UnpackFlags& flags) {
  Limits limits;
  if (flags.max_bytes > 0) limits.max_total_bytes = flags.max_bytes;
  if (flags.max_file_bytes > 0) limits.max_file_bytes = flags.max_file_bytes;
  if (flags.max_ratio > 0) limits.max_ratio = flags.max_ratio;
  if (flags.max_entries > 0) limits.max_entries = flags.max_entries;
  if (flags.max_depth >= 0) limits.max_depth = flags.max_depth;
  if (flags.timeout_seconds > 0) {
    limits.max_time = std::chrono::milliseconds(static_cast<long>(flags.timeout_seconds * 1000));
  }
  return limits;
}

std::size_t WorkerThreads(const UnpackFlags& flags) {
  const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
  const std::size_t wanted = flags.threads > 0 ? flags.threads : cores;
  // The calling thread works too (it helps while it waits), so start one fewer worker.
  return wanted - 1;
}

std::filesystem::path DataDirectory(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("IOTMARK_DATA_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  return IOTMARK_DEFAULT_DATA_DIR;
}

bool WriteText(const std::string& path, const std::string& text) {
  if (path == "-") {
    std::cout << text;
    return static_cast<bool>(std::cout);
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  return static_cast<bool>(out);
}

int RunUnpackJob(const UnpackFlags& flags, const std::string& output_dir, bool keep_output) {
  unpack::Progress progress;
  unpack::UnpackOptions options;
  options.limits = LimitsFrom(flags);
  options.threads = WorkerThreads(flags);
  options.progress = &progress;
  options.tool_version = IOTMARK_VERSION;
  auto unpacker = unpack::Unpacker::Create(options);
  if (!unpacker) {
    std::cerr << "iotmark: " << unpacker.error().ToString() << "\n";
    return kExitInternal;
  }
  std::error_code ec;
  const auto image_size = std::filesystem::file_size(flags.image, ec);
  const auto start = std::chrono::steady_clock::now();
  Result<model::UnpackReport> report;
  {
    ProgressBar bar(progress, ec ? 0 : image_size, !flags.no_progress && !flags.quiet);
    report = unpacker->Run(flags.image, output_dir);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!report) {
    std::cerr << "iotmark: " << flags.image << ": " << report.error().ToString() << "\n";
    return ExitCodeFor(report.error());
  }
  if (!flags.json_path.empty()) {
    if (!WriteText(flags.json_path, model::ToCanonicalJson(model::ToJson(*report)))) {
      std::cerr << "iotmark: cannot write the report to " << flags.json_path << "\n";
      return kExitOutput;
    }
  }
  if (!flags.quiet && flags.json_path != "-") {
    SummaryOptions summary;
    summary.seconds = seconds;
    if (keep_output) summary.output_dir = output_dir;
    PrintSummary(std::cout, *report, summary);
  }
  return report->gaps.empty() ? kExitOk : kExitGaps;
}

}  // namespace iotmark::cli
