#include "iotmark/analyzers/testing/tree_builder.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>

#include "iotmark/base/sha256.hpp"
#include "iotmark/base/thread_pool.hpp"
#include "iotmark/inventory/file_tree.hpp"

namespace iotmark::testing {

namespace fs = std::filesystem;

TreeBuilder::TreeBuilder(const ScratchDir& scratch) : scratch_(scratch) {
  report_.image_name = "fs.bin";
  report_.tree.kind = model::ExtractionNode::Kind::kBlob;
  model::ExtractionNode chunk;
  chunk.kind = model::ExtractionNode::Kind::kChunk;
  chunk.format = "squashfs";
  chunk.path = prefix_;
  report_.tree.children.push_back(chunk);
  fs::create_directories(scratch_.path() / prefix_);
}

fs::path TreeBuilder::Place(const std::string& system_path) {
  const fs::path path = scratch_.path() / prefix_ / system_path.substr(1);
  fs::create_directories(path.parent_path());
  return path;
}

TreeBuilder& TreeBuilder::File(const std::string& system_path, std::string_view content,
                               std::uint32_t mode) {
  const auto path = Place(system_path);
  std::ofstream(path, std::ios::binary) << content;
  model::InventoryEntry entry;
  entry.path = prefix_ + system_path;
  entry.size = content.size();
  entry.mode = 0100000 | mode;
  entry.type = "data";
  entry.sha256 = Sha256::Hex(AsBytes(content));
  report_.inventory.push_back(entry);
  return *this;
}

TreeBuilder& TreeBuilder::Copy(const std::string& system_path, const fs::path& source,
                               std::uint32_t mode) {
  const auto bytes = ReadFileBytes(source);
  return File(system_path,
              std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), mode);
}

TreeBuilder& TreeBuilder::Symlink(const std::string& system_path, const std::string& target) {
  fs::create_symlink(target, Place(system_path));
  model::InventoryEntry entry;
  entry.path = prefix_ + system_path;
  entry.kind = model::EntryKind::kSymlink;
  entry.size = target.size();
  entry.mode = 0120777;
  entry.link_target = target;
  report_.inventory.push_back(entry);
  return *this;
}

const model::UnpackReport& TreeBuilder::report() {
  std::sort(report_.inventory.begin(), report_.inventory.end(),
            [](const auto& a, const auto& b) { return a.path < b.path; });
  return report_;
}

fs::path ProjectDataDir() { return fs::path(IOTMARK_SOURCE_DIR) / "data"; }

model::AnalysisReport RunAnalyzer(TreeBuilder& builder,
                                  std::unique_ptr<analyzers::Analyzer> analyzer) {
  auto tree = inventory::FileTree::Open(builder.root(), builder.report());
  EXPECT_TRUE(tree.has_value());
  if (!tree) return {};
  const DataStore data(ProjectDataDir());
  ThreadPool pool(1);
  std::vector<std::unique_ptr<analyzers::Analyzer>> list;
  list.push_back(std::move(analyzer));
  auto report = analyzers::Analyze(*tree, data, pool, std::move(list));
  EXPECT_TRUE(report.has_value()) << (report ? "" : report.error().ToString());
  return report ? std::move(*report) : model::AnalysisReport{};
}

}  // namespace iotmark::testing
