// tar (POSIX ustar, pax and GNU): the probe walks the 512-byte headers, checking each header's
// checksum, to the end-of-archive blocks; libarchive extracts.
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "iotmark/unpack/archive/libarchive_reader.hpp"
#include "iotmark/unpack/format.hpp"

namespace iotmark::unpack::formats {

namespace {

using namespace std::string_view_literals;

constexpr std::uint64_t kBlock = 512;
constexpr std::size_t kMagicOffset = 257;
// pax extended headers larger than this are not read for a size override (libarchive refuses
// pax bodies over 1 MiB as well).
constexpr std::uint64_t kMaxPaxBody = std::uint64_t{1} << 20;

// POSIX ustar ("ustar\0" + version "00") and GNU ("ustar  \0"). Plain v7 tar has no magic and is
// not carved.
constexpr Magic kMagics[] = {{"ustar\0"sv, kMagicOffset}, {"ustar  \0"sv, kMagicOffset}};

// A numeric header field: octal digits (leading spaces, ended by a space or NUL) or, when the
// first byte has its high bit set, GNU base-256 (negative values are refused).
std::optional<std::uint64_t> ParseNumber(ByteView field) {
  if (field.empty()) return std::nullopt;
  if ((field[0] & 0x80) != 0) {
    if ((field[0] & 0x40) != 0) return std::nullopt;  // negative
    std::uint64_t value = field[0] & 0x3f;
    for (std::size_t i = 1; i < field.size(); ++i) {
      if (value > (UINT64_MAX >> 8)) return std::nullopt;
      value = (value << 8) | field[i];
    }
    return value;
  }
  std::size_t i = 0;
  while (i < field.size() && field[i] == ' ') ++i;
  std::uint64_t value = 0;
  bool digits = false;
  for (; i < field.size(); ++i) {
    const std::uint8_t c = field[i];
    if (c == ' ' || c == 0) break;
    if (c < '0' || c > '7') return std::nullopt;
    if (value > (UINT64_MAX >> 3)) return std::nullopt;
    value = (value << 3) | static_cast<std::uint64_t>(c - '0');
    digits = true;
  }
  // Only spaces and NULs may follow the number.
  for (; i < field.size(); ++i) {
    if (field[i] != ' ' && field[i] != 0) return std::nullopt;
  }
  if (!digits) return 0;
  return value;
}

// The header checksum: the sum of all 512 bytes with the checksum field read as spaces. Old tars
// summed signed chars; both are accepted.
bool ChecksumMatches(ByteView header) {
  const auto stored = ParseNumber(header.subspan(148, 8));
  if (!stored) return false;
  std::uint64_t unsigned_sum = 0;
  std::int64_t signed_sum = 0;
  for (std::size_t i = 0; i < kBlock; ++i) {
    const std::uint8_t byte = (i >= 148 && i < 156) ? std::uint8_t{' '} : header[i];
    unsigned_sum += byte;
    signed_sum += static_cast<std::int8_t>(byte);
  }
  return *stored == unsigned_sum || static_cast<std::int64_t>(*stored) == signed_sum;
}

bool IsPosixMagic(ByteView header) {
  return AsChars(header.subspan(kMagicOffset, 6)) == "ustar\0"sv;
}
bool IsGnuMagic(ByteView header) {
  return AsChars(header.subspan(kMagicOffset, 8)) == "ustar  \0"sv;
}

// The "size" record of a pax extended header, if it has one ("NN size=123\n" records).
std::optional<std::uint64_t> PaxSize(ByteView body) {
  std::optional<std::uint64_t> size;
  std::size_t pos = 0;
  while (pos < body.size()) {
    std::uint64_t length = 0;
    std::size_t i = pos;
    while (i < body.size() && body[i] >= '0' && body[i] <= '9' && length < kMaxPaxBody) {
      length = length * 10 + (body[i] - '0');
      ++i;
    }
    // The record must hold its length, a space, and at least the newline that ends it.
    if (i >= body.size() || body[i] != ' ' || length > body.size() - pos || i + 1 >= pos + length) {
      break;
    }
    const std::string_view record = AsChars(body.subspan(i + 1, pos + length - (i + 1)));
    if (record.starts_with("size=")) {
      std::uint64_t value = 0;
      bool ok = record.size() > 6 && record.back() == '\n';
      for (std::size_t k = 5; ok && k + 1 < record.size(); ++k) {
        const char c = record[k];
        if (c < '0' || c > '9' || value > UINT64_MAX / 10 - 9) ok = false;
        value = value * 10 + static_cast<std::uint64_t>(c - '0');
      }
      if (ok) size = value;
    }
    pos += length;
  }
  return size;
}

class TarFormat final : public Format {
 public:
  std::string_view name() const override { return "tar"; }
  std::string_view description() const override { return "tar archive (POSIX ustar, pax, GNU)"; }
  std::span<const Magic> magics() const override { return kMagics; }

