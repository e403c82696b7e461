// TP-Link firmware images. Three header layouts are read:
//  - v1 (mktplinkfw): 512-byte big-endian header, version 0x01000000 (or 0x02000000), vendor and
//    version strings, hardware id and revision, a salted MD5 of the whole image, kernel load and
//    entry addresses, total length, kernel / rootfs / bootloader offsets and lengths;
//  - v2/v3 (mktplinkfw2, Lantiq/MediaTek/QCA models): the same ideas at other offsets, version
//    stored little-endian, markers 0x55aa and 0xa5, different MD5 salts;
//  - the VxWorks-era "IMG0" images (TL-WR702N and kin): a length word and an MD5 in front of an
//    IMG0 container whose payload holds a boot stub and a second IMG0 with the OS image (LZMA)
//    and the file system.
// The MD5 salts are public (OpenWrt's mktplinkfw/mktplinkfw2); the key of the IMG0 images is not,
// so their digest is reported as unverified. MD5 comes from OpenSSL.
#include <openssl/evp.h>

#include <algorithm>
#include <array>
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
using Digest = std::array<std::uint8_t, 16>;

constexpr std::size_t kHeaderSize = 0x200;
constexpr std::uint32_t kFileMode = 0644;
// A stated length beyond this is not a router image (the largest layouts are 16 MiB flashes).
constexpr std::uint64_t kMaxImageLength = std::uint64_t{256} << 20;
// mktplinkfw -j puts one JFFS2 end-of-filesystem marker at the next 64 KiB boundary.
constexpr std::uint64_t kJffs2Align = 0x10000;
constexpr std::string_view kJffs2Marker("\xde\xad\xc0\xde", 4);

// clang-format off
constexpr Digest kSaltV1Normal = {0xdc, 0xd7, 0x3a, 0xa5, 0xc3, 0x95, 0x98, 0xfb,
                                  0xdd, 0xf9, 0xe7, 0xf4, 0x0e, 0xae, 0x47, 0x38};
constexpr Digest kSaltV1Boot = {0x8c, 0xef, 0x33, 0x5b, 0xd5, 0xc5, 0xce, 0xfa,
                                0xa7, 0x9c, 0x28, 0xda, 0xb2, 0xe9, 0x0f, 0x42};
constexpr Digest kSaltV2Normal = {0xdc, 0xd7, 0x3a, 0xa5, 0xc3, 0x95, 0x98, 0xfb,
                                  0xdc, 0xf9, 0xe7, 0xf4, 0x0e, 0xae, 0x47, 0x37};
constexpr Digest kSaltV2Boot = {0x8c, 0xef, 0x33, 0x5f, 0xd5, 0xc5, 0xce, 0xfa,
                                0xac, 0x9c, 0x28, 0xda, 0xb2, 0xe9, 0x0f, 0x42};
// clang-format on

// Field offsets of the two header layouts.
struct Layout {
  std::string_view name;
  std::size_t hw_id;
  std::size_t md5;
  std::size_t kernel_la;  // kernel_la, kernel_ep, fw_length, kernel_ofs, kernel_len, rootfs_ofs,
                          // rootfs_len, boot_ofs, boot_len follow as consecutive words
  const Digest* salt_normal;
  const Digest* salt_boot;
};
constexpr Layout kLayoutV1 = {"v1", 0x40, 0x4c, 0x74, &kSaltV1Normal, &kSaltV1Boot};
constexpr Layout kLayoutV2 = {"v2", 0x34, 0x40, 0x68, &kSaltV2Normal, &kSaltV2Boot};

