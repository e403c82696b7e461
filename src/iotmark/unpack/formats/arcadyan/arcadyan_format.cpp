// Arcadyan's obfuscated firmware (eCos-era routers sold under many brands): a 4-byte signature
// word, then an LZMA ("alone") stream whose first bytes were scrambled - the 32-byte blocks at 4
// and at 0x68 swapped, the block now at 4 nibble-swapped and byte-pair-swapped - so that the
// LZMA header does not show. Images end with a 12-byte little-endian trailer: the length of the
// signed part, the word 0x12345678 and a CRC-32 of the signed part.
// Facts from binwalk's Arcadyan deobfuscator; the trailer was read off binwalk's sample. The
// de-obfuscation is written here (no library knows it); the LZMA stream itself is left to the
// lzma format, which the recursive unpacker runs on the written "payload.lzma".
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "iotmark/unpack/codec/codec.hpp"
#include "iotmark/unpack/entry_sink.hpp"
#include "iotmark/unpack/extract_context.hpp"
#include "iotmark/unpack/format.hpp"

namespace iotmark::unpack::formats {

namespace {

using model::GapKind;

constexpr std::size_t kBlockSize = 32;
constexpr std::size_t kBlock1 = 4;
constexpr std::size_t kBlock2 = 0x68;
constexpr std::size_t kScrambledSize = kBlock2 + kBlockSize;  // 0x88
constexpr std::size_t kLzmaOffset = 4;
constexpr std::size_t kLzmaHeaderSize = 13;
// Images are loaded into RAM whole; binwalk caps them at 1.7 MiB, we allow more.
constexpr std::uint64_t kMaxImage = std::uint64_t{16} << 20;
constexpr std::uint64_t kMaxPlausibleSize = std::uint64_t{1} << 30;
constexpr std::size_t kProbeWindow = 64 * 1024;
constexpr std::uint64_t kProbeOutput = 4096;
constexpr std::uint32_t kTrailerMagic = 0x12345678;
constexpr std::size_t kTrailerSize = 12;
// Between the end of the stream and the trailer there may be some filler (1030 bytes in the
// sample, ending the image on a 1 KiB boundary).
constexpr std::uint64_t kMaxFiller = 64 * 1024;
constexpr std::size_t kMaxTrailerCandidates = 4;
constexpr std::uint32_t kFileMode = 0644;

std::uint8_t SwapNibbles(std::uint8_t b) { return static_cast<std::uint8_t>((b << 4) | (b >> 4)); }

// Undoes the scrambling of the first 0x88 bytes in place (`bytes` must hold at least that many).
void Deobfuscate(std::span<std::uint8_t> bytes) {
  std::array<std::uint8_t, kBlockSize> block{};
  std::memcpy(block.data(), bytes.data() + kBlock1, kBlockSize);
  std::memcpy(bytes.data() + kBlock1, bytes.data() + kBlock2, kBlockSize);
  std::memcpy(bytes.data() + kBlock2, block.data(), kBlockSize);
  for (std::size_t i = kBlock1; i < kBlock1 + kBlockSize; i += 2) {
    const std::uint8_t a = SwapNibbles(bytes[i]);
    bytes[i] = SwapNibbles(bytes[i + 1]);
    bytes[i + 1] = a;
  }
}

// The de-obfuscated first `limit` bytes of `rest`.
std::vector<std::uint8_t> Clear(ByteView rest, std::size_t limit) {
  std::vector<std::uint8_t> out(
      rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(std::min(rest.size(), limit)));
  if (out.size() >= kScrambledSize) Deobfuscate(out);
  return out;
}

struct LzmaHeader {
  std::uint8_t properties = 0;
  std::uint32_t dictionary = 0;
  std::uint64_t size = 0;
};

std::optional<LzmaHeader> ParseLzmaHeader(ByteView clear) {
  ByteReader reader(clear.subspan(std::min(clear.size(), kLzmaOffset)));
  LzmaHeader header;
  header.properties = reader.Read<std::uint8_t>();
  header.dictionary = reader.Read<std::uint32_t>();
  header.size = reader.Read<std::uint64_t>();
  const std::uint8_t first = reader.Read<std::uint8_t>();  // the range coder starts with 0
  if (!reader.ok() || first != 0 || header.properties >= 9 * 5 * 5) return std::nullopt;
  if (header.dictionary < (1u << 12) || header.dictionary > (1u << 27)) return std::nullopt;
  if (header.size != UINT64_MAX && (header.size == 0 || header.size >= kMaxPlausibleSize)) {
    return std::nullopt;
  }
  return header;
}

struct Trailer {
  std::uint64_t signed_length = 0;  // bytes from the image start the CRC covers
  std::uint64_t end = 0;            // end of the trailer, from the image start
  bool crc_ok = false;
};

// The trailer whose length field points back to a plausible stream end and whose CRC matches.
std::optional<Trailer> FindTrailer(ByteView rest) {
  const ByteView window = rest.first(std::min<std::uint64_t>(rest.size(), kMaxImage));
  static constexpr std::uint8_t kMagic[4] = {0x78, 0x56, 0x34, 0x12};
  std::size_t tried = 0;
  auto it = window.begin() + kScrambledSize;
  while (tried < kMaxTrailerCandidates) {
    it = std::search(it, window.end(), std::begin(kMagic), std::end(kMagic));
    if (it == window.end()) break;
    const auto at = static_cast<std::size_t>(it - window.begin());
    ++it;
    if (at + 8 > window.size()) break;
    const std::uint64_t length = LoadLe<std::uint32_t>(window, at - 4).value_or(0);
    if (length <= kScrambledSize || length > at - 4 || at - 4 - length > kMaxFiller) continue;
    ++tried;
    const std::uint32_t stated = LoadLe<std::uint32_t>(window, at + 4).value_or(0);
    const auto crc = static_cast<std::uint32_t>(crc32_z(0, window.data(), length));
    if (crc == stated) return Trailer{length, at + 8, true};
  }
  return std::nullopt;
}

// A trailer right where a decoded stream ends, even with a wrong CRC (for the gap report).
std::optional<Trailer> TrailerAfter(ByteView rest, std::uint64_t stream_end) {
  for (std::uint64_t at = stream_end;
       at + kTrailerSize <= rest.size() && at < stream_end + kMaxFiller + kTrailerSize; ++at) {
    if (LoadLe<std::uint32_t>(rest, at + 4).value_or(0) != kTrailerMagic) continue;
    if (LoadLe<std::uint32_t>(rest, at).value_or(0) != stream_end) continue;
    const std::uint32_t stated = LoadLe<std::uint32_t>(rest, at + 8).value_or(0);
    const auto crc = static_cast<std::uint32_t>(crc32_z(0, rest.data(), stream_end));
    return Trailer{stream_end, at + kTrailerSize, crc == stated};
  }
  return std::nullopt;
}

std::string Hex32(std::uint32_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "0x";
  for (int shift = 28; shift >= 0; shift -= 4) out.push_back(kDigits[(value >> shift) & 0xf]);
  return out;
}

class ArcadyanFormat final : public Format {
 public:
  [[nodiscard]] std::string_view name() const override { return "arcadyan"; }
  [[nodiscard]] std::string_view description() const override {
    return "Arcadyan obfuscated LZMA firmware";
  }
  [[nodiscard]] std::span<const Magic> magics() const override { return kMagics; }

