// The scan use case: unpack an image into a work directory, then run the analyzers over the
// tree, and give back both reports with the data files they were made with.
#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "iotmark/analyzers/analysis.hpp"
#include "iotmark/base/result.hpp"
#include "iotmark/model/analysis_report.hpp"
#include "iotmark/model/unpack_report.hpp"
#include "iotmark/unpack/unpacker.hpp"

namespace iotmark::service {

struct ScanJob {
  std::filesystem::path image;
  std::filesystem::path work_dir;  // must be empty or absent
  std::filesystem::path data_dir;  // the project's data/ directory
  unpack::UnpackOptions unpack;
  analyzers::AnalyzeOptions analyze;
  bool run_analyzers = true;
};

struct ScanTimings {
  double unpack_seconds = 0;
  double analyze_seconds = 0;
};

struct ScanResult {
  model::UnpackReport unpack;
  model::AnalysisReport analysis;
  std::map<std::string, std::string> data_files;  // relative path -> SHA-256
  ScanTimings timings;                            // not part of the canonical report
};

Result<ScanResult> RunScan(const ScanJob& job);

// The canonical scan report (schema iotmark.scan/1): the unpack report's fields plus
// "analysis" (facts, findings, components, gaps) and "data_files".
nlohmann::json ToJson(const ScanResult& result);

}  // namespace iotmark::service
