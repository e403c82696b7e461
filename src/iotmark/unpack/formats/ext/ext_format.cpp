// ext2, ext3 and ext4: the probe checks the superblock (1024 bytes into the chunk) field by field,
// since its two-byte magic turns up often in other data, and takes blocks_count x block_size as
// the chunk's extent. libext2fs reads the image in place through a memory I/O manager; the journal
// is not replayed.
#include <ext2fs/ext2fs.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
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
#include "iotmark/unpack/formats/ext/ext_memory_io.hpp"

namespace iotmark::unpack::formats {

namespace {

using namespace std::string_view_literals;
using model::GapKind;

constexpr std::uint64_t kSuperblockOffset = 1024;
constexpr std::uint64_t kSuperblockSize = 1024;
constexpr std::uint16_t kExtMagic = 0xEF53;
// Directories nested deeper than this are not entered (the sink refuses such paths anyway).
constexpr int kMaxDepth = 256;
constexpr std::uint64_t kMaxLinkTarget = 4095;
constexpr std::size_t kReadPiece = std::size_t{1} << 20;

constexpr Magic kMagics[] = {{"\x53\xEF"sv, kSuperblockOffset + 56}};

struct FeatureName {
  std::uint32_t bit;
  std::string_view name;
};

constexpr FeatureName kCompatFeatures[] = {
    {0x0001, "dir_prealloc"}, {0x0002, "imagic_inodes"},   {0x0004, "has_journal"},
    {0x0008, "ext_attr"},     {0x0010, "resize_inode"},    {0x0020, "dir_index"},
    {0x0040, "lazy_bg"},      {0x0100, "snapshot_bitmap"}, {0x0200, "sparse_super2"},
    {0x0400, "fast_commit"},  {0x0800, "stable_inodes"},   {0x1000, "orphan_file"},
};
constexpr FeatureName kIncompatFeatures[] = {
    {0x0001, "compression"}, {0x0002, "filetype"},    {0x0004, "needs_recovery"},
    {0x0008, "journal_dev"}, {0x0010, "meta_bg"},     {0x0040, "extent"},
    {0x0080, "64bit"},       {0x0100, "mmp"},         {0x0200, "flex_bg"},
    {0x0400, "ea_inode"},    {0x1000, "dirdata"},     {0x2000, "metadata_csum_seed"},
    {0x4000, "large_dir"},   {0x8000, "inline_data"}, {0x10000, "encrypt"},
    {0x20000, "casefold"},
};
constexpr FeatureName kRoCompatFeatures[] = {
    {0x0001, "sparse_super"},    {0x0002, "large_file"},    {0x0008, "huge_file"},
    {0x0010, "uninit_bg"},       {0x0020, "dir_nlink"},     {0x0040, "extra_isize"},
    {0x0080, "snapshot"},        {0x0100, "quota"},         {0x0200, "bigalloc"},
    {0x0400, "metadata_csum"},   {0x0800, "replica"},       {0x1000, "read-only"},
    {0x2000, "project"},         {0x4000, "shared_blocks"}, {0x8000, "verity"},
    {0x10000, "orphan_present"},
};

struct Superblock {
  std::uint32_t inodes_count = 0;
  std::uint64_t blocks_count = 0;
  std::uint32_t first_data_block = 0;
  std::uint32_t log_block_size = 0;
  std::uint32_t blocks_per_group = 0;
  std::uint32_t inodes_per_group = 0;
  std::uint32_t rev_level = 0;
  std::uint16_t minor_rev_level = 0;
  std::uint32_t feature_compat = 0;
  std::uint32_t feature_incompat = 0;
  std::uint32_t feature_ro_compat = 0;
  std::uint16_t desc_size = 0;
  std::uint32_t mkfs_time = 0;
  ByteView uuid;
  ByteView volume_name;
  ByteView last_mounted;

