// Zstandard, one frame per chunk (with the skippable frames that lead up to it, as pzstd writes
// them). The frame's exact end comes from its block headers (walked here, and by libzstd's
// ZSTD_findFrameCompressedSize), without decompressing the frame.
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <array>
#include <memory>

#include "iotmark/unpack/codec/codec.hpp"
#include "iotmark/unpack/codec/decode_to_file.hpp"
#include "iotmark/unpack/extract_context.hpp"
#include "iotmark/unpack/format.hpp"

namespace iotmark::unpack::formats {

namespace {

constexpr std::uint32_t kFrameMagic = 0xFD2FB528;
constexpr std::uint32_t kSkippableMagic = 0x184D2A50;  // pzstd's; 0x184D2A51..5F are rare
// pzstd's skippable frames hold 4 bytes; a long run of skippable frames is not a zstd file.
constexpr int kMaxSkippableFrames = 64;
constexpr std::uint64_t kBlockSizeMax = 128 * 1024;
constexpr std::uint64_t kProbeOutput = 1024;

constexpr std::array<Magic, 2> kMagics = {Magic{"\x28\xb5\x2f\xfd", 0},
                                          Magic{"\x50\x2a\x4d\x18", 0}};

// What the frame header says, read by hand: libzstd's own header parser is not in its stable API.
struct FrameHeader {
  std::size_t size = 0;             // bytes up to the first block
  std::uint64_t block_maximum = 0;  // min(window size, 128 KiB)
  std::optional<std::uint64_t> content_size;
  bool checksum = false;
  std::uint32_t dictionary_id = 0;
};

std::optional<FrameHeader> ParseFrameHeader(ByteView frame) {
  if (frame.size() < 6) return std::nullopt;
  const std::uint8_t descriptor = frame[4];
  const unsigned fcs_flag = descriptor >> 6;
  const bool single_segment = (descriptor & 0x20) != 0;
  if ((descriptor & 0x08) != 0) return std::nullopt;  // reserved bit
  FrameHeader header;
  header.checksum = (descriptor & 0x04) != 0;
  static constexpr std::array<std::size_t, 4> kDictionaryBytes = {0, 1, 2, 4};
  static constexpr std::array<std::size_t, 4> kContentBytes = {0, 2, 4, 8};
  std::size_t pos = 5;
  std::uint64_t window = 0;
  if (!single_segment) {
    const std::uint8_t descriptor_byte = frame[pos++];
    const unsigned exponent = descriptor_byte >> 3;
    if (exponent > 31 - 10) return std::nullopt;  // windows beyond 2 GiB do not exist
    const std::uint64_t base = std::uint64_t{1} << (10 + exponent);
    window = base + (base / 8) * (descriptor_byte & 7);
  }
  const std::size_t dictionary_bytes = kDictionaryBytes[descriptor & 3];
  const std::size_t content_bytes = single_segment && fcs_flag == 0 ? 1 : kContentBytes[fcs_flag];
  if (frame.size() < pos + dictionary_bytes + content_bytes) return std::nullopt;
  for (std::size_t i = 0; i < dictionary_bytes; ++i) {
    header.dictionary_id |= std::uint32_t{frame[pos + i]} << (8 * i);
  }
  pos += dictionary_bytes;
  if (content_bytes > 0) {
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < content_bytes; ++i)
      value |= std::uint64_t{frame[pos + i]} << (8 * i);
    if (content_bytes == 2) value += 256;
    header.content_size = value;
    if (single_segment) window = value;
  }
  pos += content_bytes;
  header.size = pos;
  header.block_maximum = std::min<std::uint64_t>(window, kBlockSizeMax);
  return header;
}

enum class BlockWalk {
  kEnd,
  kTruncated,
  // Cut short inside a first block that is raw, i.e. a copy of whatever bytes follow: nothing
  // in such a "frame" shows that it is one, so it is not claimed.
  kTruncatedRaw,
  kInvalid,
};

// Follows the block headers: each names its type and a size no larger than the frame allows.
// Random bytes rarely get through more than a block or two of this.
BlockWalk WalkBlocks(ByteView frame, const FrameHeader& header) {
  std::uint64_t pos = header.size;
  std::uint64_t literal_bytes = 0;  // raw and RLE blocks state their output exactly
  std::uint64_t blocks = 0;
  bool compressed = false;
  bool first_raw = false;
  const auto truncated = [&] {
    return first_raw ? BlockWalk::kTruncatedRaw : BlockWalk::kTruncated;
  };
  while (true) {
    if (frame.size() - pos < 3) return truncated();
    const std::uint32_t field = std::uint32_t{frame[pos]} | (std::uint32_t{frame[pos + 1]} << 8) |
                                (std::uint32_t{frame[pos + 2]} << 16);
    pos += 3;
    const bool last = (field & 1) != 0;
    const unsigned type = (field >> 1) & 3;
    const std::uint32_t size = field >> 3;
    if (type == 3 || size > header.block_maximum) return BlockWalk::kInvalid;
    // An empty compressed block does not exist; an empty raw block only as the last one.
    if (type == 2 && size < 2) return BlockWalk::kInvalid;
    if (type != 2) literal_bytes += size;
    compressed = compressed || type == 2;
    first_raw = first_raw || (blocks == 0 && type == 0);
    ++blocks;
    if (header.content_size &&
        (literal_bytes > *header.content_size || blocks > *header.content_size + 1)) {
      return BlockWalk::kInvalid;
    }
    pos += type == 1 ? 1 : size;
    if (pos > frame.size()) return truncated();
    if (last) break;
  }
  // Without compressed blocks the stated content size is exactly what the blocks hold.
  if (header.content_size && !compressed && literal_bytes != *header.content_size) {
    return BlockWalk::kInvalid;
  }
  if (header.checksum) pos += 4;
  return pos > frame.size() ? truncated() : BlockWalk::kEnd;
}

// Offset of the first real frame after any skippable frames, or nullopt.
std::optional<std::size_t> FirstFrame(ByteView bytes) {
  std::size_t pos = 0;
  for (int i = 0; i <= kMaxSkippableFrames; ++i) {
    const auto magic = LoadLe<std::uint32_t>(bytes, pos);
    if (!magic) return std::nullopt;
    if (*magic == kFrameMagic) return pos;
    if ((*magic & 0xFFFFFFF0U) != kSkippableMagic) return std::nullopt;
    const auto size = LoadLe<std::uint32_t>(bytes, pos + 4);
    if (!size || bytes.size() - pos - 8 < *size) return std::nullopt;
    pos += 8 + std::size_t{*size};
  }
  return std::nullopt;
}

class ZstdFormat final : public Format {
 public:
  std::string_view name() const override { return "zstd"; }
  std::string_view description() const override { return "Zstandard compressed frame"; }
  std::span<const Magic> magics() const override { return kMagics; }

