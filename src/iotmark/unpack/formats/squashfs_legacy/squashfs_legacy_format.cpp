// SquashFS beyond what libsquashfs reads: 2.0, 2.1, 3.0 and 3.1 images in either byte order
// ("hsqs" little-endian, "sqsh" big-endian, and the sqlzma and DD-WRT magics), zlib or one of the
// LZMA framings vendors patched in; 4.0 big-endian images (AVM); and 4.0 little-endian images
// the standard "squashfs" format hands over when libsquashfs rejects them. The probe takes
// bytes_used as the chunk's extent. The walk is single-threaded; regular files are decoded in
// parallel, segment by segment, and written in order.
//
// Hand-written because no Debian library reads these layouts (see legacy_metadata.cpp). Why not
// byte-swap a big-endian 4.0 image's metadata into a scratch image for libsquashfs: a swapped
// image needs every inode and listing re-encoded and every metadata block re-compressed or
// re-laid out (which moves every inode reference), i.e. a full reader plus a writer. One reader
// with the byte order as a parameter does it with less code and serves 2.x/3.x as well.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "iotmark/base/thread_pool.hpp"
#include "iotmark/unpack/entry_sink.hpp"
#include "iotmark/unpack/extract_context.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/formats/squashfs/squashfs_superblock.hpp"
#include "iotmark/unpack/formats/squashfs_legacy/legacy_codec.hpp"
#include "iotmark/unpack/formats/squashfs_legacy/legacy_extract.hpp"
#include "iotmark/unpack/formats/squashfs_legacy/legacy_metadata.hpp"
#include "iotmark/unpack/formats/squashfs_legacy/legacy_superblock.hpp"

namespace iotmark::unpack::formats {

namespace squashfs_legacy {

namespace {

using model::GapKind;

// Directories nested deeper than this are not entered (the sink refuses such paths anyway).
constexpr int kMaxDepth = 256;
// Large files are split into segments of about this many output bytes so that one big file
// keeps every worker busy; segments are written in order.
constexpr std::uint64_t kSegmentBytes = std::uint64_t{4} << 20;
// The files of one image may list at least this many data blocks in all (more if the total output
// limit allows more blocks).
constexpr std::uint64_t kMinBlockBudget = std::uint64_t{1} << 20;
// Small files sharing one fragment block are decoded together, at most this many per task.
constexpr std::size_t kMaxFilesPerGroup = 64;

std::string IsoTime(std::uint32_t seconds) {
  const std::time_t time = seconds;
  std::tm tm{};
  if (::gmtime_r(&time, &tm) == nullptr) return std::to_string(seconds);
  char text[32];
  const std::size_t n = std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(text, n);
}

// An untrusted name as it may appear in a gap's reason: control bytes escaped, length capped.
std::string Shown(std::string_view text) {
  std::string out = "'";
  for (const char c : text.substr(0, 160)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xF]);
    } else {
      out.push_back(c);
    }
  }
  if (text.size() > 160) out += "...";
  return out + "'";
}

std::string_view OrderName(Order order) {
  return order == Order::kBig ? "big-endian" : "little-endian";
}

std::string_view CompressorName(std::uint16_t id) {
  static constexpr std::string_view kNames[] = {"", "gzip", "lzma", "lzo", "xz", "lz4", "zstd"};
  return id < std::size(kNames) ? kNames[id] : std::string_view();
}

// Output bytes of a file's blocks, uninitialised (every byte is written before it is read).
struct Buffer {
  std::unique_ptr<std::uint8_t[]> data;
  std::size_t size = 0;
  std::size_t capacity = 0;

  void Reset(std::size_t n) {
    if (capacity < n) {
      data = std::make_unique_for_overwrite<std::uint8_t[]>(n);
      capacity = n;
    }
    size = n;
  }
  [[nodiscard]] ByteView view() const { return {data.get(), size}; }
  [[nodiscard]] std::span<std::uint8_t> span() { return {data.get(), size}; }
};

