// Motorola S-record: text records "S<type><count><address><data><checksum>": an S0 header, S1/S2/S3
// data with 16/24/32-bit addresses, S5/S6 record counts, S7/S8/S9 termination with the start
// address. The chunk runs through the termination record (or the last record, as srec_cat leaves
// it out); the extractor writes the bytes the data records describe as one binary image (see
// ihex/hex_text.hpp). Hand-written: a few lines of parsing, and Debian has no library for it.
//
// Carving trade-off: "S1", "S2", "S3" are everywhere in text, so a chunk is announced by an S0
// header record with its fixed address 0000 ("S0" + each possible count + "0000"), or by a data
// record of the lengths the common tools write (16 or 32 data bytes: "S113", "S123", "S214",
// "S224", "S315", "S325"). A file starting with a data record of another length is carved from its
// first record that matches. The probe then insists on several valid records in a row.
#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
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

constexpr std::string_view kDataMagics[] = {"S113", "S123", "S214", "S224", "S315", "S325"};
constexpr unsigned kFirstHeaderCount = 3;  // address and checksum, no text
constexpr unsigned kHeaderCounts = 256 - kFirstHeaderCount;

// "S0" + count + "0000" for every count, then the data record starts; built once.
struct MagicTable {
  std::array<std::array<char, 8>, kHeaderCounts> headers{};
  std::array<Magic, kHeaderCounts + std::size(kDataMagics)> magics{};

  MagicTable() {
    static constexpr char kDigits[] = "0123456789ABCDEF";
    for (unsigned i = 0; i < kHeaderCounts; ++i) {
      const unsigned count = kFirstHeaderCount + i;
      headers[i] = {'S', '0', kDigits[count >> 4], kDigits[count & 0xf], '0', '0', '0', '0'};
      magics[i] = Magic{std::string_view(headers[i].data(), headers[i].size()), 0};
    }
    for (std::size_t i = 0; i < std::size(kDataMagics); ++i) {
      magics[kHeaderCounts + i] = Magic{kDataMagics[i], 0};
    }
  }
};

const MagicTable& Magics() {
  static const MagicTable table;
  return table;
}

// "S" + type + 255 bytes in hex at most.
constexpr std::size_t kMaxRecordChars = 2 + 2 * 255;
constexpr std::size_t kMaxLineChars = kMaxRecordChars + 256;
// Valid records a file must start with before an unterminated or damaged one is believed.
constexpr std::uint64_t kMinLeadingRecords = 3;
// A file with fewer good records at its start is read at most this far looking for its end.
constexpr std::uint64_t kMaxShortFileRecords = 64;
constexpr std::uint64_t kMaxChecksumGaps = 32;
constexpr std::size_t kMaxHeaderText = 64;

struct Record {
  int type = 0;
  std::uint32_t address = 0;
  std::uint8_t length = 0;  // data bytes
  std::array<std::uint8_t, 255> data{};
  [[nodiscard]] ByteView bytes() const { return ByteView(data.data(), length); }
  [[nodiscard]] bool is_data() const { return type >= 1 && type <= 3; }
  [[nodiscard]] bool is_count() const { return type == 5 || type == 6; }
  [[nodiscard]] bool is_termination() const { return type >= 7; }
};

// Address bytes per record type; 0 for the reserved S4.
constexpr std::size_t kAddressBytes[] = {2, 2, 3, 4, 0, 2, 3, 4, 3, 2};

enum class Parsed { kOk, kBadChecksum, kMalformed };

Parsed ParseRecord(std::string_view line, Record& record) {
  if (line.size() < 4 || line.size() > kMaxRecordChars || line[0] != 'S' || line[1] < '0' ||
      line[1] > '9') {
    return Parsed::kMalformed;
  }
  record.type = line[1] - '0';
  const std::size_t address_bytes = kAddressBytes[record.type];
  const int count = HexByte(line[2], line[3]);
  if (address_bytes == 0 || count < 0 || static_cast<std::size_t>(count) < address_bytes + 1 ||
      line.size() != 4 + 2 * static_cast<std::size_t>(count)) {
    return Parsed::kMalformed;
  }
  std::array<std::uint8_t, 255> bytes{};
  unsigned sum = static_cast<unsigned>(count);
  for (int i = 0; i < count; ++i) {
    const int value = HexByte(line[4 + 2 * i], line[5 + 2 * i]);
    if (value < 0) return Parsed::kMalformed;
    bytes[i] = static_cast<std::uint8_t>(value);
    sum += static_cast<unsigned>(value);
  }
  record.address = 0;
  for (std::size_t i = 0; i < address_bytes; ++i) record.address = record.address << 8 | bytes[i];
  record.length = static_cast<std::uint8_t>(static_cast<std::size_t>(count) - address_bytes - 1);
  std::copy_n(bytes.begin() + address_bytes, record.length, record.data.begin());
  // The checksum makes the low byte of the sum of count, address, data and itself 0xff.
  return (sum & 0xff) == 0xff ? Parsed::kOk : Parsed::kBadChecksum;
}

struct Note {
  std::uint64_t line = 0;
  std::uint64_t offset = 0;
  std::string reason;
};

struct Scan {
  std::uint64_t extent = 0;
  std::uint64_t records = 0;
  std::uint64_t data_records = 0;  // with good checksums
  std::uint64_t data_lines = 0;    // all S1/S2/S3 records, what S5/S6 count
  std::uint64_t leading_good = 0;
  std::uint64_t bad_checksums = 0;
  bool gave_up = false;
  std::vector<Note> notes;  // bad checksums and wrong counts, the first few
  bool terminated = false;
  bool cut = false;
  std::optional<std::string> header;
  std::optional<std::string> start_address;
  std::uint64_t lowest = ~std::uint64_t{0};
  std::uint64_t highest = 0;
  std::uint64_t data_bytes = 0;
};

