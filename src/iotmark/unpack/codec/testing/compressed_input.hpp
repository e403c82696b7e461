// Test support for the codec and the compression formats: real binaries compressed by the real
// tools (once per test process), random surroundings to embed them in, and digests to compare.
#pragma once

#include <lzma.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "iotmark/base/bytes.hpp"
#include "iotmark/base/sha256.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::testing {

// The real binary the stream tests compress: a static busybox (about 2 MB).
inline const char* kPlainPath = "/bin/busybox";

inline const std::vector<std::uint8_t>& PlainBytes() {
  static const std::vector<std::uint8_t> bytes = ReadFileBytes(kPlainPath);
  return bytes;
}

inline std::vector<std::uint8_t> RandomBytes(std::size_t size, std::uint32_t seed) {
  std::mt19937 engine(seed);
  std::vector<std::uint8_t> bytes(size);
  for (auto& byte : bytes) byte = static_cast<std::uint8_t>(engine() >> 24);
  return bytes;
}

// The output of `command` run on `input` ("gzip -9 -c", "xz -c" ...), cached per process.
// Empty if the command failed.
inline const std::vector<std::uint8_t>& CompressedWith(const std::string& command,
                                                       const std::string& input = kPlainPath) {
  static std::mutex mutex;
  static std::map<std::string, std::vector<std::uint8_t>> cache;
  static const ScratchDir scratch;
  std::lock_guard lock(mutex);
  const std::string key = command + " < " + input;
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  const auto out = scratch.path() / ("out" + std::to_string(cache.size()));
  std::vector<std::uint8_t> bytes;
  if (RunCommand("(" + command + ") < '" + input + "' > '" + out.string() + "'") == 0) {
    bytes = ReadFileBytes(out);
  }
  return cache.emplace(key, std::move(bytes)).first->second;
}

// `stream` placed `before` random bytes into a blob, followed by `after` random bytes.
inline std::vector<std::uint8_t> Embed(ByteView stream, std::size_t before, std::size_t after,
                                       std::uint32_t seed = 7) {
  std::vector<std::uint8_t> blob = RandomBytes(before, seed);
  blob.insert(blob.end(), stream.begin(), stream.end());
  const auto tail = RandomBytes(after, seed + 1);
  blob.insert(blob.end(), tail.begin(), tail.end());
  return blob;
}

inline std::string HashOf(ByteView bytes) { return Sha256::Hex(bytes); }

// An .lzma stream as the LZMA SDK and U-Boot kernels have it: the size stated in the header and
// no end marker (xz-utils always writes one, so this is built with liblzma's raw encoder).
inline std::vector<std::uint8_t> LzmaAloneWithKnownSize(ByteView plain, std::uint32_t preset = 3) {
  lzma_options_lzma options{};
  if (lzma_lzma_preset(&options, preset)) return {};
  options.ext_flags = 0;  // no end marker
  const std::array<lzma_filter, 2> filters = {lzma_filter{LZMA_FILTER_LZMA1EXT, &options},
                                              lzma_filter{LZMA_VLI_UNKNOWN, nullptr}};
  std::vector<std::uint8_t> out(13 + plain.size() + plain.size() / 2 + 4096);
  std::size_t pos = 13;
  if (lzma_raw_buffer_encode(filters.data(), nullptr, plain.data(), plain.size(), out.data(), &pos,
                             out.size()) != LZMA_OK) {
    return {};
  }
  out.resize(pos);
  out[0] = static_cast<std::uint8_t>((options.pb * 5 + options.lp) * 9 + options.lc);
  for (int i = 0; i < 4; ++i) out[1 + i] = static_cast<std::uint8_t>(options.dict_size >> (8 * i));
  const std::uint64_t size = plain.size();
  for (int i = 0; i < 8; ++i) out[5 + i] = static_cast<std::uint8_t>(size >> (8 * i));
  return out;
}

}  // namespace iotmark::testing

namespace iotmark::testing {

// The regular files an extraction wrote.
inline std::vector<const model::InventoryEntry*> Files(const Extraction& extraction) {
  std::vector<const model::InventoryEntry*> files;
  for (const auto& entry : extraction.entries) {
    if (entry.kind == model::EntryKind::kFile) files.push_back(&entry);
  }
  return files;
}

// How many gaps of `kind` an extraction recorded.
inline std::size_t CountGaps(const Extraction& extraction, model::GapKind kind) {
  std::size_t count = 0;
  for (const auto& gap : extraction.gaps) count += gap.kind == kind ? 1 : 0;
  return count;
}

// Every gap as "kind: reason" lines, for failure messages.
inline std::string DescribeGaps(const Extraction& extraction) {
  std::string text;
  for (const auto& gap : extraction.gaps) {
    text += std::string(model::ToString(gap.kind)) + " @" + std::to_string(gap.offset) + ": " +
            gap.reason + "\n";
  }
  return text;
}

}  // namespace iotmark::testing