// A regular file to decode, and (while workers decode its segments) the state that puts the
// segments into the file in order.
struct FileJob {
  std::string path;
  std::uint32_t mode = 0;
  std::uint64_t size = 0;
  std::vector<std::uint32_t> block_sizes;
  bool has_tail = false;  // the last size % block_size bytes live in a fragment block
  std::optional<FragmentEntry> fragment;
  std::optional<Damage> fragment_damage;  // the fragment table could not say where the tail is
  std::uint32_t fragment_offset = 0;
  std::size_t blocks_per_segment = 1;
  std::vector<std::uint64_t> segment_start;  // chunk offset of each segment's first block

  std::mutex mutex;
  std::optional<FileWriter> writer;
  std::size_t next_segment = 0;
  std::size_t cut_segment = SIZE_MAX;  // ended early; later segments are dropped
  bool dropped = false;                // the sink refused the file
  std::map<std::size_t, Buffer> pending;

  [[nodiscard]] std::size_t block_count() const { return block_sizes.size(); }
  [[nodiscard]] std::size_t segment_count() const { return segment_start.size(); }
  [[nodiscard]] std::uint64_t fragment_key() const { return fragment ? fragment->start : 0; }
};

struct Part {
  FileJob* file;
  std::size_t segment;
};
using WorkUnit = std::vector<Part>;

// What one worker owns: its decoder (they are not thread-safe) and its buffers.
struct Worker {
  std::unique_ptr<BlockCodec> codec;
  bool holds_fragment = false;  // `fragment` holds the fragment block at fragment_start
  std::uint64_t fragment_start = 0;
  Buffer fragment;
  Buffer output;
};

class LegacyExtractor {
 public:
  LegacyExtractor(ByteView chunk, const LegacySuperblock& sb, ExtractContext& ctx)
      : chunk_(chunk), sb_(sb), ctx_(ctx) {}

  Status Run();
  [[nodiscard]] const VariantLog& variants() const { return variants_; }
  [[nodiscard]] std::optional<Order> header_order() const {
    return tables_ ? std::optional<Order>(tables_->header_order()) : std::nullopt;
  }

 private:
  struct PendingDir {
    Inode inode;
    std::string path;
    int depth;
  };

  void Gap(GapKind kind, std::uint64_t offset, std::string reason) {
    ctx_.AddGap(kind, offset, std::move(reason));
  }
  static Status SinkFailed(const Error& error) {
    // Refused entries are already recorded as gaps by the sink; only limits and I/O stop us.
    if (ShouldStop(error)) return tl::unexpected(error);
    return Ok();
  }
  Status Walk();
  Status ListDirectory(const PendingDir& dir, std::vector<PendingDir>& stack);
  Status AddEntry(const std::string& path, std::uint64_t ref, int depth,
                  std::vector<PendingDir>& stack);
  Status AddRegularFile(const std::string& path, std::uint64_t ref, Inode inode);

  Status ExtractFiles();
  std::vector<WorkUnit> PlanWork();
  void RunWorker(const std::vector<WorkUnit>& units, std::atomic<std::size_t>& next);
  std::optional<Damage> DecodeSegment(Worker& worker, FileJob& file, std::size_t segment,
                                      std::size_t& good);
  std::optional<Damage> DecodeBlock(Worker& worker, std::uint64_t position, std::uint32_t raw,
                                    std::span<std::uint8_t> dest, const std::string& what);
  std::optional<Damage> LoadFragment(Worker& worker, const FragmentEntry& entry);
  void Commit(FileJob& file, std::size_t segment, Buffer& buffer, bool cut);
  void WriteSegment(FileJob& file, std::size_t segment, ByteView bytes);
  void RequestStop(const Error& error);
  [[nodiscard]] bool stopping() const { return stop_.load(std::memory_order_relaxed); }
  [[nodiscard]] GapKind PastEndKind() const {
    return chunk_.size() < sb_.bytes_used ? GapKind::kTruncated : GapKind::kCorrupt;
  }

