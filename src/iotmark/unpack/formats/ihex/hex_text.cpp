// See hex_text.hpp. The image is streamed piece by piece into the sink, never allocated at its
// full span, so a record at a far address costs the fill written, not memory.
#include "iotmark/unpack/formats/ihex/hex_text.hpp"

#include <algorithm>
#include <array>
#include <cstdio>

#include "iotmark/unpack/entry_sink.hpp"
#include "iotmark/unpack/extract_context.hpp"

namespace iotmark::unpack::formats::hex_text {

namespace {

using model::GapKind;

// An image may be padded with up to this many bytes of 0xff whatever it holds...
constexpr std::uint64_t kMaxFill = std::uint64_t{16} << 20;
// ...and beyond that with at most this many times its data.
constexpr std::uint64_t kFillFactor = 8;
// When the whole span is refused, regions are split at holes larger than this.
constexpr std::uint64_t kRegionHole = std::uint64_t{64} << 10;

bool Absurd(std::uint64_t span, std::uint64_t data, std::uint64_t max_file) {
  if (span > max_file) return true;
  const std::uint64_t fill = span - std::min(span, data);
  return fill > kMaxFill && span / kFillFactor > data;
}

std::string Why(std::uint64_t span, std::uint64_t data, std::uint64_t max_file) {
  if (span > max_file) {
    return std::to_string(span) + " bytes, more than the file limit of " + std::to_string(max_file);
  }
  return std::to_string(span) + " bytes for " + std::to_string(data) + " bytes of data";
}

const std::array<std::uint8_t, 65536>& Erased() {
  static const auto block = [] {
    std::array<std::uint8_t, 65536> bytes{};
    bytes.fill(0xff);
    return bytes;
  }();
  return block;
}

Status Outcome(const Error& error) {
  if (ShouldStop(error)) return tl::unexpected(error);
  return Ok();  // the sink recorded a refused entry as a gap
}

}  // namespace

std::string HexAddress(std::uint64_t address) {
  char text[24];
  std::snprintf(text, sizeof(text), "0x%08llx", static_cast<unsigned long long>(address));
  return text;
}

bool IsHexDigit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

Line NextLine(std::string_view text, std::size_t pos, std::size_t max_chars) {
  Line line;
  const std::size_t window = std::min(text.size() - pos, max_chars);
  const std::size_t found = text.substr(pos, window).find_first_of("\r\n");
  std::size_t end = pos + window;
  if (found == std::string_view::npos) {
    line.next = end;
    line.at_end = end == text.size();
  } else {
    end = pos + found;
    line.terminated = true;
    line.next = end + 1;
    if (text[end] == '\r' && line.next < text.size() && text[line.next] == '\n') ++line.next;
  }
  line.content = text.substr(pos, end - pos);
  while (!line.content.empty() && (line.content.back() == ' ' || line.content.back() == '\t')) {
    line.content.remove_suffix(1);
  }
  return line;
}

bool IsCutRecord(const Line& line, char lead, std::size_t max_chars) {
  return line.at_end && !line.content.empty() && line.content[0] == lead &&
         line.content.size() < max_chars &&
         std::all_of(line.content.begin() + 1, line.content.end(), IsHexDigit);
}

int HexByte(char high, char low) {
  const auto digit = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int h = digit(high);
  const int l = digit(low);
  return h < 0 || l < 0 ? -1 : h * 16 + l;
}

void MemoryImage::Add(std::uint64_t address, ByteView bytes, std::uint64_t where) {
  if (bytes.empty()) return;
  pieces_.push_back(Piece{address, pool_.size(), bytes.size(), where, pieces_.size()});
  pool_.insert(pool_.end(), bytes.begin(), bytes.end());
  lowest_ = std::min(lowest_, address);
  highest_ = std::max(highest_, address + bytes.size() - 1);
}

Status MemoryImage::Write(ExtractContext& ctx, const std::string& stem) const {
  if (pieces_.empty()) return Ok();
  Pieces sorted = pieces_;
  std::sort(sorted.begin(), sorted.end(), [](const Piece& a, const Piece& b) {
    return a.address != b.address ? a.address < b.address : a.order < b.order;
  });
  const std::uint64_t max_file = ctx.budget().limits().max_file_bytes;
  const std::uint64_t span = highest_ - lowest_ + 1;
  if (!Absurd(span, pool_.size(), max_file)) {
    return WriteRegion(ctx, sorted, 0, sorted.size(), stem + ".bin");
  }
  ctx.AddGap(GapKind::kLimit, sorted.front().where,
             "the data spans " + HexAddress(lowest_) + "-" + HexAddress(highest_) + " (" +
                 Why(span, pool_.size(), max_file) +
                 "); written as separate regions instead of one image");
  std::size_t begin = 0;
  std::uint64_t end = sorted[0].address + sorted[0].length;
  for (std::size_t i = 1; i <= sorted.size(); ++i) {
    if (i < sorted.size() && (sorted[i].address <= end || sorted[i].address - end <= kRegionHole)) {
      end = std::max(end, sorted[i].address + sorted[i].length);
      continue;
    }
    const std::uint64_t start = sorted[begin].address;
    std::uint64_t data = 0;
    for (std::size_t k = begin; k < i; ++k) data += sorted[k].length;
    if (Absurd(end - start, data, max_file)) {
      ctx.AddGap(GapKind::kLimit, sorted[begin].where,
                 "the region at " + HexAddress(start) + " is not written (" +
                     Why(end - start, data, max_file) + ")");
    } else {
      IOTMARK_TRY(WriteRegion(ctx, sorted, begin, i, stem + "@" + HexAddress(start) + ".bin"));
    }
    if (i < sorted.size()) {
      begin = i;
      end = sorted[i].address + sorted[i].length;
    }
  }
  return Ok();
}

Status MemoryImage::WriteRegion(ExtractContext& ctx, const Pieces& pieces, std::size_t begin,
                                std::size_t end, const std::string& name) const {
  auto created = ctx.sink().CreateFile(name, 0644);
  if (!created) return Outcome(created.error());
  FileWriter writer = std::move(*created);
  std::uint64_t cursor = pieces[begin].address;
  std::uint64_t overlaps = 0;
  std::uint64_t first_overlap = 0;
  for (std::size_t i = begin; i < end; ++i) {
    const Piece& piece = pieces[i];
    std::uint64_t skip = 0;
    if (piece.address < cursor) {
      if (overlaps++ == 0) first_overlap = piece.where;
      skip = std::min(piece.length, cursor - piece.address);
    }
    while (cursor < piece.address) {
      const std::uint64_t n = std::min<std::uint64_t>(Erased().size(), piece.address - cursor);
      if (auto wrote = writer.Write(ByteView(Erased().data(), n)); !wrote) {
        return Outcome(wrote.error());
      }
      cursor += n;
    }
    if (skip < piece.length) {
      const ByteView bytes(pool_.data() + piece.offset + skip, piece.length - skip);
      if (auto wrote = writer.Write(bytes); !wrote) return Outcome(wrote.error());
      cursor = piece.address + piece.length;
    }
  }
  if (auto closed = writer.Close(); !closed) return Outcome(closed.error());
  if (overlaps > 0) {
    ctx.AddGap(GapKind::kCorrupt, first_overlap,
               std::to_string(overlaps) +
                   " record(s) overlap addresses already filled by another record; the data "
                   "written first is kept");
  }
  return Ok();
}

}  // namespace iotmark::unpack::formats::hex_text
