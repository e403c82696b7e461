// Stream decoders over Debian's codec libraries (zlib, liblzma, libbz2, libzstd, liblz4, lzo2),
// one calling convention for all: decode one stream from the start of the input, hand the output
// on in pieces, and say how many input bytes the stream used.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "iotmark/base/bytes.hpp"
#include "iotmark/base/result.hpp"

namespace iotmark::unpack::codec {

enum class Codec {
  kDeflate,    // raw deflate (no header)
  kZlib,       // RFC 1950
  kGzip,       // RFC 1952, one member
  kXz,         // .xz, one stream
  kLzmaAlone,  // .lzma ("LZMA alone"), with or without an end marker / known size
  kBzip2,      // one stream
  kZstd,       // one frame (skippable frames are skipped)
  kLz4Frame,   // LZ4 frame format, one frame
  kLz4Legacy,  // LZ4 legacy format (Linux kernels)
  kLzo1x,      // raw LZO1X block; needs expected_output
};

std::string_view ToString(Codec codec);

struct DecodeResult {
  std::uint64_t consumed = 0;  // input bytes used by the stream
  std::uint64_t produced = 0;  // output bytes handed on
  bool complete = false;       // reached the stream's proper end
  std::string problem;         // why not complete: "truncated", "corrupt data at ..."
};

// Receives decoded bytes; an error (a limit) stops decoding and is returned by Decode().
using Output = std::function<Status(ByteView)>;

struct DecodeOptions {
  std::uint64_t max_output = UINT64_MAX;  // stop (complete = false) after this much output
  std::uint64_t expected_output = 0;      // kLzo1x: the block's decompressed size
};

// Decodes one stream from the start of `input`. Damaged or truncated data is not an Error: the
// result says how far decoding got and why it stopped. An Error comes only from `out`.
Result<DecodeResult> Decode(Codec codec, ByteView input, const Output& out,
                            const DecodeOptions& options = {});

// Cheap check used by probes: decoding the first `probe_output` bytes succeeds (or the stream
// ends cleanly before that).
bool LooksValid(Codec codec, ByteView input, std::uint64_t probe_output = 4096);

}  // namespace iotmark::unpack::codec
