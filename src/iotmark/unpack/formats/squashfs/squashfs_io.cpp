#include "iotmark/unpack/formats/squashfs/squashfs_io.hpp"

#include <lzo/lzo1x.h>
#include <sqfs/error.h>
#include <sqfs/super.h>

#include <cstring>
#include <mutex>
#include <new>

namespace iotmark::unpack::formats::squashfs {

namespace {

// --- An sqfs_file_t over memory ----------------------------------------------------------------

// libsquashfs only ever sees `base`, the first member, so the casts below are between
// pointer-interconvertible types.
struct MemoryFile {
  sqfs_file_t base;
  const std::uint8_t* data;
  std::uint64_t size;
};

MemoryFile* AsMemoryFile(sqfs_file_t* file) { return reinterpret_cast<MemoryFile*>(file); }
const MemoryFile* AsMemoryFile(const sqfs_file_t* file) {
  return reinterpret_cast<const MemoryFile*>(file);
}

void MemoryFileDestroy(sqfs_object_t* object) { delete reinterpret_cast<MemoryFile*>(object); }

sqfs_object_t* MemoryFileCopy(const sqfs_object_t* object) {
  const auto* original = reinterpret_cast<const MemoryFile*>(object);
  auto* copy = new (std::nothrow) MemoryFile(*original);
  return reinterpret_cast<sqfs_object_t*>(copy);
}

int MemoryFileReadAt(sqfs_file_t* file, sqfs_u64 offset, void* buffer, size_t size) {
  const MemoryFile* memory = AsMemoryFile(file);
  if (offset > memory->size || memory->size - offset < size) return SQFS_ERROR_OUT_OF_BOUNDS;
  if (size > 0) std::memcpy(buffer, memory->data + offset, size);
  return 0;
}

int MemoryFileWriteAt(sqfs_file_t* /*file*/, sqfs_u64 /*offset*/, const void* /*buffer*/,
                      size_t /*size*/) {
  return SQFS_ERROR_IO;
}

sqfs_u64 MemoryFileGetSize(const sqfs_file_t* file) { return AsMemoryFile(file)->size; }

int MemoryFileTruncate(sqfs_file_t* /*file*/, sqfs_u64 /*size*/) { return SQFS_ERROR_IO; }

// --- LZO, which Debian's libsquashfs is built without --------------------------------------------

struct LzoDecompressor {
  sqfs_compressor_t base;
  std::uint32_t block_size;
};

void LzoDestroy(sqfs_object_t* object) { delete reinterpret_cast<LzoDecompressor*>(object); }

sqfs_object_t* LzoCopy(const sqfs_object_t* object) {
  const auto* original = reinterpret_cast<const LzoDecompressor*>(object);
  return reinterpret_cast<sqfs_object_t*>(new (std::nothrow) LzoDecompressor(*original));
}

void LzoGetConfiguration(const sqfs_compressor_t* compressor, sqfs_compressor_config_t* config) {
  std::memset(config, 0, sizeof(*config));
  config->id = SQFS_COMP_LZO;
  config->flags = SQFS_COMP_FLAG_UNCOMPRESS;
  config->block_size = reinterpret_cast<const LzoDecompressor*>(compressor)->block_size;
  config->level = SQFS_LZO_DEFAULT_LEVEL;
  config->opt.lzo.algorithm = SQFS_LZO_DEFAULT_ALG;
}

int LzoWriteOptions(sqfs_compressor_t* /*compressor*/, sqfs_file_t* /*file*/) {
  return SQFS_ERROR_UNSUPPORTED;
}

// The options block only says how the image was compressed; decompression needs none of it.
int LzoReadOptions(sqfs_compressor_t* /*compressor*/, sqfs_file_t* /*file*/) { return 0; }

sqfs_s32 LzoDoBlock(sqfs_compressor_t* /*compressor*/, const sqfs_u8* in, sqfs_u32 size,
                    sqfs_u8* out, sqfs_u32 outsize) {
  lzo_uint produced = outsize;
  const int result = lzo1x_decompress_safe(in, size, out, &produced, nullptr);
  if (result != LZO_E_OK || produced > outsize) return SQFS_ERROR_COMPRESSOR;
  return static_cast<sqfs_s32>(produced);
}

Result<ObjectPtr<sqfs_compressor_t>> MakeLzoDecompressor(std::uint32_t block_size) {
  static std::once_flag once;
  static int init_result = LZO_E_ERROR;
  std::call_once(once, [] { init_result = lzo_init(); });
  if (init_result != LZO_E_OK) return Fail(ErrorCode::kInternal, "lzo_init failed");
  auto* lzo = new (std::nothrow) LzoDecompressor{};
  if (lzo == nullptr) return Fail(ErrorCode::kInternal, "out of memory");
  lzo->base.base.destroy = LzoDestroy;
  lzo->base.base.copy = LzoCopy;
  lzo->base.get_configuration = LzoGetConfiguration;
  lzo->base.write_options = LzoWriteOptions;
  lzo->base.read_options = LzoReadOptions;
  lzo->base.do_block = LzoDoBlock;
  lzo->block_size = block_size;
  return ObjectPtr<sqfs_compressor_t>(&lzo->base);
}

}  // namespace

ObjectPtr<sqfs_file_t> MakeMemoryFile(ByteView bytes) {
  auto* file = new MemoryFile{};
  file->base.base.destroy = MemoryFileDestroy;
  file->base.base.copy = MemoryFileCopy;
  file->base.read_at = MemoryFileReadAt;
  file->base.write_at = MemoryFileWriteAt;
  file->base.get_size = MemoryFileGetSize;
  file->base.truncate = MemoryFileTruncate;
  file->data = bytes.data();
  file->size = bytes.size();
  return ObjectPtr<sqfs_file_t>(&file->base);
}

Result<ObjectPtr<sqfs_compressor_t>> MakeDecompressor(std::uint16_t compressor_id,
                                                      std::uint32_t block_size) {
  if (CompressorName(compressor_id).empty()) {
    return Fail(ErrorCode::kUnsupportedFormat,
                "unknown squashfs compressor id " + std::to_string(compressor_id));
  }
  sqfs_compressor_config_t config;
  int error = sqfs_compressor_config_init(&config, static_cast<SQFS_COMPRESSOR>(compressor_id),
                                          block_size, SQFS_COMP_FLAG_UNCOMPRESS);
  if (error == 0) {
    sqfs_compressor_t* compressor = nullptr;
    error = sqfs_compressor_create(&config, &compressor);
    if (error == 0 && compressor != nullptr) return ObjectPtr<sqfs_compressor_t>(compressor);
  }
  if (compressor_id == SQFS_COMP_LZO) return MakeLzoDecompressor(block_size);
  return Fail(ErrorCode::kUnsupportedFormat, "no decompressor for squashfs compressor " +
                                                 std::string(CompressorName(compressor_id)) + ": " +
                                                 ErrorText(error));
}

std::string_view CompressorName(std::uint16_t compressor_id) {
  switch (compressor_id) {
    case SQFS_COMP_GZIP:
      return "gzip";
    case SQFS_COMP_LZMA:
      return "lzma";
    case SQFS_COMP_LZO:
      return "lzo";
    case SQFS_COMP_XZ:
      return "xz";
    case SQFS_COMP_LZ4:
      return "lz4";
    case SQFS_COMP_ZSTD:
      return "zstd";
    default:
      return {};
  }
}

std::string ErrorText(int code) {
  switch (code) {
    case SQFS_ERROR_ALLOC:
      return "out of memory";
    case SQFS_ERROR_IO:
      return "read failed";
    case SQFS_ERROR_COMPRESSOR:
      return "decompression failed";
    case SQFS_ERROR_INTERNAL:
      return "internal library error";
    case SQFS_ERROR_CORRUPTED:
      return "corrupt structure";
    case SQFS_ERROR_UNSUPPORTED:
      return "unsupported feature";
    case SQFS_ERROR_OVERFLOW:
      return "numeric overflow";
    case SQFS_ERROR_OUT_OF_BOUNDS:
      return "reference outside the image";
    case SFQS_ERROR_SUPER_MAGIC:
      return "bad superblock magic";
    case SFQS_ERROR_SUPER_VERSION:
      return "unsupported version";
    case SQFS_ERROR_SUPER_BLOCK_SIZE:
      return "bad block size";
    case SQFS_ERROR_NOT_DIR:
      return "not a directory";
    case SQFS_ERROR_NO_ENTRY:
      return "no such entry";
    case SQFS_ERROR_LINK_LOOP:
      return "directory loop";
    case SQFS_ERROR_NOT_FILE:
      return "not a file";
    case SQFS_ERROR_ARG_INVALID:
      return "invalid argument";
    case SQFS_ERROR_SEQUENCE:
      return "call out of sequence";
    default:
      return "error " + std::to_string(code);
  }
}

}  // namespace iotmark::unpack::formats::squashfs
