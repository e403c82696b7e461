// SquashFS 4.0, little-endian ("hsqs"): the probe checks the superblock and takes bytes_used as the
// chunk's extent. libsquashfs reads the superblock, the inode and directory tables and the fragment
// table; regular files are then decoded in parallel, block by block, straight from the chunk's
// memory with one decompressor per worker, and streamed into the sink. An image libsquashfs cannot
// read before anything is extracted is handed to the hand-written reader of squashfs_legacy/.
#include <sqfs/block.h>
#include <sqfs/dir.h>
#include <sqfs/error.h>
#include <sqfs/frag_table.h>
#include <sqfs/inode.h>
#include <sqfs/meta_reader.h>
#include <sqfs/super.h>

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
#include "iotmark/unpack/formats/squashfs/squashfs_io.hpp"
#include "iotmark/unpack/formats/squashfs/squashfs_superblock.hpp"
#include "iotmark/unpack/formats/squashfs_legacy/legacy_extract.hpp"

namespace iotmark::unpack::formats {

namespace {

using model::GapKind;
using squashfs::ErrorText;
using squashfs::FreePtr;
using squashfs::ObjectPtr;

constexpr std::uint32_t kSquashfsMagic = 0x73717368;  // "hsqs" read little-endian
constexpr std::uint64_t kSuperblockSize = 96;
constexpr std::uint64_t kNoTable = ~std::uint64_t{0};
constexpr std::uint32_t kMetaBlockSize = 8192;
constexpr std::uint32_t kNoFragment = 0xFFFFFFFF;
// Directories nested deeper than this are not entered (the sink refuses such paths anyway).
constexpr int kMaxDepth = 256;
// Longer symlink targets are refused before libsquashfs allocates them.
constexpr std::uint32_t kMaxLinkTarget = 4096;
// SquashFS names are at most 256 bytes (stored as length - 1).
constexpr std::uint32_t kMaxNameLength = 256;
// Large files are split into segments of about this many output bytes so that one big file
// keeps every worker busy; segments are written in order.
constexpr std::uint64_t kSegmentBytes = std::uint64_t{4} << 20;
// Small files sharing one fragment block are decoded together, at most this many per task.
constexpr std::size_t kMaxFilesPerGroup = 64;

constexpr Magic kMagics[] = {{"hsqs", 0}};

struct Superblock {
  std::uint32_t inode_count = 0;
  std::uint32_t mkfs_time = 0;
  std::uint32_t block_size = 0;
  std::uint32_t fragment_count = 0;
  std::uint16_t compression = 0;
  std::uint16_t block_log = 0;
  std::uint16_t flags = 0;
  std::uint16_t id_count = 0;
  std::uint64_t root_inode = 0;
  std::uint64_t bytes_used = 0;
  std::uint64_t id_table = 0;
  std::uint64_t xattr_table = 0;
  std::uint64_t inode_table = 0;
  std::uint64_t directory_table = 0;
  std::uint64_t fragment_table = 0;
  std::uint64_t export_table = 0;
};

// Reads and checks a v4.0 superblock; nullopt unless every field is plausible.
std::optional<Superblock> ParseSuperblock(ByteView bytes) {
  ByteReader reader(bytes);
  if (reader.Read<std::uint32_t>() != kSquashfsMagic) return std::nullopt;
  Superblock sb;
  sb.inode_count = reader.Read<std::uint32_t>();
  sb.mkfs_time = reader.Read<std::uint32_t>();
  sb.block_size = reader.Read<std::uint32_t>();
  sb.fragment_count = reader.Read<std::uint32_t>();
  sb.compression = reader.Read<std::uint16_t>();
  sb.block_log = reader.Read<std::uint16_t>();
  sb.flags = reader.Read<std::uint16_t>();
  sb.id_count = reader.Read<std::uint16_t>();
  const auto major = reader.Read<std::uint16_t>();
  const auto minor = reader.Read<std::uint16_t>();
  sb.root_inode = reader.Read<std::uint64_t>();
  sb.bytes_used = reader.Read<std::uint64_t>();
  sb.id_table = reader.Read<std::uint64_t>();
  sb.xattr_table = reader.Read<std::uint64_t>();
  sb.inode_table = reader.Read<std::uint64_t>();
  sb.directory_table = reader.Read<std::uint64_t>();
  sb.fragment_table = reader.Read<std::uint64_t>();
  sb.export_table = reader.Read<std::uint64_t>();
  if (!reader.ok()) return std::nullopt;

  if (major != 4 || minor != 0) return std::nullopt;
  if (sb.block_log < 12 || sb.block_log > 20) return std::nullopt;
  if (sb.block_size != (std::uint32_t{1} << sb.block_log)) return std::nullopt;
  if (squashfs::CompressorName(sb.compression).empty()) return std::nullopt;
  if (sb.inode_count == 0 || sb.id_count == 0) return std::nullopt;

  // Layout: superblock, (compressor options), data, inode table, directory table, then the
  // lookup tables (fragments, export, ids, xattrs), all inside bytes_used.
  const auto inside = [&](std::uint64_t offset, std::uint64_t size) {
    return offset >= kSuperblockSize && offset <= sb.bytes_used && sb.bytes_used - offset >= size;
  };
  if (!inside(sb.inode_table, 2) || !inside(sb.directory_table, 2)) return std::nullopt;
  if (sb.inode_table >= sb.directory_table) return std::nullopt;
  if (!inside(sb.id_table, 8)) return std::nullopt;
  if (sb.fragment_table != kNoTable && !inside(sb.fragment_table, 0)) return std::nullopt;
  if (sb.export_table != kNoTable && !inside(sb.export_table, 0)) return std::nullopt;
  if (sb.xattr_table != kNoTable && !inside(sb.xattr_table, 0)) return std::nullopt;
  if (sb.fragment_count > 0 && sb.fragment_table == kNoTable) return std::nullopt;
  // The root inode reference: a metadata block inside the inode table, an offset inside 8 KiB.
  if ((sb.root_inode >> 48) != 0) return std::nullopt;
  if ((sb.root_inode >> 16) >= sb.directory_table - sb.inode_table) return std::nullopt;
  if ((sb.root_inode & 0xFFFF) >= kMetaBlockSize) return std::nullopt;
  return sb;
}

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
  std::string out;
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
  return out;
}

std::string ShownPath(const std::string& path) { return "'" + Shown(path) + "'"; }

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
};

