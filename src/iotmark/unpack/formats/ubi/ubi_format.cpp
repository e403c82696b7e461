// UBI (Unsorted Block Images) as it lies on raw NAND or NOR flash: every physical eraseblock (PEB)
// starts with a big-endian erase counter header ("UBI#"), has a volume identifier header ("UBI!")
// at vid_hdr_offset saying which logical eraseblock (LEB) of which volume it holds, and that LEB's
// data from data_offset on. The layout volume holds the volume table (names, types, sizes). The
// extractor rebuilds every volume from its LEBs and writes it as one file; what the volume holds
// (UBIFS, SquashFS, a kernel) is carved from that file by the recursive unpacker.
//
// Written by hand: Debian has no library that reads UBI images from a file (mtd-utils' libubi only
// talks to the kernel's UBI devices). The CRC-32 is zlib's.
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "iotmark/unpack/entry_sink.hpp"
#include "iotmark/unpack/extract_context.hpp"
#include "iotmark/unpack/format.hpp"

namespace iotmark::unpack::formats {

namespace {

using model::GapKind;

constexpr std::string_view kEcMagic = "UBI#";
constexpr std::string_view kVidMagic = "UBI!";
constexpr std::size_t kHeaderSize = 64;
constexpr std::size_t kHeaderCrcOffset = 60;
constexpr std::uint8_t kUbiVersion = 1;
// PEB sizes seen on real flash run from 1 KiB (small NOR parts) to a few MiB (MLC NAND); a PEB is
// always a multiple of 64 bytes (the smallest header alignment).
constexpr std::uint64_t kMaxPebSize = std::uint64_t{16} << 20;
constexpr std::uint64_t kPebAlignment = 64;
// How many PEB-size candidates the probe tries before it gives up.
constexpr int kMaxPebCandidates = 8;

constexpr std::uint32_t kLayoutVolumeId = 0x7fffefff;  // UBI_INTERNAL_VOL_START
constexpr std::uint32_t kLayoutVolumeLebs = 2;
constexpr std::uint32_t kMaxVolumes = 128;
constexpr std::size_t kRecordSize = 172;
constexpr std::size_t kRecordCrcOffset = 168;
constexpr std::size_t kMaxNameLength = 127;
constexpr std::uint8_t kDynamic = 1;
constexpr std::uint8_t kStatic = 2;

// UBIFS superblock, read to size a dynamic volume that holds a UBIFS.
constexpr std::uint32_t kUbifsMagic = 0x06101831;
constexpr std::size_t kUbifsSuperblockSize = 4096;
constexpr std::uint8_t kUbifsSuperblockType = 6;

// More problems than this in one image are summed up in one gap.
constexpr std::size_t kMaxListedProblems = 32;

constexpr Magic kMagics[] = {{kEcMagic, 0}};

// CRC-32 as UBI (and UBIFS) compute it: initial value ~0 and no final inversion.
std::uint32_t UbiCrc(ByteView bytes) {
  return static_cast<std::uint32_t>(~crc32_z(0, bytes.data(), bytes.size()));
}

bool HasMagic(ByteView bytes, std::string_view magic) {
  return bytes.size() >= magic.size() && std::memcmp(bytes.data(), magic.data(), magic.size()) == 0;
}

enum class HeaderState { kValid, kBadCrc, kErased, kAbsent };

struct EcHeader {
  std::uint64_t erase_count = 0;
  std::uint32_t vid_hdr_offset = 0;
  std::uint32_t data_offset = 0;
  std::uint32_t image_seq = 0;
};

// The erase counter header at the start of `bytes`.
HeaderState ReadEcHeader(ByteView bytes, EcHeader& header) {
  if (bytes.size() < kHeaderSize) return HeaderState::kAbsent;
  const ByteView raw = bytes.first(kHeaderSize);
  if (!HasMagic(raw, kEcMagic)) {
    return IsFilledWith(raw, 0xff) ? HeaderState::kErased : HeaderState::kAbsent;
  }
  if (LoadBe<std::uint32_t>(raw, kHeaderCrcOffset) != UbiCrc(raw.first(kHeaderCrcOffset))) {
    return HeaderState::kBadCrc;
  }
  ByteReader reader(raw, ByteReader::Order::kBig);
  reader.Skip(4);
  const auto version = reader.Read<std::uint8_t>();
  reader.Skip(3);
  header.erase_count = reader.Read<std::uint64_t>();
  header.vid_hdr_offset = reader.Read<std::uint32_t>();
  header.data_offset = reader.Read<std::uint32_t>();
  header.image_seq = reader.Read<std::uint32_t>();
  if (!reader.ok() || version != kUbiVersion) return HeaderState::kBadCrc;
  return HeaderState::kValid;
}

struct VidHeader {
  std::uint8_t vol_type = 0;
  std::uint8_t copy_flag = 0;
  std::uint32_t vol_id = 0;
  std::uint32_t lnum = 0;
  std::uint32_t data_size = 0;
  std::uint32_t used_ebs = 0;
  std::uint32_t data_pad = 0;
  std::uint32_t data_crc = 0;
  std::uint64_t sqnum = 0;
};

HeaderState ReadVidHeader(ByteView bytes, VidHeader& header) {
  if (bytes.size() < kHeaderSize) return HeaderState::kAbsent;
  const ByteView raw = bytes.first(kHeaderSize);
  if (!HasMagic(raw, kVidMagic)) {
    return IsFilledWith(raw, 0xff) ? HeaderState::kErased : HeaderState::kAbsent;
  }
  if (LoadBe<std::uint32_t>(raw, kHeaderCrcOffset) != UbiCrc(raw.first(kHeaderCrcOffset))) {
    return HeaderState::kBadCrc;
  }
  ByteReader reader(raw, ByteReader::Order::kBig);
  reader.Skip(4);
  const auto version = reader.Read<std::uint8_t>();
  header.vol_type = reader.Read<std::uint8_t>();
  header.copy_flag = reader.Read<std::uint8_t>();
  reader.Skip(1);  // compat
  header.vol_id = reader.Read<std::uint32_t>();
  header.lnum = reader.Read<std::uint32_t>();
  reader.Skip(4);
  header.data_size = reader.Read<std::uint32_t>();
  header.used_ebs = reader.Read<std::uint32_t>();
  header.data_pad = reader.Read<std::uint32_t>();
  header.data_crc = reader.Read<std::uint32_t>();
  reader.Skip(4);
  header.sqnum = reader.Read<std::uint64_t>();
  if (!reader.ok() || version != kUbiVersion) return HeaderState::kBadCrc;
  if (header.vol_type != kDynamic && header.vol_type != kStatic) return HeaderState::kBadCrc;
  return HeaderState::kValid;
}

// How the PEBs of one image are laid out, as the probe found it.
struct Geometry {
  std::uint64_t peb_size = 0;
  std::uint32_t vid_hdr_offset = 0;
  std::uint32_t data_offset = 0;
  std::uint32_t image_seq = 0;
  std::uint64_t pebs = 0;    // PEBs up to and including the last with a valid EC header
  std::uint64_t length = 0;  // pebs * peb_size: the image's extent (may pass the blob's end)
  std::uint64_t vid_headers = 0;

