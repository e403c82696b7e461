// ISO 9660 images (with Rock Ridge and Joliet): the primary volume descriptor gives the volume's
// size; the chunk starts 32 KiB (the system area) before the first volume descriptor. libarchive
// extracts.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "iotmark/unpack/archive/libarchive_reader.hpp"
#include "iotmark/unpack/format.hpp"

namespace iotmark::unpack::formats {

namespace {

using namespace std::string_view_literals;

constexpr std::uint64_t kSectorSize = 2048;
constexpr std::uint64_t kFirstDescriptor = 16;  // sectors 0-15 are the system area
// "CD001" follows the type byte of each volume descriptor. The primary one is usually at sector
// 16, after a boot record at 17 or 18; a match at any of them names the same chunk start.
constexpr Magic kMagics[] = {{"CD001"sv, 0x8001}, {"CD001"sv, 0x8801}, {"CD001"sv, 0x9001}};
// Volume descriptors are read until the terminator, but no further than this.
constexpr std::uint64_t kMaxDescriptors = 32;
constexpr std::uint8_t kPrimary = 1;
constexpr std::uint8_t kTerminator = 255;

// Both-endian fields store a value twice, little- then big-endian; both halves must agree.
template <typename T>
std::optional<T> LoadBoth(ByteView bytes, std::size_t offset) {
  const auto le = LoadLe<T>(bytes, offset);
  const auto be = LoadBe<T>(bytes, offset + sizeof(T));
  if (!le || !be || *le != *be) return std::nullopt;
  return le;
}

class Iso9660Format final : public Format {
 public:
  std::string_view name() const override { return "iso9660"; }
  std::string_view description() const override { return "ISO 9660 image"; }
  std::span<const Magic> magics() const override { return kMagics; }

  std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start > blob.size()) return std::nullopt;
    const ByteView image = blob.subspan(start);
    // Find the primary volume descriptor among the descriptors from sector 16 on.
    std::optional<ByteView> primary;
    for (std::uint64_t i = 0; i < kMaxDescriptors; ++i) {
      const std::uint64_t at = (kFirstDescriptor + i) * kSectorSize;
      if (image.size() < at + kSectorSize) return std::nullopt;
      const ByteView descriptor = image.subspan(at, kSectorSize);
      if (AsChars(descriptor.subspan(1, 5)) != "CD001" || descriptor[6] != 1) return std::nullopt;
      if (descriptor[0] == kPrimary) {
        primary = descriptor;
        break;
      }
      if (descriptor[0] == kTerminator) return std::nullopt;
    }
    if (!primary) return std::nullopt;
    const auto volume_blocks = LoadBoth<std::uint32_t>(*primary, 80);
    const auto block_size = LoadBoth<std::uint16_t>(*primary, 128);
    if (!volume_blocks || !block_size) return std::nullopt;
    if (*block_size != 512 && *block_size != 1024 && *block_size != 2048) return std::nullopt;
    const std::uint64_t length = std::uint64_t{*volume_blocks} * *block_size;
    if (length < (kFirstDescriptor + 1) * kSectorSize) return std::nullopt;

    // The root directory record: its extent must lie inside the volume and, where the blob holds
    // it, begin with the "." record that points back at itself (this also rejects a start that
    // is a sector off, from a match at a later descriptor).
    const ByteView root = primary->subspan(156, 34);
    const auto root_extent = LoadBoth<std::uint32_t>(root, 2);
    const auto root_size = LoadBoth<std::uint32_t>(root, 10);
    if (root[0] != 34 || !root_extent || !root_size || *root_size == 0 ||
        *root_extent >= *volume_blocks) {
      return std::nullopt;
    }
    const std::uint64_t root_at = std::uint64_t{*root_extent} * *block_size;
    if (image.size() >= root_at + 34) {
      const ByteView dot = image.subspan(root_at, 34);
      const auto dot_extent = LoadBoth<std::uint32_t>(dot, 2);
      if (dot[0] < 34 || !dot_extent || *dot_extent != *root_extent || dot[32] != 1 ||
          dot[33] != 0) {
        return std::nullopt;
      }
    }

    Chunk chunk;
    chunk.offset = start;
    // Reports are JSON: only printable ASCII of the label is kept.
    std::string volume_id;
    for (const std::uint8_t c : primary->subspan(40, 32)) {
      volume_id.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
    }
    while (!volume_id.empty() && volume_id.back() == ' ') volume_id.pop_back();
    if (!volume_id.empty()) chunk.meta["volume_id"] = volume_id;
    if (length > image.size()) {
      chunk.length = image.size();
      chunk.issues.push_back({model::GapKind::kTruncated,
                              "the volume is larger than what is left of the blob (truncated)"});
    } else {
      chunk.length = length;
    }
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& info, ExtractContext& ctx) const override {
    return archive::ReadArchive(chunk, archive::ArchiveFormat::kIso9660, ctx,
                                archive::IsTruncated(info));
  }
};

}  // namespace

std::unique_ptr<const Format> MakeIso9660Format() { return std::make_unique<Iso9660Format>(); }

}  // namespace iotmark::unpack::formats
