// Decompresses UBIFS data nodes (at most 4 KiB each) with Debian's liblzo2, zlib and libzstd,
// called directly: the codec layer's stream interface costs an allocation and a callback per
// call, which at one call per 4 KiB block would be a large share of the work. One per thread.
#pragma once

#include <cstdint>
#include <string>

#include "iotmark/base/bytes.hpp"

struct ZSTD_DCtx_s;
struct z_stream_s;

namespace iotmark::unpack::formats::ubifs {

class BlockDecoder {
 public:
  BlockDecoder();
  ~BlockDecoder();
  BlockDecoder(const BlockDecoder&) = delete;
  BlockDecoder& operator=(const BlockDecoder&) = delete;

  // Decodes `input` (UBIFS compression `type`) into exactly `size` bytes at `out`; an empty
  // string on success, else why it failed.
  std::string Decode(std::uint16_t type, ByteView input, std::uint8_t* out, std::uint32_t size);

 private:
  std::string Inflate(ByteView input, std::uint8_t* out, std::uint32_t size);

  z_stream_s* zlib_ = nullptr;  // raw deflate (UBIFS "zlib" has no zlib header)
  ZSTD_DCtx_s* zstd_ = nullptr;
};

}  // namespace iotmark::unpack::formats::ubifs