  [[nodiscard]] std::uint64_t leb_size() const { return peb_size - data_offset; }
};

bool SameImage(const EcHeader& a, const EcHeader& b) {
  return a.vid_hdr_offset == b.vid_hdr_offset && a.data_offset == b.data_offset &&
         a.image_seq == b.image_seq;
}

bool ValidAt(ByteView bytes, std::uint64_t offset, const EcHeader& first) {
  if (offset >= bytes.size()) return false;
  EcHeader other;
  return ReadEcHeader(bytes.subspan(offset), other) == HeaderState::kValid &&
         SameImage(first, other);
}

// The PEB size: the distance to the next valid EC header of the same image. A candidate is
// confirmed by a third header at twice the distance (or by the blob ending before it), so that a
// UBI image stored inside a volume does not fool the guess. `hint` is the probe's answer, which
// the extractor reuses so both see the same geometry.
std::optional<std::uint64_t> GuessPebSize(ByteView bytes, const EcHeader& first,
                                          std::optional<std::uint64_t> hint) {
  if (hint && *hint > first.data_offset && *hint <= kMaxPebSize && *hint % kPebAlignment == 0 &&
      (*hint + kHeaderSize > bytes.size() || ValidAt(bytes, *hint, first))) {
    return hint;
  }
  const std::uint64_t limit = std::min<std::uint64_t>(bytes.size(), kMaxPebSize + kHeaderSize);
  std::optional<std::uint64_t> unconfirmed;
  int candidates = 0;
  for (std::uint64_t at = first.data_offset + 1; at + kHeaderSize <= limit;) {
    const auto* hit = static_cast<const std::uint8_t*>(
        ::memmem(bytes.data() + at, limit - at, kEcMagic.data(), kEcMagic.size()));
    if (hit == nullptr) break;
    const auto distance = static_cast<std::uint64_t>(hit - bytes.data());
    at = distance + 1;
    if (distance % kPebAlignment != 0 || !ValidAt(bytes, distance, first)) continue;
    if (2 * distance + kHeaderSize > bytes.size() || ValidAt(bytes, 2 * distance, first)) {
      return distance;
    }
    if (!unconfirmed) unconfirmed = distance;
    if (++candidates >= kMaxPebCandidates) break;
  }
  return unconfirmed;
}

// Reads the image that starts at the beginning of `bytes`: nullopt unless the first PEB has a
// valid EC header and a second one gives the PEB size. An image without any VID header (a
// formatted, empty device) is still one chunk, so its PEBs are not probed one by one.
std::optional<Geometry> FindGeometry(ByteView bytes,
                                     std::optional<std::uint64_t> peb_hint = std::nullopt) {
  EcHeader first;
  if (ReadEcHeader(bytes, first) != HeaderState::kValid) return std::nullopt;
  if (first.vid_hdr_offset < kHeaderSize || first.data_offset < first.vid_hdr_offset ||
      first.data_offset - first.vid_hdr_offset < kHeaderSize || first.data_offset >= kMaxPebSize) {
    return std::nullopt;
  }
  const auto peb_size = GuessPebSize(bytes, first, peb_hint);
  if (!peb_size) return std::nullopt;
  Geometry geometry;
  geometry.peb_size = *peb_size;
  geometry.vid_hdr_offset = first.vid_hdr_offset;
  geometry.data_offset = first.data_offset;
  geometry.image_seq = first.image_seq;
  // The image runs on through PEBs with valid headers; erased PEBs and damaged headers inside it
  // do not end it, the first foreign PEB does. Its extent ends with the last valid header's PEB.
  for (std::uint64_t index = 0; index * geometry.peb_size + kHeaderSize <= bytes.size(); ++index) {
    const std::uint64_t at = index * geometry.peb_size;
    EcHeader header;
    const HeaderState state = ReadEcHeader(bytes.subspan(at), header);
    if (state == HeaderState::kValid && SameImage(first, header)) {
      geometry.pebs = index + 1;
      VidHeader vid;
      if (at + geometry.vid_hdr_offset < bytes.size() &&
          ReadVidHeader(bytes.subspan(at + geometry.vid_hdr_offset), vid) == HeaderState::kValid) {
        ++geometry.vid_headers;
      }
    } else if (state != HeaderState::kBadCrc && state != HeaderState::kErased) {
      break;
    }
  }
  geometry.length = geometry.pebs * geometry.peb_size;
  return geometry;
}

// One copy of an LEB: which PEB holds it and what its VID header says.
struct LebCopy {
  std::uint64_t peb = 0;
  VidHeader vid;
};

// A volume as the volume table describes it (or as its VID headers do, without a table).
struct Volume {
  std::uint32_t id = 0;
  std::string name;
  std::uint8_t type = kDynamic;
  std::uint32_t reserved_pebs = 0;  // 0: unknown (no volume table)
  std::uint32_t alignment = 1;
  std::uint32_t data_pad = 0;
  bool update_interrupted = false;
  bool autoresize = false;
  bool in_table = false;
};

std::string_view TypeName(std::uint8_t type) { return type == kStatic ? "static" : "dynamic"; }

// An untrusted name as it may appear in a gap's reason or the report: control bytes escaped.
std::string Shown(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte >= 0x7f) {
      out += "\\x";
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xf]);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// A file name made from a volume name: letters, digits and ".-_+" kept, anything else '_'.
std::string FileNameFor(const Volume& volume) {
  std::string out;
  for (const char c : volume.name) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '-' || c == '_' || c == '+';
    out.push_back(keep ? c : '_');
  }
  if (out.empty() || out.find_first_not_of('.') == std::string::npos) {
    out = "vol" + std::to_string(volume.id);
  }
  return out;
}

