// gzip (RFC 1952): one member per chunk. The header is parsed here to reject false matches and to
// learn the original name; zlib decodes the member and checks its CRC-32 and length trailer.
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>

#include "iotmark/unpack/codec/codec.hpp"
#include "iotmark/unpack/codec/decode_to_file.hpp"
#include "iotmark/unpack/extract_context.hpp"
#include "iotmark/unpack/format.hpp"

namespace iotmark::unpack::formats {

namespace {

constexpr std::uint8_t kFlagText = 0x01;
constexpr std::uint8_t kFlagHeaderCrc = 0x02;
constexpr std::uint8_t kFlagExtra = 0x04;
constexpr std::uint8_t kFlagName = 0x08;
constexpr std::uint8_t kFlagComment = 0x10;
constexpr std::uint8_t kFlagReserved = 0xe0;
// Longer names or comments than this are not what gzip writes; treat them as a false match.
constexpr std::size_t kMaxName = 1024;
constexpr std::size_t kMaxComment = 64 * 1024;
// Deflate output decoded by the probe to tell a real member from a chance match.
constexpr std::uint64_t kProbeOutput = 4096;

struct Header {
  std::size_t size = 0;  // bytes before the deflate data
  std::uint8_t flags = 0;
  std::uint32_t mtime = 0;
  std::uint8_t os = 0;
  std::string name;  // FNAME as stored (may be empty)
};

// Reads a NUL-terminated field starting at `pos`, at most `max` bytes before the NUL.
std::optional<std::string_view> ReadZeroTerminated(ByteView bytes, std::size_t pos,
                                                   std::size_t max) {
  if (pos > bytes.size()) return std::nullopt;
  const std::size_t limit = std::min(bytes.size() - pos, max + 1);
  const auto* begin = bytes.data() + pos;
  const void* nul = std::memchr(begin, 0, limit);
  if (nul == nullptr) return std::nullopt;
  return std::string_view(reinterpret_cast<const char*>(begin),
                          static_cast<const std::uint8_t*>(nul) - begin);
}

std::optional<Header> ParseHeader(ByteView bytes) {
  if (bytes.size() < 10 || bytes[0] != 0x1f || bytes[1] != 0x8b || bytes[2] != 8) {
    return std::nullopt;
  }
  Header header;
  header.flags = bytes[3];
  if ((header.flags & kFlagReserved) != 0) return std::nullopt;
  header.mtime = *LoadLe<std::uint32_t>(bytes, 4);
  header.os = bytes[9];
  if (header.os > 13 && header.os != 255) return std::nullopt;
  std::size_t pos = 10;
  if ((header.flags & kFlagExtra) != 0) {
    const auto xlen = LoadLe<std::uint16_t>(bytes, pos);
    if (!xlen || bytes.size() - pos - 2 < *xlen) return std::nullopt;
    pos += 2 + std::size_t{*xlen};
  }
  if ((header.flags & kFlagName) != 0) {
    const auto name = ReadZeroTerminated(bytes, pos, kMaxName);
    if (!name) return std::nullopt;
    header.name = std::string(*name);
    pos += name->size() + 1;
  }
  if ((header.flags & kFlagComment) != 0) {
    const auto comment = ReadZeroTerminated(bytes, pos, kMaxComment);
    if (!comment) return std::nullopt;
    pos += comment->size() + 1;
  }
  if ((header.flags & kFlagHeaderCrc) != 0) {
    const auto stored = LoadLe<std::uint16_t>(bytes, pos);
    if (!stored) return std::nullopt;
    const auto crc = crc32(0L, bytes.data(), static_cast<uInt>(pos));
    if ((crc & 0xffff) != *stored) return std::nullopt;
    pos += 2;
  }
  header.size = pos;
  return header;
}

// The stored name reduced to a harmless basename: no directories, no control characters.
std::string SafeBaseName(std::string_view stored) {
  const std::size_t slash = stored.find_last_of("/\\");
  if (slash != std::string_view::npos) stored.remove_prefix(slash + 1);
  std::string name;
  for (char c : stored) {
    if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) name.push_back(c);
  }
  if (name.size() > 255) name.resize(255);
  if (name == "." || name == "..") name.clear();
  return name;
}

std::string OsName(std::uint8_t os) {
  static constexpr std::array<std::string_view, 14> kNames = {
      "fat",       "amiga",    "vms",  "unix",    "vm/cms", "atari", "hpfs",
      "macintosh", "z-system", "cp/m", "tops-20", "ntfs",   "qdos",  "acorn"};
  return os < kNames.size() ? std::string(kNames[os]) : "unknown";
}

class GzipFormat final : public Format {
 public:
  std::string_view name() const override { return "gzip"; }
  std::string_view description() const override { return "gzip compressed stream (RFC 1952)"; }
  std::span<const Magic> magics() const override { return kMagics; }

  std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const ByteView rest = blob.subspan(start);
    const auto header = ParseHeader(rest);
    if (!header) return std::nullopt;
    // The deflate data must decode; a member cut short by the end of the blob still counts.
    // Raw deflate has no check of its own, so a member that ends within the sample must also
    // match its CRC-32 and length trailer.
    uLong crc = crc32(0L, nullptr, 0);
    const codec::Output checksum = [&crc](ByteView piece) {
      crc = crc32(crc, piece.data(), static_cast<uInt>(piece.size()));
      return Ok();
    };
    codec::DecodeOptions options;
    options.max_output = kProbeOutput;
    const ByteView deflate = rest.subspan(header->size);
    const auto sample = codec::DecodeStream(codec::Codec::kDeflate, deflate, checksum, options);
    if (sample.stop == codec::Stop::kEnd) {
      const auto stored_crc = LoadLe<std::uint32_t>(deflate, sample.consumed);
      const auto stored_size = LoadLe<std::uint32_t>(deflate, sample.consumed + 4);
      if (stored_crc && stored_size &&
          (*stored_crc != crc || *stored_size != static_cast<std::uint32_t>(sample.produced))) {
        return std::nullopt;
      }
    } else if (sample.stop != codec::Stop::kOutputLimit &&
               !(sample.stop == codec::Stop::kTruncated && sample.consumed > 0)) {
      return std::nullopt;
    }
    Chunk chunk;
    chunk.offset = start;
    chunk.length = rest.size();
    chunk.length_from_extract = true;
    if (!header->name.empty()) chunk.meta["original_name"] = SafeBaseName(header->name);
    if (header->mtime != 0) chunk.meta["mtime"] = std::to_string(header->mtime);
    chunk.meta["os"] = OsName(header->os);
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    const auto header = ParseHeader(chunk);
    std::string name;
    if (header) name = SafeBaseName(header->name);
    if (name.empty()) name = ctx.DecompressedName({".gz", ".tgz"});
    auto result = codec::DecodeToFile(codec::Codec::kGzip, chunk, name, ctx);
    if (!result) return tl::unexpected(result.error());
    if (result->complete) ctx.SetMeta("check", "crc32 ok");
    return Ok();
  }

 private:
  static constexpr std::array<Magic, 1> kMagics = {Magic{"\x1f\x8b\x08", 0}};
};

}  // namespace

std::unique_ptr<const Format> MakeGzipFormat() { return std::make_unique<GzipFormat>(); }

}  // namespace iotmark::unpack::formats