// A regular file to decode: where its blocks are, and (while workers decode its segments) the
// state that puts the segments into the file in order.
struct FileJob {
  std::string path;
  std::uint32_t mode = 0;
  std::uint64_t size = 0;
  FreePtr<sqfs_inode_generic_t> inode;
  std::size_t block_count = 0;
  bool has_tail = false;  // the last size % block_size bytes live in a fragment block
  std::uint32_t fragment_index = 0;
  std::uint32_t fragment_offset = 0;
  std::size_t blocks_per_segment = 1;
  std::vector<std::uint64_t> segment_start;  // chunk offset of each segment's first block

  std::mutex mutex;
  std::optional<FileWriter> writer;
  std::size_t next_segment = 0;           // the next segment to write
  std::size_t cut_segment = SIZE_MAX;     // ended early; later segments are dropped
  bool dropped = false;                   // the sink refused the file
  std::map<std::size_t, Buffer> pending;  // decoded ahead of their turn

  [[nodiscard]] std::size_t segment_count() const { return segment_start.size(); }
};

// One task's share of the work: segments of files.
struct Part {
  FileJob* file;
  std::size_t segment;
};
using WorkUnit = std::vector<Part>;

// What one worker owns: its decompressor (they are not thread-safe) and its buffers.
struct Worker {
  ObjectPtr<sqfs_compressor_t> compressor;
  std::uint32_t fragment_index = kNoFragment;
  Buffer fragment;
  Buffer output;
};

struct Problem {
  GapKind kind = GapKind::kCorrupt;
  std::uint64_t offset = 0;  // in the chunk
  std::string reason;
};

class SquashfsExtractor {
 public:
  SquashfsExtractor(ByteView chunk, const sqfs_super_t& super, sqfs_file_t* file,
                    sqfs_compressor_t* compressor, ExtractContext& ctx)
      : chunk_(chunk), super_(super), file_(file), compressor_(compressor), ctx_(ctx) {}

  Status Run();
  // Nothing reached the sink yet: a failure can still be handed to another reader.
  [[nodiscard]] bool wrote_nothing() const { return entries_ == 0 && files_.empty(); }

 private:
  struct PendingDir {
    FreePtr<sqfs_inode_generic_t> inode;
    std::string path;
    int depth;
  };

  void Gap(GapKind kind, std::uint64_t offset, std::string reason) {
    ctx_.AddGap(kind, offset, std::move(reason));
  }
  Status SinkFailed(const Error& error);
  void LoadFragmentTable();
  // The inode at `ref`, or null with `error` set.
  FreePtr<sqfs_inode_generic_t> ReadInode(std::uint64_t ref, int& error);
  // Reading past the end of a cut-off image is a truncation; anything else is damage.
  [[nodiscard]] GapKind KindOf(int error) const {
    return error == SQFS_ERROR_OUT_OF_BOUNDS && chunk_.size() < super_.bytes_used
               ? GapKind::kTruncated
               : GapKind::kCorrupt;
  }
  std::optional<Problem> Prescreen(std::uint64_t ref, const std::string& path);
  // The root directory's inode; an error if it cannot be read (then nothing can be).
  Result<FreePtr<sqfs_inode_generic_t>> ReadRoot();
  Status Walk(FreePtr<sqfs_inode_generic_t> root);
  Status ListDirectory(PendingDir& dir, std::vector<PendingDir>& stack);
  Status AddEntry(const std::string& path, std::uint64_t ref, int depth,
                  std::vector<PendingDir>& stack);
  Status AddRegularFile(const std::string& path, FreePtr<sqfs_inode_generic_t> inode);

