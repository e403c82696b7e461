// Shared by scenario tests: run the whole unpacker on an image and look things up in its report.
#pragma once

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "iotmark/model/unpack_report.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"
#include "iotmark/unpack/unpacker.hpp"

namespace iotmark::scenario {

inline Result<model::UnpackReport> Unpack(const std::filesystem::path& image,
                                          const std::filesystem::path& out, Limits limits = {}) {
  unpack::UnpackOptions options;
  options.limits = limits;
  options.threads = 2;
  auto unpacker = unpack::Unpacker::Create(options);
  if (!unpacker) return tl::unexpected(unpacker.error());
  return unpacker->Run(image, out);
}

inline const model::InventoryEntry* FindEntry(const model::UnpackReport& report,
                                              const std::string& path) {
  for (const auto& entry : report.inventory) {
    if (entry.path == path) return &entry;
  }
  return nullptr;
}

// Depth-first search for the first chunk of `format` anywhere in the tree.
inline const model::ExtractionNode* FindChunk(const model::ExtractionNode& node,
                                              const std::string& format) {
  for (const auto& child : node.children) {
    if (child.kind == model::ExtractionNode::Kind::kChunk && child.format == format) return &child;
    if (const auto* found = FindChunk(child, format)) return found;
  }
  return nullptr;
}

inline bool HasGap(const model::UnpackReport& report, model::GapKind kind) {
  for (const auto& gap : report.gaps) {
    if (gap.kind == kind) return true;
  }
  return false;
}

// key=value lines of a fixture manifest.
inline std::map<std::string, std::string> ReadManifest(const std::filesystem::path& path) {
  std::map<std::string, std::string> values;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const auto eq = line.find('=');
    if (eq != std::string::npos && line.find(' ') > eq)
      values[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return values;
}

// True if nothing but `out` was created inside `scratch` (the escape check of hostile tests).
inline bool OnlyOutputDirExists(const std::filesystem::path& scratch,
                                const std::filesystem::path& out,
                                const std::filesystem::path& allowed_input) {
  for (const auto& entry : std::filesystem::directory_iterator(scratch)) {
    if (entry.path() != out && entry.path() != allowed_input) return false;
  }
  return true;
}

}  // namespace iotmark::scenario
