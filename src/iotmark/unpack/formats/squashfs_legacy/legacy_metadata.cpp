// Hand-written: no Debian library reads 2.x/3.x or big-endian 4.0 metadata. Structure layouts
// (bit positions of every field) follow the on-disk description in squashfs-tools'
// squashfs_compat.h (2.x/3.x) and the 4.0 format; the code is ours.
#include "iotmark/unpack/formats/squashfs_legacy/legacy_metadata.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

namespace iotmark::unpack::formats::squashfs_legacy {

namespace {

using model::GapKind;

constexpr std::uint16_t kStoredMetadataBit = 0x8000;
// Decoded metadata blocks kept per table; past this the cache starts over.
constexpr std::uint64_t kCacheLimit = std::uint64_t{64} << 20;
// Block-list entries read from the inode table per step.
constexpr std::size_t kBlockListStep = 1024;
constexpr std::uint32_t kMaxNameSize = 256;
constexpr std::uint32_t kMaxEntriesPerHeader = 256;

// 2.x/3.x inode types; 4.0 adds 10..14, the extended forms of symlink, devices, FIFO, socket.
enum : unsigned {
  kDirType = 1,
  kFileType = 2,
  kSymlinkType = 3,
  kBlockDevType = 4,
  kCharDevType = 5,
  kFifoType = 6,
  kSocketType = 7,
  kLongDirType = 8,
  kLongFileType = 9,
  kLongSymlinkType = 10,
  kLongSocketType = 14,
};

std::string Hex(std::uint64_t offset) { return HexOffset(offset); }

Damage Corrupt(std::uint64_t offset, std::string reason) {
  return Damage{GapKind::kCorrupt, offset, std::move(reason)};
}

// Bytes of an inode before its variable part (block list, target, index), by type; 0 = unknown.
std::size_t FixedInodeSize(int major, unsigned type) {
  static constexpr std::array<std::uint8_t, 10> kV2 = {0, 15, 24, 6, 6, 6, 4, 4, 18, 0};
  static constexpr std::array<std::uint8_t, 10> kV3 = {0, 28, 32, 18, 18, 18, 16, 16, 31, 40};
  static constexpr std::array<std::uint8_t, 15> kV4 = {0,  32, 32, 24, 24, 24, 20, 20,
                                                       40, 56, 24, 28, 28, 24, 24};
  if (major == 4) return type < kV4.size() ? kV4[type] : 0;
  const auto& sizes = major == 2 ? kV2 : kV3;
  return type < sizes.size() ? sizes[type] : 0;
}

InodeKind SimpleKind(unsigned type) {
  // Types 4..7 and their 4.0 extended forms 11..14.
  switch (type > kLongSymlinkType ? type - 7 : type) {
    case kBlockDevType:
      return InodeKind::kBlockDevice;
    case kCharDevType:
      return InodeKind::kCharDevice;
    case kFifoType:
      return InodeKind::kFifo;
    default:
      return InodeKind::kSocket;
  }
}

std::uint64_t FileBlockCount(const LegacySuperblock& sb, std::uint64_t size,
                             std::uint32_t fragment) {
  if (fragment == kNoFragment) return (size + sb.block_size - 1) >> sb.block_log;
  return size >> sb.block_log;
}

}  // namespace

std::uint64_t Bits(ByteView bytes, std::size_t pos, std::size_t count, Order order) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t bit = pos + i;
    if (bit / 8 >= bytes.size()) break;
    const unsigned byte = bytes[bit / 8];
    if (order == Order::kLittle) {
      value |= static_cast<std::uint64_t>((byte >> (bit % 8)) & 1U) << i;
    } else {
      value = (value << 1) | ((byte >> (7 - bit % 8)) & 1U);
    }
  }
  return value;
}

// --- MetadataReader ---------------------------------------------------------------------------

MetadataReader::MetadataReader(ByteView image, const LegacySuperblock& sb, Order header_order,
                               BlockCodec& codec, std::uint64_t begin, std::uint64_t end,
                               std::string name)
    : image_(image),
      sb_(sb),
      header_order_(header_order),
      codec_(codec),
      begin_(begin),
      end_(end),
      name_(std::move(name)) {}

