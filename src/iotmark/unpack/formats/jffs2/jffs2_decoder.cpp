// JFFS2 node decompression (see jffs2_decoder.hpp).
#include "iotmark/unpack/formats/jffs2/jffs2_decoder.hpp"

#include <lzo/lzo1x.h>

#include <algorithm>
#include <cstring>

#include "iotmark/unpack/formats/jffs2/jffs2_nodes.hpp"

namespace iotmark::unpack::formats::jffs2 {

namespace {

using model::GapKind;

// JFFS2's LZMA (the OpenWrt and mtd-utils patches) is a raw LZMA1 stream without a header, coded
// with these fixed properties.
constexpr std::uint32_t kLzmaDictSize = 0x2000;

bool LzoReady() {
  static const bool ready = lzo_init() == LZO_E_OK;
  return ready;
}

DecodeProblem Corrupt(const std::string& compr, const std::string& what) {
  return DecodeProblem{GapKind::kCorrupt, compr + " data " + what};
}

}  // namespace

bool DecodeRtime(ByteView input, std::span<std::uint8_t> out) {
  std::size_t positions[256] = {};
  std::size_t in = 0;
  std::size_t produced = 0;
  while (produced < out.size()) {
    if (input.size() - in < 2) return false;
    const std::uint8_t value = input[in];
    std::size_t repeat = input[in + 1];
    in += 2;
    out[produced++] = value;
    std::size_t from = positions[value];
    positions[value] = produced;
    if (repeat > out.size() - produced) return false;
    // Byte by byte: the copy may overlap what it produces (a run).
    while (repeat-- > 0) out[produced++] = out[from++];
  }
  return true;
}

NodeDecoder::NodeDecoder() = default;

NodeDecoder::~NodeDecoder() {
  if (zlib_ready_) inflateEnd(&zlib_);
  lzma_end(&lzma_);
}

std::optional<DecodeProblem> NodeDecoder::Decode(std::uint8_t compr, ByteView input,
                                                 std::span<std::uint8_t> out) {
  switch (compr) {
    case kComprNone:
      if (input.size() < out.size()) return Corrupt("uncompressed", "is shorter than dsize");
      if (!out.empty()) std::memcpy(out.data(), input.data(), out.size());
      return std::nullopt;
    case kComprZero:
      std::fill(out.begin(), out.end(), std::uint8_t{0});
      return std::nullopt;
    case kComprRtime:
      if (!DecodeRtime(input, out)) return Corrupt("rtime", "does not decode");
      return std::nullopt;
    case kComprZlib:
      return Zlib(input, out);
    case kComprLzo: {
      if (!LzoReady()) return DecodeProblem{GapKind::kUnsupported, "lzo_init failed"};
      lzo_uint produced = out.size();
      const int status =
          lzo1x_decompress_safe(input.data(), input.size(), out.data(), &produced, nullptr);
      if (status != LZO_E_OK && status != LZO_E_INPUT_NOT_CONSUMED) {
        return Corrupt("lzo", "does not decode (lzo error " + std::to_string(status) + ")");
      }
      if (produced != out.size()) return Corrupt("lzo", "is shorter than dsize");
      return std::nullopt;
    }
    case kComprLzma:
      return Lzma(input, out);
    default:
      return DecodeProblem{GapKind::kUnsupported,
                           "unsupported compression " + CompressionName(compr)};
  }
}

// As the kernel does: the zlib header is checked and skipped and the deflate data inflated raw, so
// a missing or wrong Adler-32 trailer does not matter; output stops at dsize.
std::optional<DecodeProblem> NodeDecoder::Zlib(ByteView input, std::span<std::uint8_t> out) {
  if (input.size() < 2 || (input[0] & 0x0F) != Z_DEFLATED || (input[0] >> 4) > 7 ||
      ((input[0] << 8) | input[1]) % 31 != 0 || (input[1] & 0x20) != 0) {
    return Corrupt("zlib", "has no valid zlib header");
  }
  if (!zlib_ready_) {
    if (inflateInit2(&zlib_, -MAX_WBITS) != Z_OK) {
      return DecodeProblem{GapKind::kLimit, "zlib cannot be initialised"};
    }
    zlib_ready_ = true;
  } else if (inflateReset(&zlib_) != Z_OK) {
    return DecodeProblem{GapKind::kCorrupt, "zlib cannot be reset"};
  }
  zlib_.next_in = const_cast<Bytef*>(input.data() + 2);
  zlib_.avail_in = static_cast<uInt>(input.size() - 2);
  zlib_.next_out = out.data();
  zlib_.avail_out = static_cast<uInt>(out.size());
  const int status = inflate(&zlib_, Z_FINISH);
  if (zlib_.avail_out == 0) return std::nullopt;
  if (status == Z_STREAM_END) return Corrupt("zlib", "is shorter than dsize");
  return Corrupt("zlib", "does not decode");
}

std::optional<DecodeProblem> NodeDecoder::Lzma(ByteView input, std::span<std::uint8_t> out) {
  lzma_options_lzma options{};
  options.dict_size = kLzmaDictSize;
  options.lc = 0;
  options.lp = 0;
  options.pb = 0;
  const lzma_filter filters[] = {{LZMA_FILTER_LZMA1, &options}, {LZMA_VLI_UNKNOWN, nullptr}};
  if (lzma_raw_decoder(&lzma_, filters) != LZMA_OK) {
    return DecodeProblem{GapKind::kLimit, "the LZMA decoder cannot be initialised"};
  }
  lzma_.next_in = input.data();
  lzma_.avail_in = input.size();
  lzma_.next_out = out.data();
  lzma_.avail_out = out.size();
  // The stream has no end marker: decoding stops when dsize bytes have come out.
  while (lzma_.avail_out > 0) {
    const std::size_t before = lzma_.avail_out + lzma_.avail_in;
    const lzma_ret status = lzma_code(&lzma_, LZMA_RUN);
    if (status == LZMA_STREAM_END) break;
    if (status != LZMA_OK) return Corrupt("lzma", "does not decode");
    if (lzma_.avail_out + lzma_.avail_in == before) break;  // no progress: input ran out
  }
  if (lzma_.avail_out != 0) return Corrupt("lzma", "is shorter than dsize");
  return std::nullopt;
}

}  // namespace iotmark::unpack::formats::jffs2
