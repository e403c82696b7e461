// How a compression format extracts: decode one stream of a chunk into one file of the chunk's
// sink, turning damage into gaps and telling the carver how many input bytes the stream used.
#pragma once

#include <string>

#include "iotmark/base/bytes.hpp"
#include "iotmark/base/result.hpp"
#include "iotmark/unpack/codec/codec.hpp"
#include "iotmark/unpack/extract_context.hpp"

namespace iotmark::unpack::codec {

// Decodes `input` (a stream at the start of the chunk, `input_offset` bytes into it) into the
// file `name` of ctx.sink() (or "decompressed" if the sink refuses that name), streaming: output
// is never held in memory. The file is created with the first output byte, so a stream that
// yields nothing leaves no file, unless it is complete and empty. A stream that stops early
// keeps what was decoded and becomes a gap at the offset where decoding stopped. Sets
// ctx.SetConsumed(input_offset + consumed) and the meta "uncompressed_size". Returns an Error
// only when writing failed in a way the extractor must stop for (a limit, I/O).
Result<DecodeResult> DecodeToFile(Codec codec, ByteView input, const std::string& name,
                                  ExtractContext& ctx, const DecodeOptions& options = {},
                                  std::uint64_t input_offset = 0);

}  // namespace iotmark::unpack::codec