struct Part {
  std::string name;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

struct Image {
  std::uint64_t length = 0;  // the extent, before clipping to the blob
  std::vector<Part> parts;
  std::map<std::string, std::string> meta;
  std::vector<ProbeIssue> issues;
};

bool IsPrintable(char c) { return c >= 0x20 && c < 0x7f; }

// A NUL-padded text field: nullopt unless everything before the NUL is printable.
std::optional<std::string> TextField(ByteView bytes, std::size_t offset, std::size_t size) {
  if (offset > bytes.size() || bytes.size() - offset < size) return std::nullopt;
  const std::string_view text = CStringField(bytes.subspan(offset, size));
  if (!std::all_of(text.begin(), text.end(), IsPrintable)) return std::nullopt;
  return std::string(text);
}

std::string Hex(std::uint64_t value, int digits) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "0x";
  for (int shift = 4 * (digits - 1); shift >= 0; shift -= 4) {
    out.push_back(kDigits[(value >> shift) & 0xf]);
  }
  return out;
}

std::string HexBytes(ByteView bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

// MD5 of image[0, length) with the 16 bytes at `field` replaced by `salt`, as mktplinkfw does.
Digest SaltedMd5(ByteView image, std::size_t field, const Digest& salt) {
  Digest out{};
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) return out;
  EVP_DigestInit_ex(ctx, EVP_md5(), nullptr);
  EVP_DigestUpdate(ctx, image.data(), field);
  EVP_DigestUpdate(ctx, salt.data(), salt.size());
  EVP_DigestUpdate(ctx, image.data() + field + salt.size(), image.size() - field - salt.size());
  unsigned int size = 0;
  EVP_DigestFinal_ex(ctx, out.data(), &size);
  EVP_MD_CTX_free(ctx);
  return out;
}

std::uint32_t Be32(ByteView bytes, std::size_t offset) {
  return LoadBe<std::uint32_t>(bytes, offset).value_or(0);
}

// ---- v1 / v2 --------------------------------------------------------------------------------

struct Fields {
  std::uint32_t kernel_la, kernel_ep, fw_length, kernel_ofs, kernel_len, rootfs_ofs, rootfs_len,
      boot_ofs, boot_len;
};

Fields ReadFields(ByteView header, const Layout& layout) {
  const std::size_t at = layout.kernel_la;
  return {Be32(header, at),      Be32(header, at + 4),  Be32(header, at + 8),
          Be32(header, at + 12), Be32(header, at + 16), Be32(header, at + 20),
          Be32(header, at + 24), Be32(header, at + 28), Be32(header, at + 32)};
}

bool InRange(std::uint64_t offset, std::uint64_t length, std::uint64_t limit) {
  return offset >= kHeaderSize && offset <= limit && length <= limit - offset;
}

// The parts a header lists, or nullopt when its offsets do not hold together.
std::optional<std::vector<Part>> PartsOf(const Fields& f) {
  const std::uint64_t limit = f.fw_length != 0 ? f.fw_length : kMaxImageLength;
  if (f.fw_length > kMaxImageLength || f.kernel_len == 0) return std::nullopt;
  if (!InRange(f.kernel_ofs, f.kernel_len, limit)) return std::nullopt;
  std::vector<Part> parts = {{"kernel", f.kernel_ofs, f.kernel_len}};
  if (f.rootfs_len != 0) {
    if (!InRange(f.rootfs_ofs, f.rootfs_len, limit)) return std::nullopt;
    parts.push_back({"rootfs", f.rootfs_ofs, f.rootfs_len});
  }
  // Images that carry a bootloader put it right after the header when boot_ofs is zero; it is
  // only extracted when it stays clear of the kernel.
  const std::uint64_t boot_ofs = f.boot_ofs != 0 ? f.boot_ofs : kHeaderSize;
  if (f.boot_len != 0 && InRange(boot_ofs, f.boot_len, limit) &&
      (boot_ofs + f.boot_len <= f.kernel_ofs || boot_ofs >= f.kernel_ofs + f.kernel_len)) {
    parts.push_back({"bootloader", boot_ofs, f.boot_len});
  }
  return parts;
}

std::optional<const Layout*> DetectLayout(ByteView rest) {
  if (rest.size() < kHeaderSize) return std::nullopt;
  const std::uint32_t be_version = Be32(rest, 0);
  const bool v2_markers = rest[0x8c] == 0x55 && rest[0x8d] == 0xaa && rest[0x90] == 0xa5;
  if ((be_version == 0x02000000 || be_version == 0x03000000) && v2_markers) return &kLayoutV2;
  if (be_version == 0x01000000 || be_version == 0x02000000) return &kLayoutV1;
  return std::nullopt;
}