  std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const ByteView rest = blob.subspan(start);
    const auto frame = FirstFrame(rest);
    if (!frame) return std::nullopt;
    const ByteView bytes = rest.subspan(*frame);
    const auto header = ParseFrameHeader(bytes);
    // Frames made with a dictionary cannot be decoded without it, and are rare outside
    // protocols; a dictionary ID is more often a sign of a chance match.
    if (!header || header->dictionary_id != 0) return std::nullopt;
    const BlockWalk walk = WalkBlocks(bytes, *header);
    if (walk == BlockWalk::kInvalid || walk == BlockWalk::kTruncatedRaw) return std::nullopt;
    // Block headers of random bytes still pass now and then (and the magic is a constant in
    // every binary with zstd code), so the first kilobyte must really decode. That is one
    // block at most: cheap, and no substitute for the walk, which finds the frame's end.
    const codec::Output discard = [](ByteView) { return Ok(); };
    codec::DecodeOptions options;
    options.max_output = kProbeOutput;
    // Frames needing a window beyond our memory limit are refused too: they could not be
    // extracted, and a random window descriptor asks for one as often as not.
    const auto sample = codec::DecodeStream(codec::Codec::kZstd, bytes, discard, options);
    if (sample.stop != codec::Stop::kEnd && sample.stop != codec::Stop::kOutputLimit &&
        !(sample.stop == codec::Stop::kTruncated && sample.produced > 0)) {
      return std::nullopt;
    }
    Chunk chunk;
    chunk.offset = start;
    if (walk == BlockWalk::kEnd) {
      // libzstd has the last word on the frame's extent.
      const std::size_t size = ZSTD_findFrameCompressedSize(bytes.data(), bytes.size());
      if (ZSTD_isError(size)) return std::nullopt;
      chunk.length = *frame + size;
    } else {
      // Cut short by the end of the blob: the decoder reports how far it got.
      chunk.length = rest.size();
      chunk.length_from_extract = true;
    }
    if (header->content_size) chunk.meta["content_size"] = std::to_string(*header->content_size);
    if (header->checksum) chunk.meta["checksum"] = "xxh64";
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    auto result = codec::DecodeToFile(codec::Codec::kZstd, chunk,
                                      ctx.DecompressedName({".zst", ".zstd"}), ctx);
    if (!result) return tl::unexpected(result.error());
    return Ok();
  }
};

}  // namespace

std::unique_ptr<const Format> MakeZstdFormat() { return std::make_unique<ZstdFormat>(); }

}  // namespace iotmark::unpack::formats