  Status ExtractFiles();
  std::vector<WorkUnit> PlanWork();
  void RunWorker(const std::vector<WorkUnit>& units, std::atomic<std::size_t>& next);
  std::optional<Problem> DecodeSegment(Worker& worker, FileJob& file, std::size_t segment,
                                       std::size_t& good);
  std::optional<Problem> LoadFragment(Worker& worker, std::uint32_t index);
  void Commit(FileJob& file, std::size_t segment, Buffer& buffer, bool cut);
  void WriteSegment(FileJob& file, std::size_t segment, ByteView bytes);
  void RequestStop(const Error& error);
  [[nodiscard]] bool stopping() const { return stop_.load(std::memory_order_relaxed); }

  ByteView chunk_;
  const sqfs_super_t& super_;
  sqfs_file_t* file_;
  sqfs_compressor_t* compressor_;
  ExtractContext& ctx_;

  ObjectPtr<sqfs_meta_reader_t> inode_reader_;
  ObjectPtr<sqfs_meta_reader_t> dir_reader_;
  ObjectPtr<sqfs_frag_table_t> fragments_;
  std::uint64_t entries_ = 0;
  bool entry_limit_hit_ = false;
  std::unordered_set<std::uint64_t> listed_dirs_;               // by inode reference
  std::unordered_map<std::uint32_t, std::string> first_paths_;  // file inode number -> path
  std::vector<std::unique_ptr<FileJob>> files_;
  std::vector<std::pair<std::string, std::string>> hardlinks_;  // path, existing path

  std::atomic<bool> stop_{false};
  std::mutex stop_mutex_;
  std::optional<Error> stop_error_;
};

Status SquashfsExtractor::SinkFailed(const Error& error) {
  // Refused entries are already recorded as gaps by the sink; only limits and I/O stop us.
  if (ShouldStop(error)) return tl::unexpected(error);
  return Ok();
}

void SquashfsExtractor::RequestStop(const Error& error) {
  std::lock_guard lock(stop_mutex_);
  if (!stop_error_) stop_error_ = error;
  stop_.store(true, std::memory_order_relaxed);
}

Status SquashfsExtractor::Run() {
  // The directory table ends where the first table after it begins (as libsquashfs reads it).
  std::uint64_t dir_end = super_.bytes_used;
  for (const std::uint64_t table :
       {super_.id_table_start, super_.fragment_table_start, super_.export_table_start}) {
    if (table > super_.directory_table_start && table < dir_end) dir_end = table;
  }
  inode_reader_.reset(sqfs_meta_reader_create(file_, compressor_, super_.inode_table_start,
                                              super_.directory_table_start));
  dir_reader_.reset(
      sqfs_meta_reader_create(file_, compressor_, super_.directory_table_start, dir_end));
  if (!inode_reader_ || !dir_reader_) return Fail(ErrorCode::kInternal, "out of memory");
  auto root = ReadRoot();
  if (!root) return tl::unexpected(root.error());
  LoadFragmentTable();
  IOTMARK_TRY(Walk(std::move(*root)));
  IOTMARK_TRY(ExtractFiles());
  for (const auto& [path, existing] : hardlinks_) {
    if (auto added = ctx_.sink().AddHardlink(path, existing); !added) {
      IOTMARK_TRY(SinkFailed(added.error()));
    }
  }
  return Ok();
}

void SquashfsExtractor::LoadFragmentTable() {
  if (super_.fragment_entry_count == 0 || (super_.flags & SQFS_FLAG_NO_FRAGMENTS) != 0 ||
      super_.fragment_table_start == kNoTable) {
    return;
  }
  // libsquashfs allocates the whole table up front; a real table cannot have more entries than
  // there are bytes in the data area (each fragment block takes at least one), nor an index list
  // that runs past the image.
  const std::uint64_t index_bytes =
      (std::uint64_t{super_.fragment_entry_count} * sizeof(sqfs_fragment_t) + kMetaBlockSize - 1) /
      kMetaBlockSize * sizeof(std::uint64_t);
  if (super_.fragment_entry_count > super_.inode_table_start ||
      super_.fragment_table_start > chunk_.size() ||
      chunk_.size() - super_.fragment_table_start < index_bytes) {
    Gap(GapKind::kCorrupt, std::min<std::uint64_t>(super_.fragment_table_start, chunk_.size()),
        "the fragment table (" + std::to_string(super_.fragment_entry_count) +
            " entries) does not fit the image; the tails of small files cannot be read");
    return;
  }
  fragments_.reset(sqfs_frag_table_create(0));
  if (!fragments_) return;
  if (const int error = sqfs_frag_table_read(fragments_.get(), file_, &super_, compressor_);
      error != 0) {
    fragments_.reset();
    Gap(KindOf(error), super_.fragment_table_start,
        "the fragment table cannot be read (" + ErrorText(error) +
            "); the tails of small files are missing");
  }
}

