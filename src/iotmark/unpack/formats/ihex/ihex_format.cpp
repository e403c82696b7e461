// Intel HEX: text records ":LLAAAATT<data>CC" (data, end of file, extended segment and linear
// addresses, start addresses), each with a checksum. The chunk runs through the end-of-file record;
// the extractor writes the bytes the records describe as one binary image (see hex_text.hpp).
// Hand-written: the format is a few lines of parsing and Debian has no library for it.
//
// Carving trade-off: a lone ':' is far too common to be a magic, so a chunk is announced only by
// the usual first lines: a 16- or 32-byte data record (":10", ":20") or an extended address record
// (":020000"). A file whose first record is of another length is carved from its first record that
// is. The probe then insists on several well-formed records with correct checksums in a row.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "iotmark/unpack/entry_sink.hpp"
#include "iotmark/unpack/extract_context.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/formats/ihex/hex_text.hpp"

namespace iotmark::unpack::formats {

namespace {

using hex_text::HexAddress;
using hex_text::HexByte;
using hex_text::Line;
using hex_text::MemoryImage;
using model::GapKind;

constexpr Magic kMagics[] = {{":10", 0}, {":20", 0}, {":020000", 0}};

// A record is ':' and 5 + 255 bytes in hex at most; longer lines are not records.
constexpr std::size_t kMaxRecordChars = 1 + 2 * (5 + 255);
// Lines are read this far at most (a record and some trailing blanks).
constexpr std::size_t kMaxLineChars = kMaxRecordChars + 256;
// Well-formed records with good checksums a file must start with before a damaged or
// unterminated one is believed to be Intel HEX.
constexpr std::uint64_t kMinLeadingRecords = 3;
// A file with fewer good records at its start is read at most this far looking for its end.
constexpr std::uint64_t kMaxShortFileRecords = 64;
constexpr std::uint64_t kMaxChecksumGaps = 32;

enum RecordType : std::uint8_t {
  kData = 0,
  kEndOfFile = 1,
  kExtendedSegment = 2,
  kStartSegment = 3,
  kExtendedLinear = 4,
  kStartLinear = 5,
};

struct Record {
  std::uint8_t type = 0;
  std::uint16_t address = 0;
  std::uint8_t length = 0;
  std::array<std::uint8_t, 255> data{};
  [[nodiscard]] ByteView bytes() const { return ByteView(data.data(), length); }
  [[nodiscard]] std::uint32_t Word(std::size_t at) const {
    return std::uint32_t{data[at]} << 8 | data[at + 1];
  }
};

enum class Parsed { kOk, kBadChecksum, kMalformed };

Parsed ParseRecord(std::string_view line, Record& record) {
  if (line.size() < 11 || line.size() > kMaxRecordChars || line[0] != ':' ||
      (line.size() - 1) % 2 != 0) {
    return Parsed::kMalformed;
  }
  std::array<std::uint8_t, 5 + 255> bytes{};
  const std::size_t count = (line.size() - 1) / 2;
  unsigned sum = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const int value = HexByte(line[1 + 2 * i], line[2 + 2 * i]);
    if (value < 0) return Parsed::kMalformed;
    bytes[i] = static_cast<std::uint8_t>(value);
    sum += static_cast<unsigned>(value);
  }
  record.length = bytes[0];
  if (count != std::size_t{record.length} + 5) return Parsed::kMalformed;
  record.address = static_cast<std::uint16_t>(bytes[1] << 8 | bytes[2]);
  record.type = bytes[3];
  std::copy(bytes.begin() + 4, bytes.begin() + 4 + record.length, record.data.begin());
  switch (record.type) {
    case kData:
      break;
    case kEndOfFile:
      if (record.length != 0) return Parsed::kMalformed;
      break;
    case kExtendedSegment:
    case kExtendedLinear:
      if (record.length != 2) return Parsed::kMalformed;
      break;
    case kStartSegment:
    case kStartLinear:
      if (record.length != 4) return Parsed::kMalformed;
      break;
    default:
      return Parsed::kMalformed;
  }
  return (sum & 0xff) == 0 ? Parsed::kOk : Parsed::kBadChecksum;
}

struct BadLine {
  std::uint64_t number = 0;
  std::uint64_t offset = 0;
};

// What a pass over the records found.
struct Scan {
  std::uint64_t extent = 0;  // through the line break after the last record
  std::uint64_t records = 0;
  std::uint64_t data_records = 0;
  std::uint64_t leading_good = 0;  // records with good checksums before the first bad one
  std::uint64_t bad_checksums = 0;
  bool gave_up = false;
  std::vector<BadLine> bad_lines;  // the first few
  bool end_of_file = false;
  bool cut = false;          // the text ends inside a record
  bool interrupted = false;  // a line that is not a record ends them
  std::optional<std::string> start_address;
  std::uint64_t lowest = ~std::uint64_t{0};
  std::uint64_t highest = 0;
  std::uint64_t data_bytes = 0;
};

// "0x1234:0x5678": a real-mode CS:IP pair.
std::string SegmentAddress(std::uint32_t segment, std::uint32_t offset) {
  char text[24];
  std::snprintf(text, sizeof(text), "0x%04x:0x%04x", segment, offset);
  return text;
}

class Decoder {
 public:
  explicit Decoder(MemoryImage* image) : image_(image) {}

