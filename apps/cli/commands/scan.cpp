// iotmark scan IMAGE: unpack into a private work directory, run every analyzer over the tree,
// report, and clean up.
#include "iotmark/service/scan.hpp"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "commands/commands.hpp"
#include "commands/scan_command.hpp"
#include "commands/unpack_options.hpp"
#include "exit_codes.hpp"
#include "format_text.hpp"
#include "iotmark/model/unpack_report.hpp"
#include "iotmark/sbom/sbom_document.hpp"
#include "iotmark/share/sarif.hpp"
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

std::string CreationTime() {
  // SOURCE_DATE_EPOCH makes documents reproducible (reproducible-builds.org convention).
  std::time_t now = std::time(nullptr);
  if (const char* epoch = std::getenv("SOURCE_DATE_EPOCH"); epoch != nullptr && *epoch != '\0') {
    now = static_cast<std::time_t>(std::strtoll(epoch, nullptr, 10));
  }
  std::tm utc{};
  gmtime_r(&now, &utc);
  std::array<char, 32> text{};
  std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text.data();
}

bool WriteJson(const std::string& path, const nlohmann::json& json, const char* what) {
  if (WriteText(path, model::ToCanonicalJson(json))) return true;
  std::cerr << "iotmark: cannot write the " << what << " to " << path << "\n";
  return false;
}

// The SBOM and SARIF outputs a scan was asked for; false if one could not be written.
bool WriteDocuments(const ScanFlags& scan, const service::ScanResult& result) {
  sbom::SbomSubject subject{result.unpack.image_name, result.unpack.image_sha256,
                            result.unpack.image_size, IOTMARK_VERSION, CreationTime()};
  bool ok = true;
  if (!scan.sbom_path.empty()) {
    const auto document = scan.sbom_format == "spdx"
                              ? sbom::ToSpdx(subject, result.analysis.components)
                              : sbom::ToCycloneDx(subject, result.analysis.components);
    ok = WriteJson(scan.sbom_path, document, "SBOM") && ok;
  }
  if (!scan.sarif_path.empty()) {
    ok = WriteJson(
             scan.sarif_path,
             share::ToSarif(result.analysis.findings, IOTMARK_VERSION, result.unpack.image_name),
             "SARIF log") &&
         ok;
  }
  return ok;
}

}  // namespace

namespace {

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
  if (!WriteDocuments(scan, *result)) return kExitOutput;
  if (!flags.quiet && flags.json_path != "-" && scan.sbom_path != "-" && scan.sarif_path != "-") {
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

int RunScanCommand(const UnpackFlags& flags, const ScanFlags& scan) {
  if (!scan.work_dir.empty()) return RunScanJob(flags, scan, scan.work_dir, true);
  std::string temp = (std::filesystem::temp_directory_path() / "iotmark-scan-XXXXXX").string();
  if (::mkdtemp(temp.data()) == nullptr) {
    std::cerr << "iotmark: cannot create a work directory in "
              << std::filesystem::temp_directory_path() << "\n";
    return kExitOutput;
  }
  const int code = RunScanJob(flags, scan, temp, false);
  RemoveTree(temp);
  return code;
}

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
  command->add_option("--sbom", scan->sbom_path, "Write an SBOM to FILE ('-' for standard output)");
  command->add_option("--sbom-format", scan->sbom_format, "cyclonedx (1.5, default) or spdx (2.3)")
      ->check(CLI::IsMember({"cyclonedx", "spdx"}));
  command->add_option("--sarif", scan->sarif_path,
                      "Write the findings as SARIF 2.1.0 to FILE ('-' for standard output)");
  return [command, flags, scan]() -> int {
    if (!command->parsed()) return -1;
    return RunScanCommand(*flags, *scan);
  };
}

}  // namespace iotmark::cli
