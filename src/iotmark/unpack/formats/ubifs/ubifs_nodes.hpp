// UBIFS on-flash nodes (little-endian, as fs/ubifs/ubifs-media.h lays them out): the common
// header every node starts with, and parsers for the nodes the extractor reads. Every parser
// checks sizes against the bytes it is given; none trusts a length field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "iotmark/base/bytes.hpp"

namespace iotmark::unpack::formats::ubifs {

inline constexpr std::uint32_t kNodeMagic = 0x06101831;
inline constexpr std::uint32_t kBlockSize = 4096;  // the most data one data node holds
inline constexpr std::size_t kCommonHeaderSize = 24;
inline constexpr std::size_t kSuperblockSize = 4096;
inline constexpr std::size_t kMasterSize = 512;
inline constexpr std::size_t kIndexHeaderSize = 28;  // common header, child_cnt, level
inline constexpr std::size_t kMinBranchSize = 20;    // lnum, offs, len, 8-byte key
inline constexpr std::size_t kInodeHeaderSize = 160;
inline constexpr std::size_t kDentHeaderSize = 56;
inline constexpr std::size_t kDataHeaderSize = 48;
inline constexpr std::size_t kMaxNameLength = 255;
inline constexpr std::uint32_t kMaxInodeData = 4096;
inline constexpr std::uint32_t kMaxLevels = 512;  // of the index B-tree
inline constexpr std::uint64_t kRootInode = 1;
inline constexpr std::uint32_t kMinLebSize = 15 * 1024;

enum NodeType : std::uint8_t {
  kInodeNode = 0,
  kDataNode = 1,
  kDentNode = 2,
  kXentNode = 3,
  kSuperblockNode = 6,
  kMasterNode = 7,
  kRefNode = 8,
  kIndexNode = 9,
  kCommitStartNode = 10,
};

enum KeyType : std::uint8_t { kInodeKey = 0, kDataKey = 1, kDentKey = 2, kXentKey = 3 };

enum Compression : std::uint16_t { kNone = 0, kLzo = 1, kZlib = 2, kZstd = 3 };

inline constexpr std::uint32_t kFlagEncryption = 0x10;      // superblock
inline constexpr std::uint32_t kFlagAuthentication = 0x20;  // superblock
inline constexpr std::uint32_t kMasterDirty = 1;            // master node: unclean unmount
inline constexpr std::uint32_t kInodeEncrypted = 0x40;      // inode flags

// CRC-32 as UBIFS computes it: initial value ~0 and no final inversion.
std::uint32_t NodeCrc(ByteView bytes);

// "none", "lzo", "zlib", "zstd"; empty for an unknown type.
std::string_view CompressionName(std::uint16_t type);

// The node of `type` at the start of `bytes`: its magic, node type and length (between min_len and
// max_len, and within `bytes`) and, if `check_crc`, its CRC. On success `node` is exactly the
// node's bytes; otherwise `problem` says what is wrong and `truncated` whether `bytes` ended first.
struct NodeCheck {
  ByteView node;
  std::string problem;
  bool truncated = false;
  [[nodiscard]] bool ok() const { return problem.empty(); }
};
NodeCheck CheckNode(ByteView bytes, std::uint8_t type, std::size_t min_len, std::size_t max_len,
                    bool check_crc = true);

[[nodiscard]] std::uint64_t SequenceNumber(ByteView node);

struct Superblock {
  std::uint8_t key_hash = 0;
  std::uint8_t key_format = 0;
  std::uint32_t flags = 0;
  std::uint32_t min_io_size = 0;
  std::uint32_t leb_size = 0;
  std::uint32_t leb_cnt = 0;
  std::uint32_t max_leb_cnt = 0;
  std::uint32_t log_lebs = 0;
  std::uint32_t fanout = 0;
  std::uint32_t fmt_version = 0;
  std::uint16_t default_compression = 0;
  std::uint32_t ro_compat_version = 0;
  std::string uuid;  // 32 hex digits
};

// The superblock at the start of `bytes`, with every field checked; nullopt if any is impossible.
std::optional<Superblock> ParseSuperblock(ByteView bytes);

struct Master {
  std::uint64_t sqnum = 0;
  std::uint64_t highest_inum = 0;
  std::uint64_t commit_number = 0;
  std::uint32_t flags = 0;
  std::uint32_t log_lnum = 0;
  std::uint32_t root_lnum = 0;
  std::uint32_t root_offs = 0;
  std::uint32_t root_len = 0;
};

// A master node whose header (and CRC) CheckNode has accepted.
Master ParseMaster(ByteView node);

struct Key {
  std::uint32_t inode = 0;
  std::uint8_t type = 0;
  std::uint32_t value = 0;  // block number (data keys) or name hash (entry keys)
};

Key ParseKey(ByteView bytes);  // 8 bytes, the "simple" key format

struct Branch {
  std::uint32_t lnum = 0;
  std::uint32_t offs = 0;
  std::uint32_t len = 0;
  Key key;
};

struct IndexNode {
  std::uint16_t level = 0;
  std::vector<Branch> branches;
};

// An index node CheckNode has accepted; nullopt if its branches do not fit its length.
std::optional<IndexNode> ParseIndex(ByteView node);

struct Inode {
  Key key;
  std::uint64_t sqnum = 0;
  std::uint64_t size = 0;
  std::uint32_t nlink = 0;
  std::uint32_t mode = 0;
  std::uint32_t flags = 0;
  std::string data;  // symlink target, device number
};

// An inode node CheckNode has accepted; nullopt if its attached data does not fit its length.
std::optional<Inode> ParseInode(ByteView node);

struct Dent {
  Key key;
  std::uint64_t sqnum = 0;
  std::uint64_t target = 0;
  std::uint8_t type = 0;
  std::string name;
};

// A directory entry node CheckNode has accepted; nullopt if its name does not fit its length.
std::optional<Dent> ParseDent(ByteView node);

struct DataNode {
  Key key;
  std::uint32_t size = 0;  // uncompressed bytes
  std::uint16_t compression = 0;
  ByteView payload;
};

DataNode ParseData(ByteView node);

}  // namespace iotmark::unpack::formats::ubifs
