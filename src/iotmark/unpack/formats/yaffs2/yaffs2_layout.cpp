// YAFFS2 tags, object headers and geometry detection (see yaffs2_layout.hpp). Hand-written: no
// Debian library reads YAFFS2; the layouts follow the YAFFS2 sources' struct definitions.
#include "iotmark/unpack/formats/yaffs2/yaffs2_layout.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

namespace iotmark::unpack::formats::yaffs2 {

namespace {

using Order = ByteReader::Order;

// Sequence numbers the file system gives to blocks of objects; others mark special blocks.
constexpr std::uint32_t kLowestSequence = 0x00001000;
constexpr std::uint32_t kHighestSequence = 0xefffff00;
constexpr std::uint32_t kCheckpointSequence = 0x21;
constexpr std::uint32_t kBadBlockSequence = 0xffff0000;

// A header's tags may carry extra facts: the chunk id field then holds this flag, a shrink flag
// and the parent id, and the top four bits of the object id hold the object type.
constexpr std::uint32_t kExtraHeaderFlag = 0x80000000;
constexpr std::uint32_t kExtraShrinkFlag = 0x40000000;
constexpr std::uint32_t kExtraFlags = 0xf0000000;
constexpr std::uint32_t kIdMask = 0x0fffffff;
// Object ids come from a small hash-bucket allocator; real images stay far below this.
constexpr std::uint32_t kTypicalMaxObjectId = 0x3ffff;

constexpr std::uint32_t kPageSizes[] = {2048, 4096, 512, 1024, 8192, 16384};
constexpr std::uint32_t kSpareSizes[] = {64, 128, 16, 32, 224, 256, 512, 0};
constexpr std::uint32_t kTagOffsets[] = {2, 0};
// How many chunks after the first one geometry detection looks at.
constexpr std::uint64_t kDetectSlots = 32;

constexpr std::uint32_t kTypeMask = 0170000;
constexpr std::uint32_t kRegular = 0100000;
constexpr std::uint32_t kDirectory = 0040000;
constexpr std::uint32_t kSymlink = 0120000;
constexpr std::uint32_t kCharDevice = 0020000;
constexpr std::uint32_t kBlockDevice = 0060000;
constexpr std::uint32_t kFifo = 0010000;
constexpr std::uint32_t kSocket = 0140000;

// Column parities of a byte, as the YAFFS ECC uses them: bit 0 is the parity of the whole byte,
// bits 2..7 the parities of the odd/even bit pairs, nibbles, and halves.
constexpr std::array<std::uint8_t, 256> MakeColumnParity() {
  std::array<std::uint8_t, 256> table{};
  for (unsigned b = 0; b < 256; ++b) {
    const auto parity = [b](unsigned mask) { return std::popcount(b & mask) & 1u; };
    unsigned entry = parity(0xff);
    entry |= parity(0x55) << 2;  // bits 0, 2, 4, 6
    entry |= parity(0xaa) << 3;  // bits 1, 3, 5, 7
    entry |= parity(0x33) << 4;  // bits 0, 1, 4, 5
    entry |= parity(0xcc) << 5;  // bits 2, 3, 6, 7
    entry |= parity(0x0f) << 6;
    entry |= parity(0xf0) << 7;
    table[b] = static_cast<std::uint8_t>(entry);
  }
  return table;
}
constexpr auto kColumnParity = MakeColumnParity();

struct TagsEcc {
  std::uint8_t column = 0;
  std::uint32_t line = 0;
  std::uint32_t line_prime = 0;
};

TagsEcc ComputeEcc(const std::array<std::uint8_t, kTagsSize>& tags) {
  std::uint8_t column = 0;
  TagsEcc ecc;
  for (std::uint32_t i = 0; i < kTagsSize; ++i) {
    const std::uint8_t entry = kColumnParity[tags[i]];
    column ^= entry;
    if ((entry & 1) != 0) {
      ecc.line ^= i;
      ecc.line_prime ^= ~i;
    }
  }
  ecc.column = static_cast<std::uint8_t>((column >> 2) & 0x3f);
  return ecc;
}

enum class EccResult { kGood, kCorrected, kBad };

// Compares the stored ECC with the tags and repairs a single flipped bit in them.
EccResult CheckEcc(std::array<std::uint8_t, kTagsSize>& tags, const TagsEcc& stored) {
  const TagsEcc computed = ComputeEcc(tags);
  const std::uint8_t d_column = stored.column ^ computed.column;
  const std::uint32_t d_line = stored.line ^ computed.line;
  const std::uint32_t d_prime = stored.line_prime ^ computed.line_prime;
  if (d_column == 0 && d_line == 0 && d_prime == 0) return EccResult::kGood;
  // One flipped data bit flips exactly one of each parity pair, and the line parities by its
  // byte index and that index's complement.
  if (d_line == static_cast<std::uint32_t>(~d_prime) &&
      ((d_column ^ (d_column >> 1)) & 0x15) == 0x15) {
    if (d_line >= kTagsSize) return EccResult::kBad;
    unsigned bit = 0;
    if ((d_column & 0x20) != 0) bit |= 4;
    if ((d_column & 0x08) != 0) bit |= 2;
    if ((d_column & 0x02) != 0) bit |= 1;
    tags[d_line] ^= static_cast<std::uint8_t>(1u << bit);
    return EccResult::kCorrected;
  }
  // One flipped bit in the ECC itself.
  if (std::popcount(d_line) + std::popcount(d_prime) + std::popcount(d_column) == 1) {
    return EccResult::kCorrected;
  }
  return EccResult::kBad;
}

std::uint32_t Load32(ByteView bytes, std::size_t offset, Order order) {
  const auto value = order == Order::kLittle ? LoadLe<std::uint32_t>(bytes, offset)
                                             : LoadBe<std::uint32_t>(bytes, offset);
  return value.value_or(0);
}

Slot Invalid(std::string_view problem) {
  Slot slot;
  slot.kind = SlotKind::kInvalid;
  slot.problem = problem;
  return slot;
}

// The C string in a fixed field, or nullopt if the field holds no NUL.
std::optional<std::string> FieldString(ByteView field) {
  const auto* begin = field.data();
  const auto* nul = std::find(begin, begin + field.size(), std::uint8_t{0});
  if (nul == begin + field.size()) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(begin), static_cast<std::size_t>(nul - begin));
}

bool ModeAgrees(ObjectType type, std::uint32_t mode) {
  const std::uint32_t kind = mode & kTypeMask;
  switch (type) {
    case ObjectType::kFile:
      return kind == kRegular;
    case ObjectType::kDirectory:
      return kind == kDirectory;
    case ObjectType::kSymlink:
      return kind == kSymlink;
    case ObjectType::kSpecial:
      return kind == kCharDevice || kind == kBlockDevice || kind == kFifo || kind == kSocket;
    case ObjectType::kHardlink:
      return true;  // hard link headers carry no attributes of their own
  }
  return false;
}

// How strongly the first chunks of `bytes` look like YAFFS2 with geometry `g`; 0 when the first
// chunk is not a plausible object header.
int Score(ByteView bytes, const Geometry& g) {
  const std::uint64_t stride = g.stride();
  if (bytes.size() < stride) return 0;
  const Slot first = ReadSlot(bytes.first(stride), g);
  if (first.kind != SlotKind::kHeader) return 0;
  const auto header = ParseObjectHeader(bytes, g.order);
  if (!header || !LooksGenuine(*header, first.tags.obj_id)) return 0;
  // Ids are handed out from 256 hash buckets; only an image with hundreds of thousands of objects
  // would go past this, while bytes misread as tags usually do.
  if (first.tags.obj_id > kTypicalMaxObjectId || header->parent_id > kTypicalMaxObjectId) return 0;
  if (first.tags.extra_type != 0 &&
      first.tags.extra_type != static_cast<std::uint32_t>(header->type)) {
    return 0;
  }
  int score = 10;
  const auto bonus = [](const Slot& slot) {
    return (slot.tags.ecc_checked ? 3 : 0) + (slot.tags.obj_id <= kTypicalMaxObjectId ? 1 : 0);
  };
  score += bonus(first);
  for (std::uint64_t k = 1; k <= kDetectSlots && (k + 1) * stride <= bytes.size(); ++k) {
    const ByteView bytes_k = bytes.subspan(k * stride, stride);
    const Slot slot = ReadSlot(bytes_k, g);
    if (slot.kind == SlotKind::kInvalid) break;
    if (slot.kind == SlotKind::kHeader) {
      const auto next = ParseObjectHeader(bytes_k, g.order);
      if (!next) break;
      score += LooksGenuine(*next, slot.tags.obj_id) ? 6 : 2;
    } else if (slot.kind == SlotKind::kData) {
      score += 3;
    } else if (slot.kind == SlotKind::kSkipped) {
      score += 1;
    }
    score += bonus(slot);
  }
  return score;
}

// Scores `g` checking the tags' ECC, and without the check if that rules the image out (some tools
// fill the bytes after the tags with something else). Keeps the check on only if the first chunk
// carries an ECC.
int ScoreWithEcc(ByteView bytes, Geometry& g) {
  g.tags_ecc = true;
  const int score = Score(bytes, g);
  if (score == 0) {
    g.tags_ecc = false;
    return Score(bytes, g);
  }
  g.tags_ecc = ReadSlot(bytes.first(g.stride()), g).tags.ecc_checked;
  return score;
}

}  // namespace