  ByteView chunk_;
  const LegacySuperblock& sb_;
  ExtractContext& ctx_;
  VariantLog variants_;
  std::unique_ptr<BlockCodec> codec_;  // the walk's decoder
  std::optional<MetadataTables> tables_;

  std::uint64_t entries_ = 0;
  bool entry_limit_hit_ = false;
  // Data blocks listed by the files collected so far; bounded, since crafted inodes may share
  // (overlap) one block list and each claim gigabytes.
  std::uint64_t listed_blocks_ = 0;
  std::unordered_set<std::uint64_t> listed_dirs_;               // by inode reference
  std::unordered_map<std::uint64_t, std::string> first_paths_;  // file inode reference -> path
  std::vector<std::unique_ptr<FileJob>> files_;
  std::vector<std::pair<std::string, std::string>> hardlinks_;  // path, existing path

  std::atomic<bool> stop_{false};
  std::mutex stop_mutex_;
  std::optional<Error> stop_error_;
};

void LegacyExtractor::RequestStop(const Error& error) {
  std::lock_guard lock(stop_mutex_);
  if (!stop_error_) stop_error_ = error;
  stop_.store(true, std::memory_order_relaxed);
}

Status LegacyExtractor::Run() {
  auto codec = BlockCodec::Make(sb_.compression, sb_.block_size, variants_);
  if (!codec) return tl::unexpected(codec.error());
  codec_ = std::move(*codec);
  tables_.emplace(chunk_, sb_, *codec_);
  IOTMARK_TRY(Walk());
  if (auto ids = tables_->CheckIdTables(); !ids) {
    Gap(ids.error().kind, ids.error().offset,
        ids.error().reason + "; the owners of the entries are unknown");
  }
  IOTMARK_TRY(ExtractFiles());
  for (const auto& [path, existing] : hardlinks_) {
    if (auto added = ctx_.sink().AddHardlink(path, existing); !added) {
      IOTMARK_TRY(SinkFailed(added.error()));
    }
  }
  return Ok();
}

Status LegacyExtractor::Walk() {
  auto root = tables_->ReadInode(sb_.root_inode, ctx_.budget().limits().max_file_bytes);
  if (!root) {
    return Fail(ErrorCode::kCorruptInput,
                "squashfs root inode cannot be read: " + root.error().reason);
  }
  if (root->kind != InodeKind::kDirectory) {
    return Fail(ErrorCode::kCorruptInput, "squashfs root inode is not a directory");
  }
  listed_dirs_.insert(sb_.root_inode);
  std::vector<PendingDir> stack;
  stack.push_back(PendingDir{std::move(*root), "", 0});
  while (!stack.empty() && !entry_limit_hit_) {
    IOTMARK_TRY(ctx_.budget().CheckTime());
    const PendingDir dir = std::move(stack.back());
    stack.pop_back();
    IOTMARK_TRY(ListDirectory(dir, stack));
  }
  return Ok();
}

Status LegacyExtractor::ListDirectory(const PendingDir& dir, std::vector<PendingDir>& stack) {
  const std::string shown = dir.path.empty() ? "the root directory" : Shown(dir.path);
  const std::uint64_t max_entries = ctx_.budget().limits().max_entries;
  const Listing listing = tables_->ReadListing(dir.inode, max_entries - entries_ + 1);
  for (const DirectoryEntry& entry : listing.entries) {
    if (++entries_ > max_entries) {
      Gap(GapKind::kLimit, sb_.directory_table,
          "more than " + std::to_string(max_entries) +
              " entries; the rest of the tree was not read");
      entry_limit_hit_ = true;
      return Ok();
    }
    const std::string& name = entry.name;
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
        name.find('\0') != std::string::npos) {
      Gap(GapKind::kCorrupt, sb_.directory_table,
          shown + " holds an invalid name " + Shown(name) + "; entry skipped");
      continue;
    }
    const std::string path = dir.path.empty() ? name : dir.path + "/" + name;
    IOTMARK_TRY(AddEntry(path, entry.inode_ref, dir.depth + 1, stack));
  }
  if (listing.damage) {
    Gap(listing.damage->kind, listing.damage->offset,
        "the listing of " + shown + " is damaged after " + std::to_string(listing.entries.size()) +
            " entries (" + listing.damage->reason + "); the rest of it is missing");
  }
  return Ok();
}

