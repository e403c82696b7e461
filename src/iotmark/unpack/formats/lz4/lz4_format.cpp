// LZ4: the frame format (lz4 CLI, one frame per chunk) and the legacy format (Linux kernels and
// initramfs). A frame's end is found by walking its block size fields, without decompressing;
// the legacy format has no end mark, so there the decoder decides (length_from_extract).
#include <lz4.h>
#include <lz4frame.h>

#include <array>
#include <memory>

#include "iotmark/unpack/codec/codec.hpp"
#include "iotmark/unpack/codec/decode_to_file.hpp"
#include "iotmark/unpack/extract_context.hpp"
#include "iotmark/unpack/format.hpp"

namespace iotmark::unpack::formats {

namespace {

constexpr std::uint32_t kFrameMagic = 0x184D2204;
constexpr std::uint32_t kLegacyMagic = 0x184C2102;
constexpr std::uint32_t kLegacyBound = LZ4_COMPRESSBOUND(8 << 20);
constexpr std::uint64_t kProbeOutput = 4096;

constexpr std::array<Magic, 2> kMagics = {Magic{"\x04\x22\x4d\x18", 0},
                                          Magic{"\x02\x21\x4c\x18", 0}};

std::uint32_t BlockMaxSize(LZ4F_blockSizeID_t id) {
  switch (id) {
    case LZ4F_max64KB:
      return 64U << 10;
    case LZ4F_max256KB:
      return 256U << 10;
    case LZ4F_max1MB:
      return 1U << 20;
    case LZ4F_max4MB:
      return 4U << 20;
    default:
      return 0;
  }
}

std::optional<Chunk> ProbeFrame(ByteView rest, std::uint64_t start) {
  // liblz4 parses the frame descriptor and checks its header checksum.
  LZ4F_dctx* dctx = nullptr;
  if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION))) return std::nullopt;
  LZ4F_frameInfo_t frame_info{};
  std::size_t header_size = rest.size();
  const std::size_t ret = LZ4F_getFrameInfo(dctx, &frame_info, rest.data(), &header_size);
  LZ4F_freeDecompressionContext(dctx);
  if (LZ4F_isError(ret) || frame_info.frameType != LZ4F_frame) return std::nullopt;
  const std::uint32_t block_max = BlockMaxSize(frame_info.blockSizeID);
  if (block_max == 0) return std::nullopt;
  const bool block_checksum = frame_info.blockChecksumFlag == LZ4F_blockChecksumEnabled;
  const bool content_checksum = frame_info.contentChecksumFlag == LZ4F_contentChecksumEnabled;

  Chunk chunk;
  chunk.offset = start;
  chunk.meta["variant"] = "frame";
  chunk.meta["block_max_size"] = std::to_string(block_max);
  if (frame_info.contentSize != 0) {
    chunk.meta["content_size"] = std::to_string(frame_info.contentSize);
  }
  if (content_checksum) chunk.meta["checksum"] = "xxh32";
  std::uint64_t pos = header_size;
  while (true) {
    const auto field = LoadLe<std::uint32_t>(rest, pos);
    if (!field) break;  // truncated
    pos += 4;
    if (*field == 0) {  // the end mark
      pos += content_checksum ? 4 : 0;
      if (pos > rest.size()) break;
      chunk.length = pos;
      return chunk;
    }
    const std::uint32_t size = *field & 0x7fffffffU;
    // A block larger than the frame's own maximum: this is not an LZ4 frame after all.
    if (size > block_max) return std::nullopt;
    pos += size + (block_checksum ? 4 : 0);
    if (pos > rest.size()) break;
  }
  // Cut short by the end of the blob: the decoder reports how far it got.
  chunk.length = rest.size();
  chunk.length_from_extract = true;
  return chunk;
}

std::optional<Chunk> ProbeLegacy(ByteView rest, std::uint64_t start) {
  const auto first = LoadLe<std::uint32_t>(rest, 4);
  if (!first || *first == 0 || *first > kLegacyBound) return std::nullopt;
  if (!codec::LooksValid(codec::Codec::kLz4Legacy, rest, kProbeOutput)) return std::nullopt;
  Chunk chunk;
  chunk.offset = start;
  chunk.length = rest.size();
  chunk.length_from_extract = true;
  chunk.meta["variant"] = "legacy";
  return chunk;
}

class Lz4Format final : public Format {
 public:
  std::string_view name() const override { return "lz4"; }
  std::string_view description() const override { return "LZ4 compressed frame or legacy stream"; }
  std::span<const Magic> magics() const override { return kMagics; }

  std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const ByteView rest = blob.subspan(start);
    const auto magic = LoadLe<std::uint32_t>(rest, 0);
    if (!magic) return std::nullopt;
    if (*magic == kFrameMagic) return ProbeFrame(rest, start);
    if (*magic == kLegacyMagic) return ProbeLegacy(rest, start);
    return std::nullopt;
  }

  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    const auto magic = LoadLe<std::uint32_t>(chunk, 0);
    const codec::Codec codec =
        magic && *magic == kLegacyMagic ? codec::Codec::kLz4Legacy : codec::Codec::kLz4Frame;
    auto result = codec::DecodeToFile(codec, chunk, ctx.DecompressedName({".lz4"}), ctx);
    if (!result) return tl::unexpected(result.error());
    return Ok();
  }
};

}  // namespace

std::unique_ptr<const Format> MakeLz4Format() { return std::make_unique<Lz4Format>(); }

}  // namespace iotmark::unpack::formats