class UbiExtractor {
 public:
  UbiExtractor(ByteView chunk, const Geometry& geometry, ExtractContext& ctx)
      : chunk_(chunk), geometry_(geometry), ctx_(ctx) {}

  Status Run();

 private:
  // A volume with the LEB chosen for each logical number.
  struct Assembly {
    Volume volume;
    std::map<std::uint32_t, const LebCopy*> lebs;
    std::uint64_t lebs_to_write = 0;  // LEBs 0 .. lebs_to_write - 1 make up the volume
    std::uint64_t size = 0;           // bytes written
    std::string file;
  };

  void Problem(GapKind kind, std::uint64_t offset, std::string reason);
  void ScanPebs();
  void ReadVolumeTable();
  struct VolumeTable {
    std::vector<Volume> volumes;
    std::vector<std::uint32_t> bad_slots;  // records with a bad CRC or impossible values
  };
  [[nodiscard]] std::optional<VolumeTable> ParseVolumeTable(ByteView table) const;
  std::vector<Volume> VolumesWithoutTable();
  const LebCopy* ChooseCopy(const Volume& volume, std::uint32_t lnum,
                            std::vector<const LebCopy*>& copies);
  [[nodiscard]] ByteView LebData(std::uint64_t peb, std::uint64_t size) const;
  [[nodiscard]] std::uint64_t UsableLebSize(const Volume& volume) const {
    return geometry_.leb_size() - std::min<std::uint64_t>(volume.data_pad, geometry_.leb_size());
  }
  enum class DataCheck { kMatch, kMismatch, kCut };
  [[nodiscard]] DataCheck CheckData(const LebCopy& copy, const Volume& volume) const;
  Assembly Assemble(const Volume& volume);
  void SizeDynamic(Assembly& assembly);
  void SizeStatic(Assembly& assembly);
  struct UbifsGeometry {
    std::uint32_t leb_size = 0;
    std::uint32_t leb_count = 0;
  };
  [[nodiscard]] std::vector<std::uint8_t> VolumeHead(const Assembly& assembly,
                                                     std::size_t size) const;
  // The UBIFS superblock at the start of the volume, if there is one.
  [[nodiscard]] std::optional<UbifsGeometry> FindUbifs(const Assembly& assembly) const;
  Status Write(Assembly& assembly, const std::set<std::string>& taken);
  void Describe(const Assembly& assembly, std::size_t index);