  std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start > blob.size() || blob.size() - start < kBlock) return std::nullopt;
    const ByteView first = blob.subspan(start, kBlock);
    if (!IsPosixMagic(first) && !IsGnuMagic(first)) return std::nullopt;
    if (first[0] == 0 || !ChecksumMatches(first)) return std::nullopt;

    Chunk chunk;
    chunk.offset = start;
    std::uint64_t pos = start;
    std::uint64_t headers = 0;
    bool pax_seen = false;
    // The size a pax header gave for the next entry (0 = none); a plain integer rather than an
    // optional because GCC 12 misreads the optional's state here (-Wmaybe-uninitialized).
    std::uint64_t pax_size = 0;
    bool has_pax_size = false;
    while (true) {
      if (blob.size() - pos < kBlock) {
        // Ends inside a header, or without its end-of-archive blocks.
        chunk.issues.push_back(
            {model::GapKind::kTruncated, "the archive ends without its end-of-archive blocks"});
        pos = blob.size();
        break;
      }
      const ByteView header = blob.subspan(pos, kBlock);
      if (IsFilledWith(header, 0)) {
        // End of archive: two zero blocks (libarchive, like GNU tar, also accepts one).
        pos += kBlock;
        if (blob.size() - pos >= kBlock && IsFilledWith(blob.subspan(pos, kBlock), 0)) {
          pos += kBlock;
        }
        break;
      }
      const auto size = ParseNumber(header.subspan(124, 12));
      if (!size || header[0] == 0 || !ChecksumMatches(header)) {
        chunk.issues.push_back({model::GapKind::kCorrupt,
                                "the archive stops at an invalid header, without its "
                                "end-of-archive blocks"});
        break;
      }
      ++headers;
      const std::uint8_t type = header[156];
      bool carries_data = true;
      switch (type) {
        case '2':
        case '3':
        case '4':
        case '5':
        case '6':
          carries_data = false;
          break;
        // Hard links carry data only in pax archives (libarchive's reading of POSIX.1-2001).
        case '1':
          carries_data = pax_seen && IsPosixMagic(header);
          break;
        default:
          break;
      }
      std::uint64_t data = carries_data ? *size : 0;
      if (type == 'x' || type == 'g') {
        pax_seen = true;
      } else {
        if (has_pax_size && carries_data) data = pax_size;
        has_pax_size = false;
      }
      const std::uint64_t available = blob.size() - pos - kBlock;
      if (type == 'x' && data <= kMaxPaxBody && data <= available) {
        const auto parsed = PaxSize(blob.subspan(pos + kBlock, data));
        has_pax_size = parsed.has_value();
        pax_size = parsed.value_or(0);
      }
      if (data > available) {
        chunk.issues.push_back(
            {model::GapKind::kTruncated,
             "an entry's data runs past the end of the blob (the archive is truncated)"});
        pos = blob.size();
        break;
      }
      const std::uint64_t padded = data + ((kBlock - data % kBlock) % kBlock);
      pos += kBlock + std::min(padded, available);
    }
    chunk.length = pos - start;
    chunk.meta["headers"] = std::to_string(headers);
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& info, ExtractContext& ctx) const override {
    return archive::ReadArchive(chunk, archive::ArchiveFormat::kTar, ctx,
                                archive::IsTruncated(info));
  }
};

}  // namespace

std::unique_ptr<const Format> MakeTarFormat() { return std::make_unique<TarFormat>(); }

}  // namespace iotmark::unpack::formats