FreePtr<sqfs_inode_generic_t> SquashfsExtractor::ReadInode(std::uint64_t ref, int& error) {
  sqfs_inode_generic_t* inode = nullptr;
  error =
      sqfs_meta_reader_read_inode(inode_reader_.get(), &super_, ref >> 16, ref & 0xFFFF, &inode);
  if (error != 0 || inode == nullptr) {
    sqfs_free(inode);
    if (error == 0) error = SQFS_ERROR_INTERNAL;
    return nullptr;
  }
  return FreePtr<sqfs_inode_generic_t>(inode);
}

// libsquashfs allocates a file inode's block list, a symlink's target and a directory's index from
// sizes in the inode before reading them; those sizes are checked here first, so that a crafted
// inode cannot make it reserve gigabytes.
std::optional<Problem> SquashfsExtractor::Prescreen(std::uint64_t ref, const std::string& path) {
  const std::uint64_t offset = super_.inode_table_start + (ref >> 16);
  std::uint8_t head[16 + sizeof(sqfs_inode_file_ext_t)];
  int error = sqfs_meta_reader_seek(inode_reader_.get(), offset, ref & 0xFFFF);
  if (error == 0) error = sqfs_meta_reader_read(inode_reader_.get(), head, 16);
  if (error != 0) {
    return Problem{KindOf(error), offset,
                   "inode of " + ShownPath(path) + " cannot be read: " + ErrorText(error)};
  }
  const ByteView bytes(head, sizeof(head));
  const std::uint16_t type = LoadLe<std::uint16_t>(bytes, 0).value_or(0);
  if (type == SQFS_INODE_EXT_FILE) {
    error = sqfs_meta_reader_read(inode_reader_.get(), head + 16, sizeof(sqfs_inode_file_ext_t));
    const std::uint64_t size = LoadLe<std::uint64_t>(bytes, 16 + 8).value_or(0);
    const std::uint64_t max = ctx_.budget().limits().max_file_bytes;
    if (error == 0 && size > max) {
      return Problem{GapKind::kLimit, offset,
                     "file " + ShownPath(path) + " claims " + std::to_string(size) +
                         " bytes, more than the limit of " + std::to_string(max) +
                         "; not extracted"};
    }
  } else if (type == SQFS_INODE_EXT_DIR) {
    // The directory index: one entry per metadata block of the listing, each with a name that
    // libsquashfs sizes its buffer by (a 32-bit length).
    std::uint8_t dir[sizeof(sqfs_inode_dir_ext_t)];
    error = sqfs_meta_reader_read(inode_reader_.get(), dir, sizeof(dir));
    const ByteView fields(dir, sizeof(dir));
    const std::uint32_t listing_size = LoadLe<std::uint32_t>(fields, 4).value_or(0);
    const std::uint16_t index_count = LoadLe<std::uint16_t>(fields, 16).value_or(0);
    for (std::uint32_t i = 0; error == 0 && listing_size != 0 && i < index_count; ++i) {
      std::uint8_t index[sizeof(sqfs_dir_index_t) + kMaxNameLength];
      error = sqfs_meta_reader_read(inode_reader_.get(), index, sizeof(sqfs_dir_index_t));
      const std::uint32_t name_size =
          LoadLe<std::uint32_t>(ByteView(index, sizeof(index)), 8).value_or(0);
      if (error == 0 && name_size >= kMaxNameLength) {
        return Problem{GapKind::kCorrupt, offset,
                       "directory " + ShownPath(path) + " has a damaged index; not entered"};
      }
      if (error == 0) {
        error = sqfs_meta_reader_read(inode_reader_.get(), index + sizeof(sqfs_dir_index_t),
                                      name_size + 1);
      }
    }
  } else if (type == SQFS_INODE_SLINK || type == SQFS_INODE_EXT_SLINK) {
    error = sqfs_meta_reader_read(inode_reader_.get(), head + 16, sizeof(sqfs_inode_slink_t));
    const std::uint32_t size = LoadLe<std::uint32_t>(bytes, 16 + 4).value_or(0);
    if (error == 0 && size > kMaxLinkTarget) {
      return Problem{GapKind::kCorrupt, offset,
                     "symlink " + ShownPath(path) + " claims a target of " + std::to_string(size) +
                         " bytes; not extracted"};
    }
  }
  return std::nullopt;  // anything else libsquashfs checks itself
}

