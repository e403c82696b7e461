// YAFFS2 images as dumped from NAND flash: (page data + spare area) chunks with packed tags in the
// spare area (or in band). The probe guesses the geometry and walks the chunks to where the file
// system ends; the extractor keeps the newest copy of every header and data chunk (by sequence
// number), drops unlinked, deleted and shadowed objects, and rebuilds the tree. Hand-written: no
// Debian library reads YAFFS2.
#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "iotmark/unpack/entry_sink.hpp"
#include "iotmark/unpack/extract_context.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/formats/yaffs2/yaffs2_layout.hpp"

namespace iotmark::unpack::formats {

namespace {

using model::GapKind;
using yaffs2::Geometry;
using yaffs2::ObjectHeader;
using yaffs2::ObjectType;
using yaffs2::SlotKind;

// The first object header of an image made from a directory tree: a file, symlink, directory or
// special file (type 1, 2, 3 or 5) in the root directory (parent id 1), with the unused name
// checksum left at 0xffff; in either byte order.
constexpr Magic kMagics[] = {
    {std::string_view("\x01\x00\x00\x00\x01\x00\x00\x00\xff\xff", 10), 0},
    {std::string_view("\x02\x00\x00\x00\x01\x00\x00\x00\xff\xff", 10), 0},
    {std::string_view("\x03\x00\x00\x00\x01\x00\x00\x00\xff\xff", 10), 0},
    {std::string_view("\x05\x00\x00\x00\x01\x00\x00\x00\xff\xff", 10), 0},
    {std::string_view("\x00\x00\x00\x01\x00\x00\x00\x01\xff\xff", 10), 0},
    {std::string_view("\x00\x00\x00\x02\x00\x00\x00\x01\xff\xff", 10), 0},
    {std::string_view("\x00\x00\x00\x03\x00\x00\x00\x01\xff\xff", 10), 0},
    {std::string_view("\x00\x00\x00\x05\x00\x00\x00\x01\xff\xff", 10), 0},
};

// Directories nested deeper than this are treated as a loop.
constexpr int kMaxDepth = 256;
// Individual gaps of one kind before the rest are only counted.
constexpr std::uint64_t kMaxGapsPerKind = 32;
// Absent chunks of a file are zeros (YAFFS files can have holes), up to this many bytes or the size
// of the image, whichever is larger; beyond that the file's size is taken for damage.
constexpr std::uint64_t kMaxHoleBytes = std::uint64_t{64} << 20;

std::string Shown(std::string_view text) {
  std::string out;
  for (const char c : text.substr(0, 160)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xf]);
    } else {
      out.push_back(c);
    }
  }
  if (text.size() > 160) out += "...";
  return "'" + out + "'";
}

// The newest stored copy of a chunk: which sequence number, and where.
struct Version {
  std::uint32_t seq = 0;
  std::uint64_t slot = 0;  // index of the chunk in the image
  [[nodiscard]] bool NewerThan(const Version& other) const {
    return seq != other.seq ? seq > other.seq : slot > other.slot;
  }
};

struct DataChunk {
  std::uint32_t obj_id = 0;
  std::uint32_t chunk_id = 0;
  std::uint32_t n_bytes = 0;
  Version version;
};

struct Object {
  std::uint32_t id = 0;
  ObjectHeader header;
  Version version;
  std::string path;  // set once resolved
  enum class State { kUnresolved, kResolving, kLive, kDead, kBroken } state = State::kUnresolved;
};

struct ShrinkPoint {
  Version version;
  std::uint64_t size = 0;
};

class Yaffs2Extractor {
 public:
  Yaffs2Extractor(ByteView chunk, const Geometry& geometry, ExtractContext& ctx)
      : chunk_(chunk), g_(geometry), ctx_(ctx) {}

  Status Run() {
    IOTMARK_TRY(Scan());
    DropShadowed();
    ResolvePaths();
    IOTMARK_TRY(Emit());
    ReportSummaries();
    return Ok();
  }