Slot ReadSlot(ByteView slot, const Geometry& g) {
  if (slot.size() < g.stride()) return Invalid("the chunk is cut short");
  const ByteView raw_tags = slot.subspan(g.tags_position(), kTagsSize);
  if (IsFilledWith(raw_tags, 0xff)) {
    if (IsFilledWith(slot.first(g.data_size()), 0xff)) {
      Slot erased;
      erased.kind = SlotKind::kErased;
      return erased;
    }
    return Invalid("the page holds data but its tags are erased");
  }
  std::array<std::uint8_t, kTagsSize> tags_bytes{};
  std::memcpy(tags_bytes.data(), raw_tags.data(), kTagsSize);
  Slot result;
  Tags& tags = result.tags;
  const std::uint64_t ecc_at = std::uint64_t{g.tags_position()} + kTagsSize;
  if (g.tags_ecc && g.spare_size > 0 && ecc_at + kTagsEccSize <= g.stride()) {
    const ByteView raw_ecc = slot.subspan(ecc_at, kTagsEccSize);
    if (!IsFilledWith(raw_ecc, 0xff)) {
      const TagsEcc stored{static_cast<std::uint8_t>(raw_ecc[0] & 0x3f),
                           Load32(raw_ecc, 4, g.order), Load32(raw_ecc, 8, g.order)};
      const EccResult check = CheckEcc(tags_bytes, stored);
      if (check == EccResult::kBad) return Invalid("the tags do not match their ECC");
      tags.ecc_checked = true;
      tags.ecc_corrected = check == EccResult::kCorrected;
    }
  }
  const ByteView parsed(tags_bytes.data(), tags_bytes.size());
  tags.seq = Load32(parsed, 0, g.order);
  tags.obj_id = Load32(parsed, 4, g.order);
  tags.chunk_id = Load32(parsed, 8, g.order);
  tags.n_bytes = Load32(parsed, 12, g.order);
  if (tags.seq < kLowestSequence || tags.seq > kHighestSequence) {
    if (tags.seq == kCheckpointSequence || tags.seq == kBadBlockSequence) {
      result.kind = SlotKind::kSkipped;
      return result;
    }
    return Invalid("the sequence number is out of range");
  }
  if ((tags.chunk_id & kExtraHeaderFlag) != 0) {
    tags.extra_type = tags.obj_id >> 28;
    tags.obj_id &= kIdMask;
    tags.shrink = (tags.chunk_id & kExtraShrinkFlag) != 0;
    tags.chunk_id = 0;
    if (tags.extra_type == 0 || tags.extra_type > 5) return Invalid("unknown object type in tags");
  } else if ((tags.chunk_id & kExtraFlags) != 0 || (tags.obj_id & kExtraFlags) != 0) {
    return Invalid("the object or chunk id is out of range");
  }
  if (tags.obj_id == 0) return Invalid("the object id is 0");
  if (tags.chunk_id == 0) {
    result.kind = SlotKind::kHeader;
    return result;
  }
  if (tags.n_bytes > g.data_size()) return Invalid("the byte count exceeds the chunk");
  result.kind = SlotKind::kData;
  return result;
}