  [[nodiscard]] std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size() || blob.size() - start <= kScrambledSize) return std::nullopt;
    const ByteView rest = blob.subspan(start);
    const std::vector<std::uint8_t> clear = Clear(rest, kProbeWindow);
    const auto lzma = ParseLzmaHeader(clear);
    if (!lzma) return std::nullopt;
    if (!codec::LooksValid(codec::Codec::kLzmaAlone, ByteView(clear).subspan(kLzmaOffset),
                           kProbeOutput)) {
      return std::nullopt;
    }
    Chunk chunk;
    chunk.offset = start;
    chunk.meta["signature"] = Hex32(LoadLe<std::uint32_t>(rest, 0).value_or(0));
    chunk.meta["lzma_properties"] = std::to_string(lzma->properties);
    chunk.meta["lzma_dictionary_size"] = std::to_string(lzma->dictionary);
    if (lzma->size != UINT64_MAX) chunk.meta["stated_size"] = std::to_string(lzma->size);
    if (const auto trailer = FindTrailer(rest)) {
      chunk.length = trailer->end;
      chunk.meta["trailer_crc"] = "ok";
      chunk.meta["signed_length"] = std::to_string(trailer->signed_length);
    } else {
      // No intact trailer: the stream's own end decides, which only decoding tells.
      chunk.length = rest.size();
      chunk.length_from_extract = true;
    }
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& info, ExtractContext& ctx) const override {
    if (chunk.size() <= kScrambledSize) {
      return Fail(ErrorCode::kCorruptInput, "Arcadyan image shorter than its scrambled header");
    }
    std::uint64_t stream_end = chunk.size();
    if (!info.length_from_extract) {
      stream_end = LoadLe<std::uint32_t>(chunk, chunk.size() - kTrailerSize).value_or(0);
      if (stream_end <= kScrambledSize || stream_end > chunk.size()) {
        return Fail(ErrorCode::kCorruptInput, "Arcadyan trailer does not parse");
      }
    } else {
      stream_end = FindStreamEnd(chunk, ctx);
    }
    return WritePayload(chunk, stream_end, ctx);
  }

