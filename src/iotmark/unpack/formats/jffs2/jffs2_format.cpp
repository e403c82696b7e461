// JFFS2, the journalling flash filesystem of NOR-flash routers and cameras, in both byte orders.
// The reader is hand-written (jffs2_nodes, jffs2_extractor): no Debian library reads JFFS2.
// The probe wants a first node whose header CRC (and node CRC, for inode and directory entry
// nodes) is right, then walks node headers to find where the node stream ends, so that a
// partition after the filesystem is still carved.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "iotmark/unpack/extract_context.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/formats/jffs2/jffs2_extractor.hpp"
#include "iotmark/unpack/formats/jffs2/jffs2_nodes.hpp"

namespace iotmark::unpack::formats {

namespace {

using model::GapKind;
namespace j = jffs2;

// The magic with the node types a filesystem can start with: a cleanmarker, an inode or directory
// entry (live or obsolete), padding, or an extended attribute.
constexpr Magic kMagics[] = {
    {"\x85\x19\x03\x20", 0}, {"\x85\x19\x01\xe0", 0}, {"\x85\x19\x02\xe0", 0},
    {"\x85\x19\x01\xc0", 0}, {"\x85\x19\x02\xc0", 0}, {"\x85\x19\x04\x20", 0},
    {"\x85\x19\x08\xe0", 0}, {"\x19\x85\x20\x03", 0}, {"\x19\x85\xe0\x01", 0},
    {"\x19\x85\xe0\x02", 0}, {"\x19\x85\xc0\x01", 0}, {"\x19\x85\xc0\x02", 0},
    {"\x19\x85\x20\x04", 0}, {"\x19\x85\xe0\x08", 0},
};

// Cleanmarkers are 12 bytes (16 on some NAND setups); mkfs.jffs2 -c allows others, never large.
constexpr std::uint32_t kMaxCleanmarker = 4096;

// True if the node at the start of `bytes` is a plausible first node: known type and, for the
// nodes that carry one, a matching node CRC over their fixed fields.
bool PlausibleFirstNode(ByteView bytes, j::Endian endian, const j::NodeHeader& header) {
  const std::uint16_t type = header.type | j::kNodeAccurate;
  if (!j::KnownType(type) || type == j::kTypeSummary) return false;
  const auto node_crc_ok = [&](std::size_t fixed, std::size_t covers, std::size_t crc_at) {
    return header.totlen >= fixed && bytes.size() >= fixed &&
           j::Crc(bytes.first(covers)) == j::Load32(bytes.data() + crc_at, endian);
  };
  switch (type) {
    case j::kTypeDirent:
      return node_crc_ok(j::kDirentSize, j::dirent::kNodeCrcCovers, j::dirent::kNodeCrc) &&
             header.totlen >= j::kDirentSize + bytes[j::dirent::kNsize];
    case j::kTypeInode:
      return node_crc_ok(j::kInodeSize, j::inode::kNodeCrcCovers, j::inode::kNodeCrc) &&
             header.totlen - j::kInodeSize >= j::Load32(bytes.data() + j::inode::kCsize, endian);
    case j::kTypeCleanmarker:
      return header.totlen <= kMaxCleanmarker;
    case j::kTypeXattr:
      return header.totlen >= j::kXattrSize;
    case j::kTypeXref:
      return header.totlen >= j::kXrefSize;
    default:
      return true;
  }
}

class Jffs2Format final : public Format {
 public:
  [[nodiscard]] std::string_view name() const override { return "jffs2"; }
  [[nodiscard]] std::string_view description() const override {
    return "JFFS2 flash filesystem (little- or big-endian)";
  }
  [[nodiscard]] std::span<const Magic> magics() const override { return kMagics; }

  [[nodiscard]] std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const ByteView rest = blob.subspan(start);
    const auto endian = j::MagicOrder(rest);
    if (!endian) return std::nullopt;
    const auto header = j::ValidHeader(rest, 0, *endian);
    if (!header || !PlausibleFirstNode(rest, *endian, *header)) return std::nullopt;

    const j::ScanResult scan = j::ScanNodes(rest, *endian, nullptr);
    Chunk chunk;
    chunk.offset = start;
    chunk.length = scan.end;
    chunk.meta["byte_order"] = *endian == j::Endian::kLittle ? "little" : "big";
    chunk.meta["nodes"] = std::to_string(scan.nodes);
    if (scan.erase_size != 0) chunk.meta["erase_size"] = std::to_string(scan.erase_size);
    if (scan.truncated) {
      chunk.issues.push_back(
          ProbeIssue{GapKind::kTruncated, "the JFFS2 node at the end is cut off: it needs " +
                                              std::to_string(scan.claimed_end - scan.end) +
                                              " more bytes than the blob has"});
    }
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    const auto endian = j::MagicOrder(chunk);
    if (!endian || !j::ValidHeader(chunk, 0, *endian)) {
      return Fail(ErrorCode::kCorruptInput, "no JFFS2 node at the start of the chunk");
    }
    return j::ExtractFilesystem(chunk, *endian, ctx);
  }
};

}  // namespace

std::unique_ptr<const Format> MakeJffs2Format() { return std::make_unique<Jffs2Format>(); }

}  // namespace iotmark::unpack::formats