// Where the image ends: the stated total length, or (for images written with padding stripped)
// the end of the last part, or that plus a JFFS2 end marker. The salted MD5 decides when it can.
void SettleLengthAndDigest(ByteView rest, const Layout& layout, const Fields& f,
                           const std::vector<Part>& parts, Image& image) {
  std::uint64_t stripped = 0;
  for (const Part& part : parts) stripped = std::max(stripped, part.offset + part.length);
  std::vector<std::uint64_t> candidates;
  if (f.fw_length != 0) candidates.push_back(f.fw_length);
  const std::uint64_t marker = (stripped + kJffs2Align - 1) / kJffs2Align * kJffs2Align;
  if (marker + 4 <= rest.size() && AsChars(rest.subspan(marker, 4)) == kJffs2Marker) {
    candidates.push_back(marker + 4);
  }
  candidates.push_back(stripped);

  const ByteView stated(rest.data() + layout.md5, 16);
  // Combined-kernel images are written without a digest.
  const bool absent = IsFilledWith(stated, 0);
  const Digest& salt = f.boot_len == 0 ? *layout.salt_normal : *layout.salt_boot;
  if (!absent) {
    for (std::uint64_t end : candidates) {
      if (end > rest.size() || end < kHeaderSize) continue;
      const Digest actual = SaltedMd5(rest.first(end), layout.md5, salt);
      if (std::equal(actual.begin(), actual.end(), stated.begin())) {
        image.length = end;
        image.meta["md5"] = "ok";
        return;
      }
    }
  }
  // No digest settles it: take the stated total length when the blob has it, else the parts.
  image.length = (f.fw_length != 0 && f.fw_length <= rest.size()) ? f.fw_length : stripped;
  if (absent) {
    image.meta["md5"] = "absent";
  } else if (image.length > rest.size()) {
    image.meta["md5"] = "unchecked";
  } else {
    image.meta["md5"] = "mismatch";
    image.issues.push_back(
        {GapKind::kCorrupt, "TP-Link " + std::string(layout.name) +
                                " image MD5 does not match with the public salt (header says " +
                                HexBytes(stated) + ")"});
  }
}

// The text and version fields, which differ between the layouts; false when they are not text.
bool ReadDescription(ByteView rest, const Layout& layout, Image& image) {
  if (&layout == &kLayoutV1) {
    const auto vendor = TextField(rest, 4, 24);
    const auto version = TextField(rest, 0x1c, 36);
    if (!vendor || vendor->size() < 3 || !version) return false;
    image.meta["vendor"] = *vendor;
    image.meta["image_version"] = *version;
    image.meta["region_code"] = std::to_string(Be32(rest, 0x48));
    image.meta["firmware_version"] =
        std::to_string(LoadBe<std::uint16_t>(rest, 0x98).value_or(0)) + "." +
        std::to_string(LoadBe<std::uint16_t>(rest, 0x9a).value_or(0)) + "." +
        std::to_string(LoadBe<std::uint16_t>(rest, 0x9c).value_or(0));
    if (const auto region = TextField(rest, 0x140, 32); region && !region->empty()) {
      image.meta["region"] = *region;
    }
    return true;
  }
  const auto version = TextField(rest, 4, 48);
  if (!version || version->empty()) return false;
  image.meta["image_version"] = *version;
  image.meta["hw_ver_add"] = Hex(Be32(rest, 0x3c), 8);
  image.meta["firmware_version"] = std::to_string(rest[0x91]) + "." + std::to_string(rest[0x92]) +
                                   "." + std::to_string(rest[0x93]) + "-" +
                                   std::to_string(rest[0x8e]) + "." + std::to_string(rest[0x8f]);
  return true;
}

