// libsquashfs glue: a read-only sqfs_file_t over bytes in memory, decompressor objects for every
// SquashFS compressor id (LZO, which Debian builds libsquashfs without, is ours), and owners.
#pragma once

#include <sqfs/compressor.h>
#include <sqfs/io.h>
#include <sqfs/predef.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "iotmark/base/bytes.hpp"
#include "iotmark/base/result.hpp"

namespace iotmark::unpack::formats::squashfs {

// Owns a libsquashfs object (anything that starts with sqfs_object_t).
struct ObjectDeleter {
  void operator()(void* object) const {
    if (object != nullptr) sqfs_destroy(object);
  }
};
template <typename T>
using ObjectPtr = std::unique_ptr<T, ObjectDeleter>;

// Owns memory that libsquashfs allocated for the caller (inodes, directory entries).
struct FreeDeleter {
  void operator()(void* memory) const { sqfs_free(memory); }
};
template <typename T>
using FreePtr = std::unique_ptr<T, FreeDeleter>;

// A file object that reads `bytes` (which must outlive it); writes and truncation fail.
ObjectPtr<sqfs_file_t> MakeMemoryFile(ByteView bytes);

// A decompressor for `compressor_id` (SQFS_COMP_*). Not thread-safe: one per thread.
Result<ObjectPtr<sqfs_compressor_t>> MakeDecompressor(std::uint16_t compressor_id,
                                                      std::uint32_t block_size);

// "gzip", "lzma", "lzo", "xz", "lz4", "zstd"; empty for an unknown id.
std::string_view CompressorName(std::uint16_t compressor_id);

// A readable text for an SQFS_ERROR code.
std::string ErrorText(int code);

}  // namespace iotmark::unpack::formats::squashfs
