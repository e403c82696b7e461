// Test support for analyzers: write a small file tree into a scratch directory, describe it as
// an unpack report (one root, as if a filesystem had been extracted), and run analyzers on it.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "iotmark/analyzers/analysis.hpp"
#include "iotmark/model/unpack_report.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::testing {

class TreeBuilder {
 public:
  // Files go below `<scratch>/fs.bin_extract/0x0.squashfs/`.
  explicit TreeBuilder(const ScratchDir& scratch);

  // `system_path` is absolute inside the filesystem: "/etc/passwd".
  TreeBuilder& File(const std::string& system_path, std::string_view content,
                    std::uint32_t mode = 0644);
  // Copies a real file (a Debian binary) into the tree.
  TreeBuilder& Copy(const std::string& system_path, const std::filesystem::path& source,
                    std::uint32_t mode = 0755);
  TreeBuilder& Symlink(const std::string& system_path, const std::string& target);

  // The unpack report describing what was written (inventory sorted, hashes computed).
  [[nodiscard]] const model::UnpackReport& report();
  [[nodiscard]] std::filesystem::path root() const { return scratch_.path(); }

 private:
  std::filesystem::path Place(const std::string& system_path);
  const ScratchDir& scratch_;
  std::string prefix_ = "fs.bin_extract/0x0.squashfs";
  model::UnpackReport report_;
};

// Runs `analyzer` alone over the tree, with the project's data/ directory; fails the test on
// an Error.
model::AnalysisReport RunAnalyzer(TreeBuilder& tree, std::unique_ptr<analyzers::Analyzer> analyzer);

// The project's data/ directory in the source tree.
std::filesystem::path ProjectDataDir();

}  // namespace iotmark::testing