Status LegacyExtractor::AddEntry(const std::string& path, std::uint64_t ref, int depth,
                                 std::vector<PendingDir>& stack) {
  // A hard link is the same inode listed again: link to the path it was first extracted at.
  if (const auto found = first_paths_.find(ref); found != first_paths_.end()) {
    hardlinks_.emplace_back(path, found->second);
    return Ok();
  }
  auto inode = tables_->ReadInode(ref, ctx_.budget().limits().max_file_bytes);
  if (!inode) {
    const Damage& damage = inode.error();
    Gap(damage.kind, damage.offset,
        damage.kind == GapKind::kLimit
            ? "file " + Shown(path) + " " + damage.reason + "; not extracted"
            : "inode of " + Shown(path) + " cannot be read: " + damage.reason);
    return Ok();
  }
  EntrySink& sink = ctx_.sink();
  const std::uint32_t mode = inode->mode & 07777;
  Status added;
  switch (inode->kind) {
    case InodeKind::kDirectory:
      added = sink.AddDirectory(path, mode);
      if (!added) break;
      if (depth >= kMaxDepth) {
        Gap(GapKind::kLimit, sb_.inode_table,
            "directory " + Shown(path) + " is nested deeper than " + std::to_string(kMaxDepth) +
                " levels; not entered");
      } else if (!listed_dirs_.insert(ref).second) {
        Gap(GapKind::kCorrupt, sb_.inode_table + (ref >> 16),
            "directory " + Shown(path) +
                " is a directory listed before (a loop or a shared directory); not entered");
      } else {
        stack.push_back(PendingDir{std::move(*inode), path, depth});
      }
      break;
    case InodeKind::kFile:
      return AddRegularFile(path, ref, std::move(*inode));
    case InodeKind::kSymlink:
      added = sink.AddSymlink(path, inode->target, 0777);
      break;
    case InodeKind::kBlockDevice:
      added = sink.AddSpecial(path, model::EntryKind::kBlockDevice, mode);
      break;
    case InodeKind::kCharDevice:
      added = sink.AddSpecial(path, model::EntryKind::kCharDevice, mode);
      break;
    case InodeKind::kFifo:
      added = sink.AddSpecial(path, model::EntryKind::kFifo, mode);
      break;
    case InodeKind::kSocket:
      added = sink.AddSpecial(path, model::EntryKind::kSocket, mode);
      break;
  }
  if (!added) return SinkFailed(added.error());
  return Ok();
}

