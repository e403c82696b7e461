// What the standard reader (libsquashfs) takes: a 4.0 little-endian superblock whose fields all
// check out. The "squashfs_legacy" format leaves such images to the "squashfs" format.
#pragma once

#include "iotmark/base/bytes.hpp"

namespace iotmark::unpack::formats::squashfs {

// True if `bytes` starts with a superblock the "squashfs" format's probe accepts.
bool IsStandardSuperblock(ByteView bytes);

}  // namespace iotmark::unpack::formats::squashfs
