// bzip2, one stream per chunk ("BZh" + block size + the 48-bit block or end-of-stream magic).
// Nothing in the stream states its length, so libbz2 finds the end (length_from_extract); a
// stream of pbzip2 or a concatenation is carved as one chunk per stream.
#include <array>
#include <cstring>
#include <memory>

#include "iotmark/unpack/codec/codec.hpp"
#include "iotmark/unpack/codec/decode_to_file.hpp"
#include "iotmark/unpack/extract_context.hpp"
#include "iotmark/unpack/format.hpp"

namespace iotmark::unpack::formats {

namespace {

constexpr std::array<std::uint8_t, 6> kBlockMagic = {0x31, 0x41, 0x59, 0x26, 0x53, 0x59};
constexpr std::array<std::uint8_t, 6> kEndMagic = {0x17, 0x72, 0x45, 0x38, 0x50, 0x90};

constexpr std::array<Magic, 9> kMagics = {Magic{"BZh1", 0}, Magic{"BZh2", 0}, Magic{"BZh3", 0},
                                          Magic{"BZh4", 0}, Magic{"BZh5", 0}, Magic{"BZh6", 0},
                                          Magic{"BZh7", 0}, Magic{"BZh8", 0}, Magic{"BZh9", 0}};

class Bzip2Format final : public Format {
 public:
  std::string_view name() const override { return "bzip2"; }
  std::string_view description() const override { return "bzip2 compressed stream"; }
  std::span<const Magic> magics() const override { return kMagics; }

  std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size() || blob.size() - start < 14) return std::nullopt;
    const ByteView rest = blob.subspan(start);
    if (rest[0] != 'B' || rest[1] != 'Z' || rest[2] != 'h' || rest[3] < '1' || rest[3] > '9') {
      return std::nullopt;
    }
    // Ten bytes of magic are enough: decoding a first block would mean up to 900 KB of work
    // per candidate, and damage is reported by the extractor anyway.
    const bool block = std::memcmp(rest.data() + 4, kBlockMagic.data(), kBlockMagic.size()) == 0;
    const bool end = std::memcmp(rest.data() + 4, kEndMagic.data(), kEndMagic.size()) == 0;
    if (!block && !end) return std::nullopt;
    if (block) {
      // After the block CRC: a "randomised" bit that bzip2 0.9.5 and later never set, and the
      // 24-bit BWT origin pointer, which lies inside the block.
      if (rest.size() < 18 || (rest[14] & 0x80) != 0) return std::nullopt;
      const std::uint32_t origin = (std::uint32_t{rest[14] & 0x7fU} << 17) |
                                   (std::uint32_t{rest[15]} << 9) | (std::uint32_t{rest[16]} << 1) |
                                   (rest[17] >> 7);
      if (origin >= static_cast<std::uint32_t>(rest[3] - '0') * 100000) return std::nullopt;
    }
    Chunk chunk;
    chunk.offset = start;
    chunk.length = rest.size();
    chunk.length_from_extract = true;
    chunk.meta["block_size"] = std::to_string(rest[3] - '0') + "00k";
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    auto result = codec::DecodeToFile(codec::Codec::kBzip2, chunk,
                                      ctx.DecompressedName({".bz2", ".tbz2"}), ctx);
    if (!result) return tl::unexpected(result.error());
    return Ok();
  }
};

}  // namespace

std::unique_ptr<const Format> MakeBzip2Format() { return std::make_unique<Bzip2Format>(); }

}  // namespace iotmark::unpack::formats