  ByteView chunk_;
  const Geometry& geometry_;
  ExtractContext& ctx_;
  std::size_t listed_ = 0;
  std::size_t unlisted_ = 0;
  // Copies of every LEB, by (volume id, LEB number).
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::vector<LebCopy>> copies_;
  std::set<std::uint32_t> seen_volumes_;
  std::optional<std::vector<Volume>> table_;
  std::uint64_t free_pebs_ = 0;
};

void UbiExtractor::Problem(GapKind kind, std::uint64_t offset, std::string reason) {
  if (listed_ < kMaxListedProblems) {
    ++listed_;
    ctx_.AddGap(kind, offset, std::move(reason));
  } else {
    ++unlisted_;
  }
}

void UbiExtractor::ScanPebs() {
  const std::uint64_t count = (chunk_.size() + geometry_.peb_size - 1) / geometry_.peb_size;
  for (std::uint64_t peb = 0; peb < count; ++peb) {
    const std::uint64_t at = peb * geometry_.peb_size;
    const std::string where = "PEB " + std::to_string(peb) + " at " + HexOffset(at);
    EcHeader ec;
    const HeaderState ec_state = ReadEcHeader(chunk_.subspan(at), ec);
    if (ec_state == HeaderState::kErased) {
      ++free_pebs_;
      continue;
    }
    if (ec_state == HeaderState::kBadCrc) {
      Problem(GapKind::kCorrupt, at, where + ": erase counter header is damaged (CRC mismatch)");
    } else if (ec_state == HeaderState::kAbsent) {
      Problem(GapKind::kCorrupt, at, where + ": no erase counter header");
    }
    const std::uint64_t vid_at = at + geometry_.vid_hdr_offset;
    VidHeader vid;
    const HeaderState vid_state =
        vid_at < chunk_.size() ? ReadVidHeader(chunk_.subspan(vid_at), vid) : HeaderState::kAbsent;
    if (vid_state == HeaderState::kErased) {
      ++free_pebs_;
    } else if (vid_state == HeaderState::kBadCrc) {
      Problem(GapKind::kCorrupt, vid_at,
              where + ": volume identifier header is damaged; its data is ignored");
    } else if (vid_state == HeaderState::kAbsent) {
      if (vid_at + kHeaderSize > chunk_.size()) {
        Problem(GapKind::kTruncated, std::min<std::uint64_t>(vid_at, chunk_.size()),
                where + " is cut off before its volume identifier header");
      } else {
        Problem(GapKind::kCorrupt, vid_at, where + ": no volume identifier header");
      }
    } else if (vid.vol_id == kLayoutVolumeId || vid.vol_id < kMaxVolumes) {
      copies_[{vid.vol_id, vid.lnum}].push_back(LebCopy{peb, vid});
      if (vid.vol_id < kMaxVolumes) seen_volumes_.insert(vid.vol_id);
    } else if (vid.vol_id < kLayoutVolumeId) {
      Problem(GapKind::kCorrupt, vid_at,
              where + " names volume " + std::to_string(vid.vol_id) +
                  ", beyond the 128 volumes UBI allows; ignored");
    }
    // Other internal volumes (fastmap) are not needed: every PEB is scanned.
  }
}

ByteView UbiExtractor::LebData(std::uint64_t peb, std::uint64_t size) const {
  const std::uint64_t at = peb * geometry_.peb_size + geometry_.data_offset;
  if (at >= chunk_.size()) return {};
  return chunk_.subspan(at, std::min<std::uint64_t>(size, chunk_.size() - at));
}

std::optional<UbiExtractor::VolumeTable> UbiExtractor::ParseVolumeTable(ByteView table) const {
  const std::size_t slots = std::min<std::size_t>(kMaxVolumes, geometry_.leb_size() / kRecordSize);
  if (table.size() < slots * kRecordSize || slots == 0) return std::nullopt;
  VolumeTable parsed;
  for (std::size_t slot = 0; slot < slots; ++slot) {
    const ByteView record = table.subspan(slot * kRecordSize, kRecordSize);
    ByteReader reader(record, ByteReader::Order::kBig);
    Volume volume;
    volume.id = static_cast<std::uint32_t>(slot);
    volume.reserved_pebs = reader.Read<std::uint32_t>();
    volume.alignment = reader.Read<std::uint32_t>();
    volume.data_pad = reader.Read<std::uint32_t>();
    volume.type = reader.Read<std::uint8_t>();
    volume.update_interrupted = reader.Read<std::uint8_t>() != 0;
    const auto name_length = reader.Read<std::uint16_t>();
    const ByteView name = reader.ReadBytes(kMaxNameLength + 1);
    volume.autoresize = (reader.Read<std::uint8_t>() & 1) != 0;
    const bool crc_ok =
        LoadBe<std::uint32_t>(record, kRecordCrcOffset) == UbiCrc(record.first(kRecordCrcOffset));
    if (crc_ok && volume.reserved_pebs == 0) continue;  // an empty slot
    if (!crc_ok || name_length > kMaxNameLength ||
        (volume.type != kDynamic && volume.type != kStatic) ||
        volume.data_pad >= geometry_.leb_size()) {
      parsed.bad_slots.push_back(volume.id);
      continue;
    }
    volume.name = std::string(CStringField(name.first(name_length)));
    volume.in_table = true;
    parsed.volumes.push_back(std::move(volume));
  }
  return parsed;
}

