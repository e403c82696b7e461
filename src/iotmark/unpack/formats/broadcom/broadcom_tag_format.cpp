// Broadcom BCM963xx image tag (CFE firmware header): a 256-byte tag of fixed-width text fields -
// tag version, two signature strings, chip id, board id, endianness, the total length and the
// flash addresses and lengths of CFE, root filesystem and kernel as decimal text - then binary
// big-endian CRC-32s of the image, the kernel, the root filesystem and of the tag itself.
// Layout from OpenWrt's bcm_tag.h / imagetag.c. The CRC is the usual polynomial with an initial
// 0xffffffff and no final inversion (zlib's crc32 complemented).
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "iotmark/unpack/entry_sink.hpp"
#include "iotmark/unpack/extract_context.hpp"
#include "iotmark/unpack/format.hpp"

namespace iotmark::unpack::formats {

namespace {

using model::GapKind;

constexpr std::size_t kTagSize = 256;
constexpr std::size_t kHeaderCrcOffset = 236;
constexpr std::size_t kImageCrcOffset = 216;
constexpr std::size_t kRootfsCrcOffset = 220;
constexpr std::size_t kKernelCrcOffset = 224;
// Flash images of these boards are at most a few tens of MiB.
constexpr std::uint64_t kMaxLength = std::uint64_t{256} << 20;
constexpr std::uint32_t kFileMode = 0644;

struct Field {
  std::size_t offset;
  std::size_t size;
};
constexpr Field kTagVersion = {0, 4};
constexpr Field kSignature1 = {4, 20};
constexpr Field kSignature2 = {24, 14};
constexpr Field kChipId = {38, 6};
constexpr Field kBoardId = {44, 16};
constexpr Field kBigEndian = {60, 2};
constexpr Field kTotalLength = {62, 10};
constexpr Field kCfeAddress = {72, 12};
constexpr Field kCfeLength = {84, 10};
constexpr Field kRootfsAddress = {94, 12};
constexpr Field kRootfsLength = {106, 10};
constexpr Field kKernelAddress = {116, 12};
constexpr Field kKernelLength = {128, 10};
constexpr Field kInformation1 = {162, 30};
constexpr Field kFlashLayout = {192, 4};

struct Part {
  std::string name;
  std::uint64_t offset = 0;  // in the chunk
  std::uint64_t length = 0;
};

struct Tag {
  std::map<std::string, std::string> text;
  std::uint64_t total_length = 0;
  std::vector<Part> parts;
  std::uint64_t end = 0;  // of the image, from the tag's start
};

bool IsPrintable(char c) { return c >= 0x20 && c < 0x7f; }

std::optional<std::string_view> Text(ByteView tag, Field field) {
  const std::string_view text = CStringField(tag.subspan(field.offset, field.size));
  if (!std::all_of(text.begin(), text.end(), IsPrintable)) return std::nullopt;
  return text;
}

// A decimal number written as text (empty means 0); nullopt for anything else.
std::optional<std::uint64_t> Number(ByteView tag, Field field) {
  const std::string_view text = CStringField(tag.subspan(field.offset, field.size));
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return value;
}

std::uint32_t BcmCrc(ByteView bytes) {
  return ~static_cast<std::uint32_t>(crc32_z(0, bytes.data(), bytes.size()));
}

std::uint32_t BcmCrc(ByteView a, ByteView b) {
  const uLong first = crc32_z(0, a.data(), a.size());
  return ~static_cast<std::uint32_t>(crc32_z(first, b.data(), b.size()));
}

std::string Hex32(std::uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "0x";
  for (int shift = 28; shift >= 0; shift -= 4) out.push_back(kDigits[(value >> shift) & 0xf]);
  return out;
}

// Places the parts: CFE (when present) right after the tag, then kernel and root filesystem in
// the order of their flash addresses, the lower one right after CFE. OpenWrt puts the kernel
// first, Broadcom's own images the root filesystem.
std::optional<std::vector<Part>> PlaceParts(ByteView tag) {
  const auto cfe_length = Number(tag, kCfeLength);
  const auto rootfs_address = Number(tag, kRootfsAddress);
  const auto rootfs_length = Number(tag, kRootfsLength);
  const auto kernel_address = Number(tag, kKernelAddress);
  const auto kernel_length = Number(tag, kKernelLength);
  if (!cfe_length || !rootfs_address || !rootfs_length || !kernel_address || !kernel_length) {
    return std::nullopt;
  }
  if (*cfe_length > kMaxLength || *rootfs_length > kMaxLength || *kernel_length > kMaxLength) {
    return std::nullopt;
  }
  std::vector<Part> parts;
  if (*cfe_length > 0) parts.push_back({"cfe", kTagSize, *cfe_length});
  const bool has_rootfs = *rootfs_length > 0;
  const bool has_kernel = *kernel_length > 0;
  if (!has_rootfs && !has_kernel) return parts.empty() ? std::nullopt : std::optional(parts);
  std::uint64_t base = UINT64_MAX;
  if (has_rootfs) base = std::min(base, *rootfs_address);
  if (has_kernel) base = std::min(base, *kernel_address);
  const std::uint64_t first = kTagSize + *cfe_length;
  const auto place = [&](const char* name, std::uint64_t address, std::uint64_t length) {
    if (address - base > kMaxLength) return false;
    parts.push_back({name, first + (address - base), length});
    return true;
  };
  if (has_kernel && !place("kernel", *kernel_address, *kernel_length)) return std::nullopt;
  if (has_rootfs && !place("rootfs", *rootfs_address, *rootfs_length)) return std::nullopt;
  return parts;
}

std::optional<Tag> ParseTag(ByteView bytes) {
  if (bytes.size() < kTagSize) return std::nullopt;
  const ByteView tag = bytes.first(kTagSize);
  const auto version = Number(tag, kTagVersion);
  const auto signature1 = Text(tag, kSignature1);
  const auto signature2 = Text(tag, kSignature2);
  const auto chip = Text(tag, kChipId);
  const auto board = Text(tag, kBoardId);
  const auto endian = Text(tag, kBigEndian);
  const auto total = Number(tag, kTotalLength);
  if (!version || CStringField(tag.first(4)).empty() || !signature1 || signature1->empty() ||
      !signature2 || !chip || chip->empty() || !board || board->empty() || !endian ||
      (*endian != "0" && *endian != "1") || !total || *total == 0 || *total > kMaxLength) {
    return std::nullopt;
  }
  auto parts = PlaceParts(tag);
  if (!parts) return std::nullopt;
  Tag out;
  out.total_length = *total;
  out.end = kTagSize + *total;
  for (const Part& part : *parts) out.end = std::max(out.end, part.offset + part.length);
  out.parts = std::move(*parts);
  out.text["tag_version"] = std::to_string(*version);
  out.text["signature"] = std::string(*signature1);
  out.text["signature2"] = std::string(*signature2);
  out.text["chip_id"] = std::string(*chip);
  out.text["board_id"] = std::string(*board);
  out.text["big_endian"] = *endian == "1" ? "yes" : "no";
  out.text["total_length"] = std::to_string(*total);
  out.text["kernel_address"] = Hex32(Number(tag, kKernelAddress).value_or(0));
  out.text["rootfs_address"] = Hex32(Number(tag, kRootfsAddress).value_or(0));
  if (const auto info = Text(tag, kInformation1); info && !info->empty()) {
    out.text["information"] = std::string(*info);
  }
  if (const auto layout = Text(tag, kFlashLayout); layout && !layout->empty()) {
    out.text["flash_layout_version"] = std::string(*layout);
  }
  return out;
}

const Part* FindPart(const Tag& tag, std::string_view name) {
  for (const Part& part : tag.parts) {
    if (part.name == name) return &part;
  }
  return nullptr;
}

// The image CRC covers different things in different tools: everything after the tag
// (Broadcom), the kernel (OpenWrt's first imagetag), or kernel then root filesystem.
std::optional<std::string> ImageCrcMatch(ByteView image, const Tag& tag, std::uint32_t stated) {
  const auto view = [&](const Part* part) {
    return part == nullptr ? ByteView() : image.subspan(part->offset, part->length);
  };
  if (BcmCrc(image.subspan(kTagSize, tag.total_length)) == stated) return "ok";
  const Part* kernel = FindPart(tag, "kernel");
  const Part* rootfs = FindPart(tag, "rootfs");
  if (kernel != nullptr && BcmCrc(view(kernel)) == stated) return "ok (kernel)";
  if (kernel != nullptr && rootfs != nullptr && BcmCrc(view(kernel), view(rootfs)) == stated) {
    return "ok (kernel and rootfs)";
  }
  return std::nullopt;
}

class BroadcomTagFormat final : public Format {
 public:
  [[nodiscard]] std::string_view name() const override { return "broadcom_tag"; }
  [[nodiscard]] std::string_view description() const override {
    return "Broadcom BCM963xx CFE image tag";
  }
  [[nodiscard]] std::span<const Magic> magics() const override { return kMagics; }