Result<FreePtr<sqfs_inode_generic_t>> SquashfsExtractor::ReadRoot() {
  int error = 0;
  auto root = ReadInode(super_.root_inode_ref, error);
  if (!root) {
    return Fail(ErrorCode::kCorruptInput,
                "squashfs root inode cannot be read: " + ErrorText(error));
  }
  const std::uint16_t type = root->base.type;
  if (type != SQFS_INODE_DIR && type != SQFS_INODE_EXT_DIR) {
    return Fail(ErrorCode::kCorruptInput, "squashfs root inode is not a directory");
  }
  return root;
}

Status SquashfsExtractor::Walk(FreePtr<sqfs_inode_generic_t> root) {
  listed_dirs_.insert(super_.root_inode_ref);
  std::vector<PendingDir> stack;
  stack.push_back(PendingDir{std::move(root), "", 0});
  while (!stack.empty() && !entry_limit_hit_) {
    IOTMARK_TRY(ctx_.budget().CheckTime());
    PendingDir dir = std::move(stack.back());
    stack.pop_back();
    IOTMARK_TRY(ListDirectory(dir, stack));
  }
  return Ok();
}

Status SquashfsExtractor::ListDirectory(PendingDir& dir, std::vector<PendingDir>& stack) {
  sqfs_readdir_state_t state;
  if (sqfs_readdir_state_init(&state, &super_, dir.inode.get()) != 0) return Ok();
  const std::string shown = dir.path.empty() ? "the root directory" : ShownPath(dir.path);
  const std::uint64_t max_entries = ctx_.budget().limits().max_entries;
  std::uint64_t listed = 0;
  while (true) {
    sqfs_dir_entry_t* raw = nullptr;
    sqfs_u32 inode_number = 0;
    sqfs_u64 ref = 0;
    const int result =
        sqfs_meta_reader_readdir(dir_reader_.get(), &state, &raw, &inode_number, &ref);
    FreePtr<sqfs_dir_entry_t> entry(raw);
    if (result > 0) break;
    if (result < 0 || !entry) {
      Gap(KindOf(result), state.current.block,
          "the listing of " + shown + " is corrupt after " + std::to_string(listed) + " entries (" +
              ErrorText(result) + "); the rest of it is missing");
      break;
    }
    ++listed;
    if (++entries_ > max_entries) {
      Gap(GapKind::kLimit, state.current.block,
          "more than " + std::to_string(max_entries) +
              " entries; the rest of the tree was not read");
      entry_limit_hit_ = true;
      break;
    }
    // The name is entry->size + 1 bytes, NUL-terminated by libsquashfs.
    const auto* name_bytes = reinterpret_cast<const char*>(entry->name);
    const std::string name(name_bytes, ::strnlen(name_bytes, std::size_t{entry->size} + 1));
    if (name.size() != std::size_t{entry->size} + 1 || name == "." || name == ".." ||
        name.find('/') != std::string::npos) {
      Gap(GapKind::kCorrupt, state.current.block,
          shown + " holds an invalid name '" + Shown(name) + "'; entry skipped");
      continue;
    }
    const std::string path = dir.path.empty() ? name : dir.path + "/" + name;
    IOTMARK_TRY(AddEntry(path, ref, dir.depth + 1, stack));
  }
  return Ok();
}

Status SquashfsExtractor::AddEntry(const std::string& path, std::uint64_t ref, int depth,
                                   std::vector<PendingDir>& stack) {
  if (auto problem = Prescreen(ref, path)) {
    Gap(problem->kind, problem->offset, std::move(problem->reason));
    return Ok();
  }
  int error = 0;
  auto inode = ReadInode(ref, error);
  if (!inode) {
    Gap(KindOf(error), super_.inode_table_start + (ref >> 16),
        "inode of " + ShownPath(path) + " cannot be read: " + ErrorText(error));
    return Ok();
  }
  EntrySink& sink = ctx_.sink();
  const std::uint32_t mode = inode->base.mode & 07777;
  Status added;
  switch (inode->base.type) {
    case SQFS_INODE_DIR:
    case SQFS_INODE_EXT_DIR: {
      added = sink.AddDirectory(path, mode);
      if (!added) break;
      if (depth >= kMaxDepth) {
        Gap(GapKind::kLimit, 0,
            "directory " + ShownPath(path) + " is nested deeper than " + std::to_string(kMaxDepth) +
                " levels; not entered");
      } else if (!listed_dirs_.insert(ref).second) {
        Gap(GapKind::kCorrupt, super_.inode_table_start + (ref >> 16),
            "directory " + ShownPath(path) +
                " is a directory listed before (a loop or a shared directory); not entered");
      } else {
        stack.push_back(PendingDir{std::move(inode), path, depth});
      }
      break;
    }
    case SQFS_INODE_FILE:
    case SQFS_INODE_EXT_FILE:
      return AddRegularFile(path, std::move(inode));
    case SQFS_INODE_SLINK:
    case SQFS_INODE_EXT_SLINK: {
      const std::uint32_t size = inode->data.slink.target_size;
      if (size > inode->payload_bytes_used) {
        Gap(GapKind::kCorrupt, 0, "symlink " + ShownPath(path) + " has a damaged target");
        return Ok();
      }
      const std::string target(reinterpret_cast<const char*>(inode->extra), size);
      added = sink.AddSymlink(path, target, mode);
      break;
    }
    case SQFS_INODE_BDEV:
    case SQFS_INODE_EXT_BDEV:
      added = sink.AddSpecial(path, model::EntryKind::kBlockDevice, mode);
      break;
    case SQFS_INODE_CDEV:
    case SQFS_INODE_EXT_CDEV:
      added = sink.AddSpecial(path, model::EntryKind::kCharDevice, mode);
      break;
    case SQFS_INODE_FIFO:
    case SQFS_INODE_EXT_FIFO:
      added = sink.AddSpecial(path, model::EntryKind::kFifo, mode);
      break;
    case SQFS_INODE_SOCKET:
    case SQFS_INODE_EXT_SOCKET:
      added = sink.AddSpecial(path, model::EntryKind::kSocket, mode);
      break;
    default:
      Gap(GapKind::kCorrupt, 0, ShownPath(path) + " has an unknown inode type");
      return Ok();
  }
  if (!added) return SinkFailed(added.error());
  return Ok();
}