  [[nodiscard]] std::uint64_t block_size() const { return std::uint64_t{1024} << log_block_size; }
  [[nodiscard]] std::uint64_t groups() const {
    return (blocks_count - first_data_block + blocks_per_group - 1) / blocks_per_group;
  }
  [[nodiscard]] std::uint64_t group_desc_size() const {
    return (feature_incompat & EXT4_FEATURE_INCOMPAT_64BIT) != 0 ? desc_size : 32;
  }
};

bool IsPowerOfTwo(std::uint64_t value) { return value != 0 && (value & (value - 1)) == 0; }

// Reads the superblock (`bytes` starts at it) and checks every field that has a constraint, so
// that random data with 0x53 0xEF at the right place is turned away.
std::optional<Superblock> ParseSuperblock(ByteView bytes) {
  if (bytes.size() < kSuperblockSize) return std::nullopt;
  const auto u32 = [&](std::size_t offset) { return LoadLe<std::uint32_t>(bytes, offset).value(); };
  const auto u16 = [&](std::size_t offset) { return LoadLe<std::uint16_t>(bytes, offset).value(); };
  if (u16(56) != kExtMagic) return std::nullopt;
  Superblock sb;
  sb.inodes_count = u32(0);
  sb.first_data_block = u32(20);
  sb.log_block_size = u32(24);
  const std::uint32_t log_cluster_size = u32(28);
  sb.blocks_per_group = u32(32);
  const std::uint32_t clusters_per_group = u32(36);
  sb.inodes_per_group = u32(40);
  const std::uint16_t state = u16(58);
  const std::uint16_t errors = u16(60);
  sb.minor_rev_level = u16(62);
  const std::uint32_t creator_os = u32(72);
  sb.rev_level = u32(76);
  const std::uint32_t first_ino = u32(84);
  const std::uint16_t inode_size = u16(88);
  sb.feature_compat = u32(92);
  sb.feature_incompat = u32(96);
  sb.feature_ro_compat = u32(100);
  sb.uuid = bytes.subspan(104, 16);
  sb.volume_name = bytes.subspan(120, 16);
  sb.last_mounted = bytes.subspan(136, 64);
  sb.desc_size = u16(0xFE);
  sb.mkfs_time = u32(0x108);
  const bool is64 = (sb.feature_incompat & EXT4_FEATURE_INCOMPAT_64BIT) != 0;
  sb.blocks_count = u32(4) | (is64 ? std::uint64_t{u32(0x150)} << 32 : 0);
  const std::uint64_t free_blocks = u32(12) | (is64 ? std::uint64_t{u32(0x158)} << 32 : 0);
  const std::uint32_t free_inodes = u32(16);

  if (sb.log_block_size > 6) return std::nullopt;
  const std::uint64_t block_size = sb.block_size();
  // The superblock sits at byte 1024: in block 1 of a 1 KiB filesystem, else in block 0.
  if (sb.first_data_block != (block_size == 1024 ? 1u : 0u)) return std::nullopt;
  if (sb.rev_level > 1) return std::nullopt;
  if ((state & ~7u) != 0 || errors > 3 || creator_os > 4) return std::nullopt;
  if (sb.blocks_count <= sb.first_data_block ||
      sb.blocks_count > (std::uint64_t{1} << 62) / block_size) {
    return std::nullopt;
  }
  if (sb.inodes_count == 0 || free_blocks > sb.blocks_count || free_inodes > sb.inodes_count) {
    return std::nullopt;
  }
  // A group's bitmaps are one block each: at most 8 x block_size clusters and inodes per group.
  const bool bigalloc = (sb.feature_ro_compat & EXT4_FEATURE_RO_COMPAT_BIGALLOC) != 0;
  if (bigalloc) {
    if (log_cluster_size < sb.log_block_size || log_cluster_size - sb.log_block_size > 16) {
      return std::nullopt;
    }
    if (clusters_per_group == 0 || clusters_per_group > 8 * block_size) return std::nullopt;
    if (sb.blocks_per_group != std::uint64_t{clusters_per_group}
                                   << (log_cluster_size - sb.log_block_size)) {
      return std::nullopt;
    }
  } else if (sb.blocks_per_group < 8 || sb.blocks_per_group > 8 * block_size) {
    return std::nullopt;
  }
  if (sb.inodes_per_group == 0 || sb.inodes_per_group > 8 * block_size) return std::nullopt;
  // The kernel's own consistency check: every group has the same number of inodes.
  if (sb.groups() > sb.inodes_count ||
      std::uint64_t{sb.inodes_per_group} * sb.groups() != sb.inodes_count) {
    return std::nullopt;
  }
  if (sb.rev_level >= 1) {
    if (!IsPowerOfTwo(inode_size) || inode_size < 128 || inode_size > block_size) {
      return std::nullopt;
    }
    if (first_ino < 11 || first_ino >= sb.inodes_count) return std::nullopt;
  }
  if (is64 && (!IsPowerOfTwo(sb.desc_size) || sb.desc_size < 64 || sb.desc_size > 1024)) {
    return std::nullopt;
  }
  return sb;
}

std::string FeatureList(const Superblock& sb) {
  std::string out;
  const auto add = [&](std::uint32_t value, std::span<const FeatureName> names,
                       std::string_view kind) {
    std::uint32_t known = 0;
    for (const auto& feature : names) {
      known |= feature.bit;
      if ((value & feature.bit) == 0) continue;
      if (!out.empty()) out += ',';
      out += feature.name;
    }
    for (std::uint32_t bit = 1; bit != 0; bit <<= 1) {
      if ((value & bit & ~known) == 0) continue;
      if (!out.empty()) out += ',';
      out += std::string(kind) + "_" + HexOffset(bit);
    }
  };
  add(sb.feature_compat, kCompatFeatures, "compat");
  add(sb.feature_incompat, kIncompatFeatures, "incompat");
  add(sb.feature_ro_compat, kRoCompatFeatures, "ro_compat");
  return out;
}

std::string FilesystemName(const Superblock& sb) {
  constexpr std::uint32_t kExt4Incompat =
      EXT3_FEATURE_INCOMPAT_EXTENTS | EXT4_FEATURE_INCOMPAT_64BIT | EXT4_FEATURE_INCOMPAT_FLEX_BG |
      EXT4_FEATURE_INCOMPAT_MMP | EXT4_FEATURE_INCOMPAT_INLINE_DATA |
      EXT4_FEATURE_INCOMPAT_EA_INODE;
  constexpr std::uint32_t kExt4RoCompat =
      EXT4_FEATURE_RO_COMPAT_HUGE_FILE | EXT4_FEATURE_RO_COMPAT_GDT_CSUM |
      EXT4_FEATURE_RO_COMPAT_DIR_NLINK | EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE |
      EXT4_FEATURE_RO_COMPAT_METADATA_CSUM | EXT4_FEATURE_RO_COMPAT_BIGALLOC;
  if ((sb.feature_incompat & kExt4Incompat) != 0 || (sb.feature_ro_compat & kExt4RoCompat) != 0) {
    return "ext4";
  }
  return (sb.feature_compat & EXT3_FEATURE_COMPAT_HAS_JOURNAL) != 0 ? "ext3" : "ext2";
}

std::string IsoTime(std::uint32_t seconds) {
  const std::time_t time = seconds;
  std::tm tm{};
  if (::gmtime_r(&time, &tm) == nullptr) return std::to_string(seconds);
  char text[32];
  const std::size_t n = std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(text, n);
}

std::string UuidText(ByteView uuid) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < uuid.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out.push_back(kHex[uuid[i] >> 4]);
    out.push_back(kHex[uuid[i] & 0xF]);
  }
  return out;
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

std::string ErrorText(errcode_t code) { return ::error_message(code); }

// A read past the end of a cut-off image is a truncation, anything else damage.
GapKind KindOf(errcode_t code) {
  return code == EXT2_ET_SHORT_READ ? GapKind::kTruncated : GapKind::kCorrupt;
}

bool IsChecksumError(errcode_t code) {
  return code == EXT2_ET_INODE_CSUM_INVALID || code == EXT2_ET_DIR_CSUM_INVALID ||
         code == EXT2_ET_EXTENT_CSUM_INVALID || code == EXT2_ET_EXT_ATTR_CSUM_INVALID;
}

// Lets libext2fs read through checksum mismatches for as long as it lives (content is still
// worth extracting; the mismatch is reported where it is found).
class IgnoreChecksums {
 public:
  explicit IgnoreChecksums(ext2_filsys fs) : fs_(fs), saved_(fs->flags) {
    fs_->flags |= EXT2_FLAG_IGNORE_CSUM_ERRORS;
  }
  ~IgnoreChecksums() {
    fs_->flags =
        (fs_->flags & ~EXT2_FLAG_IGNORE_CSUM_ERRORS) | (saved_ & EXT2_FLAG_IGNORE_CSUM_ERRORS);
  }
  IgnoreChecksums(const IgnoreChecksums&) = delete;
  IgnoreChecksums& operator=(const IgnoreChecksums&) = delete;

