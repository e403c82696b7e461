// The project's knowledge that changes faster than code (signatures, credential lists, patterns,
// catalogs) lives in YAML files under one data directory. DataStore loads them with errors that
// name file, line and column, and remembers each file's SHA-256 so a report can say exactly
// which data it was made with.
#pragma once

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "iotmark/base/result.hpp"

namespace iotmark {

class DataStore {
 public:
  explicit DataStore(std::filesystem::path root) : root_(std::move(root)) {}

  [[nodiscard]] const std::filesystem::path& root() const { return root_; }

  // Parses `relative` (e.g. "components/signatures.yaml"). `relative` may not leave the root.
  [[nodiscard]] Result<YAML::Node> LoadYaml(std::string_view relative) const;
  // Reads `relative` as text (plain lists such as password dictionaries).
  [[nodiscard]] Result<std::string> LoadText(std::string_view relative) const;

  // Every file loaded so far and its SHA-256, by relative path.
  [[nodiscard]] std::map<std::string, std::string> Loaded() const;

 private:
  Result<std::string> Read(std::string_view relative) const;

  std::filesystem::path root_;
  mutable std::mutex mutex_;
  mutable std::map<std::string, std::string> loaded_;
};

// "file:line:column: message" for a yaml-cpp node, for errors found after parsing.
std::string YamlWhere(const std::string& file, const YAML::Node& node);

}  // namespace iotmark
