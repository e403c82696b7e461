// The compressed kernel inside a self-decompressing image (ARM zImage, x86 bzImage): naming its
// compression from its magic, finding it where the image has no pointer to it, and decoding it
// into one file with the kernel's banner as meta.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "iotmark/base/bytes.hpp"
#include "iotmark/base/result.hpp"
#include "iotmark/unpack/extract_context.hpp"

namespace iotmark::unpack::formats::linux_kernel {

struct KernelPayload {
  std::uint64_t offset = 0;      // in the kernel image
  std::uint64_t length = 0;      // bytes the stream may use, from `offset`
  std::string_view compression;  // "gzip", "xz", "bzip2", "lzma", "lzo", "lz4", "zstd", "none"
};

// The compression a payload starting with `bytes` uses, from its magic and the header fields
// right after it; "none" for an uncompressed ELF kernel, "" when nothing matches.
std::string_view CompressionOf(ByteView bytes);

// True if a `compression` stream starts at the start of `bytes` and its first few KiB decode
// (or it is cut short after decoding something: a truncated image still has a kernel).
bool PayloadStarts(std::string_view compression, ByteView bytes);

// The first place at or after `from` in `image` where a compressed kernel starts. ARM zImages
// (and x86 kernels before boot protocol 2.08) say nothing about where their payload is, so the
// decompressor's bytes are searched for the codecs' magics and each match is tried, at most a
// bounded number of times.
std::optional<KernelPayload> FindPayload(ByteView image, std::uint64_t from);

// Decodes `payload` of `image` into the file "vmlinux" of ctx.sink(), and sets the meta
// "payload_compression", "uncompressed_size" and, when the decoded kernel has one, "version" and
// "banner". A stream that stops early keeps what was decoded and becomes a gap.
Status ExtractPayload(ByteView image, const KernelPayload& payload, ExtractContext& ctx);

}  // namespace iotmark::unpack::formats::linux_kernel