 private:
  ext2_filsys fs_;
  int saved_;
};

struct FileCloser {
  void operator()(ext2_file_t file) const { ext2fs_file_close(file); }
};
using FilePtr = std::unique_ptr<std::remove_pointer_t<ext2_file_t>, FileCloser>;

struct FsCloser {
  void operator()(ext2_filsys fs) const { ext2fs_free(fs); }
};
using FsPtr = std::unique_ptr<std::remove_pointer_t<ext2_filsys>, FsCloser>;

class ExtExtractor {
 public:
  ExtExtractor(ext2_filsys fs, ExtractContext& ctx) : fs_(fs), ctx_(ctx) {}
  Status Run();

 private:
  struct Listed {
    std::string name;
    ext2_ino_t ino;
  };
  struct PendingDir {
    ext2_ino_t ino;
    std::string path;
    std::uint32_t mode;
    int depth;
  };

  void Gap(GapKind kind, std::string reason) { ctx_.AddGap(kind, 0, std::move(reason)); }
  static Status SinkFailed(const Error& error) {
    if (ShouldStop(error)) return tl::unexpected(error);
    return Ok();  // refused entries are already recorded as gaps by the sink
  }
  std::vector<Listed> List(ext2_ino_t dir, const std::string& shown);
  std::optional<ext2_inode_large> ReadInode(ext2_ino_t ino, const std::string& path);
  Status AddEntry(const PendingDir& parent, const Listed& entry, std::vector<PendingDir>& stack);
  Status AddRegularFile(const std::string& path, ext2_ino_t ino, ext2_inode_large& inode);
  std::optional<std::string> ReadLinkTarget(const std::string& path, ext2_ino_t ino,
                                            ext2_inode_large& inode);

