// Decompression of one JFFS2 data node into a buffer of exactly its dsize bytes. zlib, LZO and
// LZMA go through Debian's libraries; rtime (a dozen lines in the kernel) is hand-written here.
// One decoder per worker thread: it keeps its zlib and LZMA state between nodes.
#pragma once

#include <lzma.h>
#include <zlib.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "iotmark/base/bytes.hpp"
#include "iotmark/model/gap.hpp"

namespace iotmark::unpack::formats::jffs2 {

struct DecodeProblem {
  model::GapKind kind = model::GapKind::kCorrupt;
  std::string reason;  // "zlib data does not decode", "unsupported compression dynrubin"
};

class NodeDecoder {
 public:
  NodeDecoder();
  ~NodeDecoder();
  NodeDecoder(const NodeDecoder&) = delete;
  NodeDecoder& operator=(const NodeDecoder&) = delete;

  // Fills all of `out` from `input`, compressed with `compr`; nullopt on success.
  std::optional<DecodeProblem> Decode(std::uint8_t compr, ByteView input,
                                      std::span<std::uint8_t> out);

 private:
  std::optional<DecodeProblem> Zlib(ByteView input, std::span<std::uint8_t> out);
  std::optional<DecodeProblem> Lzma(ByteView input, std::span<std::uint8_t> out);

  z_stream zlib_{};
  bool zlib_ready_ = false;
  lzma_stream lzma_ = LZMA_STREAM_INIT;
};

// rtime, JFFS2's own run-length coder: pairs of (literal byte, repeat count), the repeat copying
// from where that byte value last appeared. Fills all of `out` or returns false.
bool DecodeRtime(ByteView input, std::span<std::uint8_t> out);

}  // namespace iotmark::unpack::formats::jffs2
