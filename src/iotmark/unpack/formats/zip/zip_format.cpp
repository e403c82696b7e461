// zip (and the formats built on it: jar, apk, docx): the probe finds the end-of-central-directory
// record that belongs to the archive starting at a local header; libarchive extracts, from the
// central directory when there is one and from the local headers when the end is missing.
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "iotmark/unpack/archive/libarchive_reader.hpp"
#include "iotmark/unpack/format.hpp"

namespace iotmark::unpack::formats {

namespace {

using namespace std::string_view_literals;

constexpr std::string_view kLocalHeader = "PK\x03\x04"sv;
constexpr std::string_view kCentralHeader = "PK\x01\x02"sv;
constexpr std::string_view kEndRecord = "PK\x05\x06"sv;
constexpr std::string_view kZip64EndRecord = "PK\x06\x06"sv;
constexpr std::string_view kZip64Locator = "PK\x06\x07"sv;
constexpr std::string_view kDataDescriptor = "PK\x07\x08"sv;

constexpr Magic kMagics[] = {{kLocalHeader, 0}};

constexpr std::uint64_t kLocalHeaderSize = 30;
constexpr std::uint64_t kCentralHeaderSize = 46;
constexpr std::uint64_t kEndRecordSize = 22;
constexpr std::uint64_t kZip64LocatorSize = 20;
constexpr std::uint64_t kZip64EndRecordSize = 56;

bool At(ByteView blob, std::uint64_t pos, std::string_view signature) {
  return pos <= blob.size() && blob.size() - pos >= signature.size() &&
         std::memcmp(blob.data() + pos, signature.data(), signature.size()) == 0;
}

// The next occurrence of `signature` at or after `from`, or nullopt.
std::optional<std::uint64_t> Find(ByteView blob, std::uint64_t from, std::string_view signature) {
  if (from >= blob.size()) return std::nullopt;
  const std::string_view text = AsChars(blob);
  const std::size_t found = text.find(signature, from);
  if (found == std::string_view::npos) return std::nullopt;
  return found;
}

struct LocalHeader {
  std::uint16_t flags = 0;
  std::uint16_t method = 0;
  std::uint64_t compressed = 0;
  bool zip64 = false;
  std::uint64_t data_start = 0;  // offset of the entry's data in the blob
};

bool KnownMethod(std::uint16_t method) {
  switch (method) {
    case 0:
    case 1:
    case 6:
    case 8:
    case 9:
    case 12:
    case 14:
    case 19:
    case 93:
    case 95:
    case 96:
    case 97:
    case 98:
    case 99:
      return true;
    default:
      return false;
  }
}

// Reads and sanity-checks a local file header at `pos`.
std::optional<LocalHeader> ReadLocalHeader(ByteView blob, std::uint64_t pos) {
  if (!At(blob, pos, kLocalHeader)) return std::nullopt;
  ByteReader reader(blob.subspan(pos));
  reader.Skip(4);
  const auto version = reader.Read<std::uint16_t>();
  LocalHeader header;
  header.flags = reader.Read<std::uint16_t>();
  header.method = reader.Read<std::uint16_t>();
  reader.Skip(8);  // time, date, crc
  const std::uint32_t compressed = reader.Read<std::uint32_t>();
  const std::uint32_t uncompressed = reader.Read<std::uint32_t>();
  const std::uint16_t name_length = reader.Read<std::uint16_t>();
  const std::uint16_t extra_length = reader.Read<std::uint16_t>();
  if (!reader.ok()) return std::nullopt;
  // Version needed: a spec version (at most 6.3) with no host byte.
  if ((version & 0xff) > 63 || (version >> 8) > 20) return std::nullopt;
  if (!KnownMethod(header.method) || name_length == 0) return std::nullopt;
  header.compressed = compressed;
  header.data_start = pos + kLocalHeaderSize + name_length + extra_length;
  if (compressed == 0xffffffff || uncompressed == 0xffffffff) {
    header.zip64 = true;
    // The sizes are in the zip64 extra field (tag 1): uncompressed first, then compressed.
    const std::uint64_t extra = pos + kLocalHeaderSize + name_length;
    ByteView fields = blob.subspan(std::min<std::uint64_t>(extra, blob.size()));
    fields = fields.first(std::min<std::size_t>(fields.size(), extra_length));
    std::size_t at = 0;
    while (at + 4 <= fields.size()) {
      const auto tag = *LoadLe<std::uint16_t>(fields, at);
      const auto size = *LoadLe<std::uint16_t>(fields, at + 2);
      if (tag == 1) {
        std::size_t field = at + 4;
        if (uncompressed == 0xffffffff) field += 8;
        if (compressed == 0xffffffff) {
          const auto value = LoadLe<std::uint64_t>(fields, field);
          if (!value || field + 8 > at + 4 + size) return std::nullopt;
          header.compressed = *value;
        }
        break;
      }
      at += 4 + size;
    }
  }
  return header;
}

// Where the end-of-central-directory record at `end` says the central directory begins, and
// whether that agrees with an archive starting at `start`. nullopt: not this archive's record.
std::optional<std::uint64_t> CheckEndRecord(ByteView blob, std::uint64_t start, std::uint64_t end) {
  ByteReader reader(blob.subspan(end));
  reader.Skip(4);
  const std::uint16_t disk = reader.Read<std::uint16_t>();
  const std::uint16_t cd_disk = reader.Read<std::uint16_t>();
  const std::uint16_t disk_entries = reader.Read<std::uint16_t>();
  const std::uint16_t entries = reader.Read<std::uint16_t>();
  std::uint64_t cd_size = reader.Read<std::uint32_t>();
  std::uint64_t cd_offset = reader.Read<std::uint32_t>();
  if (!reader.ok()) return std::nullopt;
  std::uint64_t cd_end = end;
  const bool zip64 = entries == 0xffff || cd_size == 0xffffffff || cd_offset == 0xffffffff;
  if (zip64) {
    // The zip64 locator sits right before the record and points at the zip64 end record.
    if (end < kZip64LocatorSize || !At(blob, end - kZip64LocatorSize, kZip64Locator)) {
      return std::nullopt;
    }
    const std::uint64_t locator = end - kZip64LocatorSize;
    const auto record_offset = LoadLe<std::uint64_t>(blob, locator + 8);
    if (!record_offset || *record_offset > locator - start) return std::nullopt;
    const std::uint64_t record = start + *record_offset;
    if (locator - record < kZip64EndRecordSize) return std::nullopt;
    const auto record_size = LoadLe<std::uint64_t>(blob, record + 4);
    const auto size64 = LoadLe<std::uint64_t>(blob, record + 40);
    const auto offset64 = LoadLe<std::uint64_t>(blob, record + 48);
    if (!At(blob, record, kZip64EndRecord) || !record_size || !size64 || !offset64 ||
        *record_size < kZip64EndRecordSize - 12 || *record_size != locator - record - 12) {
      return std::nullopt;
    }
    cd_size = *size64;
    cd_offset = *offset64;
    cd_end = record;
  } else if (disk != 0 || cd_disk != 0 || disk_entries != entries) {
    return std::nullopt;  // multi-disk archives are not carved
  }
  if (cd_size == 0 || cd_size > cd_end - start) return std::nullopt;
  const std::uint64_t cd_start = cd_end - cd_size;
  // The central directory's own offset must put the archive's start exactly here.
  if (cd_start - start != cd_offset || !At(blob, cd_start, kCentralHeader)) return std::nullopt;
  return cd_start;
}

// For a zip without its end record: the end of the local entries (and of any central directory
// entries that follow them) as far as the blob holds them.
std::uint64_t WalkLocalEntries(ByteView blob, std::uint64_t start, std::uint64_t& entries) {
  std::uint64_t pos = start;
  while (auto header = ReadLocalHeader(blob, pos)) {
    if (header->data_start > blob.size()) return blob.size();
    std::uint64_t next = 0;
    if ((header->flags & 0x8) != 0 && header->compressed == 0) {
      // Sizes only in the data descriptor: find the descriptor whose size matches.
      std::optional<std::uint64_t> found;
      for (auto d = Find(blob, header->data_start, kDataDescriptor); d;
           d = Find(blob, *d + 1, kDataDescriptor)) {
        const std::uint64_t distance = *d - header->data_start;
        if (LoadLe<std::uint32_t>(blob, *d + 8) == distance) {
          found = *d + 16;
          break;
        }
        if (LoadLe<std::uint64_t>(blob, *d + 8) == distance) {
          found = *d + 24;
          break;
        }
      }
      if (!found) return blob.size();
      next = *found;
    } else {
      if (header->compressed > blob.size() - header->data_start) return blob.size();
      next = header->data_start + header->compressed;
      if ((header->flags & 0x8) != 0) {
        const bool signed_descriptor = At(blob, next, kDataDescriptor);
        next += (signed_descriptor ? 4 : 0) + (header->zip64 ? 16 : 8) + 4;
      }
    }
    ++entries;
    if (next > blob.size()) return blob.size();
    pos = next;
  }
  while (At(blob, pos, kCentralHeader)) {
    const auto name = LoadLe<std::uint16_t>(blob, pos + 28);
    const auto extra = LoadLe<std::uint16_t>(blob, pos + 30);
    const auto comment = LoadLe<std::uint16_t>(blob, pos + 32);
    if (!name || !extra || !comment) return blob.size();
    const std::uint64_t next = pos + kCentralHeaderSize + *name + *extra + *comment;
    if (next > blob.size()) return blob.size();
    pos = next;
  }
  return pos;
}

class ZipFormat final : public Format {
 public:
  std::string_view name() const override { return "zip"; }
  std::string_view description() const override { return "zip archive"; }
  std::span<const Magic> magics() const override { return kMagics; }