Status LegacyExtractor::AddRegularFile(const std::string& path, std::uint64_t ref, Inode inode) {
  auto job = std::make_unique<FileJob>();
  job->path = path;
  job->mode = inode.mode & 07777;
  job->size = inode.file_size;
  if (job->size == 0) {
    if (auto added = ctx_.sink().AddFile(path, job->mode, {}); !added) {
      return SinkFailed(added.error());
    }
    first_paths_.emplace(ref, path);
    return Ok();
  }
  const std::uint64_t block_size = sb_.block_size;
  const std::uint64_t max_blocks =
      std::max<std::uint64_t>(kMinBlockBudget, ctx_.budget().limits().max_total_bytes / block_size);
  if (listed_blocks_ + inode.block_sizes.size() > max_blocks) {
    Gap(GapKind::kLimit, sb_.inode_table + (ref >> 16),
        "file " + Shown(path) + " would take the data blocks listed past " +
            std::to_string(max_blocks) + "; not extracted");
    return Ok();
  }
  listed_blocks_ += inode.block_sizes.size();
  job->block_sizes = std::move(inode.block_sizes);
  const std::uint64_t in_blocks = std::uint64_t{job->block_count()} * block_size;
  job->has_tail = in_blocks < job->size;
  if ((job->has_tail && job->size - in_blocks >= block_size) ||
      (job->block_count() > 0 && inode.blocks_start > sb_.bytes_used)) {
    Gap(GapKind::kCorrupt, sb_.inode_table + (ref >> 16),
        "file " + Shown(path) + " has an inconsistent block list; not extracted");
    return Ok();
  }
  if (job->has_tail) {
    job->fragment_offset = inode.fragment_offset;
    auto entry = tables_->Fragment(inode.fragment);
    if (entry) {
      job->fragment = *entry;
    } else {
      job->fragment_damage = std::move(entry.error());
    }
  }
  // Where each segment's first block starts in the chunk.
  job->blocks_per_segment = std::max<std::size_t>(1, kSegmentBytes / block_size);
  std::uint64_t position = inode.blocks_start;
  for (std::size_t i = 0; i < job->block_count(); ++i) {
    if (i % job->blocks_per_segment == 0) job->segment_start.push_back(position);
    position += job->block_sizes[i] & ~kStoredBlockBit;
  }
  if (job->segment_start.empty()) job->segment_start.push_back(position);
  first_paths_.emplace(ref, path);
  files_.push_back(std::move(job));
  return Ok();
}

// Big files first (their segments in order), so the workers finish together; then small files
// grouped by the fragment block holding their tails, so each fragment block is decoded once.
std::vector<WorkUnit> LegacyExtractor::PlanWork() {
  std::vector<FileJob*> with_blocks;
  std::vector<FileJob*> tails_only;
  for (const auto& file : files_) {
    (file->block_count() > 0 ? with_blocks : tails_only).push_back(file.get());
  }
  std::stable_sort(with_blocks.begin(), with_blocks.end(),
                   [](const FileJob* a, const FileJob* b) { return a->size > b->size; });
  std::stable_sort(tails_only.begin(), tails_only.end(), [](const FileJob* a, const FileJob* b) {
    return a->fragment_key() < b->fragment_key();
  });
  std::vector<WorkUnit> units;
  for (FileJob* file : with_blocks) {
    for (std::size_t segment = 0; segment < file->segment_count(); ++segment) {
      units.push_back(WorkUnit{Part{file, segment}});
    }
  }
  for (FileJob* file : tails_only) {
    if (units.empty() || units.back().size() >= kMaxFilesPerGroup ||
        units.back().front().file->block_count() > 0 ||
        units.back().front().file->fragment_key() != file->fragment_key()) {
      units.emplace_back();
    }
    units.back().push_back(Part{file, 0});
  }
  return units;
}

Status LegacyExtractor::ExtractFiles() {
  const std::vector<WorkUnit> units = PlanWork();
  if (units.empty()) return Ok();
  const std::size_t workers = std::min<std::size_t>(units.size(), ctx_.pool().concurrency());
  std::atomic<std::size_t> next{0};
  {
    TaskGroup group(ctx_.pool());
    for (std::size_t i = 0; i < workers; ++i) {
      group.Run([this, &units, &next] { RunWorker(units, next); });
    }
    group.Wait();
  }
  std::lock_guard lock(stop_mutex_);
  if (stop_error_) return tl::unexpected(*stop_error_);
  return Ok();
}