 private:
  Status Scan();
  void NoteHeader(std::uint64_t slot, const yaffs2::Tags& tags, ObjectHeader header);
  void DropShadowed();
  void ResolvePaths();
  bool Resolve(Object& object);
  Status Emit();
  Status EmitObject(Object& object);
  Status EmitFile(const Object& object);
  Status EmitHardlink(const Object& object);
  [[nodiscard]] bool Stale(const DataChunk& data) const;
  void ReportSummaries();
  Status Sink(const Status& status) {
    if (!status && ShouldStop(status.error())) return status;
    return Ok();
  }
  void Gap(GapKind kind, const std::string& counter, std::uint64_t offset, std::string reason) {
    if (++gap_counts_[counter] <= kMaxGapsPerKind) ctx_.AddGap(kind, offset, std::move(reason));
  }
  [[nodiscard]] std::uint64_t OffsetOf(std::uint64_t slot) const { return slot * g_.stride(); }
  [[nodiscard]] ByteView Page(std::uint64_t slot) const {
    return chunk_.subspan(OffsetOf(slot), g_.data_size());
  }

  ByteView chunk_;
  Geometry g_;
  ExtractContext& ctx_;
  std::unordered_map<std::uint32_t, Object> objects_;
  std::vector<DataChunk> data_;  // sorted by object, chunk, version; newest last
  std::unordered_map<std::uint32_t, std::vector<ShrinkPoint>> shrinks_;
  std::map<std::string, std::uint64_t> gap_counts_;
};

Status Yaffs2Extractor::Scan() {
  const std::uint64_t stride = g_.stride();
  const std::uint64_t slots = chunk_.size() / stride;
  std::uint64_t bad_run = 0;
  std::uint64_t bad_start = 0;
  std::string_view bad_problem;
  const auto flush_bad = [&] {
    if (bad_run == 0) return;
    Gap(GapKind::kCorrupt, "chunk", OffsetOf(bad_start),
        std::to_string(bad_run) + " chunk(s) at " + HexOffset(OffsetOf(bad_start)) +
            " do not parse (" + std::string(bad_problem) + "); their contents are lost");
    bad_run = 0;
  };
  for (std::uint64_t slot = 0; slot < slots; ++slot) {
    if (slot % 4096 == 0) IOTMARK_TRY(ctx_.budget().CheckTime());
    const ByteView bytes = chunk_.subspan(slot * stride, stride);
    const yaffs2::Slot parsed = yaffs2::ReadSlot(bytes, g_);
    std::optional<ObjectHeader> header;
    if (parsed.kind == SlotKind::kHeader) header = yaffs2::ParseObjectHeader(bytes, g_.order);
    const bool bad =
        parsed.kind == SlotKind::kInvalid || (parsed.kind == SlotKind::kHeader && !header);
    if (bad) {
      if (bad_run++ == 0) {
        bad_start = slot;
        bad_problem = parsed.kind == SlotKind::kInvalid ? parsed.problem
                                                        : "an object header that does not parse";
      }
      continue;
    }
    flush_bad();
    if (header) {
      NoteHeader(slot, parsed.tags, std::move(*header));
    } else if (parsed.kind == SlotKind::kData) {
      data_.push_back(DataChunk{parsed.tags.obj_id, parsed.tags.chunk_id, parsed.tags.n_bytes,
                                Version{parsed.tags.seq, slot}});
    }
  }
  flush_bad();  // a chunk the image ends inside is the probe's truncation issue
  std::sort(data_.begin(), data_.end(), [](const DataChunk& a, const DataChunk& b) {
    if (a.obj_id != b.obj_id) return a.obj_id < b.obj_id;
    if (a.chunk_id != b.chunk_id) return a.chunk_id < b.chunk_id;
    return b.version.NewerThan(a.version);
  });
  // Keep only the newest copy of each (object, chunk).
  std::vector<DataChunk> newest;
  newest.reserve(data_.size());
  for (std::size_t i = 0; i < data_.size(); ++i) {
    if (i + 1 < data_.size() && data_[i + 1].obj_id == data_[i].obj_id &&
        data_[i + 1].chunk_id == data_[i].chunk_id) {
      continue;
    }
    newest.push_back(data_[i]);
  }
  data_ = std::move(newest);
  if (objects_.empty()) {
    return Fail(ErrorCode::kCorruptInput, "the YAFFS2 image holds no readable object header");
  }
  return Ok();
}