  void Apply(const Record& record, std::uint64_t where, Scan& scan) {
    switch (record.type) {
      case kData:
        ++scan.data_records;
        AddData(record, where, scan);
        break;
      case kExtendedSegment:
        base_ = std::uint64_t{record.Word(0)} << 4;
        segmented_ = true;
        break;
      case kExtendedLinear:
        base_ = std::uint64_t{record.Word(0)} << 16;
        segmented_ = false;
        break;
      case kStartSegment:
        scan.start_address = SegmentAddress(record.Word(0), record.Word(2));
        break;
      case kStartLinear:
        scan.start_address = HexAddress(record.Word(0) << 16 | record.Word(2));
        break;
      default:
        break;
    }
  }

 private:
  void AddData(const Record& record, std::uint64_t where, Scan& scan) {
    if (record.length == 0) return;
    // In segment mode the 16-bit offset wraps inside the segment.
    const std::uint64_t first_part =
        segmented_ ? std::min<std::uint64_t>(record.length, 0x10000 - record.address)
                   : record.length;
    Place(base_ + record.address, record.bytes().first(first_part), where, scan);
    if (first_part < record.length) Place(base_, record.bytes().subspan(first_part), where, scan);
  }

  void Place(std::uint64_t address, ByteView bytes, std::uint64_t where, Scan& scan) {
    scan.lowest = std::min(scan.lowest, address);
    scan.highest = std::max(scan.highest, address + bytes.size() - 1);
    scan.data_bytes += bytes.size();
    if (image_ != nullptr) image_->Add(address, bytes, where);
  }

