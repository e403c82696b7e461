// The lzop container (what `lzop -9` writes, and what Linux uses for LZO-compressed kernels):
// a header, then LZO1X blocks each preceded by its sizes and checksums. liblzo2 (through the
// codec layer) decodes the blocks; the container itself is read here because no Debian library
// parses it.
#pragma once

#include <cstdint>

#include "iotmark/base/bytes.hpp"
#include "iotmark/unpack/codec/codec.hpp"

namespace iotmark::unpack::formats::linux_kernel {

inline constexpr std::string_view kLzopMagic = std::string_view("\x89LZO\x00\x0d\x0a\x1a\x0a", 9);

// Decodes the lzop stream at the start of `input`, with the codec layer's conventions: damage is
// a result (stop, problem), never an Error; output goes to `out` block by block.
codec::DecodeResult DecodeLzop(ByteView input, const codec::Output& out,
                               std::uint64_t max_output = UINT64_MAX);

}  // namespace iotmark::unpack::formats::linux_kernel
