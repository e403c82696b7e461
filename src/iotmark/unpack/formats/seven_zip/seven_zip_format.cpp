// 7-Zip archives: the signature header (its CRC checked) says where the archive's header lies,
// and the archive ends right after it; libarchive extracts.
#include <zlib.h>

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

constexpr Magic kMagics[] = {{"7z\xbc\xaf\x27\x1c"sv, 0}};
constexpr std::uint64_t kSignatureHeaderSize = 32;
// The next header's CRC is checked when it is at most this large (it is usually a few KiB).
constexpr std::uint64_t kMaxCheckedHeader = std::uint64_t{64} << 20;
// First byte of the next header: a plain header or an encoded (compressed) one.
constexpr std::uint8_t kHeader = 0x01;
constexpr std::uint8_t kEncodedHeader = 0x17;

std::uint32_t Crc32(ByteView bytes) {
  std::uint64_t crc = ::crc32_z(0L, Z_NULL, 0);
  crc = ::crc32_z(crc, bytes.data(), bytes.size());
  return static_cast<std::uint32_t>(crc);
}

class SevenZipFormat final : public Format {
 public:
  std::string_view name() const override { return "7z"; }
  std::string_view description() const override { return "7-Zip archive"; }
  std::span<const Magic> magics() const override { return kMagics; }

  std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start > blob.size() || blob.size() - start < kSignatureHeaderSize) return std::nullopt;
    const ByteView signature = blob.subspan(start, kSignatureHeaderSize);
    const std::uint8_t major = signature[6];
    const std::uint8_t minor = signature[7];
    if (major != 0 || minor > 9) return std::nullopt;
    const auto start_crc = LoadLe<std::uint32_t>(signature, 8);
    if (!start_crc || *start_crc != Crc32(signature.subspan(12, 20))) return std::nullopt;
    const std::uint64_t next_offset = *LoadLe<std::uint64_t>(signature, 12);
    const std::uint64_t next_size = *LoadLe<std::uint64_t>(signature, 20);
    const std::uint32_t next_crc = *LoadLe<std::uint32_t>(signature, 28);
    constexpr std::uint64_t kMaxField = std::uint64_t{1} << 62;
    if (next_offset > kMaxField || next_size > kMaxField) return std::nullopt;

    Chunk chunk;
    chunk.offset = start;
    chunk.meta["version"] = std::to_string(major) + "." + std::to_string(minor);
    const std::uint64_t length = kSignatureHeaderSize + next_offset + next_size;
    const std::uint64_t available = blob.size() - start;
    if (length > available) {
      chunk.length = available;
      chunk.issues.push_back({model::GapKind::kTruncated,
                              "the archive's header lies past the end of the blob (truncated)"});
      return chunk;
    }
    chunk.length = length;
    if (next_size > 0 && next_size <= kMaxCheckedHeader) {
      const ByteView header = blob.subspan(start + kSignatureHeaderSize + next_offset, next_size);
      if (Crc32(header) != next_crc || (header[0] != kHeader && header[0] != kEncodedHeader)) {
        chunk.issues.push_back(
            {model::GapKind::kCorrupt, "the archive's header does not match its CRC"});
      }
    }
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& info, ExtractContext& ctx) const override {
    return archive::ReadArchive(chunk, archive::ArchiveFormat::kSevenZip, ctx,
                                archive::IsTruncated(info));
  }
};

}  // namespace

std::unique_ptr<const Format> MakeSevenZipFormat() { return std::make_unique<SevenZipFormat>(); }

}  // namespace iotmark::unpack::formats