  MemoryImage* image_;
  std::uint64_t base_ = 0;
  bool segmented_ = false;
};

// Reads records from the start of `text` until the end-of-file record or the first line that is
// not a record. Records with a bad checksum are counted and not applied.
Scan ScanRecords(std::string_view text, MemoryImage* image) {
  Scan scan;
  Decoder decoder(image);
  std::size_t pos = 0;
  std::uint64_t line_number = 0;
  while (pos < text.size()) {
    const Line line = hex_text::NextLine(text, pos, kMaxLineChars);
    ++line_number;
    if (line.content.empty()) {
      if (!line.terminated) break;
      pos = line.next;  // blank lines between records are allowed, and not part of the extent
      continue;
    }
    Record record;
    const Parsed parsed = ParseRecord(line.content, record);
    if (parsed == Parsed::kMalformed) {
      // A record the end of the text cut short, or a line that is not a record at all.
      scan.cut = hex_text::IsCutRecord(line, ':', kMaxRecordChars);
      scan.interrupted = !scan.cut;
      if (scan.cut) scan.extent = text.size();
      break;
    }
    ++scan.records;
    scan.extent = line.next;
    if (scan.bad_checksums > 0 && scan.leading_good < kMinLeadingRecords &&
        scan.records > kMaxShortFileRecords) {
      // Damaged from the start and long: not believed, and not worth reading to the end.
      scan.gave_up = true;
      break;
    }
    if (parsed == Parsed::kBadChecksum) {
      if (scan.bad_checksums++ < kMaxChecksumGaps) scan.bad_lines.push_back({line_number, pos});
      pos = line.next;
      continue;
    }
    if (scan.bad_checksums == 0) ++scan.leading_good;
    decoder.Apply(record, pos, scan);
    if (record.type == kEndOfFile) {
      scan.end_of_file = true;
      break;
    }
    pos = line.next;
  }
  return scan;
}

// Whether the records look like Intel HEX rather than text that happens to start like it.
bool Believable(const Scan& scan) {
  if (scan.gave_up || scan.leading_good == 0 || scan.data_records == 0) return false;
  if (scan.leading_good >= kMinLeadingRecords) return true;
  // A short file with damage early on is believed only if it is complete and mostly good.
  return scan.end_of_file && scan.records - scan.bad_checksums >= 2 &&
         scan.bad_checksums * 2 <= scan.records;
}

class IhexFormat final : public Format {
 public:
  [[nodiscard]] std::string_view name() const override { return "ihex"; }
  [[nodiscard]] std::string_view description() const override {
    return "Intel HEX firmware image (text records)";
  }
  [[nodiscard]] std::span<const Magic> magics() const override { return kMagics; }

  [[nodiscard]] std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const std::string_view text = AsChars(blob.subspan(start));
    if (text[0] != ':') return std::nullopt;
    // The first record alone rejects almost all chance matches before the whole text is read.
    Record first;
    if (ParseRecord(hex_text::NextLine(text, 0, kMaxLineChars).content, first) != Parsed::kOk) {
      return std::nullopt;
    }
    const Scan scan = ScanRecords(text, nullptr);
    if (!Believable(scan)) return std::nullopt;
    Chunk chunk;
    chunk.offset = start;
    chunk.length = scan.extent;
    chunk.meta["records"] = std::to_string(scan.records);
    chunk.meta["data_bytes"] = std::to_string(scan.data_bytes);
    chunk.meta["address_range"] = HexAddress(scan.lowest) + "-" + HexAddress(scan.highest);
    if (scan.start_address) chunk.meta["start_address"] = *scan.start_address;
    if (!scan.end_of_file) {
      std::string reason = "the text ends before the end-of-file record";
      if (scan.cut) reason = "the text ends inside a record, before the end-of-file record";
      if (scan.interrupted)
        reason = "a line that is not a record comes before the end-of-file record";
      chunk.issues.push_back(
          {scan.interrupted ? GapKind::kCorrupt : GapKind::kTruncated, std::move(reason)});
    }
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    MemoryImage image;
    const Scan scan = ScanRecords(AsChars(chunk), &image);
    for (const BadLine& bad : scan.bad_lines) {
      ctx.AddGap(GapKind::kCorrupt, bad.offset,
                 "line " + std::to_string(bad.number) +
                     ": record checksum does not match; its data is left out (0xff)");
    }
    if (scan.bad_checksums > scan.bad_lines.size()) {
      ctx.AddGap(GapKind::kCorrupt, 0,
                 std::to_string(scan.bad_checksums - scan.bad_lines.size()) +
                     " more records with a bad checksum were left out");
    }
    if (image.empty()) {
      ctx.AddGap(GapKind::kCorrupt, 0, "no data record could be read");
      return Ok();
    }
    std::string stem = ctx.DecompressedName({".hex", ".ihex", ".ihx"});
    if (stem == "decompressed") stem = "image";
    if (stem.size() > 4 && stem.ends_with(".bin")) stem.resize(stem.size() - 4);
    return image.Write(ctx, stem);
  }
};

}  // namespace

std::unique_ptr<const Format> MakeIhexFormat() { return std::make_unique<IhexFormat>(); }

}  // namespace iotmark::unpack::formats
