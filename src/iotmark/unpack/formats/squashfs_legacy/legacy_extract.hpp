// The hand-written SquashFS reader as a function, so that the standard "squashfs" format can hand
// it a 4.0 little-endian image libsquashfs rejects instead of losing it.
#pragma once

#include <string_view>

#include "iotmark/base/bytes.hpp"
#include "iotmark/base/result.hpp"
#include "iotmark/unpack/extract_context.hpp"

namespace iotmark::unpack::formats::squashfs_legacy {

// Extracts the SquashFS image that starts `chunk` (2.x, 3.x or 4.0, either byte order) into
// ctx.sink(). `fallback_reason`, when not empty, says why the standard reader gave the chunk up;
// it is recorded in the chunk's meta.
Status ExtractLegacy(ByteView chunk, ExtractContext& ctx, std::string_view fallback_reason = {});

}  // namespace iotmark::unpack::formats::squashfs_legacy