// The S0 text as it may appear in a report: printable ASCII, other bytes escaped, length capped.
std::string HeaderText(ByteView bytes) {
  std::string out;
  for (const std::uint8_t byte : bytes.first(std::min(bytes.size(), kMaxHeaderText))) {
    if (byte >= 0x20 && byte < 0x7f) {
      out.push_back(static_cast<char>(byte));
    } else if (byte != 0) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xf]);
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

void Apply(const Record& record, std::uint64_t line, std::uint64_t where, Scan& scan,
           MemoryImage* image) {
  if (record.type == 0) {
    if (!scan.header) scan.header = HeaderText(record.bytes());
  } else if (record.is_data()) {
    ++scan.data_records;
    if (record.length == 0) return;
    scan.lowest = std::min<std::uint64_t>(scan.lowest, record.address);
    scan.highest =
        std::max<std::uint64_t>(scan.highest, std::uint64_t{record.address} + record.length - 1);
    scan.data_bytes += record.length;
    if (image != nullptr) image->Add(record.address, record.bytes(), where);
  } else if (record.is_count()) {
    // S5/S6 state how many S1/S2/S3 records came before; the count wraps with its width.
    const std::uint64_t width = record.type == 5 ? 0xffff : 0xffffff;
    const std::uint64_t expected = scan.data_lines & width;
    if (record.address != expected && scan.notes.size() < kMaxChecksumGaps) {
      scan.notes.push_back({line, where,
                            "line " + std::to_string(line) + ": the count record says " +
                                std::to_string(record.address) + " data records, " +
                                std::to_string(expected) + " came before it"});
    }
  } else if (record.is_termination()) {
    scan.terminated = true;
    scan.start_address = HexAddress(record.address);
  }
}

// Reads records from the start of `text` until a termination record or the first line that is not
// a record. Records with a bad checksum are counted and not applied.
Scan ScanRecords(std::string_view text, MemoryImage* image) {
  Scan scan;
  std::size_t pos = 0;
  std::uint64_t line_number = 0;
  while (pos < text.size()) {
    const Line line = hex_text::NextLine(text, pos, kMaxLineChars);
    ++line_number;
    if (line.content.empty()) {
      if (!line.terminated) break;
      pos = line.next;
      continue;
    }
    Record record;
    const Parsed parsed = ParseRecord(line.content, record);
    if (parsed == Parsed::kMalformed) {
      scan.cut = hex_text::IsCutRecord(line, 'S', kMaxRecordChars);
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
    if (record.is_data()) ++scan.data_lines;
    if (parsed == Parsed::kBadChecksum) {
      if (scan.bad_checksums++ < kMaxChecksumGaps) {
        scan.notes.push_back({line_number, pos,
                              "line " + std::to_string(line_number) +
                                  ": record checksum does not match; its data is left out"});
      }
      pos = line.next;
      continue;
    }
    if (scan.bad_checksums == 0) ++scan.leading_good;
    Apply(record, line_number, pos, scan, image);
    if (scan.terminated) break;
    pos = line.next;
  }
  return scan;
}

bool Believable(const Scan& scan) {
  if (scan.gave_up || scan.leading_good == 0 || scan.data_records == 0) return false;
  if (scan.leading_good >= kMinLeadingRecords) return true;
  // A short file with damage early on is believed only if it is complete and mostly good.
  return scan.terminated && scan.records - scan.bad_checksums >= 2 &&
         scan.bad_checksums * 2 <= scan.records;
}

class SrecFormat final : public Format {
 public:
  [[nodiscard]] std::string_view name() const override { return "srec"; }
  [[nodiscard]] std::string_view description() const override {
    return "Motorola S-record firmware image (text records)";
  }
  [[nodiscard]] std::span<const Magic> magics() const override { return Magics().magics; }

  [[nodiscard]] std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const std::string_view text = AsChars(blob.subspan(start));
    if (text[0] != 'S') return std::nullopt;
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
    chunk.meta["terminated"] = scan.terminated ? "yes" : "no";
    if (scan.data_bytes > 0) {
      chunk.meta["address_range"] = HexAddress(scan.lowest) + "-" + HexAddress(scan.highest);
    }
    if (scan.header && !scan.header->empty()) chunk.meta["header"] = *scan.header;
    if (scan.start_address) chunk.meta["start_address"] = *scan.start_address;
    if (scan.cut) {
      chunk.issues.push_back({GapKind::kTruncated, "the text ends inside a record"});
    }
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    MemoryImage image;
    const Scan scan = ScanRecords(AsChars(chunk), &image);
    for (const Note& note : scan.notes) ctx.AddGap(GapKind::kCorrupt, note.offset, note.reason);
    if (scan.bad_checksums > kMaxChecksumGaps) {
      ctx.AddGap(GapKind::kCorrupt, 0,
                 std::to_string(scan.bad_checksums - kMaxChecksumGaps) +
                     " more records with a bad checksum were left out");
    }
    if (image.empty()) {
      ctx.AddGap(GapKind::kCorrupt, 0, "no data record could be read");
      return Ok();
    }
    std::string stem =
        ctx.DecompressedName({".srec", ".s19", ".s28", ".s37", ".mot", ".mhx", ".sx"});
    if (stem == "decompressed") stem = "image";
    if (stem.size() > 4 && stem.ends_with(".bin")) stem.resize(stem.size() - 4);
    return image.Write(ctx, stem);
  }
};

}  // namespace

std::unique_ptr<const Format> MakeSrecFormat() { return std::make_unique<SrecFormat>(); }

}  // namespace iotmark::unpack::formats