  ext2_filsys fs_;
  ExtractContext& ctx_;
  std::uint64_t entries_ = 0;
  bool entry_limit_hit_ = false;
  std::unordered_set<ext2_ino_t> listed_dirs_;
  std::unordered_map<ext2_ino_t, std::string> first_paths_;  // regular files, by inode
  std::unique_ptr<char[]> buffer_ = std::make_unique_for_overwrite<char[]>(kReadPiece);
};

Status ExtExtractor::Run() {
  // Reads verify checksums unless an IgnoreChecksums is alive.
  fs_->flags &= ~EXT2_FLAG_IGNORE_CSUM_ERRORS;
  listed_dirs_.insert(EXT2_ROOT_INO);
  std::vector<PendingDir> stack;
  stack.push_back(PendingDir{EXT2_ROOT_INO, "", 0755, 0});
  while (!stack.empty() && !entry_limit_hit_) {
    IOTMARK_TRY(ctx_.budget().CheckTime());
    const PendingDir dir = std::move(stack.back());
    stack.pop_back();
    const std::string shown = dir.path.empty() ? "the root directory" : ShownPath(dir.path);
    const std::vector<Listed> entries = List(dir.ino, shown);
    if (!dir.path.empty()) {
      // mke2fs makes lost+found in every filesystem; an empty one tells nothing.
      if (dir.depth == 1 && dir.path == "lost+found" && entries.empty()) continue;
      if (auto added = ctx_.sink().AddDirectory(dir.path, dir.mode); !added) {
        IOTMARK_TRY(SinkFailed(added.error()));
        continue;
      }
    }
    for (const Listed& entry : entries) IOTMARK_TRY(AddEntry(dir, entry, stack));
  }
  return Ok();
}

std::vector<ExtExtractor::Listed> ExtExtractor::List(ext2_ino_t dir, const std::string& shown) {
  struct State {
    std::vector<Listed> entries;
    std::uint64_t cap;
    bool capped = false;
  } state;
  const std::uint64_t max_entries = ctx_.budget().limits().max_entries;
  state.cap = max_entries > entries_ ? max_entries - entries_ : 0;
  // (DIRENT_FLAG_INCLUDE_INLINE_DATA is libext2fs-internal; inline directories are read anyway.)
  const auto callback = [](ext2_ino_t /*dir*/, int entry, ext2_dir_entry* dirent, int /*offset*/,
                           int /*blocksize*/, char* /*buf*/, void* priv) -> int {
    auto* s = static_cast<State*>(priv);
    if (entry == DIRENT_DOT_FILE || entry == DIRENT_DOT_DOT_FILE) return 0;
    // Inline directories list "." and ".." as ordinary entries.
    const int length = ext2fs_dirent_name_len(dirent);
    if ((length == 1 && dirent->name[0] == '.') ||
        (length == 2 && dirent->name[0] == '.' && dirent->name[1] == '.')) {
      return 0;
    }
    if (s->entries.size() >= s->cap) {
      s->capped = true;
      return DIRENT_ABORT;
    }
    s->entries.push_back(
        Listed{std::string(dirent->name, static_cast<std::size_t>(length)), dirent->inode});
    return 0;
  };
  errcode_t error = ext2fs_dir_iterate2(fs_, dir, 0, nullptr, callback, &state);
  if (IsChecksumError(error)) {
    Gap(GapKind::kCorrupt, "the listing of " + shown + " fails its checksum; read anyway");
    IgnoreChecksums ignore(fs_);
    state.entries.clear();
    state.capped = false;
    error = ext2fs_dir_iterate2(fs_, dir, 0, nullptr, callback, &state);
  }
  if (error != 0) {
    Gap(KindOf(error), "the listing of " + shown + " is damaged after " +
                           std::to_string(state.entries.size()) + " entries (" + ErrorText(error) +
                           "); the rest of it is missing");
  }
  entries_ += state.entries.size();
  if (state.capped) {
    Gap(GapKind::kLimit,
        "more than " + std::to_string(max_entries) + " entries; the rest of the tree was not read");
    entry_limit_hit_ = true;
  }
  return std::move(state.entries);
}

std::optional<ext2_inode_large> ExtExtractor::ReadInode(ext2_ino_t ino, const std::string& path) {
  ext2_inode_large inode{};
  const int size = std::min<int>(EXT2_INODE_SIZE(fs_->super), sizeof(inode));
  auto* raw = reinterpret_cast<ext2_inode*>(&inode);
  errcode_t error = ext2fs_read_inode2(fs_, ino, raw, size, 0);
  if (error == EXT2_ET_INODE_CSUM_INVALID) {
    Gap(GapKind::kCorrupt, "inode " + std::to_string(ino) + " of " + ShownPath(path) +
                               " fails its checksum; read anyway");
    error = ext2fs_read_inode2(fs_, ino, raw, size, READ_INODE_NOCSUM);
  }
  if (error != 0) {
    Gap(KindOf(error), "inode " + std::to_string(ino) + " of " + ShownPath(path) +
                           " cannot be read: " + ErrorText(error));
    return std::nullopt;
  }
  return inode;
}

Status ExtExtractor::AddEntry(const PendingDir& parent, const Listed& entry,
                              std::vector<PendingDir>& stack) {
  const std::string shown_dir = parent.path.empty() ? "the root directory" : ShownPath(parent.path);
  if (entry.name.empty() || entry.name == "." || entry.name == ".." ||
      entry.name.find('/') != std::string::npos || entry.name.find('\0') != std::string::npos) {
    Gap(GapKind::kCorrupt,
        shown_dir + " holds an invalid name '" + Shown(entry.name) + "'; entry skipped");
    return Ok();
  }
  const std::string path = parent.path.empty() ? entry.name : parent.path + "/" + entry.name;
  // Inodes below s_first_ino (journal, resize, quota ...) are the filesystem's own; only the
  // root directory may be named, and it is listed already.
  if (entry.ino > fs_->super->s_inodes_count ||
      (entry.ino < EXT2_FIRST_INO(fs_->super) && entry.ino != EXT2_ROOT_INO)) {
    Gap(GapKind::kCorrupt, ShownPath(path) + " refers to inode " + std::to_string(entry.ino) +
                               ", which no entry may name; skipped");
    return Ok();
  }
  auto inode = ReadInode(entry.ino, path);
  if (!inode) return Ok();
  if (inode->i_links_count == 0 && inode->i_mode == 0) {
    Gap(GapKind::kCorrupt,
        ShownPath(path) + " refers to unused inode " + std::to_string(entry.ino) + "; skipped");
    return Ok();
  }
  EntrySink& sink = ctx_.sink();
  const std::uint32_t mode = inode->i_mode & 07777;
  Status added;
  switch (inode->i_mode & LINUX_S_IFMT) {
    case LINUX_S_IFDIR:
      if (parent.depth + 1 >= kMaxDepth) {
        Gap(GapKind::kLimit, "directory " + ShownPath(path) + " is nested deeper than " +
                                 std::to_string(kMaxDepth) + " levels; not entered");
        added = sink.AddDirectory(path, mode);
      } else if (!listed_dirs_.insert(entry.ino).second) {
        Gap(GapKind::kCorrupt, "directory " + ShownPath(path) +
                                   " is a directory listed before (a loop or a hard-linked "
                                   "directory); not entered");
        added = sink.AddDirectory(path, mode);
      } else {
        stack.push_back(PendingDir{entry.ino, path, mode, parent.depth + 1});
      }
      break;
    case LINUX_S_IFREG:
      return AddRegularFile(path, entry.ino, *inode);
    case LINUX_S_IFLNK: {
      auto target = ReadLinkTarget(path, entry.ino, *inode);
      if (!target) return Ok();
      added = sink.AddSymlink(path, *target, mode);
      break;
    }
    case LINUX_S_IFCHR:
      added = sink.AddSpecial(path, model::EntryKind::kCharDevice, mode);
      break;
    case LINUX_S_IFBLK:
      added = sink.AddSpecial(path, model::EntryKind::kBlockDevice, mode);
      break;
    case LINUX_S_IFIFO:
      added = sink.AddSpecial(path, model::EntryKind::kFifo, mode);
      break;
    case LINUX_S_IFSOCK:
      added = sink.AddSpecial(path, model::EntryKind::kSocket, mode);
      break;
    default:
      Gap(GapKind::kCorrupt, ShownPath(path) + " has an unknown file type; skipped");
      return Ok();
  }
  if (!added) return SinkFailed(added.error());
  return Ok();
}

Status ExtExtractor::AddRegularFile(const std::string& path, ext2_ino_t ino,
                                    ext2_inode_large& inode) {
  if (const auto found = first_paths_.find(ino); found != first_paths_.end()) {
    if (auto linked = ctx_.sink().AddHardlink(path, found->second); !linked) {
      return SinkFailed(linked.error());
    }
    return Ok();
  }
  auto* raw = reinterpret_cast<ext2_inode*>(&inode);
  const std::uint64_t size = EXT2_I_SIZE(raw);
  const std::uint32_t mode = inode.i_mode & 07777;
  const std::uint64_t max = ctx_.budget().limits().max_file_bytes;
  if (size > max) {
    Gap(GapKind::kLimit, "file " + ShownPath(path) + " has " + std::to_string(size) +
                             " bytes, more than the limit of " + std::to_string(max) +
                             "; not extracted");
    return Ok();
  }
  if ((inode.i_flags & EXT4_ENCRYPT_FL) != 0) {
    Gap(GapKind::kEncrypted, "file " + ShownPath(path) + " is encrypted; not extracted");
    return Ok();
  }
  IOTMARK_TRY(ctx_.budget().CheckTime());
  IgnoreChecksums ignore(fs_);
  ext2_file_t opened = nullptr;
  if (const errcode_t error = ext2fs_file_open2(fs_, ino, raw, 0, &opened); error != 0) {
    Gap(KindOf(error), "file " + ShownPath(path) + " cannot be opened: " + ErrorText(error));
    return Ok();
  }
  const FilePtr file(opened);
  auto writer = ctx_.sink().CreateFile(path, mode);
  if (!writer) return SinkFailed(writer.error());
  first_paths_.emplace(ino, path);
  std::uint64_t done = 0;
  while (done < size) {
    const auto want = static_cast<unsigned int>(std::min<std::uint64_t>(size - done, kReadPiece));
    unsigned int got = 0;
    const errcode_t error = ext2fs_file_read(file.get(), buffer_.get(), want, &got);
    if (got > 0) {
      if (auto written = writer->Write({reinterpret_cast<const std::uint8_t*>(buffer_.get()), got});
          !written) {
        return SinkFailed(written.error());
      }
      done += got;
    }
    if (error != 0 || got == 0) {
      Gap(error != 0 ? KindOf(error) : GapKind::kTruncated,
          "file " + ShownPath(path) + " cannot be read past byte " + std::to_string(done) + " of " +
              std::to_string(size) + " (" +
              (error != 0 ? ErrorText(error) : std::string("no more data")) +
              "); the file was cut there");
      break;
    }
  }
  if (auto closed = writer->Close(); !closed) return SinkFailed(closed.error());
  return Ok();
}

std::optional<std::string> ExtExtractor::ReadLinkTarget(const std::string& path, ext2_ino_t ino,
                                                        ext2_inode_large& inode) {
  auto* raw = reinterpret_cast<ext2_inode*>(&inode);
  const std::uint64_t size = EXT2_I_SIZE(raw);
  if (size == 0 || size > kMaxLinkTarget) {
    Gap(GapKind::kCorrupt, "symlink " + ShownPath(path) + " has a target of " +
                               std::to_string(size) + " bytes; skipped");
    return std::nullopt;
  }
  std::string target;
  errcode_t error = 0;
  if ((inode.i_flags & EXT4_INLINE_DATA_FL) != 0) {
    std::size_t inline_size = 0;
    error = ext2fs_inline_data_size(fs_, ino, &inline_size);
    if (error == 0 && inline_size > kMaxLinkTarget + 64) error = EXT2_ET_INLINE_DATA_NO_SPACE;
    if (error == 0) {
      target.resize(std::max<std::size_t>(inline_size, 64));
      error = ext2fs_inline_data_get(fs_, ino, raw, target.data(), &inline_size);
      target.resize(std::min<std::uint64_t>(inline_size, size));
    }
  } else if (ext2fs_is_fast_symlink(raw) != 0) {
    target.assign(reinterpret_cast<const char*>(inode.i_block),
                  std::min<std::size_t>(size, sizeof(inode.i_block)));
  } else {
    IgnoreChecksums ignore(fs_);
    ext2_file_t opened = nullptr;
    error = ext2fs_file_open2(fs_, ino, raw, 0, &opened);
    if (error == 0) {
      const FilePtr file(opened);
      target.resize(size);
      unsigned int got = 0;
      error = ext2fs_file_read(file.get(), target.data(), static_cast<unsigned int>(size), &got);
      target.resize(got);
    }
  }
  if (error != 0 || target.empty()) {
    Gap(GapKind::kCorrupt, "the target of symlink " + ShownPath(path) + " cannot be read" +
                               (error != 0 ? ": " + ErrorText(error) : std::string()));
    return std::nullopt;
  }
  // A target is a C string on disk; anything after a NUL is not part of it.
  target.resize(::strnlen(target.data(), target.size()));
  if (target.empty()) {
    Gap(GapKind::kCorrupt, "symlink " + ShownPath(path) + " has an empty target; skipped");
    return std::nullopt;
  }
  return target;
}

class ExtFormat final : public Format {
 public:
  [[nodiscard]] std::string_view name() const override { return "ext"; }
  [[nodiscard]] std::string_view description() const override {
    return "ext2/ext3/ext4 filesystem";
  }
  [[nodiscard]] std::span<const Magic> magics() const override { return kMagics; }