std::optional<ObjectHeader> ParseObjectHeader(ByteView page, ByteReader::Order order) {
  ByteReader reader(page, order);
  const auto type = reader.Read<std::uint32_t>();
  ObjectHeader header;
  header.parent_id = reader.Read<std::uint32_t>();
  header.name_sum = reader.Read<std::uint16_t>();
  const ByteView name = reader.ReadBytes(kMaxNameLength + 1);
  reader.Skip(2);  // alignment
  header.mode = reader.Read<std::uint32_t>();
  header.uid = reader.Read<std::uint32_t>();
  header.gid = reader.Read<std::uint32_t>();
  reader.Skip(4);  // atime
  header.mtime = reader.Read<std::uint32_t>();
  reader.Skip(4);  // ctime
  const auto size_low = reader.Read<std::uint32_t>();
  header.equiv_id = reader.Read<std::uint32_t>();
  const ByteView alias = reader.ReadBytes(kMaxAliasLength + 1);
  header.rdev = reader.Read<std::uint32_t>();
  reader.Skip(6 * 4 + 2 * 4);  // Windows times, in-band shadowing
  const auto size_high = reader.Read<std::uint32_t>();
  reader.Skip(4);
  header.shadows = reader.Read<std::uint32_t>();
  const auto is_shrink = reader.Read<std::uint32_t>();
  if (!reader.ok()) return std::nullopt;

  if (type < 1 || type > 5) return std::nullopt;
  header.type = static_cast<ObjectType>(type);
  if (header.parent_id == 0 || header.parent_id > kIdMask) return std::nullopt;
  auto name_text = FieldString(name);
  if (!name_text) return std::nullopt;
  header.name = std::move(*name_text);
  if (header.type == ObjectType::kSymlink) {
    auto target = FieldString(alias);
    if (!target) return std::nullopt;
    header.alias = std::move(*target);
  }
  // Images written with the header memset to 0xff leave the high half of the size (and the
  // shadowing and shrink fields) at all ones, meaning "not set".
  if (size_high != 0xffffffff) {
    header.file_size = (std::uint64_t{size_high} << 32) | size_low;
  } else if (size_low != 0xffffffff) {
    header.file_size = size_low;
  }
  if (header.shadows > kIdMask) header.shadows = 0;
  header.shrink = is_shrink != 0 && is_shrink != 0xffffffff;
  return header;
}