std::string SlotList(const std::vector<std::uint32_t>& slots) {
  std::string out;
  for (const std::uint32_t slot : slots) out += (out.empty() ? "" : ", ") + std::to_string(slot);
  return out;
}

void UbiExtractor::ReadVolumeTable() {
  // Both copies of the table, newest first; the first whose records all check out is used.
  std::vector<const LebCopy*> candidates;
  for (std::uint32_t lnum = 0; lnum < kLayoutVolumeLebs; ++lnum) {
    const auto found = copies_.find({kLayoutVolumeId, lnum});
    if (found == copies_.end()) continue;
    for (const LebCopy& copy : found->second) candidates.push_back(&copy);
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const LebCopy* a, const LebCopy* b) { return a->vid.sqnum > b->vid.sqnum; });
  std::optional<VolumeTable> fallback;
  std::uint64_t fallback_offset = 0;
  std::vector<std::uint64_t> damaged_pebs;
  for (const LebCopy* copy : candidates) {
    auto parsed = ParseVolumeTable(LebData(copy->peb, geometry_.leb_size()));
    if (parsed && parsed->bad_slots.empty()) {
      if (!damaged_pebs.empty()) {
        Problem(GapKind::kCorrupt, damaged_pebs.front() * geometry_.peb_size,
                "a copy of the volume table (PEB " + std::to_string(damaged_pebs.front()) +
                    ") is damaged; the intact copy in PEB " + std::to_string(copy->peb) +
                    " was used");
      }
      table_ = std::move(parsed->volumes);
      return;
    }
    damaged_pebs.push_back(copy->peb);
    if (parsed && !fallback) {
      fallback = std::move(parsed);
      fallback_offset = copy->peb * geometry_.peb_size + geometry_.data_offset;
    }
  }
  if (fallback) {
    Problem(GapKind::kCorrupt, fallback_offset,
            "no copy of the volume table is intact: records " + SlotList(fallback->bad_slots) +
                " are damaged; volumes in them are named by id");
    table_ = std::move(fallback->volumes);
    return;
  }
  Problem(GapKind::kCorrupt, 0,
          candidates.empty() ? "the layout volume (the volume table) is missing; volumes are "
                               "named by id"
                             : "the volume table cannot be read; volumes are named by id");
}

std::vector<Volume> UbiExtractor::VolumesWithoutTable() {
  std::vector<Volume> volumes;
  for (const std::uint32_t id : seen_volumes_) {
    if (table_ &&
        std::any_of(table_->begin(), table_->end(), [id](const Volume& v) { return v.id == id; })) {
      continue;
    }
    Volume volume;
    volume.id = id;
    // The VID headers say the type and padding.
    for (const auto& [key, list] : copies_) {
      if (key.first != id || list.empty()) continue;
      volume.type = list.front().vid.vol_type;
      volume.data_pad = list.front().vid.data_pad;
      break;
    }
    volumes.push_back(std::move(volume));
  }
  return volumes;
}

// Data cut off by the end of the image cannot be checked; the writer reports the truncation.
UbiExtractor::DataCheck UbiExtractor::CheckData(const LebCopy& copy, const Volume& volume) const {
  if (copy.vid.data_size > UsableLebSize(volume)) return DataCheck::kMismatch;
  const ByteView data = LebData(copy.peb, copy.vid.data_size);
  if (data.size() < copy.vid.data_size) return DataCheck::kCut;
  return UbiCrc(data) == copy.vid.data_crc ? DataCheck::kMatch : DataCheck::kMismatch;
}