  [[nodiscard]] std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const ByteView rest = blob.subspan(start);
    const auto tag = ParseTag(rest);
    if (!tag) return std::nullopt;
    Chunk chunk;
    chunk.offset = start;
    chunk.length = tag->end;
    chunk.meta = tag->text;
    const std::uint32_t header_crc = LoadBe<std::uint32_t>(rest, kHeaderCrcOffset).value_or(0);
    const std::uint32_t computed = BcmCrc(rest.first(kHeaderCrcOffset));
    if (computed == header_crc) {
      chunk.meta["header_crc"] = "ok";
    } else {
      chunk.meta["header_crc"] = "mismatch";
      chunk.issues.push_back({GapKind::kCorrupt, "Broadcom tag header CRC mismatch: tag says " +
                                                     Hex32(header_crc) + ", tag gives " +
                                                     Hex32(computed)});
    }
    if (tag->end > rest.size()) {
      chunk.length = rest.size();
      chunk.meta["image_crc"] = "unchecked";
      chunk.issues.push_back(
          {GapKind::kTruncated, "Broadcom tag states " + std::to_string(tag->end) +
                                    " bytes but only " + std::to_string(rest.size()) + " remain"});
      return chunk;
    }
    CheckImageCrcs(rest.first(tag->end), *tag, chunk);
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    const auto tag = ParseTag(chunk);
    if (!tag) return Fail(ErrorCode::kCorruptInput, "Broadcom tag does not parse");
    for (const Part& part : tag->parts) IOTMARK_TRY(WritePart(ctx, chunk, part));
    return Ok();
  }

