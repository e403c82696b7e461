// xz (.xz container, one stream per chunk). The stream header carries a CRC-32, so matches are
// certain; when every block header states its compressed size (multi-threaded xz writes them),
// the probe walks blocks, index and footer to find the exact end without decompressing.
// Otherwise the decoder finds the end (length_from_extract).
#include <lzma.h>

#include <array>
#include <memory>

#include "iotmark/unpack/codec/codec.hpp"
#include "iotmark/unpack/codec/decode_to_file.hpp"
#include "iotmark/unpack/extract_context.hpp"
#include "iotmark/unpack/format.hpp"

namespace iotmark::unpack::formats {

namespace {

// Index records are small; a crafted index larger than this is not worth decoding in a probe.
constexpr std::uint64_t kIndexMemoryLimit = std::uint64_t{16} << 20;

std::string CheckName(lzma_check check) {
  switch (check) {
    case LZMA_CHECK_NONE:
      return "none";
    case LZMA_CHECK_CRC32:
      return "crc32";
    case LZMA_CHECK_CRC64:
      return "crc64";
    case LZMA_CHECK_SHA256:
      return "sha256";
    default:
      return "check " + std::to_string(static_cast<int>(check));
  }
}

struct Walk {
  std::uint64_t length = 0;             // header + blocks + index + footer
  std::uint64_t uncompressed_size = 0;  // from the index
  std::uint64_t blocks = 0;
};

// Follows the stream's own structure from the header to the footer; nullopt if a block header
// does not state its size, or anything is out of place (the decoder then has the last word).
std::optional<Walk> WalkStream(ByteView stream, const lzma_stream_flags& flags) {
  std::uint64_t pos = LZMA_STREAM_HEADER_SIZE;
  Walk walk;
  while (true) {
    if (pos >= stream.size()) return std::nullopt;
    if (stream[pos] == 0) break;  // the index indicator
    std::array<lzma_filter, LZMA_FILTERS_MAX + 1> filters{};
    lzma_block block{};
    block.version = 1;
    block.check = flags.check;
    block.filters = filters.data();
    block.header_size = lzma_block_header_size_decode(stream[pos]);
    if (stream.size() - pos < block.header_size) return std::nullopt;
    const lzma_ret ret = lzma_block_header_decode(&block, nullptr, stream.data() + pos);
    if (ret != LZMA_OK) return std::nullopt;
    lzma_filters_free(filters.data(), nullptr);
    const lzma_vli total = lzma_block_total_size(&block);
    if (total == 0 || total == LZMA_VLI_UNKNOWN || total > stream.size() - pos) return std::nullopt;
    pos += total;
    ++walk.blocks;
  }
  lzma_index* index = nullptr;
  std::uint64_t memlimit = kIndexMemoryLimit;
  auto in_pos = static_cast<std::size_t>(pos);
  if (lzma_index_buffer_decode(&index, &memlimit, nullptr, stream.data(), &in_pos, stream.size()) !=
      LZMA_OK) {
    return std::nullopt;
  }
  const lzma_vli index_size = lzma_index_size(index);
  const lzma_vli index_stream_size = lzma_index_stream_size(index);
  const lzma_vli index_blocks = lzma_index_block_count(index);
  walk.uncompressed_size = lzma_index_uncompressed_size(index);
  lzma_index_end(index, nullptr);
  if (index_stream_size != in_pos + LZMA_STREAM_HEADER_SIZE || index_blocks != walk.blocks ||
      in_pos - pos != index_size || stream.size() - in_pos < LZMA_STREAM_HEADER_SIZE) {
    return std::nullopt;
  }
  lzma_stream_flags footer{};
  if (lzma_stream_footer_decode(&footer, stream.data() + in_pos) != LZMA_OK ||
      lzma_stream_flags_compare(&flags, &footer) != LZMA_OK || footer.backward_size != index_size) {
    return std::nullopt;
  }
  walk.length = in_pos + LZMA_STREAM_HEADER_SIZE;
  return walk;
}

class XzFormat final : public Format {
 public:
  std::string_view name() const override { return "xz"; }
  std::string_view description() const override { return "xz compressed stream"; }
  std::span<const Magic> magics() const override { return kMagics; }

  std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const ByteView rest = blob.subspan(start);
    if (rest.size() < LZMA_STREAM_HEADER_SIZE) return std::nullopt;
    lzma_stream_flags flags{};
    // Checks the magic, the reserved bits and the header's CRC-32.
    if (lzma_stream_header_decode(&flags, rest.data()) != LZMA_OK) return std::nullopt;
    Chunk chunk;
    chunk.offset = start;
    chunk.meta["check"] = CheckName(flags.check);
    if (const auto walk = WalkStream(rest, flags)) {
      chunk.length = walk->length;
      chunk.meta["uncompressed_size"] = std::to_string(walk->uncompressed_size);
      chunk.meta["blocks"] = std::to_string(walk->blocks);
    } else {
      chunk.length = rest.size();
      chunk.length_from_extract = true;
    }
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    auto result =
        codec::DecodeToFile(codec::Codec::kXz, chunk, ctx.DecompressedName({".xz", ".txz"}), ctx);
    if (!result) return tl::unexpected(result.error());
    return Ok();
  }

 private:
  static constexpr std::array<Magic, 1> kMagics = {Magic{std::string_view("\xfd"
                                                                          "7zXZ\0",
                                                                          6),
                                                         0}};
};

}  // namespace

std::unique_ptr<const Format> MakeXzFormat() { return std::make_unique<XzFormat>(); }

}  // namespace iotmark::unpack::formats
