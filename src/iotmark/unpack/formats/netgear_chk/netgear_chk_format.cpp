// Netgear .chk firmware header: a big-endian header (magic 0x2a23245e, header length, region and
// version bytes, kernel and rootfs checksums and lengths, an image and a header checksum) and a
// board id string, followed by the kernel (often a TRX) and an optional root filesystem.
// The checksum is Netgear's own two-sum (Fletcher-like) folded to 32 bits; no library has it, so
// it is written here from the description in OpenWrt's mkchkimg.c.
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

using model::GapKind;

constexpr std::string_view kChkMagic("\x2a\x23\x24\x5e", 4);
constexpr std::size_t kFixedHeaderSize = 40;
constexpr std::size_t kHeaderChecksumOffset = 36;
// mkchkimg allows 64 characters; vendor images stay well below this generous bound.
constexpr std::size_t kMaxBoardIdLength = 128;
constexpr std::uint32_t kFileMode = 0644;

struct ChkHeader {
  std::uint32_t header_length = 0;
  std::uint8_t region = 0;
  std::array<std::uint8_t, 7> version{};
  std::uint32_t kernel_checksum = 0;
  std::uint32_t rootfs_checksum = 0;
  std::uint32_t kernel_length = 0;
  std::uint32_t rootfs_length = 0;
  std::uint32_t image_checksum = 0;
  std::uint32_t header_checksum = 0;
  std::string board_id;

  [[nodiscard]] std::uint64_t TotalLength() const {
    return std::uint64_t{header_length} + kernel_length + rootfs_length;
  }
};

bool IsPrintable(char c) { return c >= 0x20 && c < 0x7f; }

// Parses and validates the header at the start of `bytes`; nullopt when it is not a CHK header.
std::optional<ChkHeader> ParseHeader(ByteView bytes) {
  if (bytes.size() < kFixedHeaderSize || AsChars(bytes.first(4)) != kChkMagic) return std::nullopt;
  ByteReader reader(bytes, ByteReader::Order::kBig);
  reader.Skip(4);
  ChkHeader header;
  header.header_length = reader.Read<std::uint32_t>();
  header.region = reader.Read<std::uint8_t>();
  for (auto& part : header.version) part = reader.Read<std::uint8_t>();
  header.kernel_checksum = reader.Read<std::uint32_t>();
  header.rootfs_checksum = reader.Read<std::uint32_t>();
  header.kernel_length = reader.Read<std::uint32_t>();
  header.rootfs_length = reader.Read<std::uint32_t>();
  header.image_checksum = reader.Read<std::uint32_t>();
  header.header_checksum = reader.Read<std::uint32_t>();
  if (!reader.ok()) return std::nullopt;
  if (header.header_length <= kFixedHeaderSize ||
      header.header_length > kFixedHeaderSize + kMaxBoardIdLength) {
    return std::nullopt;
  }
  if (header.kernel_length == 0 || bytes.size() < header.header_length) return std::nullopt;
  // The board id fills the rest of the header; a NUL may pad it, but it must say something.
  const std::string_view board =
      CStringField(bytes.subspan(kFixedHeaderSize, header.header_length - kFixedHeaderSize));
  if (board.empty() || !std::all_of(board.begin(), board.end(), IsPrintable)) return std::nullopt;
  header.board_id = std::string(board);
  return header;
}

// Netgear's checksum: two running sums over the bytes, each folded to 16 bits at the end.
class NetgearChecksum {
 public:
  void Add(ByteView bytes) {
    for (std::uint8_t b : bytes) {
      c0_ += b;
      c1_ += c0_;
    }
  }
  [[nodiscard]] std::uint32_t Finish() const { return (Fold(c1_) << 16) | Fold(c0_); }

 private:
  static std::uint32_t Fold(std::uint32_t value) {
    const std::uint32_t b = (value & 0xffff) + (value >> 16);
    return ((b >> 16) + b) & 0xffff;
  }
  std::uint32_t c0_ = 0;
  std::uint32_t c1_ = 0;
};

std::uint32_t HeaderChecksum(ByteView header_bytes) {
  NetgearChecksum sum;
  sum.Add(header_bytes.first(kHeaderChecksumOffset));
  static constexpr std::uint8_t kZero[4] = {0, 0, 0, 0};
  sum.Add(kZero);
  sum.Add(header_bytes.subspan(kFixedHeaderSize));
  return sum.Finish();
}

std::string Hex32(std::uint32_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "0x";
  for (int shift = 28; shift >= 0; shift -= 4) out.push_back(kDigits[(value >> shift) & 0xf]);
  return out;
}

std::string VersionString(const ChkHeader& header) {
  // Netgear's naming: V<A>.<B>.<C>.<D>_<E>.<F>.<G>.
  std::string out;
  for (std::size_t i = 0; i < header.version.size(); ++i) {
    if (i > 0) out += i == 4 ? "_" : ".";
    out += std::to_string(header.version[i]);
  }
  return out;
}