Status SquashfsExtractor::AddRegularFile(const std::string& path,
                                         FreePtr<sqfs_inode_generic_t> inode) {
  // A hard link is the same inode listed again: link to the path it was first extracted at.
  const std::uint32_t number = inode->base.inode_number;
  if (const auto found = first_paths_.find(number); found != first_paths_.end()) {
    hardlinks_.emplace_back(path, found->second);
    return Ok();
  }

  auto job = std::make_unique<FileJob>();
  job->path = path;
  job->mode = inode->base.mode & 07777;
  sqfs_inode_get_file_size(inode.get(), &job->size);
  const std::uint64_t max = ctx_.budget().limits().max_file_bytes;
  if (job->size > max) {
    Gap(GapKind::kLimit, 0,
        "file " + ShownPath(path) + " has " + std::to_string(job->size) +
            " bytes, more than the limit of " + std::to_string(max) + "; not extracted");
    return Ok();
  }
  if (job->size == 0) {
    if (auto added = ctx_.sink().AddFile(path, job->mode, {}); !added) {
      return SinkFailed(added.error());
    }
    first_paths_.emplace(number, path);
    return Ok();
  }
  const std::uint64_t block_size = super_.block_size;
  job->block_count = sqfs_inode_get_file_block_count(inode.get());
  sqfs_inode_get_frag_location(inode.get(), &job->fragment_index, &job->fragment_offset);
  const std::uint64_t in_blocks = std::uint64_t{job->block_count} * block_size;
  job->has_tail = in_blocks < job->size;
  if (job->has_tail &&
      (job->size - in_blocks >= block_size || job->fragment_index == kNoFragment)) {
    Gap(GapKind::kCorrupt, 0, "file " + ShownPath(path) + " has an inconsistent block list");
    return Ok();
  }
  // Where each segment's first block starts in the chunk.
  job->blocks_per_segment = std::max<std::size_t>(1, kSegmentBytes / block_size);
  sqfs_u64 position = 0;
  sqfs_inode_get_file_block_start(inode.get(), &position);
  for (std::size_t i = 0; i < job->block_count; ++i) {
    if (i % job->blocks_per_segment == 0) job->segment_start.push_back(position);
    position += SQFS_ON_DISK_BLOCK_SIZE(inode->extra[i]);
  }
  if (job->segment_start.empty()) job->segment_start.push_back(position);
  job->inode = std::move(inode);
  first_paths_.emplace(number, path);
  files_.push_back(std::move(job));
  return Ok();
}

// Big files first (their segments in order), so the workers finish together; then small files
// grouped by the fragment block holding their tails, so each fragment block is decoded once.
std::vector<WorkUnit> SquashfsExtractor::PlanWork() {
  std::vector<FileJob*> with_blocks;
  std::vector<FileJob*> tails_only;
  for (const auto& file : files_) {
    (file->block_count > 0 ? with_blocks : tails_only).push_back(file.get());
  }
  std::stable_sort(with_blocks.begin(), with_blocks.end(),
                   [](const FileJob* a, const FileJob* b) { return a->size > b->size; });
  std::stable_sort(tails_only.begin(), tails_only.end(), [](const FileJob* a, const FileJob* b) {
    return a->fragment_index < b->fragment_index;
  });
  std::vector<WorkUnit> units;
  for (FileJob* file : with_blocks) {
    for (std::size_t segment = 0; segment < file->segment_count(); ++segment) {
      units.push_back(WorkUnit{Part{file, segment}});
    }
  }
  for (FileJob* file : tails_only) {
    if (units.empty() || units.back().size() >= kMaxFilesPerGroup ||
        units.back().front().file->block_count > 0 ||
        units.back().front().file->fragment_index != file->fragment_index) {
      units.emplace_back();
    }
    units.back().push_back(Part{file, 0});
  }
  return units;
}