void LegacyExtractor::RunWorker(const std::vector<WorkUnit>& units,
                                std::atomic<std::size_t>& next) {
  Worker worker;
  auto codec = BlockCodec::Make(sb_.compression, sb_.block_size, variants_);
  if (!codec) {
    RequestStop(codec.error());
    return;
  }
  worker.codec = std::move(*codec);
  while (!stopping()) {
    const std::size_t index = next.fetch_add(1, std::memory_order_relaxed);
    if (index >= units.size()) break;
    if (auto in_time = ctx_.budget().CheckTime(); !in_time) {
      RequestStop(in_time.error());
      break;
    }
    for (const Part& part : units[index]) {
      FileJob& file = *part.file;
      std::size_t good = 0;
      bool skip = false;
      {
        std::lock_guard lock(file.mutex);
        skip = file.dropped || part.segment > file.cut_segment;
      }
      std::optional<Damage> damage;
      if (skip) {
        worker.output.Reset(0);
      } else {
        damage = DecodeSegment(worker, file, part.segment, good);
      }
      if (damage) {
        worker.output.size = good;
        const std::uint64_t cut_at =
            std::uint64_t{part.segment} * file.blocks_per_segment * sb_.block_size + good;
        Gap(damage->kind, damage->offset,
            "file " + Shown(file.path) + ": " + damage->reason + "; the file was cut at byte " +
                std::to_string(cut_at));
      }
      Commit(file, part.segment, worker.output, damage.has_value());
    }
  }
}

std::optional<Damage> LegacyExtractor::DecodeBlock(Worker& worker, std::uint64_t position,
                                                   std::uint32_t raw, std::span<std::uint8_t> dest,
                                                   const std::string& what) {
  const std::uint32_t on_disk = raw & ~kStoredBlockBit;
  const std::string where = what + " at offset " + HexOffset(position);
  if (on_disk > sb_.block_size) return Damage{GapKind::kCorrupt, position, where + " is too big"};
  if (position > chunk_.size() || chunk_.size() - position < on_disk) {
    return Damage{PastEndKind(), std::min<std::uint64_t>(position, chunk_.size()),
                  where + " lies past the end of the image"};
  }
  const ByteView source = chunk_.subspan(position, on_disk);
  if ((raw & kStoredBlockBit) != 0) {
    if (on_disk != dest.size()) return Damage{GapKind::kCorrupt, position, where + " is cut"};
    std::memcpy(dest.data(), source.data(), on_disk);
    return std::nullopt;
  }
  if (!worker.codec->Decode(source, dest, true)) {
    return Damage{GapKind::kCorrupt, position, where + " does not decompress"};
  }
  return std::nullopt;
}

// Decodes one segment of `file` into worker.output. On damage, `good` says how many leading
// bytes of the output are right.
std::optional<Damage> LegacyExtractor::DecodeSegment(Worker& worker, FileJob& file,
                                                     std::size_t segment, std::size_t& good) {
  const std::uint64_t block_size = sb_.block_size;
  const std::size_t first = segment * file.blocks_per_segment;
  const std::size_t end = std::min(file.block_count(), first + file.blocks_per_segment);
  const bool with_tail = file.has_tail && segment + 1 == file.segment_count();
  const std::uint64_t begin_byte = std::uint64_t{first} * block_size;
  const std::uint64_t end_byte =
      with_tail ? file.size : std::min<std::uint64_t>(file.size, std::uint64_t{end} * block_size);
  worker.output.Reset(end_byte - begin_byte);
  std::uint8_t* out = worker.output.data.get();
  std::uint64_t position = file.segment_start[segment];
  good = 0;
  for (std::size_t i = first; i < end; ++i) {
    const std::uint32_t raw = file.block_sizes[i];
    const std::uint64_t expected =
        std::min<std::uint64_t>(block_size, file.size - std::uint64_t{i} * block_size);
    const std::span<std::uint8_t> dest(out + good, expected);
    if ((raw & ~kStoredBlockBit) == 0) {
      std::memset(dest.data(), 0, dest.size());  // a sparse block
    } else {
      if (auto damage = DecodeBlock(worker, position, raw, dest, "block " + std::to_string(i))) {
        return damage;
      }
      position += raw & ~kStoredBlockBit;
    }
    good += expected;
  }
  if (!with_tail) return std::nullopt;
  if (file.fragment_damage) return file.fragment_damage;
  if (auto damage = LoadFragment(worker, *file.fragment)) return damage;
  const std::uint64_t tail = file.size - std::uint64_t{file.block_count()} * block_size;
  if (file.fragment_offset > worker.fragment.size ||
      worker.fragment.size - file.fragment_offset < tail) {
    return Damage{GapKind::kCorrupt, file.fragment->start,
                  "its tail lies outside the fragment block at " + HexOffset(file.fragment->start)};
  }
  std::memcpy(out + good, worker.fragment.data.get() + file.fragment_offset, tail);
  good += tail;
  return std::nullopt;
}