std::string RegionName(std::uint8_t region) {
  if (region == 1) return "WW";
  if (region == 2) return "NA";
  return std::to_string(region);
}

// Compares a stated checksum with the data's and records the verdict; false on a mismatch.
bool CheckSum(Chunk& chunk, const std::string& what, std::uint32_t stated, std::uint32_t actual) {
  if (stated == actual) {
    chunk.meta[what] = "ok";
    return true;
  }
  chunk.meta[what] = "mismatch";
  chunk.issues.push_back({GapKind::kCorrupt, "Netgear CHK " + what + " mismatch: header says " +
                                                 Hex32(stated) + ", data gives " + Hex32(actual)});
  return false;
}

class NetgearChkFormat final : public Format {
 public:
  [[nodiscard]] std::string_view name() const override { return "netgear_chk"; }
  [[nodiscard]] std::string_view description() const override {
    return "Netgear CHK firmware header";
  }
  [[nodiscard]] std::span<const Magic> magics() const override { return kMagics; }

  [[nodiscard]] std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const ByteView rest = blob.subspan(start);
    const auto header = ParseHeader(rest);
    if (!header) return std::nullopt;

    Chunk chunk;
    chunk.offset = start;
    chunk.length = header->TotalLength();
    chunk.meta["board_id"] = header->board_id;
    chunk.meta["region"] = RegionName(header->region);
    chunk.meta["version"] = VersionString(*header);
    chunk.meta["kernel_length"] = std::to_string(header->kernel_length);
    chunk.meta["rootfs_length"] = std::to_string(header->rootfs_length);
    CheckSum(chunk, "header_checksum", header->header_checksum,
             HeaderChecksum(rest.first(header->header_length)));
    if (header->TotalLength() > rest.size()) {
      chunk.length = rest.size();
      chunk.meta["image_checksum"] = "unchecked";
      chunk.issues.push_back({GapKind::kTruncated,
                              "Netgear CHK header states " + std::to_string(header->TotalLength()) +
                                  " bytes but only " + std::to_string(rest.size()) + " remain"});
      return chunk;
    }
    const ByteView kernel = rest.subspan(header->header_length, header->kernel_length);
    const ByteView rootfs =
        rest.subspan(header->header_length + header->kernel_length, header->rootfs_length);
    NetgearChecksum kernel_sum;
    kernel_sum.Add(kernel);
    CheckSum(chunk, "kernel_checksum", header->kernel_checksum, kernel_sum.Finish());
    if (header->rootfs_length > 0) {
      NetgearChecksum rootfs_sum;
      rootfs_sum.Add(rootfs);
      CheckSum(chunk, "rootfs_checksum", header->rootfs_checksum, rootfs_sum.Finish());
    }
    NetgearChecksum image_sum;
    image_sum.Add(kernel);
    image_sum.Add(rootfs);
    CheckSum(chunk, "image_checksum", header->image_checksum, image_sum.Finish());
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    const auto header = ParseHeader(chunk);
    if (!header) return Fail(ErrorCode::kCorruptInput, "Netgear CHK header does not parse");
    ctx.SetMeta("board_id", header->board_id);
    const std::uint64_t kernel_begin = header->header_length;
    const std::uint64_t rootfs_begin = kernel_begin + header->kernel_length;
    IOTMARK_TRY(WritePart(ctx, chunk, "kernel", kernel_begin, header->kernel_length));
    if (header->rootfs_length > 0) {
      IOTMARK_TRY(WritePart(ctx, chunk, "rootfs", rootfs_begin, header->rootfs_length));
    }
    return Ok();
  }

 private:
  // Writes a part clipped to the bytes present; a missing tail becomes a gap.
  static Status WritePart(ExtractContext& ctx, ByteView chunk, const std::string& name,
                          std::uint64_t begin, std::uint64_t length) {
    if (begin >= chunk.size()) {
      ctx.AddGap(GapKind::kTruncated, begin, name + " starts past the end of the available data");
      return Ok();
    }
    const std::uint64_t present = std::min<std::uint64_t>(length, chunk.size() - begin);
    if (present < length) {
      ctx.AddGap(GapKind::kTruncated, chunk.size(),
                 name + " is cut short: " + std::to_string(length - present) + " bytes missing");
    }
    auto added = ctx.sink().AddFile(name, kFileMode, chunk.subspan(begin, present));
    if (!added && ShouldStop(added.error())) return added;
    return Ok();
  }

  static constexpr Magic kMagics[] = {{kChkMagic, 0}};
};

}  // namespace

std::unique_ptr<const Format> MakeNetgearChkFormat() {
  return std::make_unique<NetgearChkFormat>();
}

}  // namespace iotmark::unpack::formats
