#include "iotmark/unpack/formats/ext/ext_memory_io.hpp"

#include <ext2fs/ext2fs.h>

#include <charconv>
#include <cstdint>
#include <cstring>
#include <new>
#include <string_view>

namespace iotmark::unpack::formats::ext {

namespace {

constexpr std::string_view kNamePrefix = "iotmark-memory:";

struct MemoryDevice {
  const std::uint8_t* data = nullptr;
  std::uint64_t size = 0;
  std::string name;
};

MemoryDevice* DeviceOf(io_channel channel) {
  return static_cast<MemoryDevice*>(channel->private_data);
}

// Parses "iotmark-memory:<address hex>:<size hex>", as made by MemoryIoName().
bool ParseName(std::string_view name, std::uintptr_t& address, std::uint64_t& size) {
  if (!name.starts_with(kNamePrefix)) return false;
  name.remove_prefix(kNamePrefix.size());
  const std::size_t colon = name.find(':');
  if (colon == std::string_view::npos) return false;
  const char* begin = name.data();
  const auto first = std::from_chars(begin, begin + colon, address, 16);
  const auto second = std::from_chars(begin + colon + 1, begin + name.size(), size, 16);
  return first.ec == std::errc() && first.ptr == begin + colon && second.ec == std::errc() &&
         second.ptr == begin + name.size();
}

errcode_t MemoryOpen(const char* name, int flags, io_channel* channel);

errcode_t MemoryClose(io_channel channel) {
  if (--channel->refcount > 0) return 0;
  delete DeviceOf(channel);
  delete channel;
  return 0;
}

errcode_t MemorySetBlockSize(io_channel channel, int block_size) {
  if (block_size <= 0) return EXT2_ET_INVALID_ARGUMENT;
  channel->block_size = block_size;
  return 0;
}

errcode_t MemoryReadBlocks64(io_channel channel, unsigned long long block, int count, void* data) {
  const MemoryDevice* device = DeviceOf(channel);
  // A negative count is a byte count (libext2fs reads the superblock that way).
  const std::uint64_t bytes = count < 0 ? static_cast<std::uint64_t>(-static_cast<long long>(count))
                                        : static_cast<std::uint64_t>(count) *
                                              static_cast<std::uint64_t>(channel->block_size);
  const auto block_size = static_cast<std::uint64_t>(channel->block_size);
  if (block > UINT64_MAX / block_size) return EXT2_ET_SHORT_READ;
  const std::uint64_t offset = block * block_size;
  if (offset > device->size || device->size - offset < bytes) {
    // Whatever the image has of the range is copied, the rest zeroed, and the read still fails:
    // the caller must not take a cut-off block for data.
    const std::uint64_t have = offset < device->size ? std::min(bytes, device->size - offset) : 0;
    if (have > 0) std::memcpy(data, device->data + offset, have);
    std::memset(static_cast<std::uint8_t*>(data) + have, 0, bytes - have);
    return EXT2_ET_SHORT_READ;
  }
  std::memcpy(data, device->data + offset, bytes);
  return 0;
}

errcode_t MemoryReadBlocks(io_channel channel, unsigned long block, int count, void* data) {
  return MemoryReadBlocks64(channel, block, count, data);
}

errcode_t MemoryWriteBlocks(io_channel /*channel*/, unsigned long /*block*/, int /*count*/,
                            const void* /*data*/) {
  return EXT2_ET_RO_FILSYS;
}

errcode_t MemoryWriteBlocks64(io_channel /*channel*/, unsigned long long /*block*/, int /*count*/,
                              const void* /*data*/) {
  return EXT2_ET_RO_FILSYS;
}

errcode_t MemoryWriteByte(io_channel /*channel*/, unsigned long /*offset*/, int /*count*/,
                          const void* /*data*/) {
  return EXT2_ET_RO_FILSYS;
}

errcode_t MemoryFlush(io_channel /*channel*/) { return 0; }

errcode_t MemorySetOption(io_channel /*channel*/, const char* /*option*/, const char* /*arg*/) {
  return EXT2_ET_INVALID_ARGUMENT;
}

struct struct_io_manager memory_manager = {
    .magic = EXT2_ET_MAGIC_IO_MANAGER,
    .name = "iotmark memory I/O manager",
    .open = MemoryOpen,
    .close = MemoryClose,
    .set_blksize = MemorySetBlockSize,
    .read_blk = MemoryReadBlocks,
    .write_blk = MemoryWriteBlocks,
    .flush = MemoryFlush,
    .write_byte = MemoryWriteByte,
    .set_option = MemorySetOption,
    .get_stats = nullptr,
    .read_blk64 = MemoryReadBlocks64,
    .write_blk64 = MemoryWriteBlocks64,
    .discard = nullptr,
    .cache_readahead = nullptr,
    .zeroout = nullptr,
    .reserved = {},
};

errcode_t MemoryOpen(const char* name, int flags, io_channel* channel) {
  if (name == nullptr || channel == nullptr) return EXT2_ET_BAD_DEVICE_NAME;
  if ((flags & IO_FLAG_RW) != 0) return EXT2_ET_RO_FILSYS;
  std::uintptr_t address = 0;
  std::uint64_t size = 0;
  if (!ParseName(name, address, size)) return EXT2_ET_BAD_DEVICE_NAME;
  auto* device = new (std::nothrow) MemoryDevice{};
  auto* made = new (std::nothrow) struct_io_channel{};
  if (device == nullptr || made == nullptr) {
    delete device;
    delete made;
    return EXT2_ET_NO_MEMORY;
  }
  device->data = reinterpret_cast<const std::uint8_t*>(address);
  device->size = size;
  device->name = name;
  made->magic = EXT2_ET_MAGIC_IO_CHANNEL;
  made->manager = &memory_manager;
  made->name = device->name.data();
  made->block_size = 1024;
  made->refcount = 1;
  made->private_data = device;
  *channel = made;
  return 0;
}

}  // namespace

io_manager MemoryIoManager() { return &memory_manager; }

std::string MemoryIoName(ByteView bytes) {
  char text[2 * 20 + 2];
  const auto address = reinterpret_cast<std::uintptr_t>(bytes.data());
  auto end = std::to_chars(text, text + sizeof(text), address, 16).ptr;
  *end++ = ':';
  end = std::to_chars(end, text + sizeof(text), static_cast<std::uint64_t>(bytes.size()), 16).ptr;
  return std::string(kNamePrefix) + std::string(text, end);
}

}  // namespace iotmark::unpack::formats::ext
