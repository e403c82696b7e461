// LZMA "alone" streams (.lzma, and the kernels and root filesystems of many routers). The format
// has no magic: a properties byte, a dictionary size and a 64-bit uncompressed size. The carver
// looks for the common properties (0x5d: lc=3 lp=0 pb=2, the default; 0x6d: lc=1 lp=2 pb=2,
// OpenWrt's kernels) with power-of-two dictionaries from 64 KiB to 128 MiB, and the probe only
// accepts a header whose size is plausible and whose first kilobytes decode.
#include <array>
#include <memory>

#include "iotmark/unpack/codec/codec.hpp"
#include "iotmark/unpack/codec/decode_to_file.hpp"
#include "iotmark/unpack/extract_context.hpp"
#include "iotmark/unpack/format.hpp"

namespace iotmark::unpack::formats {

namespace {

constexpr std::size_t kHeaderSize = 13;
constexpr std::uint64_t kUnknownSize = UINT64_MAX;
// A stated size beyond this is not an image anyone compressed with lzma_alone.
constexpr std::uint64_t kMaxPlausibleSize = std::uint64_t{4} << 30;
constexpr std::uint64_t kProbeOutput = 4096;
// A stream the blob cuts short must have decoded at least this much to be believed.
constexpr std::uint64_t kMinTruncatedOutput = 1024;

#define IOTMARK_LZMA_MAGICS(props)                                     \
  Magic{std::string_view(props "\x00\x00\x01\x00", 5), 0},             \
      Magic{std::string_view(props "\x00\x00\x02\x00", 5), 0},         \
      Magic{std::string_view(props "\x00\x00\x04\x00", 5), 0},         \
      Magic{std::string_view(props "\x00\x00\x08\x00", 5), 0},         \
      Magic{std::string_view(props "\x00\x00\x10\x00", 5), 0},         \
      Magic{std::string_view(props "\x00\x00\x20\x00", 5), 0},         \
      Magic{std::string_view(props "\x00\x00\x40\x00", 5), 0},         \
      Magic{std::string_view(props "\x00\x00\x80\x00", 5), 0},         \
      Magic{std::string_view(props "\x00\x00\x00\x01", 5), 0},         \
      Magic{std::string_view(props "\x00\x00\x00\x02", 5), 0},         \
      Magic{std::string_view(props "\x00\x00\x00\x04", 5), 0}, Magic { \
    std::string_view(props "\x00\x00\x00\x08", 5), 0                   \
  }

constexpr std::array<Magic, 24> kMagics = {IOTMARK_LZMA_MAGICS("\x5d"),
                                           IOTMARK_LZMA_MAGICS("\x6d")};
#undef IOTMARK_LZMA_MAGICS

struct Header {
  std::uint8_t properties = 0;
  std::uint32_t dictionary_size = 0;
  std::uint64_t uncompressed_size = 0;
};

std::optional<Header> ParseHeader(ByteView bytes) {
  ByteReader reader(bytes);
  Header header;
  header.properties = reader.Read<std::uint8_t>();
  header.dictionary_size = reader.Read<std::uint32_t>();
  header.uncompressed_size = reader.Read<std::uint64_t>();
  // The range coder's first byte is always zero: one more byte of magic for free.
  const std::uint8_t first = reader.Read<std::uint8_t>();
  if (!reader.ok() || first != 0) return std::nullopt;
  if (header.properties >= 9 * 5 * 5) return std::nullopt;
  if (header.uncompressed_size != kUnknownSize &&
      (header.uncompressed_size == 0 || header.uncompressed_size >= kMaxPlausibleSize)) {
    return std::nullopt;
  }
  return header;
}

class LzmaFormat final : public Format {
 public:
  std::string_view name() const override { return "lzma"; }
  std::string_view description() const override { return "LZMA (lzma_alone) compressed stream"; }
  std::span<const Magic> magics() const override { return kMagics; }

  std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const ByteView rest = blob.subspan(start);
    const auto header = ParseHeader(rest);
    if (!header) return std::nullopt;
    const codec::Output discard = [](ByteView) { return Ok(); };
    codec::DecodeOptions options;
    options.max_output = kProbeOutput;
    const auto sample = codec::DecodeStream(codec::Codec::kLzmaAlone, rest, discard, options);
    const bool valid =
        (sample.stop == codec::Stop::kEnd && sample.produced > 0) ||
        sample.stop == codec::Stop::kOutputLimit ||
        (sample.stop == codec::Stop::kTruncated && sample.produced >= kMinTruncatedOutput);
    if (!valid) return std::nullopt;
    Chunk chunk;
    chunk.offset = start;
    chunk.length = rest.size();
    chunk.length_from_extract = true;
    chunk.meta["dictionary_size"] = std::to_string(header->dictionary_size);
    chunk.meta["properties"] = std::to_string(header->properties);
    if (header->uncompressed_size != kUnknownSize) {
      chunk.meta["stated_size"] = std::to_string(header->uncompressed_size);
    }
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    auto result =
        codec::DecodeToFile(codec::Codec::kLzmaAlone, chunk, ctx.DecompressedName({".lzma"}), ctx);
    if (!result) return tl::unexpected(result.error());
    return Ok();
  }
};

}  // namespace

std::unique_ptr<const Format> MakeLzmaFormat() { return std::make_unique<LzmaFormat>(); }

}  // namespace iotmark::unpack::formats