std::optional<Damage> LegacyExtractor::LoadFragment(Worker& worker, const FragmentEntry& entry) {
  if (worker.holds_fragment && worker.fragment_start == entry.start) return std::nullopt;
  worker.holds_fragment = false;
  const std::uint32_t on_disk = entry.size & ~kStoredBlockBit;
  const std::string where = "the fragment block at " + HexOffset(entry.start);
  if (on_disk == 0 || on_disk > sb_.block_size) {
    return Damage{GapKind::kCorrupt, std::min<std::uint64_t>(entry.start, chunk_.size()),
                  where + " has an impossible size"};
  }
  if (entry.start > chunk_.size() || chunk_.size() - entry.start < on_disk) {
    return Damage{PastEndKind(), std::min<std::uint64_t>(entry.start, chunk_.size()),
                  where + " lies past the end of the image"};
  }
  const ByteView source = chunk_.subspan(entry.start, on_disk);
  if ((entry.size & kStoredBlockBit) != 0) {
    worker.fragment.Reset(on_disk);
    std::memcpy(worker.fragment.data.get(), source.data(), on_disk);
  } else {
    worker.fragment.Reset(sb_.block_size);
    const auto produced = worker.codec->Decode(source, worker.fragment.span(), false);
    if (!produced) return Damage{GapKind::kCorrupt, entry.start, where + " does not decompress"};
    worker.fragment.size = *produced;
  }
  worker.holds_fragment = true;
  worker.fragment_start = entry.start;
  return std::nullopt;
}

// Hands a decoded segment over: written now if it is the file's next one (with any later ones
// that were waiting), else kept until its turn.
void LegacyExtractor::Commit(FileJob& file, std::size_t segment, Buffer& buffer, bool cut) {
  std::lock_guard lock(file.mutex);
  if (cut) file.cut_segment = std::min(file.cut_segment, segment);
  if (segment != file.next_segment) {
    file.pending.emplace(segment, std::move(buffer));
    buffer = Buffer{};
    return;
  }
  WriteSegment(file, segment, buffer.view());
  ++file.next_segment;
  for (auto it = file.pending.find(file.next_segment); it != file.pending.end();
       it = file.pending.find(file.next_segment)) {
    WriteSegment(file, it->first, it->second.view());
    file.pending.erase(it);
    ++file.next_segment;
  }
  if (file.next_segment == file.segment_count() && file.writer) {
    if (auto closed = file.writer->Close(); !closed && ShouldStop(closed.error())) {
      RequestStop(closed.error());
    }
    file.writer.reset();
  }
}

void LegacyExtractor::WriteSegment(FileJob& file, std::size_t segment, ByteView bytes) {
  if (file.dropped || segment > file.cut_segment || stopping()) return;
  if (!file.writer) {
    auto created = ctx_.sink().CreateFile(file.path, file.mode);
    if (!created) {
      file.dropped = true;
      if (ShouldStop(created.error())) RequestStop(created.error());
      return;
    }
    file.writer.emplace(std::move(*created));
  }
  if (auto written = file.writer->Write(bytes); !written) {
    file.dropped = true;
    (void)file.writer->Close();
    file.writer.reset();
    if (ShouldStop(written.error())) RequestStop(written.error());
  }
}

