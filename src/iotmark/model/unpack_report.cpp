#include "iotmark/model/unpack_report.hpp"

#include <cmath>

namespace iotmark::model {

std::string_view ToString(GapKind kind) {
  switch (kind) {
    case GapKind::kTruncated:
      return "truncated";
    case GapKind::kCorrupt:
      return "corrupt";
    case GapKind::kUnsafeEntry:
      return "unsafe_entry";
    case GapKind::kLimit:
      return "limit";
    case GapKind::kUnsupported:
      return "unsupported";
    case GapKind::kEncrypted:
      return "encrypted";
    case GapKind::kIo:
      return "io";
  }
  return "unknown";
}

std::string_view ToString(ChunkStatus status) {
  switch (status) {
    case ChunkStatus::kExtracted:
      return "extracted";
    case ChunkStatus::kPartial:
      return "partial";
    case ChunkStatus::kFailed:
      return "failed";
    case ChunkStatus::kIdentified:
      return "identified";
    case ChunkStatus::kUnknown:
      return "unknown";
    case ChunkStatus::kPadding:
      return "padding";
  }
  return "unknown";
}

std::string_view ToString(EntryKind kind) {
  switch (kind) {
    case EntryKind::kFile:
      return "file";
    case EntryKind::kDirectory:
      return "directory";
    case EntryKind::kSymlink:
      return "symlink";
    case EntryKind::kHardlink:
      return "hardlink";
    case EntryKind::kCharDevice:
      return "char_device";
    case EntryKind::kBlockDevice:
      return "block_device";
    case EntryKind::kFifo:
      return "fifo";
    case EntryKind::kSocket:
      return "socket";
  }
  return "unknown";
}

nlohmann::json ToJson(const Gap& gap) {
  return {{"kind", ToString(gap.kind)},
          {"blob", gap.blob},
          {"offset", gap.offset},
          {"format", gap.format},
          {"reason", gap.reason}};
}

nlohmann::json ToJson(const ExtractionNode& node) {
  nlohmann::json json;
  if (node.kind == ExtractionNode::Kind::kBlob) {
    json["blob"] = node.path;
    json["size"] = node.length;
  } else {
    json["format"] = node.format;
    json["offset"] = node.offset;
    json["length"] = node.length;
    json["status"] = ToString(node.status);
    if (!node.path.empty()) json["extracted_to"] = node.path;
    if (node.entropy) json["entropy"] = std::round(*node.entropy * 1000.0) / 1000.0;
  }
  if (!node.meta.empty()) json["meta"] = node.meta;
  if (!node.children.empty()) {
    auto& children = json["children"] = nlohmann::json::array();
    for (const auto& child : node.children) children.push_back(ToJson(child));
  }
  return json;
}

nlohmann::json ToJson(const InventoryEntry& entry) {
  nlohmann::json json = {{"path", entry.path},
                         {"kind", ToString(entry.kind)},
                         {"size", entry.size},
                         {"mode", entry.mode}};
  if (!entry.type.empty()) json["type"] = entry.type;
  if (!entry.sha256.empty()) json["sha256"] = entry.sha256;
  if (!entry.link_target.empty()) json["link_target"] = entry.link_target;
  if (!entry.materialized) json["materialized"] = false;
  return json;
}

nlohmann::json ToJson(const UnpackReport& report) {
  nlohmann::json json;
  json["schema"] = "iotmark.unpack/1";
  json["tool"] = {{"name", "iotmark"}, {"version", report.tool_version}};
  json["image"] = {
      {"name", report.image_name}, {"sha256", report.image_sha256}, {"size", report.image_size}};
  json["tree"] = ToJson(report.tree);
  auto& inventory = json["inventory"] = nlohmann::json::array();
  for (const auto& entry : report.inventory) inventory.push_back(ToJson(entry));
  auto& gaps = json["gaps"] = nlohmann::json::array();
  for (const auto& gap : report.gaps) gaps.push_back(ToJson(gap));
  json["stats"] = {{"chunks", report.stats.chunks},
                   {"unknown_chunks", report.stats.unknown_chunks},
                   {"files", report.stats.files},
                   {"bytes_written", report.stats.bytes_written},
                   {"max_depth_reached", report.stats.max_depth_reached}};
  return json;
}

std::string ToCanonicalJson(const nlohmann::json& json) {
  return json.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace iotmark::model
