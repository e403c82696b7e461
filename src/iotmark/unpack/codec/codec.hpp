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
#include "iotmark/model/gap.hpp"

namespace iotmark::unpack::codec {

enum class Codec {
  kDeflate,    // raw deflate (no header)
  kZlib,       // RFC 1950
  kGzip,       // RFC 1952, one member
  kXz,         // .xz, one stream
  kLzmaAlone,  // .lzma ("LZMA alone"), with or without an end marker / known size
  kBzip2,      // one stream
  kZstd,       // one frame (skippable frames are skipped)
  kLz4Frame,   // LZ4 frame format, one frame (skippable frames are skipped)
  kLz4Legacy,  // LZ4 legacy format (Linux kernels)
  kLzo1x,      // raw LZO1X block; needs expected_output
};

std::string_view ToString(Codec codec);

// Why decoding stopped.
enum class Stop {
  kEnd,          // the stream's proper end (complete == true)
  kOutputLimit,  // max_output was reached
  kTruncated,    // the input ended inside the stream
  kCorrupt,      // the data does not decode, or a check value does not match
  kUnsupported,  // a valid stream needing what we do not have (a preset dictionary, a filter)
  kMemoryLimit,  // the stream asks for more memory than we allow (a crafted window size)
  kOutputError,  // `out` failed; see DecodeResult::output_error
};

std::string_view ToString(Stop stop);
// The gap a stop other than kEnd becomes (kOutputLimit and kMemoryLimit are kLimit).
model::GapKind GapKindOf(Stop stop);

struct DecodeResult {
  std::uint64_t consumed = 0;  // input bytes used by the stream
  std::uint64_t produced = 0;  // output bytes handed on
  bool complete = false;       // reached the stream's proper end
  std::string problem;         // why not complete: "truncated after 812 bytes of input", ...
  Stop stop = Stop::kEnd;
  std::optional<Error> output_error;  // stop == kOutputError: what `out` returned
};

// Receives decoded bytes; an error (a limit) stops decoding and is returned by Decode().
using Output = std::function<Status(ByteView)>;

struct DecodeOptions {
  std::uint64_t max_output = UINT64_MAX;  // stop (complete = false) after this much output
  std::uint64_t expected_output = 0;      // kLzo1x: the block's decompressed size
};

// Decoders never allocate more than this for one stream (dictionary, window, block buffer): a
// crafted header asking for gigabytes gets Stop::kMemoryLimit instead.
inline constexpr std::uint64_t kMemoryLimit = std::uint64_t{256} << 20;
// The largest LZO1X block we decode (lzop's own maximum).
inline constexpr std::uint64_t kMaxLzoBlock = std::uint64_t{64} << 20;
// Output is handed to `out` in pieces of at most this size.
inline constexpr std::size_t kPieceSize = std::size_t{1} << 20;

// Decodes one stream from the start of `input`. Damaged or truncated data is not an Error: the
// result says how far decoding got and why it stopped. An Error comes only from `out`.
Result<DecodeResult> Decode(Codec codec, ByteView input, const Output& out,
                            const DecodeOptions& options = {});

// Same, but an error from `out` also ends as a result (stop == kOutputError), so the caller
// still learns how much input had been used when it happened.
DecodeResult DecodeStream(Codec codec, ByteView input, const Output& out,
                          const DecodeOptions& options = {});

// Cheap check used by probes: decoding the first `probe_output` bytes succeeds (or the stream
// ends cleanly before that). A stream cut off before `probe_output` bytes does not count; probes
// that accept truncated streams call Decode() with max_output and look at the stop.
bool LooksValid(Codec codec, ByteView input, std::uint64_t probe_output = 4096);

}  // namespace iotmark::unpack::codec