Damage MetadataReader::Problem(std::uint64_t at, std::uint64_t need, std::string what) const {
  const bool cut =
      image_.size() < sb_.bytes_used && (at > image_.size() || image_.size() - at < need);
  return Damage{cut ? GapKind::kTruncated : GapKind::kCorrupt,
                std::min<std::uint64_t>(at, image_.size()), std::move(what)};
}

Expected<const MetadataReader::Block*> MetadataReader::Load(std::uint64_t at) {
  if (const auto found = cache_.find(at); found != cache_.end()) return &found->second;
  const std::string where = "the " + name_ + " metadata block at " + Hex(at);
  if (at < begin_ || at >= end_) return tl::unexpected(Corrupt(at, where + " lies outside it"));
  const std::uint64_t header_size = sb_.check_data ? 3 : 2;
  if (at > image_.size() || image_.size() - at < header_size) {
    return tl::unexpected(Problem(at, header_size, where + " lies past the end of the image"));
  }
  const std::uint16_t word = LoadOrdered<std::uint16_t>(image_, at, header_order_).value_or(0);
  const std::uint32_t size = word & ~kStoredMetadataBit;
  if (size == 0 || size > kMetadataSize) {
    return tl::unexpected(Corrupt(at, where + " has an impossible size " + std::to_string(size)));
  }
  const std::uint64_t data = at + header_size;
  if (data + size > end_) return tl::unexpected(Corrupt(at, where + " runs past the table's end"));
  if (data + size > image_.size()) {
    return tl::unexpected(Problem(at, header_size + size, where + " is cut off"));
  }
  const ByteView in = image_.subspan(data, size);
  Block block;
  block.next = data + size;
  if ((word & kStoredMetadataBit) != 0) {
    block.bytes.assign(in.begin(), in.end());
  } else {
    block.bytes.resize(kMetadataSize);
    const auto produced = codec_.Decode(in, block.bytes, false);
    if (!produced) return tl::unexpected(Corrupt(at, where + " does not decompress"));
    block.bytes.resize(*produced);
  }
  if (cached_bytes_ > kCacheLimit) {
    cache_.clear();
    cached_bytes_ = 0;
  }
  cached_bytes_ += block.bytes.size();
  return &cache_.emplace(at, std::move(block)).first->second;
}

Expected<void> MetadataReader::Read(Cursor& at, std::span<std::uint8_t> dest) {
  std::size_t done = 0;
  while (done < dest.size()) {
    auto loaded = Load(at.block);
    if (!loaded) return tl::unexpected(std::move(loaded.error()));
    const Block& block = **loaded;
    if (at.offset > block.bytes.size()) {
      return tl::unexpected(
          Corrupt(at.block, "offset " + std::to_string(at.offset) + " lies beyond the " +
                                std::to_string(block.bytes.size()) + " bytes of the " + name_ +
                                " metadata block at " + Hex(at.block)));
    }
    if (at.offset == block.bytes.size()) {
      at.block = block.next;  // always past at.block: blocks are never empty
      at.offset = 0;
      continue;
    }
    const std::size_t take = std::min(dest.size() - done, block.bytes.size() - at.offset);
    std::memcpy(dest.data() + done, block.bytes.data() + at.offset, take);
    done += take;
    at.offset += static_cast<std::uint32_t>(take);
  }
  return {};
}

Order DetectHeaderOrder(ByteView image, const LegacySuperblock& sb) {
  const std::uint64_t header_size = sb.check_data ? 3 : 2;
  const auto chains = [&](Order order) -> std::optional<bool> {
    std::uint64_t at = sb.inode_table;
    while (at < sb.directory_table) {
      if (at > image.size() || image.size() - at < 2) return std::nullopt;  // cannot tell
      const std::uint16_t word = LoadOrdered<std::uint16_t>(image, at, order).value_or(0);
      const std::uint32_t size = word & ~kStoredMetadataBit;
      if (size == 0 || size > kMetadataSize) return false;
      at += header_size + size;
    }
    return at == sb.directory_table;
  };
  const Order other = sb.order == Order::kLittle ? Order::kBig : Order::kLittle;
  const auto own = chains(sb.order);
  if (own.value_or(true)) return sb.order;
  return chains(other).value_or(false) ? other : sb.order;
}