Status SquashfsExtractor::ExtractFiles() {
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

void SquashfsExtractor::RunWorker(const std::vector<WorkUnit>& units,
                                  std::atomic<std::size_t>& next) {
  Worker worker;
  auto compressor = squashfs::MakeDecompressor(super_.compression_id, super_.block_size);
  if (!compressor) {
    RequestStop(compressor.error());
    return;
  }
  worker.compressor = std::move(*compressor);
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
      std::optional<Problem> problem;
      if (skip) {
        worker.output.Reset(0);
      } else {
        problem = DecodeSegment(worker, file, part.segment, good);
      }
      if (problem) {
        worker.output.size = good;
        Gap(problem->kind, problem->offset,
            "file " + ShownPath(file.path) + ": " + problem->reason +
                "; the file was cut at byte " +
                std::to_string(part.segment * file.blocks_per_segment * super_.block_size + good));
      }
      Commit(file, part.segment, worker.output, problem.has_value());
    }
  }
}

// Decodes one segment of `file` into worker.output. On a problem, `good` says how many leading
// bytes of the output are right.
std::optional<Problem> SquashfsExtractor::DecodeSegment(Worker& worker, FileJob& file,
                                                        std::size_t segment, std::size_t& good) {
  const std::uint64_t block_size = super_.block_size;
  const std::size_t first = segment * file.blocks_per_segment;
  const std::size_t end = std::min(file.block_count, first + file.blocks_per_segment);
  const bool with_tail = file.has_tail && segment + 1 == file.segment_count();
  const std::uint64_t begin_byte = std::uint64_t{first} * block_size;
  const std::uint64_t end_byte =
      with_tail ? file.size : std::min<std::uint64_t>(file.size, std::uint64_t{end} * block_size);
  worker.output.Reset(end_byte - begin_byte);
  std::uint8_t* out = worker.output.data.get();
  std::uint64_t position = file.segment_start[segment];
  good = 0;
  for (std::size_t i = first; i < end; ++i) {
    const std::uint32_t raw = file.inode->extra[i];
    const std::uint32_t on_disk = SQFS_ON_DISK_BLOCK_SIZE(raw);
    const std::uint64_t expected =
        std::min<std::uint64_t>(block_size, file.size - std::uint64_t{i} * block_size);
    std::uint8_t* dest = out + good;
    if (on_disk == 0) {
      std::memset(dest, 0, expected);  // a sparse block
    } else {
      const auto where = [&] {
        return "block " + std::to_string(i) + " at offset " + HexOffset(position);
      };
      if (position > chunk_.size() || chunk_.size() - position < on_disk) {
        return Problem{GapKind::kTruncated, std::min<std::uint64_t>(position, chunk_.size()),
                       where() + " lies past the end of the image"};
      }
      const std::uint8_t* source = chunk_.data() + position;
      if (on_disk > block_size) {
        return Problem{GapKind::kCorrupt, position, where() + " is larger than the block size"};
      }
      if (SQFS_IS_BLOCK_COMPRESSED(raw)) {
        const sqfs_s32 produced = worker.compressor->do_block(
            worker.compressor.get(), source, on_disk, dest, static_cast<sqfs_u32>(expected));
        if (produced < 0 || static_cast<std::uint64_t>(produced) != expected) {
          return Problem{GapKind::kCorrupt, position, where() + " does not decompress"};
        }
      } else {
        if (on_disk != expected) {
          return Problem{GapKind::kCorrupt, position, where() + " has the wrong size"};
        }
        std::memcpy(dest, source, expected);
      }
      position += on_disk;
    }
    good += expected;
  }
  if (with_tail) {
    const std::uint64_t tail = file.size - std::uint64_t{file.block_count} * block_size;
    if (auto problem = LoadFragment(worker, file.fragment_index)) return problem;
    if (file.fragment_offset > worker.fragment.size ||
        worker.fragment.size - file.fragment_offset < tail) {
      return Problem{GapKind::kCorrupt, 0,
                     "its tail lies outside fragment block " + std::to_string(file.fragment_index)};
    }
    std::memcpy(out + good, worker.fragment.data.get() + file.fragment_offset, tail);
    good += tail;
  }
  return std::nullopt;
}

