// Broadcom TRX firmware container: a little-endian header ("HDR0", total length, CRC-32, flags and
// version, three or four partition offsets) in front of the partitions it lists, usually a
// kernel (often LZMA) and a root filesystem (often squashfs).
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "iotmark/unpack/entry_sink.hpp"
#include "iotmark/unpack/extract_context.hpp"
#include "iotmark/unpack/format.hpp"

namespace iotmark::unpack::formats {

namespace {

constexpr std::string_view kTrxMagic = "HDR0";
constexpr std::size_t kMaxPartitions = 4;
// magic, length, crc32, flag_version: the fields in front of the partition offsets.
constexpr std::size_t kFixedHeaderSize = 16;
// The CRC covers everything after the crc32 field, from flag_version to the stated end.
constexpr std::size_t kCrcStart = 12;

struct TrxHeader {
  std::uint32_t length = 0;
  std::uint32_t crc = 0;
  std::uint16_t flags = 0;
  std::uint16_t version = 0;
  std::size_t header_size = 0;
  // The partitions present (offset 0 marks an unused slot), in increasing order.
  std::array<std::uint32_t, kMaxPartitions> offsets{};
  std::size_t partition_count = 0;

  // Partition `i` runs to the next partition, the last one to the end of the image.
  [[nodiscard]] std::uint32_t End(std::size_t i) const {
    return i + 1 < partition_count ? offsets[i + 1] : length;
  }
};

// Parses and validates the header at the start of `bytes`; nullopt when these bytes are not a
// TRX header (wrong magic, unknown version, offsets out of order or outside the image).
std::optional<TrxHeader> ParseHeader(ByteView bytes) {
  if (AsChars(bytes.first(std::min(bytes.size(), kTrxMagic.size()))) != kTrxMagic) {
    return std::nullopt;
  }
  ByteReader reader(bytes, ByteReader::Order::kLittle);
  reader.Skip(kTrxMagic.size());
  TrxHeader header;
  header.length = reader.Read<std::uint32_t>();
  header.crc = reader.Read<std::uint32_t>();
  const auto flag_version = reader.Read<std::uint32_t>();
  if (!reader.ok()) return std::nullopt;
  header.flags = static_cast<std::uint16_t>(flag_version & 0xffff);
  header.version = static_cast<std::uint16_t>(flag_version >> 16);
  std::size_t slots = 0;
  if (header.version == 1) {
    slots = 3;
  } else if (header.version == 2) {
    slots = 4;
  } else {
    return std::nullopt;
  }
  header.header_size = kFixedHeaderSize + 4 * slots;
  if (header.length < header.header_size) return std::nullopt;
  std::uint32_t previous = 0;
  for (std::size_t i = 0; i < slots; ++i) {
    const auto offset = reader.Read<std::uint32_t>();
    if (!reader.ok()) return std::nullopt;
    if (offset == 0) continue;
    if (offset < header.header_size || offset >= header.length || offset <= previous) {
      return std::nullopt;
    }
    header.offsets[header.partition_count++] = offset;
    previous = offset;
  }
  if (header.partition_count == 0) return std::nullopt;
  return header;
}

// CRC-32 as the TRX tools compute it: the standard polynomial and initial value, but without the
// final inversion that zlib applies.
std::uint32_t TrxCrc(ByteView bytes) {
  return ~static_cast<std::uint32_t>(crc32_z(0, bytes.data(), bytes.size()));
}

std::string Hex16(std::uint16_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "0x";
  for (int shift = 12; shift >= 0; shift -= 4) out.push_back(kDigits[(value >> shift) & 0xf]);
  return out;
}

class TrxFormat final : public Format {
 public:
  [[nodiscard]] std::string_view name() const override { return "trx"; }
  [[nodiscard]] std::string_view description() const override {
    return "Broadcom TRX firmware container";
  }
  [[nodiscard]] std::span<const Magic> magics() const override { return kMagics; }

  [[nodiscard]] std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const ByteView rest = blob.subspan(start);
    const auto header = ParseHeader(rest);
    if (!header) return std::nullopt;

    Chunk chunk;
    chunk.offset = start;
    chunk.length = header->length;
    chunk.meta["version"] = std::to_string(header->version);
    chunk.meta["flags"] = Hex16(header->flags);
    chunk.meta["partitions"] = std::to_string(header->partition_count);
    if (header->length > rest.size()) {
      chunk.length = rest.size();
      chunk.meta["crc"] = "unchecked";
      chunk.issues.push_back({model::GapKind::kTruncated,
                              "TRX header states " + std::to_string(header->length) +
                                  " bytes but only " + std::to_string(rest.size()) + " remain"});
      return chunk;
    }
    const std::uint32_t crc = TrxCrc(rest.subspan(kCrcStart, header->length - kCrcStart));
    if (crc == header->crc) {
      chunk.meta["crc"] = "ok";
    } else {
      chunk.meta["crc"] = "mismatch";
      chunk.issues.push_back({model::GapKind::kCorrupt, "TRX CRC-32 mismatch: header says " +
                                                            HexOffset(header->crc) +
                                                            ", data gives " + HexOffset(crc)});
    }
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    const auto header = ParseHeader(chunk);
    if (!header) return Fail(ErrorCode::kCorruptInput, "TRX header does not parse");
    for (std::size_t i = 0; i < header->partition_count; ++i) {
      const std::string name = "part" + std::to_string(i);
      const std::uint64_t begin = header->offsets[i];
      std::uint64_t end = header->End(i);
      if (begin >= chunk.size()) {
        ctx.AddGap(model::GapKind::kTruncated, begin,
                   name + " starts past the end of the available data");
        continue;
      }
      if (end > chunk.size()) {
        ctx.AddGap(
            model::GapKind::kTruncated, chunk.size(),
            name + " is cut short: " + std::to_string(end - chunk.size()) + " bytes missing");
        end = chunk.size();
      }
      auto added = ctx.sink().AddFile(name, 0644, chunk.subspan(begin, end - begin));
      if (!added && ShouldStop(added.error())) return added;
    }
    return Ok();
  }

 private:
  static constexpr Magic kMagics[] = {{kTrxMagic, 0}};
};

}  // namespace

std::unique_ptr<const Format> MakeTrxFormat() { return std::make_unique<TrxFormat>(); }

}  // namespace iotmark::unpack::formats