 private:
  // Decodes the stream (output discarded) to learn where it ends, and tells the unpacker how much
  // of the blob the image used, its trailer included when one follows.
  static std::uint64_t FindStreamEnd(ByteView chunk, ExtractContext& ctx) {
    const ByteView window = chunk.first(std::min<std::uint64_t>(chunk.size(), kMaxImage));
    std::vector<std::uint8_t> clear = Clear(window, window.size());
    // The output is thrown away, but a bomb would still cost time: bound it as a file would be.
    const Limits& limits = ctx.budget().limits();
    codec::DecodeOptions options;
    options.max_output = std::min<std::uint64_t>(
        limits.max_file_bytes,
        static_cast<std::uint64_t>(limits.max_ratio * static_cast<double>(window.size())) +
            limits.ratio_floor_bytes);
    const codec::Output discard = [&ctx](ByteView) { return ctx.budget().CheckTime(); };
    const auto result = codec::DecodeStream(codec::Codec::kLzmaAlone,
                                            ByteView(clear).subspan(kLzmaOffset), discard, options);
    if (!result.complete) {
      ctx.AddGap(codec::GapKindOf(result.stop), kLzmaOffset + result.consumed,
                 "Arcadyan LZMA stream does not decode to its end: " + result.problem);
      ctx.SetConsumed(window.size());
      return window.size();
    }
    const std::uint64_t end = kLzmaOffset + result.consumed;
    ctx.SetConsumed(end);
    if (const auto trailer = TrailerAfter(chunk, end)) {
      ctx.SetConsumed(trailer->end);
      ctx.SetMeta("trailer_crc", trailer->crc_ok ? "ok" : "mismatch");
      if (!trailer->crc_ok) {
        ctx.AddGap(GapKind::kCorrupt, trailer->end - 4,
                   "Arcadyan trailer CRC-32 does not match the image");
      }
    } else {
      ctx.SetMeta("trailer_crc", "absent");
    }
    return end;
  }

  // Writes the de-obfuscated LZMA stream: the repaired head from a copy, the rest as it is.
  static Status WritePayload(ByteView chunk, std::uint64_t stream_end, ExtractContext& ctx) {
    const std::vector<std::uint8_t> head = Clear(chunk, kScrambledSize);
    auto file = ctx.sink().CreateFile("payload.lzma", kFileMode);
    if (!file) return ShouldStop(file.error()) ? Status(tl::unexpected(file.error())) : Ok();
    IOTMARK_TRY(file->Write(ByteView(head).subspan(kLzmaOffset)));
    IOTMARK_TRY(file->Write(chunk.subspan(kScrambledSize, stream_end - kScrambledSize)));
    return file->Close();
  }

  // The scrambled LZMA header: properties 0x5d with a 1, 2, 4 or 8 MiB dictionary, as it
  // appears at 0x68 after scrambling.
  static constexpr Magic kMagics[] = {
      {std::string_view("\x00\xd5\x01\x00", 4), kBlock2},
      {std::string_view("\x00\xd5\x02\x00", 4), kBlock2},
      {std::string_view("\x00\xd5\x04\x00", 4), kBlock2},
      {std::string_view("\x00\xd5\x08\x00", 4), kBlock2},
  };
};

}  // namespace

std::unique_ptr<const Format> MakeArcadyanFormat() { return std::make_unique<ArcadyanFormat>(); }

}  // namespace iotmark::unpack::formats