// --- MetadataTables -----------------------------------------------------------------------------

MetadataTables::MetadataTables(ByteView image, const LegacySuperblock& sb, BlockCodec& codec)
    : image_(image),
      sb_(sb),
      header_order_(DetectHeaderOrder(image, sb)),
      inodes_(image, sb, header_order_, codec, sb.inode_table, sb.directory_table, "inode table"),
      directories_(image, sb, header_order_, codec, sb.directory_table, sb.DirectoryTableEnd(),
                   "directory table"),
      lookups_(image, sb, header_order_, codec, sb.superblock_size, sb.bytes_used, "lookup table") {
}

Expected<Inode> MetadataTables::ReadInode(std::uint64_t ref, std::uint64_t max_file_bytes) {
  const std::uint64_t block = ref >> 16;
  const std::uint32_t offset = ref & 0xFFFF;
  if ((ref >> 48) != 0 || block >= sb_.directory_table - sb_.inode_table ||
      offset >= kMetadataSize) {
    return tl::unexpected(Corrupt(
        sb_.inode_table, "inode reference " + Hex(ref) + " points outside the inode table"));
  }
  MetadataReader::Cursor at{sb_.inode_table + block, offset};
  return sb_.major == 4 ? ReadV4Inode(at, max_file_bytes) : ReadV2V3Inode(at, max_file_bytes);
}

Expected<void> MetadataTables::ReadBlockList(MetadataReader::Cursor& at, Inode& inode) {
  std::uint64_t remaining = FileBlockCount(sb_, inode.file_size, inode.fragment);
  std::array<std::uint8_t, kBlockListStep * 4> bytes{};
  while (remaining > 0) {
    const std::size_t step = std::min<std::uint64_t>(remaining, kBlockListStep);
    if (auto read = inodes_.Read(at, std::span(bytes).first(step * 4)); !read) return read;
    for (std::size_t i = 0; i < step; ++i) {
      inode.block_sizes.push_back(static_cast<std::uint32_t>(Bits(bytes, i * 32, 32, sb_.order)));
    }
    remaining -= step;
  }
  return {};
}

Expected<void> MetadataTables::ReadTarget(MetadataReader::Cursor& at, std::uint32_t size,
                                          Inode& inode) {
  if (size > kMaxLinkTarget) {
    return tl::unexpected(
        Corrupt(at.block, "a symlink claims a target of " + std::to_string(size) + " bytes"));
  }
  inode.target.resize(size);
  return inodes_.Read(at, std::span(reinterpret_cast<std::uint8_t*>(inode.target.data()), size));
}