std::optional<Image> ParseV1V2(ByteView rest) {
  const auto layout = DetectLayout(rest);
  if (!layout) return std::nullopt;
  Image image;
  image.meta["layout"] = std::string((*layout)->name);
  image.meta["header_version"] = std::to_string(rest[0]);
  if (!ReadDescription(rest, **layout, image)) return std::nullopt;
  const std::uint32_t hw_id = Be32(rest, (*layout)->hw_id);
  if (hw_id == 0) return std::nullopt;
  image.meta["hw_id"] = Hex(hw_id, 8);
  image.meta["hw_rev"] = Hex(Be32(rest, (*layout)->hw_id + 4), 8);

  const Fields f = ReadFields(rest, **layout);
  auto parts = PartsOf(f);
  if (!parts) return std::nullopt;
  image.meta["kernel_load_address"] = Hex(f.kernel_la, 8);
  image.meta["kernel_entry_point"] = Hex(f.kernel_ep, 8);
  image.meta["fw_length"] = std::to_string(f.fw_length);
  SettleLengthAndDigest(rest, **layout, f, *parts, image);
  image.parts = std::move(*parts);
  return image;
}

// ---- IMG0 (VxWorks-era images) --------------------------------------------------------------

constexpr std::size_t kImg0Offset = 0x14;     // a length word and an MD5 come first
constexpr std::size_t kImg0FixedSize = 0x58;  // up to the third part's length
constexpr std::size_t kImg0MaxHeader = 0x1000;

struct Img0 {
  std::uint32_t size = 0;  // of the container, its header included
  std::uint16_t product = 0;
  std::uint16_t language = 0;
  std::uint32_t header_length = 0;
  // Up to three parts: the first follows the header, the others are placed explicitly.
  std::array<std::uint64_t, 3> offset{};
  std::array<std::uint64_t, 3> length{};
};

// Parses the IMG0 container at the start of `bytes` (which may run on past it).
std::optional<Img0> ParseImg0(ByteView bytes) {
  if (bytes.size() < kImg0FixedSize || AsChars(bytes.first(4)) != "IMG0") return std::nullopt;
  Img0 img;
  img.size = Be32(bytes, 4);
  img.product = LoadBe<std::uint16_t>(bytes, 8).value_or(0);
  img.language = LoadBe<std::uint16_t>(bytes, 10).value_or(0);
  img.header_length = Be32(bytes, 0x40);
  if (img.header_length < kImg0FixedSize || img.header_length > kImg0MaxHeader ||
      img.header_length % 4 != 0 || img.size < img.header_length || img.size > kMaxImageLength) {
    return std::nullopt;
  }
  if (bytes.size() < img.header_length ||
      !IsFilledWith(bytes.subspan(kImg0FixedSize, img.header_length - kImg0FixedSize), 0)) {
    return std::nullopt;
  }
  img.offset = {img.header_length, Be32(bytes, 0x48), Be32(bytes, 0x50)};
  img.length = {Be32(bytes, 0x44), Be32(bytes, 0x4c), Be32(bytes, 0x54)};
  if (img.length[0] == 0) return std::nullopt;
  for (std::size_t i = 0; i < 3; ++i) {
    if (img.length[i] == 0) continue;
    if (img.offset[i] < img.header_length || img.offset[i] > img.size ||
        img.length[i] > img.size - img.offset[i]) {
      return std::nullopt;
    }
  }
  return img;
}

std::string LanguageName(std::uint16_t code) {
  if (code == 0x1101) return "english";
  if (code == 0x0001) return "chinese";
  return Hex(code, 4);
}

std::optional<Image> ParseImg0Image(ByteView rest) {
  if (rest.size() < kImg0Offset) return std::nullopt;
  const auto outer = ParseImg0(rest.subspan(kImg0Offset));
  if (!outer) return std::nullopt;
  Image image;
  image.length = kImg0Offset + std::uint64_t{outer->size};
  image.meta["layout"] = "img0";
  image.meta["product_id"] = Hex(outer->product, 4);
  image.meta["language"] = LanguageName(outer->language);
  image.meta["md5"] = "unverified";
  return image;
}

