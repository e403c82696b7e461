// Text rendering for the terminal: sizes, the extraction tree, gaps.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "iotmark/model/analysis_report.hpp"
#include "iotmark/model/unpack_report.hpp"

namespace iotmark::cli {

std::string HumanBytes(std::uint64_t bytes);

struct SummaryOptions {
  std::size_t max_tree_lines = 60;
  std::size_t max_gaps = 20;
  double seconds = 0.0;
  std::string output_dir;  // shown when the tree is kept
};

void PrintSummary(std::ostream& out, const model::UnpackReport& report,
                  const SummaryOptions& options);

// The analysis part of `scan`: components, findings by severity, analysis gaps.
void PrintAnalysis(std::ostream& out, const model::AnalysisReport& report, double seconds);

}  // namespace iotmark::cli