Expected<Inode> MetadataTables::ReadV2V3Inode(MetadataReader::Cursor& at,
                                              std::uint64_t max_file_bytes) {
  const bool v2 = sb_.major == 2;
  const Order order = sb_.order;
  const std::uint64_t where = at.block;
  std::array<std::uint8_t, 40> buf{};
  const std::size_t base = v2 ? 4 : 12;
  if (auto read = inodes_.Read(at, std::span(buf).first(base)); !read) {
    return tl::unexpected(read.error());
  }
  const auto bits = [&](std::size_t pos, std::size_t count) {
    return Bits(buf, pos, count, order);
  };
  const auto type = static_cast<unsigned>(bits(0, 4));
  const std::size_t fixed = FixedInodeSize(sb_.major, type);
  if (fixed == 0) {
    return tl::unexpected(Corrupt(where, "an inode has the unknown type " + std::to_string(type)));
  }
  if (auto read = inodes_.Read(at, std::span(buf).subspan(base, fixed - base)); !read) {
    return tl::unexpected(read.error());
  }
  Inode inode;
  inode.mode = static_cast<std::uint32_t>(bits(4, 12));
  if (!v2) inode.number = static_cast<std::uint32_t>(bits(64, 32));
  switch (type) {
    case kDirType:
    case kLongDirType: {
      const bool long_dir = type == kLongDirType;
      const std::size_t size_pos = v2 ? 32 : 128;
      const std::size_t size_bits = long_dir ? 27 : 19;
      const std::size_t offset_pos = size_pos + size_bits;
      const std::size_t start_pos = v2 ? (long_dir ? 104 : 96) : (long_dir ? 168 : 160);
      inode.kind = InodeKind::kDirectory;
      const std::uint64_t size = bits(size_pos, size_bits);
      inode.listing_offset = static_cast<std::uint32_t>(bits(offset_pos, 13));
      inode.listing_block = bits(start_pos, v2 ? 24 : 32);
      // 3.x counts "." and ".." as three bytes of the listing; 2.x does not.
      inode.listing_size = v2 ? size : (size >= 3 ? size - 3 : 0);
      return inode;
    }
    case kFileType:
    case kLongFileType: {
      const bool long_file = type == kLongFileType;
      inode.kind = InodeKind::kFile;
      if (v2) {
        inode.blocks_start = bits(64, 32);
        inode.fragment = static_cast<std::uint32_t>(bits(96, 32));
        inode.fragment_offset = static_cast<std::uint32_t>(bits(128, 32));
        inode.file_size = bits(160, 32);
      } else {
        const std::size_t start = long_file ? 128 : 96;
        inode.blocks_start = bits(start, 64);
        inode.fragment = static_cast<std::uint32_t>(bits(start + 64, 32));
        inode.fragment_offset = static_cast<std::uint32_t>(bits(start + 96, 32));
        inode.file_size = bits(start + 128, long_file ? 64 : 32);
      }
      break;
    }
    case kSymlinkType: {
      inode.kind = InodeKind::kSymlink;
      const auto size = static_cast<std::uint32_t>(bits(v2 ? 32 : 128, 16));
      if (auto read = ReadTarget(at, size, inode); !read) return tl::unexpected(read.error());
      return inode;
    }
    default:
      inode.kind = SimpleKind(type);
      return inode;
  }
  if (inode.file_size > max_file_bytes) {
    return tl::unexpected(Damage{GapKind::kLimit, where,
                                 "claims " + std::to_string(inode.file_size) +
                                     " bytes, more than the limit of " +
                                     std::to_string(max_file_bytes)});
  }
  if (auto read = ReadBlockList(at, inode); !read) return tl::unexpected(read.error());
  return inode;
}

Expected<Inode> MetadataTables::ReadV4Inode(MetadataReader::Cursor& at,
                                            std::uint64_t max_file_bytes) {
  const Order order = sb_.order;
  const std::uint64_t where = at.block;
  std::array<std::uint8_t, 56> buf{};
  if (auto read = inodes_.Read(at, std::span(buf).first(16)); !read) {
    return tl::unexpected(read.error());
  }
  const auto bits = [&](std::size_t pos, std::size_t count) {
    return Bits(buf, pos, count, order);
  };
  const auto type = static_cast<unsigned>(bits(0, 16));
  const std::size_t fixed = FixedInodeSize(4, type);
  if (fixed == 0) {
    return tl::unexpected(Corrupt(where, "an inode has the unknown type " + std::to_string(type)));
  }
  if (auto read = inodes_.Read(at, std::span(buf).subspan(16, fixed - 16)); !read) {
    return tl::unexpected(read.error());
  }
  Inode inode;
  inode.mode = static_cast<std::uint32_t>(bits(16, 16) & 07777);
  inode.number = static_cast<std::uint32_t>(bits(96, 32));
  switch (type) {
    case kDirType:
    case kLongDirType: {
      inode.kind = InodeKind::kDirectory;
      const bool long_dir = type == kLongDirType;
      const std::uint64_t size = long_dir ? bits(160, 32) : bits(192, 16);
      inode.listing_block = long_dir ? bits(192, 32) : bits(128, 32);
      inode.listing_offset = static_cast<std::uint32_t>(long_dir ? bits(272, 16) : bits(208, 16));
      inode.listing_size = size >= 3 ? size - 3 : 0;
      return inode;
    }
    case kFileType:
      inode.kind = InodeKind::kFile;
      inode.blocks_start = bits(128, 32);
      inode.fragment = static_cast<std::uint32_t>(bits(160, 32));
      inode.fragment_offset = static_cast<std::uint32_t>(bits(192, 32));
      inode.file_size = bits(224, 32);
      break;
    case kLongFileType:
      inode.kind = InodeKind::kFile;
      inode.blocks_start = bits(128, 64);
      inode.file_size = bits(192, 64);
      inode.fragment = static_cast<std::uint32_t>(bits(352, 32));
      inode.fragment_offset = static_cast<std::uint32_t>(bits(384, 32));
      break;
    case kSymlinkType:
    case kLongSymlinkType: {
      inode.kind = InodeKind::kSymlink;
      const auto size = static_cast<std::uint32_t>(bits(160, 32));
      if (auto read = ReadTarget(at, size, inode); !read) return tl::unexpected(read.error());
      return inode;
    }
    default:
      inode.kind = SimpleKind(type);
      return inode;
  }
  if (inode.file_size > max_file_bytes) {
    return tl::unexpected(Damage{GapKind::kLimit, where,
                                 "claims " + std::to_string(inode.file_size) +
                                     " bytes, more than the limit of " +
                                     std::to_string(max_file_bytes)});
  }
  if (auto read = ReadBlockList(at, inode); !read) return tl::unexpected(read.error());
  return inode;
}

