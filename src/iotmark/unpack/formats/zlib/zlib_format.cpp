// zlib streams (RFC 1950) as embedded by firmware tools and bootloaders. The header is only two
// bytes, which random and compressed data hold once every 64 KiB or so, so the probe insists on
// a stream that really decodes: a kilobyte of output, or a complete stream of some size whose
// Adler-32 matches.
#include <array>
#include <memory>

#include "iotmark/unpack/codec/codec.hpp"
#include "iotmark/unpack/codec/decode_to_file.hpp"
#include "iotmark/unpack/extract_context.hpp"
#include "iotmark/unpack/format.hpp"

namespace iotmark::unpack::formats {

namespace {

// CMF 0x78 (deflate, 32 KiB window) with the four FLG values zlib writes for its levels; each
// pair already satisfies FCHECK and has no preset dictionary.
constexpr std::array<Magic, 4> kMagics = {Magic{"\x78\x01", 0}, Magic{"\x78\x5e", 0},
                                          Magic{"\x78\x9c", 0}, Magic{"\x78\xda", 0}};
constexpr std::uint64_t kProbeOutput = 1024;
// A complete stream shorter than this is too small to be worth a chunk, and too easy to fake.
constexpr std::uint64_t kMinStreamSize = 32;

class ZlibFormat final : public Format {
 public:
  std::string_view name() const override { return "zlib"; }
  std::string_view description() const override { return "zlib compressed stream (RFC 1950)"; }
  std::span<const Magic> magics() const override { return kMagics; }

  std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const ByteView rest = blob.subspan(start);
    if (rest.size() < kMinStreamSize) return std::nullopt;
    const std::uint8_t cmf = rest[0];
    const std::uint8_t flg = rest[1];
    if ((cmf & 0x0f) != 8 || (cmf >> 4) > 7 || ((cmf << 8) | flg) % 31 != 0 || (flg & 0x20) != 0) {
      return std::nullopt;
    }
    const codec::Output discard = [](ByteView) { return Ok(); };
    codec::DecodeOptions options;
    options.max_output = kProbeOutput;
    const auto sample = codec::DecodeStream(codec::Codec::kZlib, rest, discard, options);
    const bool valid = sample.stop == codec::Stop::kOutputLimit ||
                       (sample.stop == codec::Stop::kEnd && sample.consumed >= kMinStreamSize);
    if (!valid) return std::nullopt;
    Chunk chunk;
    chunk.offset = start;
    if (sample.complete) {
      chunk.length = sample.consumed;  // the whole stream fitted in the probe
    } else {
      chunk.length = rest.size();
      chunk.length_from_extract = true;
    }
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    auto result = codec::DecodeToFile(codec::Codec::kZlib, chunk,
                                      ctx.DecompressedName({".zlib", ".zz"}), ctx);
    if (!result) return tl::unexpected(result.error());
    return Ok();
  }
};

}  // namespace

std::unique_ptr<const Format> MakeZlibFormat() { return std::make_unique<ZlibFormat>(); }

}  // namespace iotmark::unpack::formats