void Yaffs2Extractor::NoteHeader(std::uint64_t slot, const yaffs2::Tags& tags,
                                 ObjectHeader header) {
  const Version version{tags.seq, slot};
  if (tags.shrink || header.shrink) {
    shrinks_[tags.obj_id].push_back(ShrinkPoint{version, header.file_size});
  }
  auto [it, inserted] = objects_.try_emplace(tags.obj_id);
  if (!inserted && !version.NewerThan(it->second.version)) return;
  it->second.id = tags.obj_id;
  it->second.header = std::move(header);
  it->second.version = version;
}

// A header that shadows another object was written by a rename over it: that object is gone.
void Yaffs2Extractor::DropShadowed() {
  std::vector<std::uint32_t> shadowed;
  for (const auto& [id, object] : objects_) {
    const std::uint32_t target = object.header.shadows;
    if (target == 0 || target == id) continue;
    const auto found = objects_.find(target);
    if (found != objects_.end() && object.version.NewerThan(found->second.version)) {
      shadowed.push_back(target);
    }
  }
  for (const std::uint32_t id : shadowed) objects_[id].state = Object::State::kDead;
}

void Yaffs2Extractor::ResolvePaths() {
  std::vector<std::uint32_t> ids;
  ids.reserve(objects_.size());
  for (const auto& [id, object] : objects_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  for (const std::uint32_t id : ids) Resolve(objects_[id]);
}

// Gives `object` its path from the root, walking up the parents without recursion. Marks it dead
// when an ancestor is unlinked or deleted, broken when the chain is an orphan, a loop or too deep.
bool Yaffs2Extractor::Resolve(Object& start) {
  using State = Object::State;
  if (start.state != State::kUnresolved) return start.state == State::kLive;
  std::vector<Object*> chain;
  Object* current = &start;
  State outcome = State::kLive;
  std::string reason;
  std::string base;  // the resolved path the chain hangs from
  while (true) {
    if (current->state == State::kLive) {
      base = current->path;
      break;
    }
    if (current->state == State::kDead || current->state == State::kBroken) {
      outcome = current->state;
      if (outcome == State::kBroken) reason = "a parent of it is itself unreadable";
      break;
    }
    if (current->state == State::kResolving || chain.size() >= kMaxDepth) {
      outcome = State::kBroken;
      reason = "its parent directories form a loop";
      break;
    }
    current->state = State::kResolving;
    chain.push_back(current);
    const std::uint32_t id = current->id;
    const std::uint32_t parent = current->header.parent_id;
    if (id <= yaffs2::kDeletedId && id != yaffs2::kLostFoundId) {
      // Headers of the root and the pseudo directories carry attributes only.
      outcome = State::kDead;
      break;
    }
    if (parent == yaffs2::kUnlinkedId || parent == yaffs2::kDeletedId) {
      outcome = State::kDead;
      break;
    }
    if (parent == yaffs2::kRootId) break;  // base stays ""
    const auto found = objects_.find(parent);
    if (found == objects_.end()) {
      if (parent == yaffs2::kLostFoundId) {
        base = "lost+found";
        break;
      }
      outcome = State::kBroken;
      reason = "its parent directory (object " + std::to_string(parent) + ") is missing";
      break;
    }
    if (found->second.header.type != ObjectType::kDirectory) {
      outcome = State::kBroken;
      reason = "its parent (object " + std::to_string(parent) + ") is not a directory";
      break;
    }
    current = &found->second;
  }
  // Name the chain from the top down.
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    Object& object = **it;
    if (outcome != State::kLive) {
      object.state = outcome;
      continue;
    }
    const std::string& name = object.header.name;
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
      outcome = State::kBroken;
      reason = "an object on its path has the invalid name " + Shown(name);
      object.state = outcome;
      continue;
    }
    object.path = base.empty() ? name : base + "/" + name;
    base = object.path;
    object.state = State::kLive;
  }
  if (start.state == State::kBroken) {
    Gap(GapKind::kCorrupt, "orphan", OffsetOf(start.version.slot),
        "object " + std::to_string(start.id) + " (" + Shown(start.header.name) +
            ") is not extracted: " + reason);
  }
  return start.state == State::kLive;
}