  [[nodiscard]] std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start > blob.size() || blob.size() - start < kSuperblockOffset + kSuperblockSize) {
      return std::nullopt;
    }
    const auto sb = ParseSuperblock(blob.subspan(start + kSuperblockOffset, kSuperblockSize));
    if (!sb) return std::nullopt;
    Chunk chunk;
    chunk.offset = start;
    const std::uint64_t size = sb->blocks_count * sb->block_size();
    const std::uint64_t available = blob.size() - start;
    chunk.length = std::min(size, available);
    if (size > available) {
      chunk.issues.push_back(
          ProbeIssue{GapKind::kTruncated, "ext superblock says the filesystem has " +
                                              std::to_string(size) + " bytes, only " +
                                              std::to_string(available) + " remain in the blob"});
    }
    chunk.meta["filesystem"] = FilesystemName(*sb);
    chunk.meta["revision"] =
        std::to_string(sb->rev_level) + "." + std::to_string(sb->minor_rev_level);
    chunk.meta["block_size"] = std::to_string(sb->block_size());
    chunk.meta["block_count"] = std::to_string(sb->blocks_count);
    chunk.meta["inode_count"] = std::to_string(sb->inodes_count);
    chunk.meta["features"] = FeatureList(*sb);
    chunk.meta["volume_name"] = std::string(CStringField(sb->volume_name));
    chunk.meta["uuid"] = UuidText(sb->uuid);
    if (sb->mkfs_time != 0) chunk.meta["mkfs_time"] = IsoTime(sb->mkfs_time);
    if (const auto mounted = CStringField(sb->last_mounted); !mounted.empty()) {
      chunk.meta["last_mounted"] = std::string(mounted);
    }
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    static std::once_flag once;
    std::call_once(once, [] { initialize_ext2_error_table(); });
    if (chunk.size() < kSuperblockOffset + kSuperblockSize) {
      return Fail(ErrorCode::kCorruptInput, "ext image shorter than its superblock");
    }
    const auto sb = ParseSuperblock(chunk.subspan(kSuperblockOffset, kSuperblockSize));
    if (!sb) return Fail(ErrorCode::kCorruptInput, "ext superblock is not valid");
    // libext2fs allocates the group descriptor table before reading it; it has to fit the image.
    const std::uint64_t descriptors = sb->groups() * sb->group_desc_size();
    if (descriptors > chunk.size()) {
      return Fail(ErrorCode::kCorruptInput,
                  "ext group descriptors (" + std::to_string(descriptors) +
                      " bytes) cannot fit in the " + std::to_string(chunk.size()) +
                      " bytes of the image");
    }
    const std::string device = ext::MemoryIoName(chunk);
    constexpr int kFlags = EXT2_FLAG_64BITS | EXT2_FLAG_SKIP_MMP | EXT2_FLAG_IGNORE_CSUM_ERRORS;
    ext2_filsys opened = nullptr;
    errcode_t error =
        ext2fs_open2(device.c_str(), nullptr, kFlags, 0, 0, ext::MemoryIoManager(), &opened);
    if (error != 0) {
      const errcode_t first = error;
      opened = nullptr;
      error = ext2fs_open2(device.c_str(), nullptr, kFlags | EXT2_FLAG_IGNORE_SB_ERRORS, 0, 0,
                           ext::MemoryIoManager(), &opened);
      if (error != 0) {
        return Fail(first == EXT2_ET_UNSUPP_FEATURE ? ErrorCode::kUnsupportedFormat
                                                    : ErrorCode::kCorruptInput,
                    "ext filesystem cannot be opened: " + ErrorText(first));
      }
      ctx.AddGap(GapKind::kCorrupt, kSuperblockOffset,
                 "the superblock or group descriptors are inconsistent (" + ErrorText(first) +
                     "); read anyway");
    }
    const FsPtr fs(opened);
    if (ext2fs_has_feature_metadata_csum(fs->super) &&
        ext2fs_superblock_csum_verify(fs.get(), fs->super) == 0) {
      ctx.AddGap(GapKind::kCorrupt, kSuperblockOffset, "the superblock fails its checksum");
    }
    if (ext2fs_has_feature_journal_needs_recovery(fs->super)) {
      ctx.AddGap(GapKind::kUnsupported, kSuperblockOffset,
                 "the journal holds changes not yet applied; they were not replayed");
    }
    ExtExtractor extractor(fs.get(), ctx);
    return extractor.Run();
  }
};

}  // namespace

std::unique_ptr<const Format> MakeExtFormat() { return std::make_unique<ExtFormat>(); }

}  // namespace iotmark::unpack::formats
