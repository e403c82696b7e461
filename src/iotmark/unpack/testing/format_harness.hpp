// Test support: probe and extract one format in-process, into a scratch directory, and look at
// what came out (entries, gaps, meta) without running the whole unpacker.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "iotmark/base/bytes.hpp"
#include "iotmark/base/limits.hpp"
#include "iotmark/base/result.hpp"
#include "iotmark/model/extraction.hpp"
#include "iotmark/model/gap.hpp"
#include "iotmark/unpack/format.hpp"

namespace iotmark::testing {

// A fresh, empty directory removed again when the object goes away.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct Extraction {
  std::optional<unpack::Chunk> chunk;  // what Probe said
  Status status;                       // what Extract returned (Ok if Probe said no)
  std::vector<model::Gap> gaps;
  std::vector<model::InventoryEntry> entries;  // sorted by path; paths relative to `root`
  std::map<std::string, std::string> meta;
  std::optional<std::uint64_t> consumed;
  std::filesystem::path root;  // where the entries were written

  // The entry at `path` (relative to root), or nullptr.
  [[nodiscard]] const model::InventoryEntry* Find(const std::string& path) const;
  // The bytes of the extracted file at `path`.
  [[nodiscard]] std::vector<std::uint8_t> Read(const std::string& path) const;
};

// Probes `blob` at `start` with `format` and, if it matches, extracts the chunk into
// `scratch`/out. `blob_name` is what ExtractContext::DecompressedName sees.
Extraction ProbeAndExtract(const unpack::Format& format, ByteView blob, std::uint64_t start,
                           const ScratchDir& scratch, const Limits& limits = {},
                           const std::string& blob_name = "blob.bin");

std::vector<std::uint8_t> ReadFileBytes(const std::filesystem::path& path);
void WriteFileBytes(const std::filesystem::path& path, ByteView bytes);

// Path of a fixture built by tests/fixtures/build_fixtures.sh (in the build tree).
std::filesystem::path FixturePath(const std::string& name);
// Path of a sample under ../shared/data/formats, or empty if that folder is absent.
std::filesystem::path SharedSamplePath(const std::string& relative);

// Runs a shell command, returns its exit status (tests use it to build inputs with real tools).
int RunCommand(const std::string& command);

}  // namespace iotmark::testing