  std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    const auto first = ReadLocalHeader(blob, start);
    if (!first) return std::nullopt;
    Chunk chunk;
    chunk.offset = start;
    for (auto end = Find(blob, start + kLocalHeaderSize, kEndRecord); end;
         end = Find(blob, *end + 1, kEndRecord)) {
      if (!CheckEndRecord(blob, start, *end)) continue;
      const std::uint64_t comment = LoadLe<std::uint16_t>(blob, *end + 20).value_or(0);
      std::uint64_t stop = *end + kEndRecordSize + comment;
      if (stop > blob.size()) {
        chunk.issues.push_back(
            {model::GapKind::kTruncated, "the archive comment runs past the end of the blob"});
        stop = blob.size();
      }
      chunk.length = stop - start;
      return chunk;
    }
    // No end record of this archive: it is truncated (or its end is damaged). The local headers
    // still say where each entry's data lies.
    std::uint64_t entries = 0;
    const std::uint64_t stop = WalkLocalEntries(blob, start, entries);
    if (entries == 0 || stop <= start) return std::nullopt;
    chunk.length = stop - start;
    chunk.meta["end_record"] = "missing";
    chunk.issues.push_back({model::GapKind::kTruncated,
                            "no end of central directory record: the archive is truncated; "
                            "entries are read from their local headers"});
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& info, ExtractContext& ctx) const override {
    return archive::ReadArchive(chunk, archive::ArchiveFormat::kZip, ctx,
                                archive::IsTruncated(info));
  }
};

}  // namespace

std::unique_ptr<const Format> MakeZipFormat() { return std::make_unique<ZipFormat>(); }

}  // namespace iotmark::unpack::formats
