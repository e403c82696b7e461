// JFFS2 node headers, CRC-32 and the node scanner (see jffs2_nodes.hpp).
#include "iotmark/unpack/formats/jffs2/jffs2_nodes.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

namespace iotmark::unpack::formats::jffs2 {

namespace {

// Erase blocks of NOR and NAND flash lie between these sizes; an alignment outside them says
// nothing about the erase size.
constexpr std::uint64_t kMinEraseSize = 4096;
constexpr std::uint64_t kMaxEraseSize = std::uint64_t{16} << 20;
// How far past damage the scanner looks for the next node while the erase size is unknown:
// mkfs.jffs2's default erase block.
constexpr std::uint64_t kDefaultWindow = std::uint64_t{64} << 10;

std::uint64_t RoundUp(std::uint64_t value, std::uint64_t power_of_two) {
  return (value + power_of_two - 1) & ~(power_of_two - 1);
}

std::uint64_t LowestBit(std::uint64_t value) { return value & (~value + 1); }

class Scanner {
 public:
  Scanner(ByteView bytes, Endian endian, ScanVisitor* visitor)
      : bytes_(bytes), endian_(endian), visitor_(visitor) {}

  ScanResult Run();

 private:
  [[nodiscard]] std::uint64_t size() const { return bytes_.size(); }
  [[nodiscard]] bool HasHeaderRoom(std::uint64_t pos) const {
    return pos <= size() && size() - pos >= kHeaderSize;
  }
  // Erased flash (0xff) or zero fill, one 32-bit word at `pos`.
  [[nodiscard]] bool IsPaddingWord(std::uint64_t pos) const {
    std::uint32_t word;
    std::memcpy(&word, bytes_.data() + pos, sizeof(word));
    return word == 0 || word == 0xFFFFFFFF;
  }
  [[nodiscard]] std::uint64_t PaddingEnd(std::uint64_t pos) const;
  [[nodiscard]] std::optional<std::uint64_t> FindResume(std::uint64_t from) const;
  [[nodiscard]] std::string Describe(std::uint64_t pos) const;
  void NoteBoundary(std::uint64_t pos);
  void NoteNode(std::uint64_t pos, const NodeHeader& header);