// The OS container sits inside the outer container's payload and ends where the outer one ends.
std::optional<std::pair<std::uint64_t, Img0>> FindInnerImg0(ByteView outer_bytes,
                                                            const Img0& outer) {
  const std::uint64_t end = std::min<std::uint64_t>(outer.size, outer_bytes.size());
  for (std::uint64_t at = outer.header_length; at + kImg0FixedSize <= end; at += 4) {
    if (outer_bytes[at] != 'I' || AsChars(outer_bytes.subspan(at, 4)) != "IMG0") continue;
    const auto inner = ParseImg0(outer_bytes.subspan(at));
    if (inner && at + inner->size == outer.size) return std::make_pair(at, *inner);
  }
  return std::nullopt;
}

std::vector<Part> Img0Parts(ByteView rest) {
  const ByteView outer_bytes = rest.subspan(kImg0Offset);
  const auto outer = ParseImg0(outer_bytes);
  if (!outer) return {};
  static constexpr std::string_view kNames[] = {"kernel", "rootfs", "extra"};
  std::vector<Part> parts;
  const auto inner = FindInnerImg0(outer_bytes, *outer);
  const std::uint64_t base = kImg0Offset + (inner ? inner->first : 0);
  const Img0& os = inner ? inner->second : *outer;
  if (inner) {
    parts.push_back(
        {"bootloader", kImg0Offset + outer->header_length, inner->first - outer->header_length});
  }
  for (std::size_t i = 0; i < 3; ++i) {
    if (os.length[i] != 0)
      parts.push_back({std::string(kNames[i]), base + os.offset[i], os.length[i]});
  }
  return parts;
}

std::optional<Image> ParseImage(ByteView rest) {
  if (rest.size() >= kImg0Offset + 4 && AsChars(rest.subspan(kImg0Offset, 4)) == "IMG0") {
    return ParseImg0Image(rest);
  }
  return ParseV1V2(rest);
}

class TplinkFormat final : public Format {
 public:
  [[nodiscard]] std::string_view name() const override { return "tplink"; }
  [[nodiscard]] std::string_view description() const override {
    return "TP-Link firmware header (v1, v2, IMG0)";
  }
  [[nodiscard]] std::span<const Magic> magics() const override { return kMagics; }

  [[nodiscard]] std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const ByteView rest = blob.subspan(start);
    auto image = ParseImage(rest);
    if (!image) return std::nullopt;
    Chunk chunk;
    chunk.offset = start;
    chunk.length = image->length;
    chunk.meta = std::move(image->meta);
    chunk.issues = std::move(image->issues);
    if (image->length > rest.size()) {
      chunk.length = rest.size();
      chunk.issues.push_back(
          {GapKind::kTruncated, "TP-Link image states " + std::to_string(image->length) +
                                    " bytes but only " + std::to_string(rest.size()) + " remain"});
    }
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& info, ExtractContext& ctx) const override {
    std::vector<Part> parts;
    if (info.meta.count("layout") != 0 && info.meta.at("layout") == "img0") {
      parts = Img0Parts(chunk);
    } else if (const auto layout = DetectLayout(chunk)) {
      if (auto listed = PartsOf(ReadFields(chunk, **layout))) parts = std::move(*listed);
    }
    if (parts.empty()) return Fail(ErrorCode::kCorruptInput, "TP-Link header does not parse");
    for (const Part& part : parts) IOTMARK_TRY(WritePart(ctx, chunk, part));
    return Ok();
  }

 private:
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

  // The version word alone is far too common; the strings that follow it are not.
  static constexpr Magic kMagics[] = {
      {std::string_view("\x01\x00\x00\x00TP-LINK", 11), 0},
      {std::string_view("\x02\x00\x00\x00TP-LINK", 11), 0},
      {std::string_view("\x02\x00\x00\x00ver. ", 9), 0},
      {std::string_view("\x03\x00\x00\x00ver. ", 9), 0},
      {"IMG0", kImg0Offset},
  };
};

}  // namespace

std::unique_ptr<const Format> MakeTplinkFormat() { return std::make_unique<TplinkFormat>(); }

}  // namespace iotmark::unpack::formats