// The newest copy wins, unless its data CRC (kept for static volumes and for copies made by wear
// levelling) says it is damaged: then the next older one, as UBI itself does.
const LebCopy* UbiExtractor::ChooseCopy(const Volume& volume, std::uint32_t lnum,
                                        std::vector<const LebCopy*>& copies) {
  std::stable_sort(copies.begin(), copies.end(),
                   [](const LebCopy* a, const LebCopy* b) { return a->vid.sqnum > b->vid.sqnum; });
  const std::string where =
      "LEB " + std::to_string(lnum) + " of volume " + std::to_string(volume.id);
  const auto offset_of = [this](const LebCopy* copy) {
    return copy->peb * geometry_.peb_size + geometry_.data_offset;
  };
  if (copies.size() > 1 && copies[0]->vid.sqnum == copies[1]->vid.sqnum) {
    const ByteView a = LebData(copies[0]->peb, UsableLebSize(volume));
    const ByteView b = LebData(copies[1]->peb, UsableLebSize(volume));
    if (!std::equal(a.begin(), a.end(), b.begin(), b.end())) {
      Problem(GapKind::kCorrupt, offset_of(copies[0]),
              where + " has two different copies with the same sequence number (PEBs " +
                  std::to_string(copies[0]->peb) + " and " + std::to_string(copies[1]->peb) +
                  "); the first was used");
    }
  }
  for (const LebCopy* copy : copies) {
    const bool checked = copy->vid.vol_type == kStatic || copy->vid.copy_flag != 0;
    if (!checked || CheckData(*copy, volume) != DataCheck::kMismatch) {
      if (copy != copies.front()) {
        Problem(GapKind::kCorrupt, offset_of(copies.front()),
                where + ": the newest copy is damaged (data CRC mismatch); an older one was used");
      }
      return copy;
    }
  }
  Problem(GapKind::kCorrupt, offset_of(copies.front()),
          where + " is damaged (data CRC mismatch); used as it is");
  return copies.front();
}

// The first `size` bytes of the assembled volume (fewer if its first LEBs are missing or short).
std::vector<std::uint8_t> UbiExtractor::VolumeHead(const Assembly& assembly,
                                                   std::size_t size) const {
  std::vector<std::uint8_t> head;
  for (std::uint32_t lnum = 0; head.size() < size; ++lnum) {
    const auto found = assembly.lebs.find(lnum);
    if (found == assembly.lebs.end()) break;
    const std::uint64_t length =
        assembly.volume.type == kStatic
            ? std::min<std::uint64_t>(found->second->vid.data_size, UsableLebSize(assembly.volume))
            : UsableLebSize(assembly.volume);
    if (length == 0) break;
    const ByteView data =
        LebData(found->second->peb, std::min<std::uint64_t>(length, size - head.size()));
    head.insert(head.end(), data.begin(), data.end());
    if (data.size() < length && head.size() < size) break;
  }
  return head;
}

std::optional<UbiExtractor::UbifsGeometry> UbiExtractor::FindUbifs(const Assembly& assembly) const {
  const std::vector<std::uint8_t> sb = VolumeHead(assembly, kUbifsSuperblockSize);
  if (sb.size() < kUbifsSuperblockSize || LoadLe<std::uint32_t>(sb, 0) != kUbifsMagic ||
      sb[20] != kUbifsSuperblockType || LoadLe<std::uint32_t>(sb, 16) != kUbifsSuperblockSize ||
      LoadLe<std::uint32_t>(sb, 4) != UbiCrc(ByteView(sb).subspan(8))) {
    return std::nullopt;
  }
  return UbifsGeometry{*LoadLe<std::uint32_t>(sb, 36), *LoadLe<std::uint32_t>(sb, 40)};
}

// A dynamic volume runs to its highest mapped LEB, or to the end of the UBIFS it holds if that
// says more (its free LEBs are unmapped), never past its reservation or the PEBs of the image.
void UbiExtractor::SizeDynamic(Assembly& assembly) {
  const Volume& volume = assembly.volume;
  std::uint64_t count =
      assembly.lebs.empty() ? 0 : std::uint64_t{assembly.lebs.rbegin()->first} + 1;
  if (const auto ubifs = FindUbifs(assembly); ubifs && ubifs->leb_size == UsableLebSize(volume)) {
    count = std::max<std::uint64_t>(count, ubifs->leb_count);
  }
  const std::string name = "volume " + std::to_string(volume.id);
  if (volume.reserved_pebs != 0 && count > volume.reserved_pebs) {
    Problem(GapKind::kCorrupt, 0,
            name + " maps LEBs beyond the " + std::to_string(volume.reserved_pebs) +
                " it has reserved; they are left out");
    count = volume.reserved_pebs;
  }
  const std::uint64_t pebs = (chunk_.size() + geometry_.peb_size - 1) / geometry_.peb_size;
  if (count > pebs) {
    Problem(GapKind::kTruncated, chunk_.size(),
            name + " needs " + std::to_string(count) + " LEBs, more than the " +
                std::to_string(pebs) + " PEBs of the image; it is cut");
    count = pebs;
  }
  assembly.lebs_to_write = count;
  assembly.size = count * UsableLebSize(volume);
}

