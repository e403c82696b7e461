// YAFFS2 on-flash structures as NAND dumps hold them: chunks of page data each followed by a spare
// (OOB) area carrying the packed tags, or with the tags in band at the end of the page. Parses the
// tags (with their Hamming ECC) and object headers, and guesses the flash geometry of an image.
// Written by hand: Debian has no library that reads YAFFS2.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "iotmark/base/bytes.hpp"

namespace iotmark::unpack::formats::yaffs2 {

// seq_number, obj_id, chunk_id, n_bytes.
constexpr std::uint32_t kTagsSize = 16;
// Hamming code over the tags: column parity byte (padded to 4), line parity, its complement.
constexpr std::uint32_t kTagsEccSize = 12;
constexpr std::uint32_t kObjectHeaderSize = 512;
constexpr std::uint32_t kMaxNameLength = 255;
constexpr std::uint32_t kMaxAliasLength = 159;

// Object ids the file system reserves.
constexpr std::uint32_t kRootId = 1;
constexpr std::uint32_t kLostFoundId = 2;
constexpr std::uint32_t kUnlinkedId = 3;
constexpr std::uint32_t kDeletedId = 4;

enum class ObjectType : std::uint32_t {
  kFile = 1,
  kSymlink = 2,
  kDirectory = 3,
  kHardlink = 4,
  kSpecial = 5,
};

struct Geometry {
  std::uint32_t page_size = 0;
  std::uint32_t spare_size = 0;  // 0: the tags are in band, in the last 16 bytes of the page
  std::uint32_t tag_offset =
      0;  // where the tags start in the spare area (2 skips the bad-block byte)
  ByteReader::Order order = ByteReader::Order::kLittle;
  // The 12 bytes after the tags hold their ECC, which is checked (and a flipped bit repaired).
  bool tags_ecc = false;

  [[nodiscard]] std::uint64_t stride() const { return std::uint64_t{page_size} + spare_size; }
  // Bytes of file data a chunk can hold.
  [[nodiscard]] std::uint32_t data_size() const {
    return spare_size == 0 ? page_size - kTagsSize : page_size;
  }
  [[nodiscard]] std::uint32_t tags_position() const {
    return spare_size == 0 ? page_size - kTagsSize : page_size + tag_offset;
  }
  [[nodiscard]] bool big_endian() const { return order == ByteReader::Order::kBig; }
};

enum class SlotKind {
  kErased,   // never written: page and tags all 0xff
  kData,     // a chunk of file data
  kHeader,   // an object header (chunk id 0)
  kSkipped,  // written by the file system but holds no objects (checkpoint, retired block)
  kInvalid,  // does not parse as YAFFS2
};

struct Tags {
  std::uint32_t seq = 0;
  std::uint32_t obj_id = 0;
  std::uint32_t chunk_id = 0;
  std::uint32_t n_bytes = 0;
  bool ecc_checked = false;      // the tags carried an ECC and it matched (maybe after correction)
  bool ecc_corrected = false;    // a single flipped bit was repaired
  bool shrink = false;           // header written when the file was truncated
  std::uint32_t extra_type = 0;  // object type kept in the tags of a header (0: not recorded)
};

struct Slot {
  SlotKind kind = SlotKind::kInvalid;
  Tags tags;
  std::string_view problem;  // why a slot is kInvalid
};

// Classifies one page + spare (exactly geometry.stride() bytes).
Slot ReadSlot(ByteView slot, const Geometry& geometry);

struct ObjectHeader {
  ObjectType type = ObjectType::kFile;
  std::uint32_t parent_id = 0;
  std::uint16_t name_sum = 0;
  std::string name;
  std::uint32_t mode = 0;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint32_t mtime = 0;
  std::uint64_t file_size = 0;
  std::uint32_t equiv_id = 0;
  std::string alias;
  std::uint32_t rdev = 0;
  std::uint32_t shadows = 0;  // an object this header replaced by a rename (0: none)
  bool shrink = false;
};

// Parses the object header at the start of a page; nullopt unless the type is known, the name (and
// for symlinks the alias) is NUL-terminated and the parent id is possible.
std::optional<ObjectHeader> ParseObjectHeader(ByteView page, ByteReader::Order order);

// Stricter checks used to tell a real header from chance: a printable name without '/', a mode
// whose file type agrees with the object type.
bool LooksGenuine(const ObjectHeader& header, std::uint32_t obj_id);

// Guesses the geometry of an image whose first chunk (at the start of `bytes`) is an object header
// by trying every page size, spare size, tag position and byte order and scoring how many of the
// first chunks parse. nullopt when no combination makes the first chunk a plausible header.
std::optional<Geometry> DetectGeometry(ByteView bytes);

struct Extent {
  std::uint64_t length = 0;  // through the last chunk that parses
  std::uint64_t chunks = 0;  // chunks holding data or headers
  std::uint64_t headers = 0;
  std::uint64_t damaged = 0;  // unreadable chunks between good ones
  bool truncated = false;     // the blob ends inside a chunk
};

// Walks the chunks from the start of `bytes` and says where the file system ends: after the last
// chunk that parses, with erased chunks in between counted in and single damaged chunks tolerated.
Extent MeasureExtent(ByteView bytes, const Geometry& geometry);

}  // namespace iotmark::unpack::formats::yaffs2