Listing MetadataTables::ReadListing(const Inode& dir, std::uint64_t max_entries) {
  Listing listing;
  const int major = sb_.major;
  const Order order = sb_.order;
  const std::size_t header_size = major == 2 ? 4 : major == 3 ? 9 : 12;
  const std::size_t entry_size = major == 2 ? 3 : major == 3 ? 5 : 8;
  MetadataReader::Cursor at{sb_.directory_table + dir.listing_block, dir.listing_offset};
  if (dir.listing_block >= sb_.DirectoryTableEnd() - sb_.directory_table) {
    listing.damage = Corrupt(sb_.directory_table, "the listing lies outside the directory table");
    return listing;
  }
  std::uint64_t remaining = dir.listing_size;
  std::array<std::uint8_t, 12> fields{};
  std::array<std::uint8_t, kMaxNameSize> name{};
  const auto fail = [&](Damage damage) { listing.damage = std::move(damage); };
  while (remaining > 0 && !listing.damage) {
    if (remaining < header_size) {
      fail(Corrupt(at.block, "the listing ends inside a header"));
      break;
    }
    if (auto read = directories_.Read(at, std::span(fields).first(header_size)); !read) {
      fail(read.error());
      break;
    }
    remaining -= header_size;
    const std::uint64_t count =
        (major == 4 ? Bits(fields, 0, 32, order) : Bits(fields, 0, 8, order)) + 1;
    const std::uint64_t start = major == 2   ? Bits(fields, 8, 24, order)
                                : major == 3 ? Bits(fields, 8, 32, order)
                                             : Bits(fields, 32, 32, order);
    if (count > kMaxEntriesPerHeader) {
      fail(Corrupt(at.block, "a listing header claims " + std::to_string(count) + " entries"));
      break;
    }
    for (std::uint64_t i = 0; i < count; ++i) {
      if (remaining < entry_size) {
        fail(Corrupt(at.block, "the listing ends inside an entry"));
        break;
      }
      if (auto read = directories_.Read(at, std::span(fields).first(entry_size)); !read) {
        fail(read.error());
        break;
      }
      remaining -= entry_size;
      const std::uint64_t offset =
          major == 4 ? Bits(fields, 0, 16, order) : Bits(fields, 0, 13, order);
      const std::uint64_t name_size =
          (major == 4 ? Bits(fields, 48, 16, order) : Bits(fields, 16, 8, order)) + 1;
      if (name_size > kMaxNameSize || remaining < name_size) {
        fail(Corrupt(at.block, "a listing entry has a damaged name length"));
        break;
      }
      if (auto read = directories_.Read(at, std::span(name).first(name_size)); !read) {
        fail(read.error());
        break;
      }
      remaining -= name_size;
      listing.entries.push_back(
          DirectoryEntry{std::string(reinterpret_cast<const char*>(name.data()), name_size),
                         (start << 16) | offset});
      if (listing.entries.size() >= max_entries) return listing;
    }
  }
  return listing;
}

