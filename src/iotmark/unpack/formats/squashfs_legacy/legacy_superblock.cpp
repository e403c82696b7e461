// Hand-written: libsquashfs parses only the 4.0 little-endian superblock. Field offsets follow the
// 2.x/3.x packed superblock (squashfs_super_block_3 in squashfs-tools' squashfs_compat.h) and the
// 4.0 superblock; every field is whole bytes, so one loader per byte order reads them all.
#include "iotmark/unpack/formats/squashfs_legacy/legacy_superblock.hpp"

#include <algorithm>
#include <array>
#include <string_view>

namespace iotmark::unpack::formats::squashfs_legacy {

namespace {

constexpr std::uint64_t kV2SuperblockSize = 63;
constexpr std::uint64_t kV3SuperblockSize = 119;
constexpr std::uint64_t kV4SuperblockSize = 96;
constexpr std::uint32_t kV3FlagCheck = 0x04;
constexpr std::uint32_t kV3FlagExportable = 0x80;
constexpr std::uint32_t kV4MaxCompressor = 6;
// Beyond this a bytes_used is not a filesystem anyone built (256 TiB).
constexpr std::uint64_t kMaxBytesUsed = std::uint64_t{1} << 48;

struct KnownMagic {
  std::string_view bytes;
  Order order;
};
// The standard magics, the sqlzma ones and DD-WRT's, each with the byte order it announces.
constexpr std::array<KnownMagic, 6> kKnownMagics = {{{"hsqs", Order::kLittle},
                                                     {"sqsh", Order::kBig},
                                                     {"shsq", Order::kLittle},
                                                     {"qshs", Order::kBig},
                                                     {"hsqt", Order::kLittle},
                                                     {"tqsh", Order::kBig}}};

class Fields {
 public:
  Fields(ByteView bytes, Order order) : bytes_(bytes), order_(order) {}
  template <typename T>
  [[nodiscard]] T At(std::size_t offset) const {
    return (order_ == Order::kLittle ? LoadLe<T>(bytes_, offset) : LoadBe<T>(bytes_, offset))
        .value_or(0);
  }

