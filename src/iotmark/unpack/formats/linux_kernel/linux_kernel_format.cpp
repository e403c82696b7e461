// Linux kernels: the "Linux version ..." banner of an uncompressed kernel (identified only: a
// transparent chunk, so the carver goes on inside it), and the two self-decompressing images
// firmware ships, the ARM zImage (magic 0x016f2818 at 0x24, either byte order; start and end
// addresses give the extent) and the x86 bzImage (boot-protocol header "HdrS" at 0x202; extent
// (setup_sects + 1) * 512 + syssize * 16). Their compressed kernel is decoded into "vmlinux" and
// the decoded kernel's banner becomes the chunk's "version" and "banner": at payload_offset for a
// bzImage (protocol 2.08 and later), found by trying the codecs' magics inside the image for a
// zImage, which has no pointer to it. An image whose payload cannot be found stays transparent,
// as before, so nothing inside it is lost to the carver.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "iotmark/unpack/extract_context.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/formats/linux_kernel/kernel_banner.hpp"
#include "iotmark/unpack/formats/linux_kernel/kernel_payload.hpp"

namespace iotmark::unpack::formats {

namespace {

using linux_kernel::KernelPayload;

constexpr std::uint32_t kZimageMagic = 0x016F2818;
constexpr std::size_t kZimageMagicOffset = 0x24;
constexpr std::size_t kZimageStartOffset = 0x28;
constexpr std::size_t kZimageEndOffset = 0x2c;
// Up to the end address; nothing smaller can be a zImage.
constexpr std::uint64_t kZimageMinSize = 0x30;
// No ARM zImage (with an appended device tree) comes near this; larger spans are noise.
constexpr std::uint64_t kZimageMaxSize = std::uint64_t{128} << 20;

// x86 boot protocol (Documentation/x86/boot.rst): offsets in the real-mode header.
constexpr std::size_t kSetupSectsOffset = 0x1f1;
constexpr std::size_t kSyssizeOffset = 0x1f4;
constexpr std::size_t kBootFlagOffset = 0x1fe;
constexpr std::size_t kHdrsOffset = 0x202;
constexpr std::size_t kProtocolOffset = 0x206;
constexpr std::size_t kKernelVersionOffset = 0x20e;
constexpr std::size_t kPayloadOffsetOffset = 0x248;
constexpr std::size_t kPayloadLengthOffset = 0x24c;
constexpr std::uint16_t kBootFlag = 0xAA55;
constexpr std::size_t kSectorSize = 512;
// The kernel_version pointer counts from the end of the boot sector.
constexpr std::size_t kKernelVersionBase = 0x200;

std::optional<Chunk> ProbeBanner(ByteView blob, std::uint64_t start) {
  const auto banner = linux_kernel::ParseBanner(blob.subspan(start));
  if (!banner) return std::nullopt;
  Chunk chunk;
  chunk.offset = start;
  chunk.length = banner->line.size();
  chunk.transparent = true;
  chunk.meta["kind"] = "banner";
  chunk.meta["version"] = banner->version;
  chunk.meta["banner"] = banner->line;
  return chunk;
}

void ClipTo(Chunk& chunk, std::uint64_t available, std::string_view what) {
  if (chunk.length <= available) return;
  chunk.issues.push_back({model::GapKind::kTruncated,
                          std::string(what) + " header states " + std::to_string(chunk.length) +
                              " bytes but only " + std::to_string(available) + " remain"});
  chunk.length = available;
}

// The image's bytes the header claims, as far as they are present.
ByteView Claimed(ByteView rest, std::uint64_t size) {
  return rest.first(std::min<std::uint64_t>(size, rest.size()));
}

// Non-transparent, with the payload's facts, once its payload is known; else identified only.
void SetPayload(Chunk& chunk, const std::optional<KernelPayload>& payload) {
  chunk.transparent = !payload;
  if (!payload) {
    chunk.meta["payload"] = "not found";
    return;
  }
  chunk.meta["payload_compression"] = std::string(payload->compression);
  chunk.meta["payload_offset"] = std::to_string(payload->offset);
}

// --- ARM zImage --------------------------------------------------------------------------------

struct ZimageHeader {
  bool big_endian = false;
  std::uint32_t start_address = 0;
  std::uint64_t size = 0;
};

std::optional<ZimageHeader> ParseZimage(ByteView rest) {
  ZimageHeader header;
  if (LoadLe<std::uint32_t>(rest, kZimageMagicOffset) == kZimageMagic) {
    header.big_endian = false;
  } else if (LoadBe<std::uint32_t>(rest, kZimageMagicOffset) == kZimageMagic) {
    header.big_endian = true;
  } else {
    return std::nullopt;
  }
  const auto load = [&](std::size_t offset) {
    return header.big_endian ? LoadBe<std::uint32_t>(rest, offset)
                             : LoadLe<std::uint32_t>(rest, offset);
  };
  const auto start_address = load(kZimageStartOffset);
  const auto end_address = load(kZimageEndOffset);
  if (!start_address || !end_address || *end_address <= *start_address) return std::nullopt;
  header.start_address = *start_address;
  header.size = std::uint64_t{*end_address} - *start_address;
  if (header.size < kZimageMinSize || header.size > kZimageMaxSize) return std::nullopt;
  return header;
}

// The decompressor runs from the start; its payload (piggy data) follows somewhere after the
// header.
std::optional<KernelPayload> LocateZimagePayload(ByteView image) {
  return linux_kernel::FindPayload(image, kZimageMinSize);
}

std::optional<Chunk> ProbeArmZimage(ByteView blob, std::uint64_t start) {
  const ByteView rest = blob.subspan(start);
  const auto header = ParseZimage(rest);
  if (!header) return std::nullopt;
  Chunk chunk;
  chunk.offset = start;
  chunk.length = header->size;
  chunk.meta["kind"] = "arm_zimage";
  chunk.meta["endianness"] = header->big_endian ? "big" : "little";
  chunk.meta["image_size"] = std::to_string(header->size);
  chunk.meta["start_address"] = HexOffset(header->start_address);
  SetPayload(chunk, LocateZimagePayload(Claimed(rest, header->size)));
  ClipTo(chunk, rest.size(), "zImage");
  return chunk;
}

// --- x86 bzImage -------------------------------------------------------------------------------

struct BzImageHeader {
  std::uint16_t protocol = 0;
  std::uint64_t setup_size = 0;
  std::uint64_t size = 0;
  std::optional<std::uint32_t> payload_offset;  // protocol 2.08 and later
  std::optional<std::uint32_t> payload_length;
};

std::optional<BzImageHeader> ParseBzImage(ByteView rest) {
  if (rest.size() < kHdrsOffset + 4 || AsChars(rest.subspan(kHdrsOffset, 4)) != "HdrS") {
    return std::nullopt;
  }
  const auto boot_flag = LoadLe<std::uint16_t>(rest, kBootFlagOffset);
  const auto protocol = LoadLe<std::uint16_t>(rest, kProtocolOffset);
  const auto setup_sects = LoadLe<std::uint8_t>(rest, kSetupSectsOffset);
  if (boot_flag != kBootFlag || !protocol || !setup_sects) return std::nullopt;
  // "HdrS" appeared with protocol 2.00; there has never been a 3.x.
  if (*protocol < 0x0200 || *protocol > 0x02ff) return std::nullopt;
  // syssize was 16 bits wide before protocol 2.04.
  std::optional<std::uint32_t> syssize = LoadLe<std::uint32_t>(rest, kSyssizeOffset);
  if (*protocol < 0x0204 && syssize) syssize = *syssize & 0xffff;
  if (!syssize || *syssize == 0) return std::nullopt;
  BzImageHeader header;
  header.protocol = *protocol;
  header.setup_size = (std::uint64_t{*setup_sects == 0 ? 4u : *setup_sects} + 1) * kSectorSize;
  header.size = header.setup_size + std::uint64_t{*syssize} * 16;
  if (*protocol >= 0x0208) {
    header.payload_offset = LoadLe<std::uint32_t>(rest, kPayloadOffsetOffset);
    header.payload_length = LoadLe<std::uint32_t>(rest, kPayloadLengthOffset);
  }
  return header;
}

// The payload the header points to, if a stream really starts there; otherwise (older protocols,
// a damaged pointer) the protected-mode code is searched like a zImage.
std::optional<KernelPayload> LocateBzImagePayload(ByteView image, const BzImageHeader& header) {
  if (header.payload_offset && header.payload_length && *header.payload_length > 0) {
    const std::uint64_t at = header.setup_size + *header.payload_offset;
    if (at < image.size()) {
      const ByteView rest = image.subspan(at);
      const std::string_view compression = linux_kernel::CompressionOf(rest);
      if (!compression.empty() && linux_kernel::PayloadStarts(compression, rest)) {
        return KernelPayload{at, std::min<std::uint64_t>(*header.payload_length, rest.size()),
                             compression};
      }
    }
  }
  return linux_kernel::FindPayload(image, header.setup_size);
}

void DescribeKernelVersion(ByteView rest, std::uint64_t setup_size, Chunk& chunk) {
  const auto pointer = LoadLe<std::uint16_t>(rest, kKernelVersionOffset);
  if (!pointer || *pointer == 0) return;
  const std::uint64_t at = kKernelVersionBase + std::uint64_t{*pointer};
  if (at >= setup_size || at >= rest.size()) return;
  const std::string_view text = linux_kernel::PrintableRun(
      rest, at, std::min<std::uint64_t>(linux_kernel::kMaxBannerLength, setup_size - at));
  const std::size_t release = linux_kernel::ReleaseLength(AsBytes(text));
  if (release == 0) return;
  chunk.meta["version"] = std::string(text.substr(0, release));
  chunk.meta["version_string"] = std::string(text);
}

std::optional<Chunk> ProbeBzImage(ByteView blob, std::uint64_t start) {
  const ByteView rest = blob.subspan(start);
  const auto header = ParseBzImage(rest);
  if (!header) return std::nullopt;
  Chunk chunk;
  chunk.offset = start;
  chunk.length = header->size;
  chunk.meta["kind"] = "x86_bzimage";
  chunk.meta["boot_protocol"] =
      std::to_string(header->protocol >> 8) + "." + std::to_string(header->protocol & 0xff);
  chunk.meta["setup_size"] = std::to_string(header->setup_size);
  DescribeKernelVersion(rest, header->setup_size, chunk);
  if (header->payload_offset && header->payload_length) {
    chunk.meta["payload_length"] = std::to_string(*header->payload_length);
  }
  SetPayload(chunk, LocateBzImagePayload(Claimed(rest, header->size), *header));
  ClipTo(chunk, rest.size(), "bzImage");
  return chunk;
}

class LinuxKernelFormat final : public Format {
 public:
  [[nodiscard]] std::string_view name() const override { return "linux_kernel"; }
  [[nodiscard]] std::string_view description() const override {
    return "Linux kernel (banner, ARM zImage, x86 bzImage)";
  }
  [[nodiscard]] std::span<const Magic> magics() const override { return kMagics; }