Status Yaffs2Extractor::Emit() {
  std::vector<Object*> live;
  for (auto& [id, object] : objects_) {
    if (object.state == Object::State::kLive) live.push_back(&object);
  }
  // Parents sort before their children; hard links go last, once their targets exist.
  std::sort(live.begin(), live.end(), [](const Object* a, const Object* b) {
    const bool a_link = a->header.type == ObjectType::kHardlink;
    const bool b_link = b->header.type == ObjectType::kHardlink;
    if (a_link != b_link) return b_link;
    return a->path < b->path;
  });
  bool lost_found_made = false;
  for (Object* object : live) {
    IOTMARK_TRY(ctx_.budget().CheckTime());
    if (!lost_found_made && object->path.starts_with("lost+found/") &&
        objects_.find(yaffs2::kLostFoundId) == objects_.end()) {
      IOTMARK_TRY(Sink(ctx_.sink().AddDirectory("lost+found", 0700)));
      lost_found_made = true;
    }
    IOTMARK_TRY(EmitObject(*object));
  }
  return Ok();
}

Status Yaffs2Extractor::EmitObject(Object& object) {
  const ObjectHeader& h = object.header;
  const std::uint32_t mode = h.mode & 07777;
  switch (h.type) {
    case ObjectType::kDirectory:
      return Sink(ctx_.sink().AddDirectory(object.path, mode));
    case ObjectType::kFile:
      return EmitFile(object);
    case ObjectType::kSymlink:
      return Sink(ctx_.sink().AddSymlink(object.path, h.alias, mode));
    case ObjectType::kHardlink:
      return EmitHardlink(object);
    case ObjectType::kSpecial: {
      model::EntryKind kind = model::EntryKind::kFifo;
      switch (h.mode & 0170000) {
        case 0020000:
          kind = model::EntryKind::kCharDevice;
          break;
        case 0060000:
          kind = model::EntryKind::kBlockDevice;
          break;
        case 0140000:
          kind = model::EntryKind::kSocket;
          break;
        case 0010000:
          break;
        default:
          Gap(GapKind::kCorrupt, "special", OffsetOf(object.version.slot),
              "special file " + Shown(object.path) + " has no device, FIFO or socket mode; " +
                  "recorded as a FIFO");
      }
      return Sink(ctx_.sink().AddSpecial(object.path, kind, mode));
    }
  }
  return Ok();
}

bool Yaffs2Extractor::Stale(const DataChunk& data) const {
  const auto found = shrinks_.find(data.obj_id);
  if (found == shrinks_.end()) return false;
  const std::uint64_t start = std::uint64_t{data.chunk_id - 1} * g_.data_size();
  return std::any_of(found->second.begin(), found->second.end(), [&](const ShrinkPoint& shrink) {
    return shrink.version.NewerThan(data.version) && start >= shrink.size;
  });
}

