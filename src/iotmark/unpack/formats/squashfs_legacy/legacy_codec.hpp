// Block decompression for SquashFS images whose compression is not announced reliably: 2.x and
// 3.x say nothing (zlib, or one of the LZMA framings vendors patched in), and vendor 4.0 images
// sometimes name one compressor and use another. Each block is tried with the plausible decoders
// and the variant that worked is recorded for the report.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "iotmark/base/bytes.hpp"
#include "iotmark/base/result.hpp"

namespace iotmark::unpack::formats::squashfs_legacy {

enum class Variant : unsigned {
  kZlib,            // RFC 1950 zlib stream (the standard 2.x/3.x and 4.0 "gzip")
  kLzmaAlone,       // 13-byte LZMA-alone header: properties, dictionary, 64-bit size (sqlzma)
  kLzmaProperties,  // 5-byte properties and dictionary, no size (7z-style, Broadcom)
  kLzmaRaw,         // no header at all, lc=3 lp=0 pb=2 (OpenWrt/Realtek-style patches)
  kXz,
  kLzo,
  kLz4,
  kZstd,
  kCount,
};

std::string_view VariantName(Variant variant);

// Which variants decoded blocks of one image (thread-safe); the last one that worked is tried
// first on the next block.
class VariantLog {
 public:
  void Record(Variant variant);
  [[nodiscard]] std::optional<Variant> preferred() const;
  // "zlib", "lzma (lzma-alone headers)", or several joined by " + "; empty if none worked yet.
  [[nodiscard]] std::string Describe() const;

 private:
  std::atomic<std::uint32_t> used_{0};
  std::atomic<int> preferred_{-1};
};

// Decodes blocks of one image. Not thread-safe: one per thread.
class BlockCodec {
 public:
  // `compression` is the 4.0 compressor id, or 0 for 2.x/3.x. Ids 1 (gzip) and 2 (lzma) and 0
  // get the detecting decoder; xz, lzo, lz4 and zstd use libsquashfs's decompressors.
  static Result<std::unique_ptr<BlockCodec>> Make(std::uint16_t compression,
                                                  std::uint32_t block_size, VariantLog& log);
  ~BlockCodec();
  BlockCodec(const BlockCodec&) = delete;
  BlockCodec& operator=(const BlockCodec&) = delete;

  // Decodes one compressed block into `out`; the number of bytes produced, or nullopt if no
  // decoder could. With `exact` the block must fill `out` (a data block of known size);
  // otherwise any non-empty output that fits is accepted (metadata and fragment blocks).
  std::optional<std::size_t> Decode(ByteView in, std::span<std::uint8_t> out, bool exact);

 private:
  struct Streams;
  BlockCodec(std::unique_ptr<Streams> streams, VariantLog& log);

  std::unique_ptr<Streams> streams_;
  VariantLog& log_;
};

}  // namespace iotmark::unpack::formats::squashfs_legacy
