#include "iotmark/unpack/formats/ubifs/ubifs_nodes.hpp"

#include <zlib.h>

#include <bit>

namespace iotmark::unpack::formats::ubifs {

namespace {

constexpr std::size_t kCrcStart = 8;  // the CRC covers the node from sqnum on
constexpr std::uint32_t kKeyBlockMask = 0x1fffffff;
constexpr int kKeyTypeShift = 29;
constexpr std::uint32_t kMaxFormatVersion = 5;
constexpr std::uint32_t kMaxMinIo = 64 * 1024;
constexpr std::uint32_t kMaxLebSize = 64 << 20;
// The superblock, two master LEBs, the log (at least two), then at least one more. mkfs.ubifs
// writes leb_cnt as the LEBs the image uses; the kernel grows it to the volume at mount.
constexpr std::uint32_t kMinLebCount = 6;

}  // namespace

std::uint32_t NodeCrc(ByteView bytes) {
  return static_cast<std::uint32_t>(~crc32_z(0, bytes.data(), bytes.size()));
}

std::string_view CompressionName(std::uint16_t type) {
  switch (type) {
    case kNone:
      return "none";
    case kLzo:
      return "lzo";
    case kZlib:
      return "zlib";
    case kZstd:
      return "zstd";
    default:
      return {};
  }
}

NodeCheck CheckNode(ByteView bytes, std::uint8_t type, std::size_t min_len, std::size_t max_len,
                    bool check_crc) {
  NodeCheck check;
  if (bytes.size() < kCommonHeaderSize) {
    check.problem = "the node is cut off by the end of the image";
    check.truncated = true;
    return check;
  }
  if (LoadLe<std::uint32_t>(bytes, 0) != kNodeMagic) {
    check.problem = "no node there (bad magic)";
    return check;
  }
  if (bytes[20] != type) {
    check.problem = "a node of type " + std::to_string(bytes[20]) + " where type " +
                    std::to_string(type) + " was expected";
    return check;
  }
  const std::uint32_t len = *LoadLe<std::uint32_t>(bytes, 16);
  if (len < min_len || len > max_len) {
    check.problem = "the node's length " + std::to_string(len) + " is impossible";
    return check;
  }
  if (len > bytes.size()) {
    check.problem = "the node is cut off by the end of the image";
    check.truncated = true;
    return check;
  }
  check.node = bytes.first(len);
  if (check_crc && *LoadLe<std::uint32_t>(bytes, 4) != NodeCrc(check.node.subspan(kCrcStart))) {
    check.problem = "the node is damaged (CRC mismatch)";
    check.node = {};
  }
  return check;
}

std::uint64_t SequenceNumber(ByteView node) { return LoadLe<std::uint64_t>(node, 8).value_or(0); }

std::optional<Superblock> ParseSuperblock(ByteView bytes) {
  const NodeCheck check = CheckNode(bytes, kSuperblockNode, kSuperblockSize, kSuperblockSize);
  if (!check.ok()) return std::nullopt;
  ByteReader reader(check.node);
  reader.Skip(kCommonHeaderSize + 2);
  Superblock sb;
  sb.key_hash = reader.Read<std::uint8_t>();
  sb.key_format = reader.Read<std::uint8_t>();
  sb.flags = reader.Read<std::uint32_t>();
  sb.min_io_size = reader.Read<std::uint32_t>();
  sb.leb_size = reader.Read<std::uint32_t>();
  sb.leb_cnt = reader.Read<std::uint32_t>();
  sb.max_leb_cnt = reader.Read<std::uint32_t>();
  reader.Skip(8);  // max_bud_bytes
  sb.log_lebs = reader.Read<std::uint32_t>();
  reader.Skip(12);  // lpt_lebs, orph_lebs, jhead_cnt
  sb.fanout = reader.Read<std::uint32_t>();
  reader.Skip(4);  // lsave_cnt
  sb.fmt_version = reader.Read<std::uint32_t>();
  sb.default_compression = reader.Read<std::uint16_t>();
  reader.Skip(2 + 4 + 4 + 8 + 4);  // padding, rp_uid, rp_gid, rp_size, time_gran
  const ByteView uuid = reader.ReadBytes(16);
  sb.ro_compat_version = reader.Read<std::uint32_t>();
  if (!reader.ok()) return std::nullopt;

  if (sb.key_format != 0 || sb.key_hash > 1) return std::nullopt;
  if (sb.fmt_version == 0 || sb.fmt_version > kMaxFormatVersion) return std::nullopt;
  if (!std::has_single_bit(sb.min_io_size) || sb.min_io_size < 8 || sb.min_io_size > kMaxMinIo) {
    return std::nullopt;
  }
  if (sb.leb_size < kMinLebSize || sb.leb_size > kMaxLebSize || sb.leb_size % 8 != 0 ||
      sb.leb_size < sb.min_io_size) {
    return std::nullopt;
  }
  if (sb.leb_cnt < kMinLebCount || (sb.max_leb_cnt != 0 && sb.leb_cnt > sb.max_leb_cnt)) {
    return std::nullopt;
  }
  if (sb.log_lebs < 2 || sb.log_lebs > sb.leb_cnt - 4) return std::nullopt;
  if (sb.fanout < 3) return std::nullopt;
  if (CompressionName(sb.default_compression).empty()) return std::nullopt;
  static constexpr char kHex[] = "0123456789abcdef";
  for (const std::uint8_t byte : uuid) {
    sb.uuid.push_back(kHex[byte >> 4]);
    sb.uuid.push_back(kHex[byte & 0xf]);
  }
  return sb;
}

Master ParseMaster(ByteView node) {
  ByteReader reader(node);
  Master master;
  master.sqnum = SequenceNumber(node);
  reader.Skip(kCommonHeaderSize);
  master.highest_inum = reader.Read<std::uint64_t>();
  master.commit_number = reader.Read<std::uint64_t>();
  master.flags = reader.Read<std::uint32_t>();
  master.log_lnum = reader.Read<std::uint32_t>();
  master.root_lnum = reader.Read<std::uint32_t>();
  master.root_offs = reader.Read<std::uint32_t>();
  master.root_len = reader.Read<std::uint32_t>();
  return master;
}

Key ParseKey(ByteView bytes) {
  Key key;
  key.inode = LoadLe<std::uint32_t>(bytes, 0).value_or(0);
  const std::uint32_t second = LoadLe<std::uint32_t>(bytes, 4).value_or(0);
  key.type = static_cast<std::uint8_t>(second >> kKeyTypeShift);
  key.value = second & kKeyBlockMask;
  return key;
}

std::optional<IndexNode> ParseIndex(ByteView node) {
  ByteReader reader(node);
  reader.Skip(kCommonHeaderSize);
  const auto count = reader.Read<std::uint16_t>();
  IndexNode index;
  index.level = reader.Read<std::uint16_t>();
  if (!reader.ok() || count == 0) return std::nullopt;
  // Authenticated filesystems append a hash to every branch: the branch size is whatever the
  // node's length divides into.
  const std::size_t body = node.size() - kIndexHeaderSize;
  if (body % count != 0 || body / count < kMinBranchSize) return std::nullopt;
  const std::size_t branch_size = body / count;
  index.branches.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const ByteView raw = node.subspan(kIndexHeaderSize + i * branch_size, branch_size);
    Branch branch;
    branch.lnum = *LoadLe<std::uint32_t>(raw, 0);
    branch.offs = *LoadLe<std::uint32_t>(raw, 4);
    branch.len = *LoadLe<std::uint32_t>(raw, 8);
    branch.key = ParseKey(raw.subspan(12, 8));
    index.branches.push_back(branch);
  }
  return index;
}