// A static volume is exactly used_ebs LEBs of data_size bytes each, all of them present.
void UbiExtractor::SizeStatic(Assembly& assembly) {
  const Volume& volume = assembly.volume;
  const std::string name = "static volume " + std::to_string(volume.id);
  if (assembly.lebs.empty()) return;
  std::uint32_t used = assembly.lebs.rbegin()->second->vid.used_ebs;
  for (const auto& [lnum, copy] : assembly.lebs) {
    if (copy->vid.used_ebs != used) {
      Problem(GapKind::kCorrupt, 0, name + " has LEBs that disagree on its length");
      used = std::max(used, copy->vid.used_ebs);
      break;
    }
  }
  const std::uint64_t pebs = (chunk_.size() + geometry_.peb_size - 1) / geometry_.peb_size;
  std::uint64_t count = used;
  if ((volume.reserved_pebs != 0 && count > volume.reserved_pebs) || count > pebs) {
    Problem(GapKind::kCorrupt, 0,
            name + " claims " + std::to_string(used) +
                " LEBs, more than it can hold; cut to the LEBs present");
    count = std::min<std::uint64_t>(count, std::uint64_t{assembly.lebs.rbegin()->first} + 1);
  }
  std::uint64_t missing = 0;
  std::uint64_t size = 0;
  for (std::uint64_t lnum = 0; lnum < count; ++lnum) {
    const auto found = assembly.lebs.find(static_cast<std::uint32_t>(lnum));
    if (found == assembly.lebs.end()) {
      ++missing;
      if (lnum + 1 < count) size += UsableLebSize(volume);
    } else {
      size += std::min<std::uint64_t>(found->second->vid.data_size, UsableLebSize(volume));
    }
  }
  if (missing > 0) {
    Problem(GapKind::kCorrupt, 0,
            name + " lacks " + std::to_string(missing) + " of its " + std::to_string(count) +
                " LEBs; they are filled with 0xff");
  }
  if (assembly.lebs.rbegin()->first >= count) {
    Problem(GapKind::kCorrupt, 0, name + " has LEBs past its stated end; they are left out");
  }
  assembly.lebs_to_write = count;
  assembly.size = size;
}

UbiExtractor::Assembly UbiExtractor::Assemble(const Volume& volume) {
  Assembly assembly;
  assembly.volume = volume;
  for (auto& [key, list] : copies_) {
    if (key.first != volume.id) continue;
    std::vector<const LebCopy*> pointers;
    for (const LebCopy& copy : list) {
      if (copy.vid.vol_type != volume.type && volume.in_table) {
        Problem(GapKind::kCorrupt, copy.peb * geometry_.peb_size + geometry_.vid_hdr_offset,
                "PEB " + std::to_string(copy.peb) + " says volume " + std::to_string(volume.id) +
                    " is " + std::string(TypeName(copy.vid.vol_type)) + ", the volume table says " +
                    std::string(TypeName(volume.type)) + "; ignored");
        continue;
      }
      pointers.push_back(&copy);
    }
    if (!pointers.empty()) assembly.lebs[key.second] = ChooseCopy(volume, key.second, pointers);
  }
  if (volume.type == kStatic) {
    SizeStatic(assembly);
  } else {
    SizeDynamic(assembly);
  }
  if (volume.update_interrupted) {
    Problem(GapKind::kCorrupt, 0,
            "volume " + std::to_string(volume.id) +
                " was being updated when the image was taken; its contents may be incomplete");
  }
  return assembly;
}

Status UbiExtractor::Write(Assembly& assembly, const std::set<std::string>& taken) {
  const Volume& volume = assembly.volume;
  std::string file = FileNameFor(volume);
  if (FindUbifs(assembly) && !file.ends_with(".ubifs")) file += ".ubifs";
  if (taken.count(file) != 0) file += "-" + std::to_string(volume.id);
  assembly.file = file;
  const std::uint64_t max = ctx_.budget().limits().max_file_bytes;
  if (assembly.size > max) {
    ctx_.AddGap(GapKind::kLimit, 0,
                "volume " + std::to_string(volume.id) + " has " + std::to_string(assembly.size) +
                    " bytes, more than the limit of " + std::to_string(max) + "; not extracted");
    assembly.file.clear();
    return Ok();
  }
  auto writer = ctx_.sink().CreateFile(file, 0644);
  if (!writer) {
    assembly.file.clear();
    return ShouldStop(writer.error()) ? Status(tl::unexpected(writer.error())) : Ok();
  }
  const std::uint64_t usable = UsableLebSize(volume);
  const std::vector<std::uint8_t> erased(usable, 0xff);
  std::uint64_t left = assembly.size;
  bool cut_reported = false;
  for (std::uint64_t lnum = 0; lnum < assembly.lebs_to_write && left > 0; ++lnum) {
    IOTMARK_TRY(ctx_.budget().CheckTime());
    const auto found = assembly.lebs.find(static_cast<std::uint32_t>(lnum));
    std::uint64_t want = std::min(usable, left);
    if (found != assembly.lebs.end() && volume.type == kStatic) {
      want = std::min<std::uint64_t>(found->second->vid.data_size, want);
    }
    ByteView piece(erased.data(), want);
    if (found != assembly.lebs.end()) {
      const ByteView data = LebData(found->second->peb, want);
      if (data.size() < want && !cut_reported) {
        cut_reported = true;
        Problem(GapKind::kTruncated, chunk_.size(),
                "LEB " + std::to_string(lnum) + " of volume " + std::to_string(volume.id) +
                    " is cut off by the end of the image; the rest is filled with 0xff");
      }
      IOTMARK_TRY(writer->Write(data));
      piece = piece.subspan(data.size());
    }
    IOTMARK_TRY(writer->Write(piece));
    left -= want;
  }
  return writer->Close();
}