 private:
  static void CheckImageCrcs(ByteView image, const Tag& tag, Chunk& chunk) {
    const std::uint32_t stated = LoadBe<std::uint32_t>(image, kImageCrcOffset).value_or(0);
    if (const auto match = ImageCrcMatch(image, tag, stated)) {
      chunk.meta["image_crc"] = *match;
    } else {
      chunk.meta["image_crc"] = "mismatch";
      chunk.issues.push_back(
          {GapKind::kCorrupt, "Broadcom tag image CRC " + Hex32(stated) +
                                  " matches neither the image, nor its kernel and rootfs"});
    }
    // Newer tags also carry per-part CRCs; zero means the tool did not fill them in.
    const auto check_part = [&](const char* name, std::size_t at) {
      const std::uint32_t value = LoadBe<std::uint32_t>(image, at).value_or(0);
      const Part* part = FindPart(tag, name);
      if (value == 0 || part == nullptr) return;
      const bool ok = BcmCrc(image.subspan(part->offset, part->length)) == value;
      chunk.meta[std::string(name) + "_crc"] = ok ? "ok" : "mismatch";
    };
    check_part("kernel", kKernelCrcOffset);
    check_part("rootfs", kRootfsCrcOffset);
  }

  static Status WritePart(ExtractContext& ctx, ByteView chunk, const Part& part) {
    if (part.length == 0) return Ok();
    if (part.offset >= chunk.size()) {
      ctx.AddGap(GapKind::kTruncated, part.offset,
                 part.name + " starts past the end of the available data");
      return Ok();
    }
    const std::uint64_t present = std::min<std::uint64_t>(part.length, chunk.size() - part.offset);
    if (present < part.length) {
      ctx.AddGap(
          GapKind::kTruncated, chunk.size(),
          part.name + " is cut short: " + std::to_string(part.length - present) + " bytes missing");
    }
    auto added = ctx.sink().AddFile(part.name, kFileMode, chunk.subspan(part.offset, present));
    if (!added && ShouldStop(added.error())) return added;
    return Ok();
  }

  // The first signature field names the tool that wrote the tag.
  static constexpr Magic kMagics[] = {
      {"Broadcom Corporatio", 4},
      {"OpenWRT BCM963xx", 4},
  };
};

}  // namespace

std::unique_ptr<const Format> MakeBroadcomTagFormat() {
  return std::make_unique<BroadcomTagFormat>();
}

}  // namespace iotmark::unpack::formats
