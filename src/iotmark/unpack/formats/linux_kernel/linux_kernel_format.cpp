// Identifies Linux kernels without extracting them: the "Linux version ..." banner of an
// uncompressed kernel, the header of an ARM zImage and the boot-protocol header of an x86
// bzImage. The chunks are transparent, so the carver goes on to find the compressed payload or
// the initramfs inside them.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "iotmark/unpack/format.hpp"

namespace iotmark::unpack::formats {

namespace {

constexpr std::string_view kBannerPrefix = "Linux version ";
// The banner is one line; a longer run of text is not a kernel banner worth quoting.
constexpr std::size_t kMaxBannerLength = 256;

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

bool IsDigit(std::uint8_t c) { return c >= '0' && c <= '9'; }
bool IsPrintable(std::uint8_t c) { return c >= 0x20 && c <= 0x7e; }
// Characters that may follow the numeric part of a kernel release: "-rc3", "+", "_custom",
// "~bpo11", ".el8".
bool IsReleaseChar(std::uint8_t c) {
  return IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' || c == '-' ||
         c == '_' || c == '+' || c == '~';
}

// The length of a run of digits starting at `pos`.
std::size_t DigitRun(ByteView bytes, std::size_t pos) {
  std::size_t n = 0;
  while (pos + n < bytes.size() && IsDigit(bytes[pos + n])) ++n;
  return n;
}

// A kernel release at the start of `text`: digits.digits, then an optional third number and
// suffix, ended by a space or the end of the text. Returns its length, or 0 if `text` does not
// start with one ("Linux version %s" in a format string, "Linux version unknown").
std::size_t ReleaseLength(ByteView text) {
  std::size_t pos = DigitRun(text, 0);
  if (pos == 0 || pos >= text.size() || text[pos] != '.') return 0;
  ++pos;
  const std::size_t minor = DigitRun(text, pos);
  if (minor == 0) return 0;
  pos += minor;
  while (pos < text.size() && IsReleaseChar(text[pos])) ++pos;
  if (pos < text.size() && text[pos] != ' ') return 0;
  return pos;
}

// Printable text starting at `pos`, ended by a NUL, a line break, any other unprintable byte,
// the end of `bytes` or `max` characters.
std::string_view PrintableRun(ByteView bytes, std::size_t pos, std::size_t max) {
  if (pos >= bytes.size()) return {};
  const ByteView rest = bytes.subspan(pos, std::min(max, bytes.size() - pos));
  std::size_t n = 0;
  while (n < rest.size() && IsPrintable(rest[n])) ++n;
  return AsChars(rest.first(n));
}

std::optional<Chunk> ProbeBanner(ByteView blob, std::uint64_t start) {
  const ByteView rest = blob.subspan(start);
  if (rest.size() < kBannerPrefix.size() ||
      AsChars(rest.first(kBannerPrefix.size())) != kBannerPrefix) {
    return std::nullopt;
  }
  const std::string_view banner = PrintableRun(rest, 0, kMaxBannerLength);
  const ByteView after_prefix = AsBytes(banner.substr(kBannerPrefix.size()));
  const std::size_t release = ReleaseLength(after_prefix);
  if (release == 0) return std::nullopt;
  Chunk chunk;
  chunk.offset = start;
  chunk.length = banner.size();
  chunk.transparent = true;
  chunk.meta["kind"] = "banner";
  chunk.meta["version"] = std::string(AsChars(after_prefix.first(release)));
  chunk.meta["banner"] = std::string(banner);
  return chunk;
}

std::optional<Chunk> ProbeArmZimage(ByteView blob, std::uint64_t start) {
  const ByteView rest = blob.subspan(start);
  bool big_endian = false;
  if (LoadLe<std::uint32_t>(rest, kZimageMagicOffset) == kZimageMagic) {
    big_endian = false;
  } else if (LoadBe<std::uint32_t>(rest, kZimageMagicOffset) == kZimageMagic) {
    big_endian = true;
  } else {
    return std::nullopt;
  }
  const auto load = [&](std::size_t offset) {
    return big_endian ? LoadBe<std::uint32_t>(rest, offset) : LoadLe<std::uint32_t>(rest, offset);
  };
  const auto start_address = load(kZimageStartOffset);
  const auto end_address = load(kZimageEndOffset);
  if (!start_address || !end_address || *end_address <= *start_address) return std::nullopt;
  const std::uint64_t size = std::uint64_t{*end_address} - *start_address;
  if (size < kZimageMinSize || size > kZimageMaxSize) return std::nullopt;

  Chunk chunk;
  chunk.offset = start;
  chunk.length = size;
  chunk.transparent = true;
  chunk.meta["kind"] = "arm_zimage";
  chunk.meta["endianness"] = big_endian ? "big" : "little";
  chunk.meta["image_size"] = std::to_string(size);
  chunk.meta["start_address"] = HexOffset(*start_address);
  if (size > rest.size()) {
    chunk.length = rest.size();
    chunk.issues.push_back({model::GapKind::kTruncated,
                            "zImage header states " + std::to_string(size) + " bytes but only " +
                                std::to_string(rest.size()) + " remain"});
  }
  return chunk;
}

// Names the compression of a bzImage payload from its first bytes.
std::string_view PayloadCompression(ByteView payload) {
  struct Signature {
    std::string_view magic;
    std::string_view name;
  };
  static constexpr Signature kSignatures[] = {
      {std::string_view("\x1f\x8b", 2), "gzip"},
      {std::string_view("\xfd"
                        "7zXZ\x00",
                        6),
       "xz"},
      {"BZh", "bzip2"},
      {std::string_view("\x5d\x00\x00", 3), "lzma"},
      {std::string_view("\x89LZO\x00", 5), "lzo"},
      {std::string_view("\x02\x21\x4c\x18", 4), "lz4"},
      {std::string_view("\x28\xb5\x2f\xfd", 4), "zstd"},
      {std::string_view("\x7f"
                        "ELF",
                        4),
       "none"},
  };
  for (const Signature& signature : kSignatures) {
    if (payload.size() >= signature.magic.size() &&
        AsChars(payload.first(signature.magic.size())) == signature.magic) {
      return signature.name;
    }
  }
  return "unknown";
}

std::optional<Chunk> ProbeBzImage(ByteView blob, std::uint64_t start) {
  const ByteView rest = blob.subspan(start);
  if (rest.size() < kHdrsOffset + 4 || AsChars(rest.subspan(kHdrsOffset, 4)) != "HdrS") {
    return std::nullopt;
  }
  const auto boot_flag = LoadLe<std::uint16_t>(rest, kBootFlagOffset);
  const auto protocol = LoadLe<std::uint16_t>(rest, kProtocolOffset);
  const auto setup_sects_field = LoadLe<std::uint8_t>(rest, kSetupSectsOffset);
  if (boot_flag != kBootFlag || !protocol || !setup_sects_field) return std::nullopt;
  // "HdrS" appeared with protocol 2.00; there has never been a 3.x.
  if (*protocol < 0x0200 || *protocol > 0x02ff) return std::nullopt;
  // syssize was 16 bits wide before protocol 2.04.
  std::optional<std::uint32_t> syssize = LoadLe<std::uint32_t>(rest, kSyssizeOffset);
  if (*protocol < 0x0204 && syssize) syssize = *syssize & 0xffff;
  if (!syssize || *syssize == 0) return std::nullopt;
  const std::uint64_t setup_sects = *setup_sects_field == 0 ? 4 : *setup_sects_field;
  const std::uint64_t setup_size = (setup_sects + 1) * kSectorSize;
  const std::uint64_t size = setup_size + std::uint64_t{*syssize} * 16;

  Chunk chunk;
  chunk.offset = start;
  chunk.length = size;
  chunk.transparent = true;
  chunk.meta["kind"] = "x86_bzimage";
  chunk.meta["boot_protocol"] =
      std::to_string(*protocol >> 8) + "." + std::to_string(*protocol & 0xff);
  chunk.meta["setup_size"] = std::to_string(setup_size);

  if (const auto pointer = LoadLe<std::uint16_t>(rest, kKernelVersionOffset);
      pointer && *pointer != 0) {
    const std::uint64_t at = kKernelVersionBase + std::uint64_t{*pointer};
    if (at < setup_size && at < rest.size()) {
      const std::string_view text =
          PrintableRun(rest, at, std::min<std::uint64_t>(kMaxBannerLength, setup_size - at));
      const std::size_t release = ReleaseLength(AsBytes(text));
      if (release > 0) {
        chunk.meta["version"] = std::string(text.substr(0, release));
        chunk.meta["version_string"] = std::string(text);
      }
    }
  }

  if (*protocol >= 0x0208) {
    const auto payload_offset = LoadLe<std::uint32_t>(rest, kPayloadOffsetOffset);
    const auto payload_length = LoadLe<std::uint32_t>(rest, kPayloadLengthOffset);
    if (payload_offset && payload_length) {
      chunk.meta["payload_offset"] = std::to_string(*payload_offset);
      chunk.meta["payload_length"] = std::to_string(*payload_length);
      const std::uint64_t at = setup_size + *payload_offset;
      if (at < rest.size() && *payload_length > 0) {
        chunk.meta["payload_compression"] = std::string(PayloadCompression(
            rest.subspan(at, std::min<std::uint64_t>(rest.size() - at, *payload_length))));
      }
    }
  }

  if (size > rest.size()) {
    chunk.length = rest.size();
    chunk.issues.push_back({model::GapKind::kTruncated,
                            "bzImage header states " + std::to_string(size) + " bytes but only " +
                                std::to_string(rest.size()) + " remain"});
  }
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

  // Kernels are only identified; the unpacker never extracts transparent chunks.
  Status Extract(ByteView /*chunk*/, const Chunk& /*info*/,
                 ExtractContext& /*ctx*/) const override {
    return Ok();
  }

 private:
  static constexpr Magic kMagics[] = {
      {kBannerPrefix, 0},
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