  ByteView bytes_;
  Endian endian_;
  ScanVisitor* visitor_;
  ScanResult result_;
};

// The first word-aligned position from `pos` that is not padding; size() if padding (or a tail
// shorter than a word that is padding too) runs to the end.
std::uint64_t Scanner::PaddingEnd(std::uint64_t pos) const {
  while (size() - pos >= 8) {
    std::uint64_t words;
    std::memcpy(&words, bytes_.data() + pos, sizeof(words));
    if (words != 0 && words != ~std::uint64_t{0}) break;
    pos += 8;
  }
  while (size() - pos >= 4 && IsPaddingWord(pos)) pos += 4;
  if (size() - pos < 4) {
    const auto tail = bytes_.subspan(pos);
    if (IsFilledWith(tail, 0xFF) || IsFilledWith(tail, 0x00)) return size();
  }
  return pos;
}

// Where the node stream goes on after damage at `from`: the next valid node header before the end
// of this erase block, or at the start of the next one (possibly after erased blocks).
std::optional<std::uint64_t> Scanner::FindResume(std::uint64_t from) const {
  const std::uint64_t window = result_.erase_size != 0 ? result_.erase_size : kDefaultWindow;
  const std::uint64_t limit = RoundUp(from + 1, window);
  for (std::uint64_t pos = from + 4; pos < limit && HasHeaderRoom(pos); pos += 4) {
    if (Load16(bytes_.data() + pos, endian_) == kMagic && ValidHeader(bytes_, pos, endian_)) {
      return pos;
    }
  }
  if (!HasHeaderRoom(limit)) return std::nullopt;
  if (ValidHeader(bytes_, limit, endian_)) return limit;
  if (IsPaddingWord(limit)) {
    const std::uint64_t next = PaddingEnd(limit);
    if (HasHeaderRoom(next) && ValidHeader(bytes_, next, endian_)) return limit;
  }
  return std::nullopt;
}

std::string Scanner::Describe(std::uint64_t pos) const {
  if (Load16(bytes_.data() + pos, endian_) == kMagic) {
    return "a node header whose CRC does not match";
  }
  const Endian other = endian_ == Endian::kLittle ? Endian::kBig : Endian::kLittle;
  if (Load16(bytes_.data() + pos, other) == kMagic) return "a node of the other byte order";
  return "bytes that are neither JFFS2 nodes nor erased flash";
}

// Cleanmarkers start erase blocks and summary nodes end them: each says the erase size divides
// its position (relative to the start of the filesystem).
void Scanner::NoteBoundary(std::uint64_t pos) {
  const std::uint64_t alignment = LowestBit(pos);
  if (pos == 0 || alignment < kMinEraseSize || alignment > kMaxEraseSize) return;
  if (result_.erase_size == 0 || alignment < result_.erase_size) result_.erase_size = alignment;
}

void Scanner::NoteNode(std::uint64_t pos, const NodeHeader& header) {
  const std::uint16_t type = header.type | kNodeAccurate;
  if (type == kTypeCleanmarker) NoteBoundary(pos);
  if (type == kTypeSummary && pos + header.totlen <= size()) NoteBoundary(pos + header.totlen);
}

ScanResult Scanner::Run() {
  std::uint64_t pos = 0;
  while (HasHeaderRoom(pos)) {
    if (const auto header = ValidHeader(bytes_, pos, endian_)) {
      ++result_.nodes;
      NoteNode(pos, *header);
      const std::uint64_t node_end = pos + header->totlen;
      if (visitor_ != nullptr) {
        visitor_->Node(
            ScanNode{pos, *header, bytes_.subspan(pos, std::min(node_end, size()) - pos)});
      }
      if (node_end > size()) {
        result_.truncated = true;
        result_.claimed_end = node_end;
        result_.end = size();
        return result_;
      }
      pos = std::min(RoundUp(node_end, 4), size());
      result_.end = pos;
      continue;
    }
    std::uint64_t from = pos;
    if (IsPaddingWord(pos)) {
      from = PaddingEnd(pos);
      if (!HasHeaderRoom(from)) break;
      if (ValidHeader(bytes_, from, endian_)) {
        pos = from;
        continue;
      }
    }
    const auto resume = FindResume(from);
    if (!resume) break;
    result_.skipped_bytes += *resume - from;
    if (visitor_ != nullptr) visitor_->Skipped(ScanSkip{from, *resume - from, Describe(from)});
    pos = *resume;
  }
  // The erased rest of the last erase block belongs to the filesystem; erased blocks after it
  // are left to the caller (they may as well be the free space of a partition after it).
  const std::uint64_t block = result_.erase_size != 0 ? result_.erase_size : kMinEraseSize;
  const std::uint64_t boundary = std::min(RoundUp(result_.end, block), size());
  if (boundary > result_.end && PaddingEnd(result_.end) >= boundary) result_.end = boundary;
  return result_;
}

}  // namespace

std::string CompressionName(std::uint8_t compr) {
  switch (compr) {
    case kComprNone:
      return "none";
    case kComprZero:
      return "zero";
    case kComprRtime:
      return "rtime";
    case kComprRubinMips:
      return "rubinmips";
    case kComprCopy:
      return "copy";
    case kComprDynRubin:
      return "dynrubin";
    case kComprZlib:
      return "zlib";
    case kComprLzo:
      return "lzo";
    case kComprLzma:
      return "lzma";
    default:
      return "unknown-" + std::to_string(compr);
  }
}

std::uint32_t Crc(ByteView bytes) {
  if (bytes.empty()) return 0;  // zlib answers 0 for a null buffer, whatever the register
  return ~static_cast<std::uint32_t>(crc32_z(0xFFFFFFFFUL, bytes.data(), bytes.size()));
}

std::optional<Endian> MagicOrder(ByteView bytes) {
  if (bytes.size() < 2) return std::nullopt;
  if (Load16(bytes.data(), Endian::kLittle) == kMagic) return Endian::kLittle;
  if (Load16(bytes.data(), Endian::kBig) == kMagic) return Endian::kBig;
  return std::nullopt;
}

std::optional<NodeHeader> ValidHeader(ByteView bytes, std::size_t pos, Endian endian) {
  if (pos > bytes.size() || bytes.size() - pos < kHeaderSize) return std::nullopt;
  const std::uint8_t* p = bytes.data() + pos;
  if (Load16(p, endian) != kMagic) return std::nullopt;
  NodeHeader header;
  header.type = Load16(p + 2, endian);
  header.totlen = Load32(p + 4, endian);
  if (header.totlen < kHeaderSize || header.totlen > kMaxEraseSize) return std::nullopt;
  // The CRC covers magic, type and length as first written, with the accurate bit set.
  std::uint8_t covered[8];
  std::memcpy(covered, p, sizeof(covered));
  const std::uint16_t accurate = header.type | kNodeAccurate;
  if (endian == Endian::kLittle) {
    covered[2] = static_cast<std::uint8_t>(accurate & 0xFF);
    covered[3] = static_cast<std::uint8_t>(accurate >> 8);
  } else {
    covered[2] = static_cast<std::uint8_t>(accurate >> 8);
    covered[3] = static_cast<std::uint8_t>(accurate & 0xFF);
  }
  if (Crc(ByteView(covered, sizeof(covered))) != Load32(p + 8, endian)) return std::nullopt;
  return header;
}

bool KnownType(std::uint16_t type) {
  switch (type) {
    case kTypeDirent:
    case kTypeInode:
    case kTypeCleanmarker:
    case kTypePadding:
    case kTypeSummary:
    case kTypeXattr:
    case kTypeXref:
      return true;
    default:
      return false;
  }
}

ScanResult ScanNodes(ByteView bytes, Endian endian, ScanVisitor* visitor) {
  return Scanner(bytes, endian, visitor).Run();
}

}  // namespace iotmark::unpack::formats::jffs2
