#include "iotmark/unpack/formats/ubifs/ubifs_decoder.hpp"

#include <lzo/lzo1x.h>
#include <zlib.h>
#include <zstd.h>

#include <cstring>
#include <memory>

#include "iotmark/unpack/formats/ubifs/ubifs_nodes.hpp"

namespace iotmark::unpack::formats::ubifs {

namespace {

bool LzoReady() {
  static const bool ready = lzo_init() == LZO_E_OK;
  return ready;
}

std::string SizeMismatch(std::uint64_t produced, std::uint32_t size) {
  return "decompresses to " + std::to_string(produced) + " bytes instead of " +
         std::to_string(size);
}

}  // namespace

BlockDecoder::BlockDecoder() = default;

BlockDecoder::~BlockDecoder() {
  if (zlib_ != nullptr) {
    inflateEnd(zlib_);
    delete zlib_;
  }
  ZSTD_freeDCtx(zstd_);
}

std::string BlockDecoder::Inflate(ByteView input, std::uint8_t* out, std::uint32_t size) {
  if (zlib_ == nullptr) {
    auto stream = std::make_unique<z_stream>();
    // Raw deflate with the largest window, which reads streams made with any smaller one
    // (mkfs.ubifs and the kernel use 2^11).
    if (inflateInit2(stream.get(), -MAX_WBITS) != Z_OK) return "zlib cannot be initialised";
    zlib_ = stream.release();
  } else if (inflateReset(zlib_) != Z_OK) {
    return "zlib cannot be reset";
  }
  zlib_->next_in = const_cast<Bytef*>(input.data());
  zlib_->avail_in = static_cast<uInt>(input.size());
  zlib_->next_out = out;
  zlib_->avail_out = size;
  const int result = inflate(zlib_, Z_FINISH);
  const std::uint64_t produced = size - zlib_->avail_out;
  // A stream that fills the block exactly is complete even if its end marker would not fit.
  if (result != Z_STREAM_END && !(result == Z_BUF_ERROR && produced == size)) {
    return "does not inflate (zlib error " + std::to_string(result) + ")";
  }
  if (produced != size) return SizeMismatch(produced, size);
  return {};
}

std::string BlockDecoder::Decode(std::uint16_t type, ByteView input, std::uint8_t* out,
                                 std::uint32_t size) {
  switch (type) {
    case kNone:
      if (input.size() != size) return SizeMismatch(input.size(), size);
      if (size > 0) std::memcpy(out, input.data(), size);
      return {};
    case kLzo: {
      if (!LzoReady()) return "liblzo2 cannot be initialised";
      lzo_uint produced = size;
      const int result = lzo1x_decompress_safe(input.data(), input.size(), out, &produced, nullptr);
      if (result != LZO_E_OK)
        return "does not decompress (lzo error " + std::to_string(result) + ")";
      if (produced != size) return SizeMismatch(produced, size);
      return {};
    }
    case kZlib:
      return Inflate(input, out, size);
    case kZstd: {
      if (zstd_ == nullptr) zstd_ = ZSTD_createDCtx();
      if (zstd_ == nullptr) return "libzstd cannot be initialised";
      const std::size_t produced =
          ZSTD_decompressDCtx(zstd_, out, size, input.data(), input.size());
      if (ZSTD_isError(produced) != 0) {
        return std::string("does not decompress (zstd: ") + ZSTD_getErrorName(produced) + ")";
      }
      if (produced != size) return SizeMismatch(produced, size);
      return {};
    }
    default:
      return "uses unknown compression " + std::to_string(type);
  }
}

}  // namespace iotmark::unpack::formats::ubifs