bool LooksGenuine(const ObjectHeader& header, std::uint32_t obj_id) {
  if (header.name.empty() && obj_id != kRootId) return false;
  for (const char c : header.name) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f || c == '/') return false;
  }
  if (header.parent_id == obj_id && obj_id != kRootId) return false;
  if (header.type == ObjectType::kHardlink) return true;  // attributes live in the target
  return (header.mode >> 16) == 0 && ModeAgrees(header.type, header.mode);
}

std::optional<Geometry> DetectGeometry(ByteView bytes) {
  std::optional<Geometry> best;
  int best_score = 0;
  for (const Order order : {Order::kLittle, Order::kBig}) {
    const std::uint32_t type = Load32(bytes, 0, order);
    if (type < 1 || type > 5) continue;
    for (const std::uint32_t page : kPageSizes) {
      for (const std::uint32_t spare : kSpareSizes) {
        if (spare == 0 ? page < 1024 : spare > page / 8) continue;
        for (const std::uint32_t tag_offset : kTagOffsets) {
          if (spare == 0 ? tag_offset != 0 : tag_offset + kTagsSize > spare) continue;
          Geometry g{page, spare, tag_offset, order, true};
          const int score = ScoreWithEcc(bytes, g);
          if (score > best_score) {
            best_score = score;
            best = g;
          }
        }
      }
    }
  }
  return best;
}

Extent MeasureExtent(ByteView bytes, const Geometry& g) {
  Extent extent;
  const std::uint64_t stride = g.stride();
  const auto good = [&](std::uint64_t at, Slot& slot) {
    slot = ReadSlot(bytes.subspan(at, stride), g);
    if (slot.kind == SlotKind::kHeader) {
      return ParseObjectHeader(bytes.subspan(at, stride), g.order).has_value();
    }
    return slot.kind == SlotKind::kData || slot.kind == SlotKind::kSkipped;
  };
  std::uint64_t pos = 0;
  std::uint64_t end = 0;
  bool stopped = false;
  while (bytes.size() - pos >= stride) {
    Slot slot;
    if (good(pos, slot)) {
      ++extent.chunks;
      if (slot.kind == SlotKind::kHeader) ++extent.headers;
      end = pos + stride;
    } else if (slot.kind != SlotKind::kErased) {
      // A single unreadable chunk between good ones is damage, not the end.
      Slot next;
      if (bytes.size() - pos >= 2 * stride && good(pos + stride, next)) {
        ++extent.damaged;
      } else {
        stopped = true;
        break;
      }
    }
    pos += stride;
  }
  // The blob ends inside a chunk right after good ones: a cut-off image.
  if (!stopped && end == pos && pos < bytes.size() && !IsFilledWith(bytes.subspan(pos), 0xff)) {
    extent.truncated = true;
    end = bytes.size();
  }
  extent.length = end;
  return extent;
}

}  // namespace iotmark::unpack::formats::yaffs2