std::optional<Inode> ParseInode(ByteView node) {
  ByteReader reader(node);
  reader.Skip(kCommonHeaderSize);
  Inode inode;
  inode.sqnum = SequenceNumber(node);
  inode.key = ParseKey(reader.ReadBytes(16));
  reader.Skip(8);  // creat_sqnum
  inode.size = reader.Read<std::uint64_t>();
  reader.Skip(8 * 3 + 4 * 3);  // times
  inode.nlink = reader.Read<std::uint32_t>();
  reader.Skip(8);  // uid, gid
  inode.mode = reader.Read<std::uint32_t>();
  inode.flags = reader.Read<std::uint32_t>();
  const auto data_len = reader.Read<std::uint32_t>();
  if (!reader.ok() || data_len > kMaxInodeData || node.size() != kInodeHeaderSize + data_len) {
    return std::nullopt;
  }
  inode.data = std::string(AsChars(node.subspan(kInodeHeaderSize, data_len)));
  return inode;
}

std::optional<Dent> ParseDent(ByteView node) {
  ByteReader reader(node);
  reader.Skip(kCommonHeaderSize);
  Dent dent;
  dent.sqnum = SequenceNumber(node);
  dent.key = ParseKey(reader.ReadBytes(16));
  dent.target = reader.Read<std::uint64_t>();
  reader.Skip(1);
  dent.type = reader.Read<std::uint8_t>();
  const auto name_len = reader.Read<std::uint16_t>();
  if (!reader.ok() || name_len == 0 || name_len > kMaxNameLength ||
      node.size() != kDentHeaderSize + name_len + 1u) {
    return std::nullopt;
  }
  dent.name = std::string(AsChars(node.subspan(kDentHeaderSize, name_len)));
  return dent;
}

DataNode ParseData(ByteView node) {
  DataNode data;
  data.key = ParseKey(node.subspan(kCommonHeaderSize, 8));
  data.size = LoadLe<std::uint32_t>(node, 40).value_or(0);
  data.compression = LoadLe<std::uint16_t>(node, 44).value_or(0);
  data.payload = node.subspan(kDataHeaderSize);
  return data;
}

}  // namespace iotmark::unpack::formats::ubifs
