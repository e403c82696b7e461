// A read-only libext2fs io_manager over bytes in memory, so that an ext image found inside a blob
// is opened where it lies, without a temporary file.
#pragma once

#include <ext2fs/ext2fs.h>

#include <string>

#include "iotmark/base/bytes.hpp"

namespace iotmark::unpack::formats::ext {

// The manager to hand to ext2fs_open2(). Reads past the end of the bytes fail with
// EXT2_ET_SHORT_READ; every write fails with EXT2_ET_RO_FILSYS.
io_manager MemoryIoManager();

// The "device name" that makes MemoryIoManager() read `bytes` (which must outlive the channel).
std::string MemoryIoName(ByteView bytes);

}  // namespace iotmark::unpack::formats::ext