std::optional<Problem> SquashfsExtractor::LoadFragment(Worker& worker, std::uint32_t index) {
  if (worker.fragment_index == index && index != kNoFragment) return std::nullopt;
  worker.fragment_index = kNoFragment;
  sqfs_fragment_t entry{};
  if (!fragments_ || sqfs_frag_table_lookup(fragments_.get(), index, &entry) != 0) {
    return Problem{GapKind::kCorrupt, 0,
                   "its tail is in fragment block " + std::to_string(index) +
                       ", which the fragment table does not list"};
  }
  const std::uint64_t position = entry.start_offset;
  const std::uint32_t on_disk = SQFS_ON_DISK_BLOCK_SIZE(entry.size);
  const std::string where =
      "fragment block " + std::to_string(index) + " at offset " + HexOffset(position);
  if (on_disk == 0 || on_disk > super_.block_size) {
    return Problem{GapKind::kCorrupt, 0, where + " has an impossible size"};
  }
  if (position > chunk_.size() || chunk_.size() - position < on_disk) {
    return Problem{GapKind::kTruncated, std::min<std::uint64_t>(position, chunk_.size()),
                   where + " lies past the end of the image"};
  }
  worker.fragment.Reset(super_.block_size);
  const std::uint8_t* source = chunk_.data() + position;
  if (SQFS_IS_BLOCK_COMPRESSED(entry.size)) {
    const sqfs_s32 produced = worker.compressor->do_block(
        worker.compressor.get(), source, on_disk, worker.fragment.data.get(), super_.block_size);
    if (produced <= 0) return Problem{GapKind::kCorrupt, position, where + " does not decompress"};
    worker.fragment.size = static_cast<std::size_t>(produced);
  } else {
    std::memcpy(worker.fragment.data.get(), source, on_disk);
    worker.fragment.size = on_disk;
  }
  worker.fragment_index = index;
  return std::nullopt;
}

// Hands a decoded segment over: written now if it is the file's next one (with any later ones
// that were waiting), else kept until its turn.
void SquashfsExtractor::Commit(FileJob& file, std::size_t segment, Buffer& buffer, bool cut) {
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

void SquashfsExtractor::WriteSegment(FileJob& file, std::size_t segment, ByteView bytes) {
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

class SquashfsFormat final : public Format {
 public:
  [[nodiscard]] std::string_view name() const override { return "squashfs"; }
  [[nodiscard]] std::string_view description() const override {
    return "SquashFS 4.0 filesystem (little-endian)";
  }
  [[nodiscard]] std::span<const Magic> magics() const override { return kMagics; }

  [[nodiscard]] std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const auto sb = ParseSuperblock(blob.subspan(start));
    if (!sb) return std::nullopt;
    Chunk chunk;
    chunk.offset = start;
    const std::uint64_t available = blob.size() - start;
    chunk.length = std::min<std::uint64_t>(sb->bytes_used, available);
    if (sb->bytes_used > available) {
      chunk.issues.push_back(
          ProbeIssue{GapKind::kTruncated, "squashfs superblock says the image has " +
                                              std::to_string(sb->bytes_used) + " bytes, only " +
                                              std::to_string(available) + " remain in the blob"});
    }
    chunk.meta["version"] = "4.0";
    chunk.meta["compression"] = std::string(squashfs::CompressorName(sb->compression));
    chunk.meta["block_size"] = std::to_string(sb->block_size);
    chunk.meta["inode_count"] = std::to_string(sb->inode_count);
    chunk.meta["bytes_used"] = std::to_string(sb->bytes_used);
    chunk.meta["mkfs_time"] = IsoTime(sb->mkfs_time);
    return chunk;
  }

  // Images libsquashfs rejects before anything is extracted (a vendor quirk in the superblock,
  // metadata in a compression other than the one named) go to the hand-written reader.
  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    auto file = squashfs::MakeMemoryFile(chunk);
    sqfs_super_t super{};
    if (const int error = sqfs_super_read(&super, file.get()); error != 0) {
      return squashfs_legacy::ExtractLegacy(
          chunk, ctx, "libsquashfs rejected the superblock: " + ErrorText(error));
    }
    auto compressor = squashfs::MakeDecompressor(super.compression_id, super.block_size);
    if (!compressor) {
      return squashfs_legacy::ExtractLegacy(chunk, ctx, compressor.error().message);
    }
    SquashfsExtractor extractor(chunk, super, file.get(), compressor->get(), ctx);
    Status status = extractor.Run();
    if (!status && status.error().code == ErrorCode::kCorruptInput && extractor.wrote_nothing()) {
      return squashfs_legacy::ExtractLegacy(
          chunk, ctx, "libsquashfs could not read the image: " + status.error().message);
    }
    return status;
  }
};

}  // namespace

bool squashfs::IsStandardSuperblock(ByteView bytes) { return ParseSuperblock(bytes).has_value(); }

std::unique_ptr<const Format> MakeSquashfsFormat() { return std::make_unique<SquashfsFormat>(); }

}  // namespace iotmark::unpack::formats
