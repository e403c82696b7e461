// The report of one unpack job and its canonical JSON form (sorted keys, no timestamps unless
// a clock is given), so the same image always gives the same bytes.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "iotmark/model/extraction.hpp"
#include "iotmark/model/gap.hpp"

namespace iotmark::model {

struct UnpackStats {
  std::uint64_t chunks = 0;
  std::uint64_t unknown_chunks = 0;
  std::uint64_t files = 0;
  std::uint64_t bytes_written = 0;
  std::uint64_t max_depth_reached = 0;
};

struct UnpackReport {
  std::string tool_version;
  std::string image_name;
  std::string image_sha256;
  std::uint64_t image_size = 0;
  ExtractionNode tree;
  std::vector<InventoryEntry> inventory;  // sorted by path
  std::vector<Gap> gaps;                  // in the order found, then sorted by blob and offset
  UnpackStats stats;
};

nlohmann::json ToJson(const Gap& gap);
nlohmann::json ToJson(const ExtractionNode& node);
nlohmann::json ToJson(const InventoryEntry& entry);
nlohmann::json ToJson(const UnpackReport& report);

// Canonical text: sorted keys, two-space indent, invalid UTF-8 in names replaced.
std::string ToCanonicalJson(const nlohmann::json& json);

}  // namespace iotmark::model