Expected<FragmentEntry> MetadataTables::Fragment(std::uint32_t index) {
  if (index >= sb_.fragment_count) {
    return tl::unexpected(Corrupt(sb_.fragment_table == kNoTable ? 0 : sb_.fragment_table,
                                  "fragment " + std::to_string(index) +
                                      " is not in the fragment table (" +
                                      std::to_string(sb_.fragment_count) + " entries)"));
  }
  const std::uint64_t entry_size = sb_.FragmentEntrySize();
  const std::uint64_t pointer_size = sb_.FragmentPointerSize();
  const std::uint64_t byte = std::uint64_t{index} * entry_size;
  const std::uint64_t pointer_at = sb_.fragment_table + byte / kMetadataSize * pointer_size;
  std::optional<std::uint64_t> pointer;
  if (pointer_size == 4) {
    pointer = LoadOrdered<std::uint32_t>(image_, pointer_at, sb_.order);
  } else {
    pointer = LoadOrdered<std::uint64_t>(image_, pointer_at, sb_.order);
  }
  if (!pointer) {
    const bool cut = image_.size() < sb_.bytes_used;
    return tl::unexpected(Damage{cut ? GapKind::kTruncated : GapKind::kCorrupt,
                                 std::min<std::uint64_t>(pointer_at, image_.size()),
                                 "the fragment table index is cut off"});
  }
  MetadataReader::Cursor at{*pointer, static_cast<std::uint32_t>(byte % kMetadataSize)};
  std::array<std::uint8_t, 16> bytes{};
  if (auto read = lookups_.Read(at, std::span(bytes).first(entry_size)); !read) {
    return tl::unexpected(read.error());
  }
  FragmentEntry entry;
  entry.start = entry_size == 8 ? Bits(bytes, 0, 32, sb_.order) : Bits(bytes, 0, 64, sb_.order);
  entry.size = static_cast<std::uint32_t>(Bits(bytes, entry_size == 8 ? 32 : 64, 32, sb_.order));
  return entry;
}

Expected<void> MetadataTables::CheckIdTables() {
  const bool cut = image_.size() < sb_.bytes_used;
  const auto past_end = [&](std::uint64_t at, std::string what) {
    return tl::unexpected(Damage{cut ? GapKind::kTruncated : GapKind::kCorrupt,
                                 std::min<std::uint64_t>(at, image_.size()),
                                 std::move(what) + " lies past the end of the image"});
  };
  if (sb_.major != 4) {
    if (sb_.id_table + std::uint64_t{sb_.id_count} * 4 > image_.size()) {
      return past_end(sb_.id_table, "the uid table");
    }
    if (sb_.guid_count > 0 && sb_.guid_table + std::uint64_t{sb_.guid_count} * 4 > image_.size()) {
      return past_end(sb_.guid_table, "the gid table");
    }
    return {};
  }
  const std::uint64_t bytes = std::uint64_t{sb_.id_count} * 4;
  std::array<std::uint8_t, kMetadataSize> ids{};
  for (std::uint64_t block = 0; block * kMetadataSize < bytes; ++block) {
    const auto pointer = LoadOrdered<std::uint64_t>(image_, sb_.id_table + block * 8, sb_.order);
    if (!pointer) return past_end(sb_.id_table, "the id table index");
    MetadataReader::Cursor at{*pointer, 0};
    const std::uint64_t size =
        std::min<std::uint64_t>(kMetadataSize, bytes - block * kMetadataSize);
    if (auto read = lookups_.Read(at, std::span(ids).first(size)); !read) return read;
  }
  return {};
}

}  // namespace iotmark::unpack::formats::squashfs_legacy
