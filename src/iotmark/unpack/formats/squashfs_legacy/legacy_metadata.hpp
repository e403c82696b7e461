// The metadata of 2.x, 3.x and 4.0 SquashFS images in either byte order: metadata blocks (8 KiB,
// a 2-byte header whose top bit marks a stored block), inodes, directory listings and the
// fragment table, decoded into one version-independent description.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <tl/expected.hpp>
#include <unordered_map>
#include <vector>

#include "iotmark/base/bytes.hpp"
#include "iotmark/model/gap.hpp"
#include "iotmark/unpack/formats/squashfs_legacy/legacy_codec.hpp"
#include "iotmark/unpack/formats/squashfs_legacy/legacy_superblock.hpp"

namespace iotmark::unpack::formats::squashfs_legacy {

inline constexpr std::uint32_t kNoFragment = 0xFFFFFFFF;
// Set in a data block's or fragment block's size when the block is stored uncompressed.
inline constexpr std::uint32_t kStoredBlockBit = std::uint32_t{1} << 24;
// Longer symlink targets are refused (PATH_MAX).
inline constexpr std::uint32_t kMaxLinkTarget = 4096;

// What went wrong reading a structure, and where (an offset in the image).
struct Damage {
  model::GapKind kind = model::GapKind::kCorrupt;
  std::uint64_t offset = 0;
  std::string reason;
};
template <typename T>
using Expected = tl::expected<T, Damage>;

// The value of `count` bits starting `pos` bits into `bytes`, in the packed-bitfield convention
// of `order`: little-endian fields fill each byte from its lowest bit, big-endian fields (GCC on
// big-endian machines) from its highest, so a big-endian image needs no byte swap but a bit walk.
std::uint64_t Bits(ByteView bytes, std::size_t pos, std::size_t count, Order order);

// Reads byte ranges out of a table of metadata blocks that lies in [begin, end) of the image.
class MetadataReader {
 public:
  struct Cursor {
    std::uint64_t block = 0;   // image offset of a metadata block's header
    std::uint32_t offset = 0;  // into its decoded bytes
  };

  MetadataReader(ByteView image, const LegacySuperblock& sb, Order header_order, BlockCodec& codec,
                 std::uint64_t begin, std::uint64_t end, std::string name);

  // Copies dest.size() bytes from `at` on, continuing into the following blocks; advances `at`.
  Expected<void> Read(Cursor& at, std::span<std::uint8_t> dest);

 private:
  struct Block {
    std::vector<std::uint8_t> bytes;
    std::uint64_t next = 0;  // image offset of the block after it
  };
  Expected<const Block*> Load(std::uint64_t at);
  [[nodiscard]] Damage Problem(std::uint64_t at, std::uint64_t need, std::string what) const;

  ByteView image_;
  const LegacySuperblock& sb_;
  Order header_order_;
  BlockCodec& codec_;
  std::uint64_t begin_;
  std::uint64_t end_;
  std::string name_;
  std::unordered_map<std::uint64_t, Block> cache_;
  std::uint64_t cached_bytes_ = 0;
};

// Which byte order the metadata block headers use: the image's own, except in AVM's big-endian
// 4.0 images, whose headers are little-endian. Decided by which order chains the inode table's
// blocks exactly from its start to the directory table.
Order DetectHeaderOrder(ByteView image, const LegacySuperblock& sb);

enum class InodeKind { kDirectory, kFile, kSymlink, kBlockDevice, kCharDevice, kFifo, kSocket };

struct Inode {
  InodeKind kind = InodeKind::kFile;
  std::uint32_t mode = 0;    // permission bits
  std::uint32_t number = 0;  // 0 in 2.x, which has no inode numbers
  // Directories: where the listing starts (relative to the directory table) and its length.
  std::uint64_t listing_block = 0;
  std::uint32_t listing_offset = 0;
  std::uint64_t listing_size = 0;
  // Regular files.
  std::uint64_t file_size = 0;
  std::uint64_t blocks_start = 0;  // image offset of the first data block
  std::uint32_t fragment = kNoFragment;
  std::uint32_t fragment_offset = 0;
  std::vector<std::uint32_t> block_sizes;  // on-disk sizes with kStoredBlockBit; 0 = sparse
  // Symlinks.
  std::string target;
};

struct DirectoryEntry {
  std::string name;
  std::uint64_t inode_ref = 0;  // metadata block (relative to the inode table) << 16 | offset
};

struct Listing {
  std::vector<DirectoryEntry> entries;
  std::optional<Damage> damage;  // the listing broke off here; `entries` holds what came before
};

struct FragmentEntry {
  std::uint64_t start = 0;
  std::uint32_t size = 0;  // on-disk size with kStoredBlockBit
};

// Inodes, directory listings and fragment entries of one image (single-threaded).
class MetadataTables {
 public:
  MetadataTables(ByteView image, const LegacySuperblock& sb, BlockCodec& codec);

  // The inode at `ref`. A file longer than `max_file_bytes` is refused with a kLimit damage
  // before its block list is read.
  Expected<Inode> ReadInode(std::uint64_t ref, std::uint64_t max_file_bytes);
  // The entries of directory `dir`, at most `max_entries` of them.
  Listing ReadListing(const Inode& dir, std::uint64_t max_entries);
  Expected<FragmentEntry> Fragment(std::uint32_t index);
  // Reads the uid/gid tables (2.x/3.x arrays, the 4.0 id table) through, to tell whether the
  // owners of the entries are known. The sink keeps no owners, so their values are not kept.
  Expected<void> CheckIdTables();
  [[nodiscard]] Order header_order() const { return header_order_; }

 private:
  Expected<void> ReadBlockList(MetadataReader::Cursor& at, Inode& inode);
  Expected<void> ReadTarget(MetadataReader::Cursor& at, std::uint32_t size, Inode& inode);
  Expected<Inode> ReadV4Inode(MetadataReader::Cursor& at, std::uint64_t max_file_bytes);
  Expected<Inode> ReadV2V3Inode(MetadataReader::Cursor& at, std::uint64_t max_file_bytes);

  ByteView image_;
  const LegacySuperblock& sb_;
  Order header_order_;
  MetadataReader inodes_;
  MetadataReader directories_;
  MetadataReader lookups_;  // fragment and id table blocks, anywhere in the image
};

}  // namespace iotmark::unpack::formats::squashfs_legacy
