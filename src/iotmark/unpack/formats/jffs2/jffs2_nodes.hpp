// JFFS2 on-flash layout: node types and field offsets, JFFS2's CRC-32, and the node scanner that
// the probe and the extractor share. Hand-written: no Debian library reads JFFS2 (mtd-utils only
// writes it), so the layout follows the kernel's include/uapi/linux/jffs2.h and fs/jffs2/scan.c.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "iotmark/base/bytes.hpp"

namespace iotmark::unpack::formats::jffs2 {

enum class Endian { kLittle, kBig };

inline constexpr std::uint16_t kMagic = 0x1985;
// Set in every node type as written; the kernel clears it in place to mark a node obsolete (the
// header CRC is always computed with it set).
inline constexpr std::uint16_t kNodeAccurate = 0x2000;
inline constexpr std::uint16_t kTypeDirent = 0xE001;
inline constexpr std::uint16_t kTypeInode = 0xE002;
inline constexpr std::uint16_t kTypeCleanmarker = 0x2003;
inline constexpr std::uint16_t kTypePadding = 0x2004;
inline constexpr std::uint16_t kTypeSummary = 0x2006;
inline constexpr std::uint16_t kTypeXattr = 0xE008;
inline constexpr std::uint16_t kTypeXref = 0xE009;

inline constexpr std::size_t kHeaderSize = 12;  // magic, nodetype, totlen, hdr_crc
inline constexpr std::size_t kDirentSize = 40;  // struct jffs2_raw_dirent, before the name
inline constexpr std::size_t kInodeSize = 68;   // struct jffs2_raw_inode, before the data
inline constexpr std::size_t kSummarySize = 32;
inline constexpr std::size_t kXattrSize = 32;
inline constexpr std::size_t kXrefSize = 28;

// Field offsets of struct jffs2_raw_dirent.
namespace dirent {
inline constexpr std::size_t kPino = 12, kVersion = 16, kIno = 20, kNsize = 28, kType = 29,
                             kNodeCrc = 32, kNameCrc = 36;
inline constexpr std::size_t kNodeCrcCovers = kDirentSize - 8;  // the fixed fields before the CRCs
}  // namespace dirent
// Field offsets of struct jffs2_raw_inode.
namespace inode {
inline constexpr std::size_t kIno = 12, kVersion = 16, kMode = 20, kIsize = 28, kOffset = 44,
                             kCsize = 48, kDsize = 52, kCompr = 56, kDataCrc = 60, kNodeCrc = 64;
inline constexpr std::size_t kNodeCrcCovers = kInodeSize - 8;  // the fixed fields before the CRCs
}  // namespace inode

// Compression types (jffs2.h JFFS2_COMPR_*).
enum Compression : std::uint8_t {
  kComprNone = 0,
  kComprZero = 1,
  kComprRtime = 2,
  kComprRubinMips = 3,
  kComprCopy = 4,
  kComprDynRubin = 5,
  kComprZlib = 6,
  kComprLzo = 7,
  kComprLzma = 8,
};
std::string CompressionName(std::uint8_t compr);

// JFFS2's CRC-32: the kernel's crc32_le with initial value 0 and no final inversion, which is
// zlib's crc32 with the register inverted on the way in and out.
std::uint32_t Crc(ByteView bytes);

inline std::uint16_t Load16(const std::uint8_t* p, Endian endian) {
  std::uint16_t value;
  std::memcpy(&value, p, sizeof(value));
  const bool native = (endian == Endian::kLittle) == (std::endian::native == std::endian::little);
  return native ? value : static_cast<std::uint16_t>((value >> 8) | (value << 8));
}
inline std::uint32_t Load32(const std::uint8_t* p, Endian endian) {
  std::uint32_t value;
  std::memcpy(&value, p, sizeof(value));
  const bool native = (endian == Endian::kLittle) == (std::endian::native == std::endian::little);
  return native ? value : __builtin_bswap32(value);
}

// The byte order announced by a node magic at the start of `bytes`, if there is one.
std::optional<Endian> MagicOrder(ByteView bytes);

struct NodeHeader {
  std::uint16_t type = 0;  // as stored (the accurate bit may be clear)
  std::uint32_t totlen = 0;
};

// The node header at `pos` if its magic and header CRC are right (its length may still run past
// the end of `bytes`).
std::optional<NodeHeader> ValidHeader(ByteView bytes, std::size_t pos, Endian endian);

// True for the node types this reader knows (with the accurate bit set).
bool KnownType(std::uint16_t type);

// A node the scanner walked over: `bytes` holds its totlen bytes, fewer if the input ends first.
struct ScanNode {
  std::uint64_t offset = 0;
  NodeHeader header;
  ByteView bytes;
};

// Bytes inside the node stream that are neither nodes nor padding, skipped to the next node.
struct ScanSkip {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::string reason;
};

class ScanVisitor {
 public:
  virtual ~ScanVisitor() = default;
  virtual void Node(const ScanNode& node) = 0;
  virtual void Skipped(const ScanSkip& skip) = 0;
};

struct ScanResult {
  // The length of the node stream: up to the end of the last node, plus the erased space after it
  // up to the end of its erase block.
  std::uint64_t end = 0;
  bool truncated = false;           // the last node runs past the end of the input
  std::uint64_t claimed_end = 0;    // where that node says it ends
  std::uint64_t erase_size = 0;     // seen from cleanmarkers and summary nodes; 0 if unknown
  std::uint64_t nodes = 0;          // nodes with a valid header
  std::uint64_t skipped_bytes = 0;  // in regions that were neither nodes nor padding
};

// Walks the nodes from the start of `bytes` (which must hold a valid node there) until the node
// stream ends: at the first place that is neither a node nor erased-flash padding followed by a
// node, and from which no node can be found again before the next erase-block boundary. Linear
// in the input. `visitor` may be null (the probe only wants the extent).
ScanResult ScanNodes(ByteView bytes, Endian endian, ScanVisitor* visitor);

}  // namespace iotmark::unpack::formats::jffs2