Status Yaffs2Extractor::EmitFile(const Object& object) {
  const std::uint64_t offset = OffsetOf(object.version.slot);
  const std::uint64_t chunk_size = g_.data_size();
  std::uint64_t size = object.header.file_size;
  const auto first =
      std::lower_bound(data_.begin(), data_.end(), object.id,
                       [](const DataChunk& d, std::uint32_t id) { return d.obj_id < id; });
  auto last = first;
  while (last != data_.end() && last->obj_id == object.id) ++last;
  // YAFFS files may have holes, but not ones larger than the image holding them.
  const std::uint64_t hole_budget = std::max<std::uint64_t>(kMaxHoleBytes, chunk_.size());
  const std::uint64_t stored_end =
      first == last ? 0 : std::uint64_t{std::prev(last)->chunk_id} * chunk_size;
  if (size > stored_end && size - stored_end > hole_budget) {
    Gap(GapKind::kCorrupt, "size", offset,
        "file " + Shown(object.path) + " claims " + std::to_string(size) +
            " bytes but its stored data ends at " + std::to_string(stored_end) + "; cut there");
    size = stored_end;
  }
  const std::uint64_t max = ctx_.budget().limits().max_file_bytes;
  if (size > max) {
    Gap(GapKind::kLimit, "limit", offset,
        "file " + Shown(object.path) + " has " + std::to_string(size) +
            " bytes, more than the limit of " + std::to_string(max) + "; not extracted");
    return Ok();
  }
  auto created = ctx_.sink().CreateFile(object.path, object.header.mode & 07777);
  if (!created) return Sink(tl::unexpected(created.error()));
  FileWriter writer = std::move(*created);
  static const std::array<std::uint8_t, 16384> kZeros{};
  const std::uint64_t count = (size + chunk_size - 1) / chunk_size;
  std::uint64_t missing = 0;
  std::uint64_t holes = 0;
  auto next = first;
  for (std::uint64_t k = 1; k <= count; ++k) {
    const std::uint64_t want = std::min(chunk_size, size - (k - 1) * chunk_size);
    while (next != last && next->chunk_id < k) ++next;
    std::uint64_t have = 0;
    if (next != last && next->chunk_id == k && !Stale(*next)) {
      have = std::min<std::uint64_t>(next->n_bytes, want);
      if (auto wrote = writer.Write(Page(next->version.slot).first(have)); !wrote) {
        return Sink(wrote);
      }
    } else if ((holes += want) > hole_budget) {
      Gap(GapKind::kCorrupt, "size", offset,
          "file " + Shown(object.path) + " is mostly absent chunks; cut at byte " +
              std::to_string((k - 1) * chunk_size));
      break;
    } else {
      ++missing;
    }
    if (have < want) {
      if (auto wrote = writer.Write(ByteView(kZeros.data(), want - have)); !wrote) {
        return Sink(wrote);
      }
    }
  }
  IOTMARK_TRY(Sink(writer.Close()));
  if (missing > 0) {
    Gap(GapKind::kCorrupt, "missing", offset,
        "file " + Shown(object.path) + ": " + std::to_string(missing) + " of " +
            std::to_string(count) + " data chunks are absent (a hole or lost); filled with zeros");
  }
  return Ok();
}

Status Yaffs2Extractor::EmitHardlink(const Object& object) {
  // Follow links to links to the object that holds the data.
  std::uint32_t target = object.header.equiv_id;
  const Object* found = nullptr;
  for (int hops = 0; hops < kMaxDepth; ++hops) {
    const auto it = objects_.find(target);
    if (it == objects_.end()) break;
    if (it->second.header.type != ObjectType::kHardlink) {
      found = &it->second;
      break;
    }
    target = it->second.header.equiv_id;
  }
  if (found == nullptr || found->state != Object::State::kLive ||
      found->header.type == ObjectType::kDirectory) {
    Gap(GapKind::kCorrupt, "hardlink", OffsetOf(object.version.slot),
        "hard link " + Shown(object.path) + " points to object " +
            std::to_string(object.header.equiv_id) + ", which was not extracted");
    return Ok();
  }
  return Sink(ctx_.sink().AddHardlink(object.path, found->path));
}

void Yaffs2Extractor::ReportSummaries() {
  for (const auto& [counter, count] : gap_counts_) {
    if (count > kMaxGapsPerKind) {
      ctx_.AddGap(GapKind::kCorrupt, 0,
                  std::to_string(count - kMaxGapsPerKind) + " more problems of the kind '" +
                      counter + "' were found and not listed one by one");
    }
  }
  const auto dead = std::count_if(objects_.begin(), objects_.end(), [](const auto& entry) {
    return entry.first > yaffs2::kDeletedId && entry.second.state == Object::State::kDead;
  });
  ctx_.SetMeta("objects", std::to_string(objects_.size()));
  if (dead > 0) ctx_.SetMeta("deleted_objects", std::to_string(dead));
}