 private:
  ByteView bytes_;
  Order order_;
};

// Offset `at` with `size` bytes lies inside [low, bytes_used).
bool Inside(const LegacySuperblock& sb, std::uint64_t at, std::uint64_t size, std::uint64_t low) {
  return at >= low && at <= sb.bytes_used && sb.bytes_used - at >= size;
}

bool PlausibleBlockSize(const LegacySuperblock& sb) {
  if (sb.block_log < 12 || sb.block_log > 20) return false;
  return sb.block_size == (std::uint32_t{1} << sb.block_log);
}

void ReadV2V3(const Fields& f, LegacySuperblock& sb) {
  sb.inode_count = f.At<std::uint32_t>(4);
  sb.block_log = f.At<std::uint16_t>(34);
  sb.flags = f.At<std::uint8_t>(36);
  sb.id_count = f.At<std::uint8_t>(37);
  sb.guid_count = f.At<std::uint8_t>(38);
  sb.mkfs_time = f.At<std::uint32_t>(39);
  sb.root_inode = f.At<std::uint64_t>(43);
  sb.block_size = f.At<std::uint32_t>(51);
  sb.fragment_count = f.At<std::uint32_t>(55);
  sb.check_data = (sb.flags & kV3FlagCheck) != 0;
  if (sb.major == 2) {
    sb.superblock_size = kV2SuperblockSize;
    sb.bytes_used = f.At<std::uint32_t>(8);
    sb.id_table = f.At<std::uint32_t>(12);
    sb.guid_table = f.At<std::uint32_t>(16);
    sb.inode_table = f.At<std::uint32_t>(20);
    sb.directory_table = f.At<std::uint32_t>(24);
    sb.fragment_table = f.At<std::uint32_t>(59);
  } else {
    sb.superblock_size = kV3SuperblockSize;
    sb.bytes_used = f.At<std::uint64_t>(63);
    sb.id_table = f.At<std::uint64_t>(71);
    sb.guid_table = f.At<std::uint64_t>(79);
    sb.inode_table = f.At<std::uint64_t>(87);
    sb.directory_table = f.At<std::uint64_t>(95);
    sb.fragment_table = f.At<std::uint64_t>(103);
    if ((sb.flags & kV3FlagExportable) != 0) sb.export_table = f.At<std::uint64_t>(111);
  }
  if (sb.fragment_count == 0) sb.fragment_table = kNoTable;
  if (sb.guid_count == 0) sb.guid_table = kNoTable;
}

void ReadV4(const Fields& f, LegacySuperblock& sb) {
  sb.superblock_size = kV4SuperblockSize;
  sb.inode_count = f.At<std::uint32_t>(4);
  sb.mkfs_time = f.At<std::uint32_t>(8);
  sb.block_size = f.At<std::uint32_t>(12);
  sb.fragment_count = f.At<std::uint32_t>(16);
  sb.compression = f.At<std::uint16_t>(20);
  sb.block_log = f.At<std::uint16_t>(22);
  sb.flags = f.At<std::uint16_t>(24);
  sb.id_count = f.At<std::uint16_t>(26);
  sb.root_inode = f.At<std::uint64_t>(32);
  sb.bytes_used = f.At<std::uint64_t>(40);
  sb.id_table = f.At<std::uint64_t>(48);
  sb.xattr_table = f.At<std::uint64_t>(56);
  sb.inode_table = f.At<std::uint64_t>(64);
  sb.directory_table = f.At<std::uint64_t>(72);
  sb.fragment_table = f.At<std::uint64_t>(80);
  sb.export_table = f.At<std::uint64_t>(88);
  if (sb.fragment_count == 0) sb.fragment_table = kNoTable;
}

bool PlausibleVersion(int major, int minor) {
  if (major == 2 || major == 3) return minor == 0 || minor == 1 || minor == kLzmaMinor;
  return major == 4 && minor == 0;
}

// The id tables: 2.x/3.x keep raw arrays of 32-bit ids, 4.0 an index of metadata blocks.
bool PlausibleIdTables(const LegacySuperblock& sb) {
  if (sb.major == 4) {
    if (sb.id_count == 0) return false;
    const std::uint64_t index_bytes =
        (std::uint64_t{sb.id_count} * 4 + kMetadataSize - 1) / kMetadataSize * 8;
    return Inside(sb, sb.id_table, index_bytes, sb.superblock_size);
  }
  if (sb.id_count == 0 ||
      !Inside(sb, sb.id_table, std::uint64_t{sb.id_count} * 4, sb.superblock_size)) {
    return false;
  }
  return sb.guid_count == 0 ||
         Inside(sb, sb.guid_table, std::uint64_t{sb.guid_count} * 4, sb.superblock_size);
}

bool PlausibleLayout(const LegacySuperblock& sb) {
  if (!PlausibleBlockSize(sb) || sb.inode_count == 0) return false;
  if (sb.bytes_used > kMaxBytesUsed) return false;
  if (sb.major == 4 && (sb.compression == 0 || sb.compression > kV4MaxCompressor)) return false;
  // Superblock, data, inode table, directory table, then the other tables, in bytes_used.
  const std::uint64_t low = sb.superblock_size;
  if (!Inside(sb, sb.inode_table, 2, low) || !Inside(sb, sb.directory_table, 2, low)) return false;
  if (sb.inode_table >= sb.directory_table) return false;
  if (!PlausibleIdTables(sb)) return false;
  if (sb.fragment_count > 0) {
    // Each fragment block takes at least one byte of the data area.
    if (sb.fragment_count > sb.inode_table) return false;
    const std::uint64_t index_bytes =
        (std::uint64_t{sb.fragment_count} * sb.FragmentEntrySize() + kMetadataSize - 1) /
        kMetadataSize * sb.FragmentPointerSize();
    if (!Inside(sb, sb.fragment_table, index_bytes, sb.directory_table)) return false;
  }
  if (sb.export_table != kNoTable && !Inside(sb, sb.export_table, 0, low)) return false;
  if (sb.xattr_table != kNoTable && !Inside(sb, sb.xattr_table, 0, low)) return false;
  // The root inode reference: a metadata block inside the inode table, an offset inside 8 KiB.
  if ((sb.root_inode >> 48) != 0) return false;
  if ((sb.root_inode >> 16) >= sb.directory_table - sb.inode_table) return false;
  return (sb.root_inode & 0xFFFF) < kMetadataSize;
}

std::optional<LegacySuperblock> ParseAs(ByteView bytes, Order order, std::string_view magic) {
  const Fields f(bytes, order);
  LegacySuperblock sb;
  sb.order = order;
  sb.magic = std::string(magic);
  sb.major = f.At<std::uint16_t>(28);
  sb.minor = f.At<std::uint16_t>(30);
  if (!PlausibleVersion(sb.major, sb.minor)) return std::nullopt;
  const std::uint64_t needed = sb.major == 2   ? kV2SuperblockSize
                               : sb.major == 3 ? kV3SuperblockSize
                                               : kV4SuperblockSize;
  if (bytes.size() < needed) return std::nullopt;
  if (sb.major == 4) {
    ReadV4(f, sb);
  } else {
    ReadV2V3(f, sb);
  }
  if (!PlausibleLayout(sb)) return std::nullopt;
  return sb;
}

}  // namespace

std::string LegacySuperblock::Version() const {
  std::string version = std::to_string(major) + ".";
  version += minor == kLzmaMinor ? std::string("L") : std::to_string(minor);
  return version;
}

std::uint64_t LegacySuperblock::DirectoryTableEnd() const {
  std::uint64_t end = bytes_used;
  for (const std::uint64_t table :
       {fragment_table, export_table, id_table, guid_table, xattr_table}) {
    if (table != kNoTable && table > directory_table) end = std::min(end, table);
  }
  return end;
}

std::optional<LegacySuperblock> ParseLegacySuperblock(ByteView bytes) {
  if (bytes.size() < 32) return std::nullopt;
  const std::string_view magic = AsChars(bytes.first(4));
  const auto known = std::find_if(kKnownMagics.begin(), kKnownMagics.end(),
                                  [&](const KnownMagic& m) { return m.bytes == magic; });
  if (known == kKnownMagics.end()) return std::nullopt;
  return ParseAs(bytes, known->order, magic);
}

}  // namespace iotmark::unpack::formats::squashfs_legacy
