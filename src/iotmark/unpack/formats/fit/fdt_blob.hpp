// A flattened device tree read through libfdt, made safe for hostile input: the header is checked
// against the bytes at hand before libfdt sees them, the whole structure is verified once with
// fdt_check_full, and every accessor hands back bounded copies or views.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "iotmark/base/bytes.hpp"
#include "iotmark/base/result.hpp"

namespace iotmark::unpack::formats::fit {

inline constexpr std::uint32_t kFdtMagic = 0xd00dfeed;
// The v17 header; versions 16 and 17 are the only ones written since 2008, and libfdt reads
// nothing older than 2 anyway.
inline constexpr std::size_t kFdtHeaderSize = 40;
// libfdt counts in int; FIT images that embed a whole root filesystem stay far below this.
inline constexpr std::uint32_t kMaxFdtSize = std::uint32_t{1} << 30;

struct FdtHeader {
  std::uint32_t total_size = 0;
  std::uint32_t off_struct = 0;
  std::uint32_t off_strings = 0;
  std::uint32_t off_mem_rsvmap = 0;
  std::uint32_t version = 0;
  std::uint32_t last_comp_version = 0;
  std::uint32_t size_strings = 0;
  std::uint32_t size_struct = 0;
};

// Reads and cross-checks the header at the start of `bytes` (magic, versions, every block inside
// total_size, blocks in the order dtc and mkimage write them). Needs only the header's bytes, so
// it also works on a truncated tree. nullopt: not a device tree header.
std::optional<FdtHeader> ParseFdtHeader(ByteView bytes);

class FdtBlob {
 public:
  // Checks `bytes` (which must hold at least the header's total_size) with libfdt; the tree is
  // copied only when it does not sit on an 8-byte boundary, as libfdt wants.
  static Result<FdtBlob> Open(ByteView bytes);

  [[nodiscard]] const void* fdt() const { return base_; }
  [[nodiscard]] const FdtHeader& header() const { return header_; }

  // Node at `path`, or a negative libfdt error.
  [[nodiscard]] int PathOffset(const char* path) const;
  // Name of the node (with its unit address), "" for the root or on error.
  [[nodiscard]] std::string_view NodeName(int node) const;
  // Direct subnodes, in order, at most `max` of them; `more` says whether some were left out.
  [[nodiscard]] std::vector<int> Subnodes(int node, std::size_t max, bool* more = nullptr) const;

  // The raw value of a property, a view into the tree.
  [[nodiscard]] std::optional<ByteView> Property(int node, const char* name) const;
  // Where a view returned by Property() starts, counted from the start of the tree.
  [[nodiscard]] std::uint64_t OffsetOf(ByteView value) const;
  // A string or string list property ("a", "b" becomes "a,b"), cut at `max` characters.
  [[nodiscard]] std::optional<std::string> Text(int node, const char* name,
                                                std::size_t max = 256) const;
  // A one- or two-cell number (load and entry addresses may be either).
  [[nodiscard]] std::optional<std::uint64_t> Number(int node, const char* name) const;

 private:
  FdtBlob() = default;

  FdtHeader header_;
  std::unique_ptr<std::uint64_t[]> copy_;  // only when the input was misaligned
  const void* base_ = nullptr;
};

// Text for a report: printable ASCII kept, anything else becomes '?', at most `max` characters.
std::string PrintableText(std::string_view text, std::size_t max = 256);

}  // namespace iotmark::unpack::formats::fit