std::map<std::string, std::string> DescribeSuperblock(const LegacySuperblock& sb) {
  std::map<std::string, std::string> meta;
  meta["version"] = sb.Version();
  meta["byte_order"] = std::string(OrderName(sb.order));
  meta["block_size"] = std::to_string(sb.block_size);
  meta["inode_count"] = std::to_string(sb.inode_count);
  meta["bytes_used"] = std::to_string(sb.bytes_used);
  meta["mkfs_time"] = IsoTime(sb.mkfs_time);
  if (sb.magic != "hsqs" && sb.magic != "sqsh") meta["magic"] = sb.magic;
  if (sb.major == 4) meta["compression"] = std::string(CompressorName(sb.compression));
  return meta;
}

}  // namespace

Status ExtractLegacy(ByteView chunk, ExtractContext& ctx, std::string_view fallback_reason) {
  const auto sb = ParseLegacySuperblock(chunk);
  if (!sb) {
    return Fail(ErrorCode::kCorruptInput, fallback_reason.empty()
                                              ? std::string("squashfs superblock is not readable")
                                              : std::string(fallback_reason));
  }
  if (!fallback_reason.empty()) ctx.SetMeta("fallback", std::string(fallback_reason));
  LegacyExtractor extractor(chunk, *sb, ctx);
  Status status = extractor.Run();
  if (const std::string used = extractor.variants().Describe(); !used.empty()) {
    ctx.SetMeta("compression", used);
  }
  if (const auto order = extractor.header_order(); order && *order != sb->order) {
    ctx.SetMeta("quirk", "metadata block headers are " + std::string(OrderName(*order)) + " in a " +
                             std::string(OrderName(sb->order)) + " image (AVM)");
  }
  return status;
}

}  // namespace squashfs_legacy

namespace {

constexpr Magic kLegacyMagics[] = {{"hsqs", 0}, {"sqsh", 0}, {"shsq", 0},
                                   {"qshs", 0}, {"hsqt", 0}, {"tqsh", 0}};

class SquashfsLegacyFormat final : public Format {
 public:
  [[nodiscard]] std::string_view name() const override { return "squashfs_legacy"; }
  [[nodiscard]] std::string_view description() const override {
    return "SquashFS 2.x/3.x (either byte order, zlib or vendor LZMA) and big-endian 4.0";
  }
  [[nodiscard]] std::span<const Magic> magics() const override { return kLegacyMagics; }

  [[nodiscard]] std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const ByteView bytes = blob.subspan(start);
    const auto sb = squashfs_legacy::ParseLegacySuperblock(bytes);
    // Standard 4.0 little-endian images are the "squashfs" format's (which hands over those
    // libsquashfs cannot read).
    if (!sb || squashfs::IsStandardSuperblock(bytes)) return std::nullopt;
    Chunk chunk;
    chunk.offset = start;
    const std::uint64_t available = blob.size() - start;
    chunk.length = std::min<std::uint64_t>(sb->bytes_used, available);
    if (sb->bytes_used > available) {
      chunk.issues.push_back(ProbeIssue{model::GapKind::kTruncated,
                                        "squashfs superblock says the image has " +
                                            std::to_string(sb->bytes_used) + " bytes, only " +
                                            std::to_string(available) + " remain in the blob"});
    }
    chunk.meta = squashfs_legacy::DescribeSuperblock(*sb);
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    return squashfs_legacy::ExtractLegacy(chunk, ctx);
  }
};

}  // namespace

std::unique_ptr<const Format> MakeSquashfsLegacyFormat() {
  return std::make_unique<SquashfsLegacyFormat>();
}

}  // namespace iotmark::unpack::formats
