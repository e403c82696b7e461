// The superblock of the SquashFS layouts libsquashfs does not read: 2.x and 3.x in either byte
// order, and 4.0 big-endian (or little-endian with a quirk), parsed into one description.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "iotmark/base/bytes.hpp"

namespace iotmark::unpack::formats::squashfs_legacy {

inline constexpr std::uint64_t kNoTable = ~std::uint64_t{0};
inline constexpr std::uint32_t kMetadataSize = 8192;
// Version 2.x and 3.x vendors marked LZMA-patched images with minor version 'L'.
inline constexpr int kLzmaMinor = 'L';

enum class Order { kLittle, kBig };

// A whole-byte field in `order`; nullopt past the end of `bytes`.
template <typename T>
std::optional<T> LoadOrdered(ByteView bytes, std::uint64_t offset, Order order) {
  if (offset > bytes.size()) return std::nullopt;
  const auto at = static_cast<std::size_t>(offset);
  return order == Order::kLittle ? LoadLe<T>(bytes, at) : LoadBe<T>(bytes, at);
}

struct LegacySuperblock {
  int major = 0;
  int minor = 0;
  Order order = Order::kLittle;
  std::string magic;                  // the four magic bytes as found ("hsqs", "sqsh", "shsq" ...)
  std::uint64_t superblock_size = 0;  // 63 (2.x), 119 (3.x) or 96 (4.0) bytes
  std::uint32_t inode_count = 0;
  std::uint32_t mkfs_time = 0;
  std::uint32_t block_size = 0;
  std::uint32_t block_log = 0;
  std::uint32_t flags = 0;
  std::uint32_t fragment_count = 0;
  std::uint16_t compression = 0;  // 4.0 compressor id; 0 for 2.x and 3.x (zlib or an LZMA patch)
  std::uint64_t root_inode = 0;
  std::uint64_t bytes_used = 0;
  std::uint64_t inode_table = 0;
  std::uint64_t directory_table = 0;
  std::uint64_t fragment_table = kNoTable;  // the index of fragment metadata blocks
  std::uint64_t export_table = kNoTable;    // 3.x lookup table, 4.0 export table
  std::uint64_t id_table = kNoTable;        // 4.0 id index; 2.x/3.x uid array
  std::uint64_t guid_table = kNoTable;      // 2.x/3.x gid array
  std::uint64_t xattr_table = kNoTable;     // 4.0 only
  std::uint32_t id_count = 0;               // 4.0 ids; 2.x/3.x uids
  std::uint32_t guid_count = 0;
  // 2.x/3.x SQUASHFS_CHECK: every metadata block header is followed by a marker byte.
  bool check_data = false;

  [[nodiscard]] bool big_endian() const { return order == Order::kBig; }
  // "2.0", "3.1", "3.L" ...
  [[nodiscard]] std::string Version() const;
  // The directory table runs up to the first table that starts after it.
  [[nodiscard]] std::uint64_t DirectoryTableEnd() const;
  // Bytes of one fragment table entry (8 in 2.x, else 16) and of one index pointer (4 or 8).
  [[nodiscard]] std::uint32_t FragmentEntrySize() const { return major == 2 ? 8 : 16; }
  [[nodiscard]] std::uint32_t FragmentPointerSize() const { return major == 2 ? 4 : 8; }
};

// Reads and checks a superblock at the start of `bytes`; nullopt unless it is a 2.x, 3.x or 4.0
// superblock whose every field is plausible (version, block size, tables in order inside
// bytes_used, a root inode inside the inode table).
std::optional<LegacySuperblock> ParseLegacySuperblock(ByteView bytes);

}  // namespace iotmark::unpack::formats::squashfs_legacy