void UbiExtractor::Describe(const Assembly& assembly, std::size_t index) {
  const Volume& volume = assembly.volume;
  const std::string key = "volume." + std::to_string(index) + ".";
  ctx_.SetMeta(key + "id", std::to_string(volume.id));
  ctx_.SetMeta(key + "name", Shown(volume.name));
  ctx_.SetMeta(key + "type", std::string(TypeName(volume.type)));
  ctx_.SetMeta(key + "size", std::to_string(assembly.size));
  ctx_.SetMeta(key + "mapped_lebs", std::to_string(assembly.lebs.size()));
  if (volume.reserved_pebs != 0) {
    ctx_.SetMeta(key + "reserved_pebs", std::to_string(volume.reserved_pebs));
  }
  if (volume.alignment > 1) ctx_.SetMeta(key + "alignment", std::to_string(volume.alignment));
  if (volume.autoresize) ctx_.SetMeta(key + "autoresize", "yes");
  if (!assembly.file.empty()) ctx_.SetMeta(key + "file", assembly.file);
}

Status UbiExtractor::Run() {
  ScanPebs();
  ReadVolumeTable();
  std::vector<Volume> volumes = table_ ? *table_ : std::vector<Volume>{};
  std::vector<Volume> unlisted = VolumesWithoutTable();
  if (table_ && !unlisted.empty()) {
    // UBI erases the PEBs of volumes its table does not list; they are kept as evidence.
    Problem(GapKind::kCorrupt, 0,
            std::to_string(unlisted.size()) +
                " volume(s) have LEBs but no volume table record (deleted or damaged); "
                "extracted as vol<id>");
  }
  volumes.insert(volumes.end(), unlisted.begin(), unlisted.end());
  ctx_.SetMeta("volumes", std::to_string(volumes.size()));
  ctx_.SetMeta("free_pebs", std::to_string(free_pebs_));
  std::set<std::string> taken;
  Status status = Ok();
  for (std::size_t i = 0; i < volumes.size(); ++i) {
    Assembly assembly = Assemble(volumes[i]);
    if (status) {
      status = Write(assembly, taken);
      if (!assembly.file.empty()) taken.insert(assembly.file);
    }
    Describe(assembly, i);
  }
  if (unlisted_ > 0) {
    ctx_.AddGap(GapKind::kCorrupt, 0,
                std::to_string(unlisted_) + " further problems in this UBI image are not listed");
  }
  return status;
}

class UbiFormat final : public Format {
 public:
  [[nodiscard]] std::string_view name() const override { return "ubi"; }
  [[nodiscard]] std::string_view description() const override {
    return "UBI flash image (volumes of logical eraseblocks)";
  }
  [[nodiscard]] std::span<const Magic> magics() const override { return kMagics; }

  [[nodiscard]] std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const ByteView rest = blob.subspan(start);
    const auto geometry = FindGeometry(rest);
    if (!geometry) return std::nullopt;
    Chunk chunk;
    chunk.offset = start;
    chunk.length = std::min<std::uint64_t>(geometry->length, rest.size());
    if (geometry->length > rest.size()) {
      chunk.issues.push_back(
          ProbeIssue{GapKind::kTruncated, "the last PEB of the UBI image is cut off: " +
                                              std::to_string(geometry->length - rest.size()) +
                                              " bytes missing"});
    }
    chunk.meta["peb_size"] = std::to_string(geometry->peb_size);
    chunk.meta["leb_size"] = std::to_string(geometry->leb_size());
    chunk.meta["vid_hdr_offset"] = std::to_string(geometry->vid_hdr_offset);
    chunk.meta["data_offset"] = std::to_string(geometry->data_offset);
    chunk.meta["image_seq"] = HexOffset(geometry->image_seq);
    chunk.meta["pebs"] = std::to_string(geometry->pebs);
    chunk.meta["mapped_pebs"] = std::to_string(geometry->vid_headers);
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& info, ExtractContext& ctx) const override {
    std::optional<std::uint64_t> peb_hint;
    if (const auto found = info.meta.find("peb_size"); found != info.meta.end()) {
      peb_hint = std::strtoull(found->second.c_str(), nullptr, 10);
    }
    const auto geometry = FindGeometry(chunk, peb_hint);
    if (!geometry) return Fail(ErrorCode::kCorruptInput, "UBI headers do not parse");
    UbiExtractor extractor(chunk, *geometry, ctx);
    return extractor.Run();
  }
};

}  // namespace

std::unique_ptr<const Format> MakeUbiFormat() { return std::make_unique<UbiFormat>(); }

}  // namespace iotmark::unpack::formats
