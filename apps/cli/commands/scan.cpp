// iotmark scan IMAGE: unpack into a private work directory, run every analyzer over the tree,
// report, and clean up.
#include "iotmark/service/scan.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "commands/commands.hpp"
#include "commands/unpack_options.hpp"
#include "exit_codes.hpp"
#include "format_text.hpp"
#include "iotmark/model/unpack_report.hpp"
#include "progress_bar.hpp"

namespace iotmark::cli {

namespace {

// Extracted trees may hold read-only directories; make them removable first.
void RemoveTree(const std::filesystem::path& root) {
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) {
      std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all,
                                   std::filesystem::perm_options::add, ec);
    }
  }
  std::filesystem::remove_all(root, ec);
}

struct ScanFlags {
  std::string work_dir;
  std::string data_dir;
  std::vector<std::string> only;
  bool no_analysis = false;
};

int RunScanJob(const UnpackFlags& flags, const ScanFlags& scan, const std::string& work_dir,
               bool keep) {
  unpack::Progress progress;
  service::ScanJob job;
  job.image = flags.image;
  job.work_dir = work_dir;
  job.data_dir = DataDirectory(scan.data_dir);
  job.unpack.limits = LimitsFrom(flags);
  job.unpack.threads = WorkerThreads(flags);
  job.unpack.progress = &progress;
  job.unpack.tool_version = IOTMARK_VERSION;
  job.analyze.only = scan.only;
  job.run_analyzers = !scan.no_analysis;
  std::error_code ec;
  const auto image_size = std::filesystem::file_size(flags.image, ec);
  Result<service::ScanResult> result;
  {
    ProgressBar bar(progress, ec ? 0 : image_size, !flags.no_progress && !flags.quiet);
    result = service::RunScan(job);
  }
  if (!result) {
    std::cerr << "iotmark: " << flags.image << ": " << result.error().ToString() << "\n";
    return ExitCodeFor(result.error());
  }
  if (!flags.json_path.empty()) {
    const auto text = model::ToCanonicalJson(service::ToJson(*result));
    if (!WriteText(flags.json_path, text)) {
      std::cerr << "iotmark: cannot write the report to " << flags.json_path << "\n";
      return kExitOutput;
    }
  }
  if (!flags.quiet && flags.json_path != "-") {
    SummaryOptions summary;
    summary.seconds = result->timings.unpack_seconds;
    if (keep) summary.output_dir = work_dir;
    PrintSummary(std::cout, result->unpack, summary);
    if (job.run_analyzers) {
      PrintAnalysis(std::cout, result->analysis, result->timings.analyze_seconds);
    }
  }
  const bool gaps = !result->unpack.gaps.empty() || !result->analysis.gaps.empty();
  return gaps ? kExitGaps : kExitOk;
}

}  // namespace

Verb RegisterScan(CLI::App& app) {
  auto flags = std::make_shared<UnpackFlags>();
  auto scan = std::make_shared<ScanFlags>();
  auto* command = app.add_subcommand(
      "scan",
      "Unpack a firmware image and analyze it: the extraction tree, every file with its "
      "SHA-256, the components and their versions, the weaknesses found, and the gaps. The "
      "extracted files are removed afterwards unless --keep is given.");
  AddUnpackFlags(*command, *flags);
  command->add_option("--keep", scan->work_dir,
                      "Keep the extracted tree in this directory (must be empty or absent)");
  command->add_option("--data-dir", scan->data_dir,
                      "The data directory (signatures, credential lists, patterns); default: "
                      "$IOTMARK_DATA_DIR, else the one iotmark was built with");
  command->add_option("--only", scan->only, "Run only these analyzers (see `iotmark analyzers`)");
  command->add_flag("--no-analysis", scan->no_analysis, "Unpack and inventory only");
  return [command, flags, scan]() -> int {
    if (!command->parsed()) return -1;
    if (!scan->work_dir.empty()) return RunScanJob(*flags, *scan, scan->work_dir, true);
    std::string temp = (std::filesystem::temp_directory_path() / "iotmark-scan-XXXXXX").string();
    if (::mkdtemp(temp.data()) == nullptr) {
      std::cerr << "iotmark: cannot create a work directory in "
                << std::filesystem::temp_directory_path() << "\n";
      return kExitOutput;
    }
    const int code = RunScanJob(*flags, *scan, temp, false);
    RemoveTree(temp);
    return code;
  };
}

}  // namespace iotmark::cli
