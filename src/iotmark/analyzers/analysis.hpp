// Runs the analyzers over an unpacked tree: prepare each (data, patterns), one shared content
// scan and one ELF index, then every analyzer in parallel; checks that each emitted exactly the
// facts it declared.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "iotmark/analyzers/analyzer.hpp"

namespace iotmark::analyzers {

struct AnalyzeOptions {
  std::vector<std::string> only;  // run only these analyzers (empty: all)
  inventory::ScanOptions scan;
};

// Runs the built-in analyzers.
Result<model::AnalysisReport> Analyze(const inventory::FileTree& tree, const DataStore& data,
                                      ThreadPool& pool, const AnalyzeOptions& options = {});

// Runs exactly `analyzers` (tests use it for one analyzer at a time).
Result<model::AnalysisReport> Analyze(const inventory::FileTree& tree, const DataStore& data,
                                      ThreadPool& pool,
                                      std::vector<std::unique_ptr<Analyzer>> analyzers,
                                      const AnalyzeOptions& options = {});

}  // namespace iotmark::analyzers