  [[nodiscard]] std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    if (auto chunk = ProbeBanner(blob, start)) return chunk;
    if (auto chunk = ProbeArmZimage(blob, start)) return chunk;
    return ProbeBzImage(blob, start);
  }

  // The chunk is the image as far as it is present; its payload is found again the way the
  // probe found it. Banners are transparent and never get here.
  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    std::optional<KernelPayload> payload;
    if (ParseZimage(chunk)) {
      payload = LocateZimagePayload(chunk);
    } else if (const auto header = ParseBzImage(chunk)) {
      payload = LocateBzImagePayload(chunk, *header);
    } else {
      return Ok();
    }
    if (!payload) return Fail(ErrorCode::kUnsupportedFormat, "no compressed kernel found");
    return linux_kernel::ExtractPayload(chunk, *payload, ctx);
  }

 private:
  static constexpr Magic kMagics[] = {
      {linux_kernel::kBannerPrefix, 0},
      {std::string_view("\x18\x28\x6f\x01", 4), kZimageMagicOffset},
      {std::string_view("\x01\x6f\x28\x18", 4), kZimageMagicOffset},
      {"HdrS", kHdrsOffset},
  };
};

}  // namespace

std::unique_ptr<const Format> MakeLinuxKernelFormat() {
  return std::make_unique<LinuxKernelFormat>();
}

}  // namespace iotmark::unpack::formats
