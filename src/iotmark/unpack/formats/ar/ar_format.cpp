// ar archives (Unix static libraries, Debian packages; GNU and BSD long names): the probe walks
// the 60-byte member headers and ends after the last valid member; libarchive extracts.
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

constexpr std::string_view kGlobalHeader = "!<arch>\n"sv;
constexpr Magic kMagics[] = {{kGlobalHeader, 0}};
constexpr std::uint64_t kMemberHeaderSize = 60;

// A decimal (or octal) header field: digits, then only spaces. Empty is allowed where `empty_ok`.
std::optional<std::uint64_t> ParseField(ByteView field, unsigned base, bool empty_ok) {
  std::uint64_t value = 0;
  std::size_t i = 0;
  for (; i < field.size() && field[i] != ' '; ++i) {
    const unsigned digit = static_cast<unsigned>(field[i]) - '0';
    if (digit >= base) return std::nullopt;
    if (value > (UINT64_MAX - digit) / base) return std::nullopt;
    value = value * base + digit;
  }
  if (i == 0 && !empty_ok) return std::nullopt;
  for (; i < field.size(); ++i) {
    if (field[i] != ' ') return std::nullopt;
  }
  return value;
}

// The size of the member whose header is `header`, or nullopt if it is not a member header.
std::optional<std::uint64_t> MemberSize(ByteView header) {
  if (AsChars(header.subspan(58, 2)) != "`\n") return std::nullopt;
  // GNU symbol tables and some tools leave mtime, uid, gid or mode blank.
  if (!ParseField(header.subspan(16, 12), 10, true) ||
      !ParseField(header.subspan(28, 6), 10, true) ||
      !ParseField(header.subspan(34, 6), 10, true) || !ParseField(header.subspan(40, 8), 8, true)) {
    return std::nullopt;
  }
  if (header[0] == ' ' || header[0] == 0) return std::nullopt;  // a name is required
  return ParseField(header.subspan(48, 10), 10, false);
}

class ArFormat final : public Format {
 public:
  std::string_view name() const override { return "ar"; }
  std::string_view description() const override { return "ar archive"; }
  std::span<const Magic> magics() const override { return kMagics; }

  std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start > blob.size() || blob.size() - start < kGlobalHeader.size() ||
        AsChars(blob.subspan(start, kGlobalHeader.size())) != kGlobalHeader) {
      return std::nullopt;
    }
    Chunk chunk;
    chunk.offset = start;
    std::uint64_t pos = start + kGlobalHeader.size();
    std::uint64_t members = 0;
    while (blob.size() - pos >= kMemberHeaderSize) {
      const auto size = MemberSize(blob.subspan(pos, kMemberHeaderSize));
      if (!size) break;
      const std::uint64_t available = blob.size() - pos - kMemberHeaderSize;
      ++members;
      if (*size > available) {
        chunk.issues.push_back({model::GapKind::kTruncated,
                                "a member's data runs past the end of the blob (truncated)"});
        pos = blob.size();
        break;
      }
      // Members start at even offsets; the padding byte of the last one may be missing.
      const std::uint64_t padded = *size + (*size & 1);
      pos += kMemberHeaderSize + std::min(padded, available);
    }
    if (members == 0) return std::nullopt;
    chunk.length = pos - start;
    chunk.meta["members"] = std::to_string(members);
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& info, ExtractContext& ctx) const override {
    return archive::ReadArchive(chunk, archive::ArchiveFormat::kAr, ctx,
                                archive::IsTruncated(info));
  }
};

}  // namespace

std::unique_ptr<const Format> MakeArFormat() { return std::make_unique<ArFormat>(); }

}  // namespace iotmark::unpack::formats