std::string OrderName(const Geometry& g) { return g.big_endian() ? "big" : "little"; }

// The geometry the probe found, as it recorded it in the chunk's meta.
std::optional<Geometry> GeometryFromMeta(const Chunk& info) {
  const auto number = [&](const char* key) -> std::optional<std::uint32_t> {
    const auto it = info.meta.find(key);
    if (it == info.meta.end() || it->second.empty() || it->second.size() > 6) return std::nullopt;
    std::uint32_t value = 0;
    for (const char c : it->second) {
      if (c < '0' || c > '9') return std::nullopt;
      value = value * 10 + static_cast<std::uint32_t>(c - '0');
    }
    return value;
  };
  const auto page = number("page_size");
  const auto spare = number("spare_size");
  const auto tags = number("tag_offset");
  const auto order = info.meta.find("byte_order");
  const auto ecc = info.meta.find("tags_ecc");
  if (!page || !spare || !tags || order == info.meta.end() || ecc == info.meta.end()) {
    return std::nullopt;
  }
  Geometry g{*page, *spare, *tags,
             order->second == "big" ? ByteReader::Order::kBig : ByteReader::Order::kLittle,
             ecc->second == "yes"};
  // Only geometries the detector can produce.
  if (g.page_size < 512 || g.page_size > 16384 || g.spare_size > g.page_size / 8 ||
      (g.spare_size == 0 ? g.page_size < 1024 || g.tag_offset != 0
                         : g.tag_offset + yaffs2::kTagsSize > g.spare_size)) {
    return std::nullopt;
  }
  return g;
}

class Yaffs2Format final : public Format {
 public:
  [[nodiscard]] std::string_view name() const override { return "yaffs2"; }
  [[nodiscard]] std::string_view description() const override {
    return "YAFFS2 flash file system image (NAND dump with spare areas)";
  }
  [[nodiscard]] std::span<const Magic> magics() const override { return kMagics; }

  [[nodiscard]] std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const ByteView rest = blob.subspan(start);
    const auto geometry = yaffs2::DetectGeometry(rest);
    if (!geometry) return std::nullopt;
    const yaffs2::Extent extent = yaffs2::MeasureExtent(rest, *geometry);
    if (extent.length == 0 || extent.headers == 0) return std::nullopt;
    Chunk chunk;
    chunk.offset = start;
    chunk.length = extent.length;
    chunk.meta["page_size"] = std::to_string(geometry->page_size);
    chunk.meta["spare_size"] = std::to_string(geometry->spare_size);
    chunk.meta["tag_offset"] = std::to_string(geometry->tag_offset);
    chunk.meta["byte_order"] = OrderName(*geometry);
    chunk.meta["tags_ecc"] = geometry->tags_ecc ? "yes" : "no";
    chunk.meta["chunks"] = std::to_string(extent.chunks);
    if (geometry->spare_size == 0) chunk.meta["tags"] = "inband";
    // Damaged chunks are named one by one by the extractor.
    if (extent.damaged > 0) chunk.meta["damaged_chunks"] = std::to_string(extent.damaged);
    if (extent.truncated) {
      chunk.issues.push_back({GapKind::kTruncated, "the blob ends inside a YAFFS2 chunk of " +
                                                       std::to_string(geometry->stride()) +
                                                       " bytes"});
    }
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& info, ExtractContext& ctx) const override {
    auto geometry = GeometryFromMeta(info);
    if (!geometry) geometry = yaffs2::DetectGeometry(chunk);
    if (!geometry) return Fail(ErrorCode::kCorruptInput, "no YAFFS2 geometry fits the image");
    Yaffs2Extractor extractor(chunk, *geometry, ctx);
    return extractor.Run();
  }
};

}  // namespace

std::unique_ptr<const Format> MakeYaffs2Format() { return std::make_unique<Yaffs2Format>(); }

}  // namespace iotmark::unpack::formats
