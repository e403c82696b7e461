// cpio (SVR4 newc and crc, POSIX odc, old binary in both byte orders): the probe walks the entry
// headers to the "TRAILER!!!" entry; libarchive extracts.
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

constexpr Magic kMagics[] = {
    {"070701"sv, 0},    // SVR4 "newc"
    {"070702"sv, 0},    // SVR4 with CRC
    {"070707"sv, 0},    // POSIX.1 portable ASCII ("odc")
    {"\xc7\x71"sv, 0},  // old binary, little-endian (0x71c7 = 070707)
    {"\x71\xc7"sv, 0},  // old binary, big-endian
};

// Names longer than this are not plausible for a real archive (libarchive refuses 1 MiB).
constexpr std::uint64_t kMaxNameSize = 4096;
constexpr std::string_view kTrailer = "TRAILER!!!";

enum class Variant { kNewc, kCrc, kOdc, kBinaryLe, kBinaryBe };

struct Header {
  std::uint64_t header_size = 0;
  std::uint64_t name_size = 0;  // including the terminating NUL
  std::uint64_t file_size = 0;
  std::uint32_t mode = 0;
};

std::optional<std::uint64_t> ParseDigits(ByteView field, unsigned base) {
  std::uint64_t value = 0;
  for (std::uint8_t c : field) {
    unsigned digit = 0;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (base == 16 && c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else if (base == 16 && c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else {
      return std::nullopt;
    }
    if (digit >= base) return std::nullopt;
    value = value * base + digit;
  }
  return value;
}

std::optional<Variant> VariantAt(ByteView blob, std::uint64_t pos) {
  if (blob.size() - pos >= 6) {
    const std::string_view magic = AsChars(blob.subspan(pos, 6));
    if (magic == "070701") return Variant::kNewc;
    if (magic == "070702") return Variant::kCrc;
    if (magic == "070707") return Variant::kOdc;
  }
  if (blob.size() - pos >= 2) {
    if (blob[pos] == 0xc7 && blob[pos + 1] == 0x71) return Variant::kBinaryLe;
    if (blob[pos] == 0x71 && blob[pos + 1] == 0xc7) return Variant::kBinaryBe;
  }
  return std::nullopt;
}

std::uint64_t HeaderSize(Variant variant) {
  switch (variant) {
    case Variant::kNewc:
    case Variant::kCrc:
      return 110;
    case Variant::kOdc:
      return 76;
    case Variant::kBinaryLe:
    case Variant::kBinaryBe:
      return 26;
  }
  return 0;
}

// Parses the fixed part of a header; nullopt if a field is not a number of the right kind.
std::optional<Header> ParseHeader(ByteView h, Variant variant) {
  Header header;
  header.header_size = HeaderSize(variant);
  switch (variant) {
    case Variant::kNewc:
    case Variant::kCrc: {
      const auto mode = ParseDigits(h.subspan(14, 8), 16);
      const auto file_size = ParseDigits(h.subspan(54, 8), 16);
      const auto name_size = ParseDigits(h.subspan(94, 8), 16);
      // Every field is eight hex digits; check the ones not used here too.
      for (std::size_t field = 6; field < 110; field += 8) {
        if (!ParseDigits(h.subspan(field, 8), 16)) return std::nullopt;
      }
      if (!mode || !file_size || !name_size) return std::nullopt;
      // newc has no checksum: its check field must be zero.
      if (variant == Variant::kNewc && *ParseDigits(h.subspan(102, 8), 16) != 0)
        return std::nullopt;
      header.mode = static_cast<std::uint32_t>(*mode);
      header.file_size = *file_size;
      header.name_size = *name_size;
      return header;
    }
    case Variant::kOdc: {
      static constexpr std::size_t kFields[][2] = {{6, 6},  {12, 6}, {18, 6},  {24, 6}, {30, 6},
                                                   {36, 6}, {42, 6}, {48, 11}, {59, 6}, {65, 11}};
      for (const auto& field : kFields) {
        if (!ParseDigits(h.subspan(field[0], field[1]), 8)) return std::nullopt;
      }
      header.mode = static_cast<std::uint32_t>(*ParseDigits(h.subspan(18, 6), 8));
      header.name_size = *ParseDigits(h.subspan(59, 6), 8);
      header.file_size = *ParseDigits(h.subspan(65, 11), 8);
      return header;
    }
    case Variant::kBinaryLe:
    case Variant::kBinaryBe: {
      ByteReader reader(
          h, variant == Variant::kBinaryLe ? ByteReader::Order::kLittle : ByteReader::Order::kBig);
      reader.Skip(6);  // magic, dev, ino
      header.mode = reader.Read<std::uint16_t>();
      reader.Skip(12);  // uid, gid, nlink, rdev, mtime (2 words)
      header.name_size = reader.Read<std::uint16_t>();
      // The 32-bit size is stored as two 16-bit words, most significant first (PDP-11 order).
      const std::uint32_t high = reader.Read<std::uint16_t>();
      const std::uint32_t low = reader.Read<std::uint16_t>();
      if (!reader.ok()) return std::nullopt;
      header.file_size = (high << 16) | low;
      return header;
    }
  }
  return std::nullopt;
}

// Names of real entries have no control characters.
bool Printable(std::string_view name) {
  for (char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return true;
}

bool PlausibleType(std::uint32_t mode) {
  switch (mode & 0170000) {
    case 0100000:  // regular
    case 0040000:  // directory
    case 0120000:  // symlink
    case 0020000:  // character device
    case 0060000:  // block device
    case 0010000:  // FIFO
    case 0140000:  // socket
      return true;
    default:
      return false;
  }
}

std::uint64_t Align(std::uint64_t value, Variant variant) {
  switch (variant) {
    case Variant::kNewc:
    case Variant::kCrc:
      return (value + 3) & ~std::uint64_t{3};
    case Variant::kOdc:
      return value;
    case Variant::kBinaryLe:
    case Variant::kBinaryBe:
      return (value + 1) & ~std::uint64_t{1};
  }
  return value;
}

const char* VariantName(Variant variant) {
  switch (variant) {
    case Variant::kNewc:
      return "newc";
    case Variant::kCrc:
      return "crc";
    case Variant::kOdc:
      return "odc";
    case Variant::kBinaryLe:
      return "binary little-endian";
    case Variant::kBinaryBe:
      return "binary big-endian";
  }
  return "";
}

class CpioFormat final : public Format {
 public:
  std::string_view name() const override { return "cpio"; }
  std::string_view description() const override {
    return "cpio archive (newc, crc, odc, old binary)";
  }
  std::span<const Magic> magics() const override { return kMagics; }

  std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const auto variant = VariantAt(blob, start);
    if (!variant) return std::nullopt;
    Chunk chunk;
    chunk.offset = start;
    chunk.meta["variant"] = VariantName(*variant);
    std::uint64_t pos = start;
    std::uint64_t entries = 0;
    bool trailer = false;
    const bool binary = *variant == Variant::kBinaryLe || *variant == Variant::kBinaryBe;
    // Each step moves past at least one header, so the walk ends.
    while (!trailer) {
      const std::uint64_t header_size = HeaderSize(*variant);
      if (blob.size() - pos < header_size) {
        if (entries == 0) return std::nullopt;
        chunk.issues.push_back(
            {model::GapKind::kTruncated, "the archive ends inside an entry header (truncated)"});
        pos = blob.size();
        break;
      }
      const auto header = VariantAt(blob, pos) == variant
                              ? ParseHeader(blob.subspan(pos, header_size), *variant)
                              : std::nullopt;
      const bool sane = header && header->name_size >= 2 && header->name_size <= kMaxNameSize;
      const std::uint64_t name_end = sane ? pos + header_size + header->name_size : 0;
      if (!sane || name_end > blob.size()) {
        if (entries == 0 || (binary && entries < 2 && !sane)) return std::nullopt;
        if (sane) {
          chunk.issues.push_back(
              {model::GapKind::kTruncated, "the archive ends inside an entry name (truncated)"});
          pos = blob.size();
        } else {
          chunk.issues.push_back({model::GapKind::kCorrupt,
                                  "the archive stops at an invalid header, before its "
                                  "TRAILER!!! entry"});
        }
        break;
      }
      const ByteView name = blob.subspan(pos + header_size, header->name_size);
      const std::string_view text = AsChars(name.first(name.size() - 1));
      // The name ends with its only NUL.
      const bool name_ok = name.back() == 0 && text.find('\0') == std::string_view::npos;
      trailer = name_ok && text == kTrailer;
      if (!name_ok || (!trailer && !PlausibleType(header->mode)) || (binary && !Printable(text))) {
        // One entry followed by garbage is too weak a sign for a two-byte magic.
        if (entries == 0 || (binary && entries < 2)) return std::nullopt;
        chunk.issues.push_back({model::GapKind::kCorrupt,
                                "the archive stops at an invalid header, before its "
                                "TRAILER!!! entry"});
        break;
      }
      if (entries == 0 && trailer) return std::nullopt;  // an empty archive: nothing to carve
      ++entries;
      const std::uint64_t data_start = Align(header_size + header->name_size, *variant);
      const std::uint64_t available = blob.size() - pos;
      if (data_start > available || header->file_size > available - data_start) {
        if (binary && entries < 2) return std::nullopt;
        chunk.issues.push_back({model::GapKind::kTruncated,
                                "an entry's data runs past the end of the blob (truncated)"});
        pos = blob.size();
        break;
      }
      pos += std::min(Align(data_start + header->file_size, *variant), available);
    }
    chunk.length = pos - start;
    chunk.meta["entries"] = std::to_string(entries);
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& info, ExtractContext& ctx) const override {
    return archive::ReadArchive(chunk, archive::ArchiveFormat::kCpio, ctx,
                                archive::IsTruncated(info));
  }
};

}  // namespace

std::unique_ptr<const Format> MakeCpioFormat() { return std::make_unique<CpioFormat>(); }

}  // namespace iotmark::unpack::formats
