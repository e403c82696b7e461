// The extraction tree and the file inventory: what the unpacker found, where, and what it wrote.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "iotmark/model/gap.hpp"

namespace iotmark::model {

enum class ChunkStatus {
  kExtracted,   // read completely
  kPartial,     // read, with gaps
  kFailed,      // recognised, nothing could be read
  kIdentified,  // recognised and described, nothing to extract (e.g. a kernel banner)
  kUnknown,     // no format recognised: offset, size and entropy only
  kPadding,     // erased flash (0xff) or zeros
};

std::string_view ToString(ChunkStatus status);

// One node of the extraction tree. A blob (the image, or an extracted file that held something)
// has chunks as children; a chunk has the blobs extracted from it as children.
struct ExtractionNode {
  enum class Kind { kBlob, kChunk };
  Kind kind = Kind::kBlob;
  std::string format;        // chunk: format name; blob: "file"
  std::string path;          // blob: its path; chunk: the directory it was extracted into
  std::uint64_t offset = 0;  // chunk: offset in its blob
  std::uint64_t length = 0;  // chunk: bytes of the blob it covers; blob: its size
  ChunkStatus status = ChunkStatus::kExtracted;
  std::optional<double> entropy;            // unknown chunks
  std::map<std::string, std::string> meta;  // format-specific facts (compression, version, ...)
  std::vector<ExtractionNode> children;
};

enum class EntryKind {
  kFile,
  kDirectory,
  kSymlink,
  kHardlink,
  kCharDevice,
  kBlockDevice,
  kFifo,
  kSocket
};

std::string_view ToString(EntryKind kind);

// One entry of the inventory: every file, directory and link the unpacker produced.
struct InventoryEntry {
  std::string path;  // relative to the output root
  EntryKind kind = EntryKind::kFile;
  std::uint64_t size = 0;
  std::uint32_t mode = 0;    // as recorded in the image, including setuid bits (not as on disk)
  std::string type;          // sniffed content type of files: "elf", "script", "text", "data", ...
  std::string sha256;        // files only
  std::string link_target;   // symlinks and hard links
  bool materialized = true;  // false for entries recorded but not written (device nodes)
};

}  // namespace iotmark::model
