// JFFS2 extraction (see jffs2_extractor.hpp). JFFS2 has no tables: the filesystem is the set of its
// nodes. One pass over the chunk indexes every node (headers only, nothing copied); the data CRCs
// are then checked in parallel, the newest version of every name and every byte wins, the tree is
// rebuilt from the directory entries, and the files are decoded segment by segment on every
// thread of the pool, straight from the chunk's memory, each written once and in order.
#include "iotmark/unpack/formats/jffs2/jffs2_extractor.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstring>
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
#include "iotmark/unpack/formats/jffs2/jffs2_decoder.hpp"

namespace iotmark::unpack::formats::jffs2 {

namespace {

using model::GapKind;

constexpr std::uint32_t kRootIno = 1;
// The kernel writes at most a page of data per node; mkfs.jffs2 -s allows larger pages. Nodes
// claiming more are refused before anything is allocated for them.
constexpr std::uint32_t kMaxNodeData = std::uint32_t{1} << 20;
// Files are decoded in segments of this many bytes, so that one big file keeps every worker busy
// and no buffer grows with a size the image states. A multiple of the 4 KiB page, so that nodes
// written page by page never straddle two segments.
constexpr std::uint64_t kSegmentBytes = std::uint64_t{1} << 20;
constexpr std::uint64_t kMaxLinkTarget = 4096;
// Deeper directories, or longer paths, are placed under lost+found instead.
constexpr int kMaxDepth = 256;
constexpr std::size_t kMaxPath = 4096;
// Gaps listed one by one per chunk; beyond this only their number is reported.
constexpr std::uint64_t kMaxListedGaps = 200;
constexpr std::string_view kLostFound = "lost+found";

// Dirent types (DT_* of <dirent.h>, as JFFS2 stores them).
constexpr std::uint8_t kDtDir = 4;

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
  return "'" + out + "'";
}

std::string Join(const std::string& parent, std::string_view name) {
  return parent.empty() ? std::string(name) : parent + "/" + std::string(name);
}

bool ValidName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find_first_of(std::string_view("/\0", 2)) == std::string_view::npos;
}

// Output bytes of one segment, uninitialised until written.
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

struct DirentNode {
  std::uint64_t node_offset = 0;
  std::uint32_t pino = 0;
  std::uint32_t version = 0;
  std::uint32_t ino = 0;  // 0: the name was deleted
  std::uint8_t type = 0;
  std::string_view name;
};

// An inode as its newest node describes it; its nodes are order_[first, first + count).
struct Inode {
  std::uint32_t first = 0;
  std::uint32_t count = 0;
  std::uint32_t mode = 0;
  std::uint64_t size = 0;
};

struct Dir {
  enum class State : std::uint8_t { kNew, kVisiting, kDone };
  std::uint32_t parent = 0;
  std::string_view name;
  bool named = false;
  State state = State::kNew;
  int depth = 0;
  std::string path;
};

// A name of a non-directory inode, with its full path.
struct Entry {
  std::string path;
  std::uint32_t ino = 0;
  std::uint64_t node_offset = 0;
};

// A regular file to decode and, while workers decode its segments, the state that writes the
// segments into the file in order.
struct FileJob {
  std::string path;
  std::uint32_t mode = 0;
  std::uint64_t size = 0;
  std::vector<Piece> pieces;

  std::mutex mutex;
  std::optional<FileWriter> writer;
  std::uint64_t next_segment = 0;
  bool dropped = false;
  std::map<std::uint64_t, Buffer> pending;  // decoded ahead of their turn

  [[nodiscard]] std::uint64_t segments() const {
    return (size + kSegmentBytes - 1) / kSegmentBytes;
  }
};

struct Worker {
  NodeDecoder decoder;
  Buffer output;
  Buffer scratch;  // a node decoded whole when only part of it is visible
};

class Extractor final : public ScanVisitor {
 public:
  Extractor(ByteView chunk, Endian endian, ExtractContext& ctx)
      : chunk_(chunk), endian_(endian), ctx_(ctx) {}

  Status Run();

  void Node(const ScanNode& node) override;
  void Skipped(const ScanSkip& skip) override;

 private:
  void Gap(GapKind kind, std::uint64_t offset, std::string reason);
  void AddDirent(const ScanNode& node);
  void AddInode(const ScanNode& node);
  void VerifyData();
  void IndexInodes();
  std::vector<const DirentNode*> LiveDirents();
  [[nodiscard]] const Inode* FindInode(std::uint32_t ino) const;
  [[nodiscard]] bool IsDirectory(const DirentNode& dirent) const;
  void BuildTree();
  const Dir& Resolve(std::uint32_t ino);
  void MakeOrphanRoot(std::uint32_t ino, Dir& dir, const std::string& why);
  Status SinkFailed(const Error& error);
  Status EmitDirectories();
  Status EmitEntries();
  Status AddSymlink(const Entry& entry, const Inode& inode);
  std::optional<DecodeProblem> Fill(Worker& worker, const Piece& piece, std::uint64_t from,
                                    std::uint64_t to, std::uint8_t* dest);
  Status ExtractFiles();
  void RunWorker(const std::vector<std::uint64_t>& unit_ends, std::atomic<std::uint64_t>& next);
  void DecodeSegment(Worker& worker, FileJob& file, std::uint64_t segment);
  void Commit(FileJob& file, std::uint64_t segment, Buffer& buffer);
  void WriteSegment(FileJob& file, ByteView bytes);
  void RequestStop(const Error& error);
  [[nodiscard]] bool stopping() const { return stop_.load(std::memory_order_relaxed); }
  void CountUnnamed();
  void SetMeta();

  ByteView chunk_;
  Endian endian_;
  ExtractContext& ctx_;
  std::atomic<std::uint64_t> gaps_{0};

  std::vector<DataNode> data_;
  std::vector<DirentNode> dirents_;
  std::vector<std::uint32_t> order_;  // good data nodes by (ino, version, position)
  std::unordered_map<std::uint32_t, Inode> inodes_;
  std::unordered_map<std::uint32_t, Dir> dirs_;
  std::vector<Entry> entries_;
  std::string lost_found_{kLostFound};
  bool lost_found_used_ = false;

  std::vector<std::unique_ptr<FileJob>> files_;
  std::vector<std::pair<std::string, std::string>> hardlinks_;  // path, existing path

  struct {
    std::uint64_t obsolete = 0;
    std::uint64_t xattr = 0;
    std::uint64_t unknown = 0;
    std::uint64_t bad_nodes = 0;
    std::uint64_t deleted_names = 0;
    std::uint64_t unnamed_inodes = 0;
  } stats_;

  std::atomic<bool> stop_{false};
  std::mutex stop_mutex_;
  std::optional<Error> stop_error_;
};

void Extractor::Gap(GapKind kind, std::uint64_t offset, std::string reason) {
  if (gaps_.fetch_add(1, std::memory_order_relaxed) < kMaxListedGaps) {
    ctx_.AddGap(kind, offset, std::move(reason));
  }
}

void Extractor::RequestStop(const Error& error) {
  std::lock_guard lock(stop_mutex_);
  if (!stop_error_) stop_error_ = error;
  stop_.store(true, std::memory_order_relaxed);
}

Status Extractor::SinkFailed(const Error& error) {
  // Refused entries are already recorded as gaps by the sink; only limits and I/O stop us.
  if (ShouldStop(error)) return tl::unexpected(error);
  return Ok();
}

void Extractor::Node(const ScanNode& node) {
  // A node cut off by the end of the chunk: the probe has reported the truncation.
  if (node.bytes.size() < node.header.totlen) return;
  const std::uint16_t type = node.header.type;
  if ((type & kNodeAccurate) == 0) {
    ++stats_.obsolete;  // marked obsolete in place by the kernel
    return;
  }
  switch (type) {
    case kTypeDirent:
      AddDirent(node);
      break;
    case kTypeInode:
      AddInode(node);
      break;
    case kTypeCleanmarker:
    case kTypePadding:
    case kTypeSummary:
      break;
    case kTypeXattr:
    case kTypeXref:
      ++stats_.xattr;  // extended attributes are not extracted
      break;
    default:
      ++stats_.unknown;
      Gap(GapKind::kUnsupported, node.offset,
          "JFFS2 node of unknown type " + HexOffset(type) + " skipped");
  }
}

void Extractor::Skipped(const ScanSkip& skip) {
  Gap(GapKind::kCorrupt, skip.offset,
      std::to_string(skip.length) + " bytes at " + HexOffset(skip.offset) + " hold " + skip.reason +
          "; skipped to the next node");
}

void Extractor::AddDirent(const ScanNode& node) {
  const ByteView bytes = node.bytes;
  const std::uint8_t* p = bytes.data();
  // Built only when needed: this runs once per node.
  const auto where = [&] { return "directory entry node at " + HexOffset(node.offset); };
  if (bytes.size() < kDirentSize) {
    ++stats_.bad_nodes;
    Gap(GapKind::kCorrupt, node.offset, where() + " is too short; skipped");
    return;
  }
  if (Crc(bytes.first(dirent::kNodeCrcCovers)) != Load32(p + dirent::kNodeCrc, endian_)) {
    ++stats_.bad_nodes;
    Gap(GapKind::kCorrupt, node.offset, where() + ": node CRC mismatch; skipped");
    return;
  }
  const std::size_t nsize = p[dirent::kNsize];
  if (bytes.size() - kDirentSize < nsize) {
    ++stats_.bad_nodes;
    Gap(GapKind::kCorrupt, node.offset, where() + ": its name runs past the node; skipped");
    return;
  }
  const ByteView name = bytes.subspan(kDirentSize, nsize);
  if (Crc(name) != Load32(p + dirent::kNameCrc, endian_)) {
    ++stats_.bad_nodes;
    Gap(GapKind::kCorrupt, node.offset, where() + ": name CRC mismatch; skipped");
    return;
  }
  dirents_.push_back(DirentNode{
      node.offset, Load32(p + dirent::kPino, endian_), Load32(p + dirent::kVersion, endian_),
      Load32(p + dirent::kIno, endian_), p[dirent::kType], AsChars(name)});
}

void Extractor::AddInode(const ScanNode& node) {
  const ByteView bytes = node.bytes;
  const std::uint8_t* p = bytes.data();
  const auto where = [&] { return "inode node at " + HexOffset(node.offset); };
  if (bytes.size() < kInodeSize) {
    ++stats_.bad_nodes;
    Gap(GapKind::kCorrupt, node.offset, where() + " is too short; skipped");
    return;
  }
  if (Crc(bytes.first(inode::kNodeCrcCovers)) != Load32(p + inode::kNodeCrc, endian_)) {
    ++stats_.bad_nodes;
    Gap(GapKind::kCorrupt, node.offset, where() + ": node CRC mismatch; skipped");
    return;
  }
  DataNode data;
  data.node_offset = node.offset;
  data.data_offset = node.offset + kInodeSize;
  data.ino = Load32(p + inode::kIno, endian_);
  data.version = Load32(p + inode::kVersion, endian_);
  data.mode = Load32(p + inode::kMode, endian_);
  data.isize = Load32(p + inode::kIsize, endian_);
  data.offset = Load32(p + inode::kOffset, endian_);
  data.csize = Load32(p + inode::kCsize, endian_);
  data.dsize = Load32(p + inode::kDsize, endian_);
  data.data_crc = Load32(p + inode::kDataCrc, endian_);
  data.compr = p[inode::kCompr];
  if (data.ino == 0 || bytes.size() - kInodeSize < data.csize || data.dsize > kMaxNodeData) {
    ++stats_.bad_nodes;
    Gap(GapKind::kCorrupt, node.offset,
        where() + " has impossible fields (ino " + std::to_string(data.ino) + ", csize " +
            std::to_string(data.csize) + ", dsize " + std::to_string(data.dsize) + "); skipped");
    return;
  }
  data_.push_back(data);
}

// Checks every data CRC on every thread of the pool, before anything is decided: a node whose
// data is damaged is dropped as the kernel drops it, and older data shows through.
void Extractor::VerifyData() {
  const std::size_t count = data_.size();
  if (count == 0) return;
  const std::size_t tasks = std::min<std::size_t>(count, ctx_.pool().concurrency());
  {
    TaskGroup group(ctx_.pool());
    for (std::size_t t = 0; t < tasks; ++t) {
      group.Run([this, t, tasks, count] {
        for (std::size_t i = count * t / tasks; i < count * (t + 1) / tasks; ++i) {
          DataNode& node = data_[i];
          node.good = Crc(chunk_.subspan(node.data_offset, node.csize)) == node.data_crc;
        }
      });
    }
    group.Wait();
  }
  for (const DataNode& node : data_) {
    if (node.good) continue;
    ++stats_.bad_nodes;
    Gap(GapKind::kCorrupt, node.node_offset,
        "inode node at " + HexOffset(node.node_offset) + " (inode " + std::to_string(node.ino) +
            ", bytes " + std::to_string(node.offset) + "+" + std::to_string(node.dsize) +
            "): data CRC mismatch; skipped, older data shows instead");
  }
}

void Extractor::IndexInodes() {
  order_.reserve(data_.size());
  for (std::uint32_t i = 0; i < data_.size(); ++i) {
    if (data_[i].good) order_.push_back(i);
  }
  std::sort(order_.begin(), order_.end(), [this](std::uint32_t a, std::uint32_t b) {
    const DataNode& x = data_[a];
    const DataNode& y = data_[b];
    if (x.ino != y.ino) return x.ino < y.ino;
    if (x.version != y.version) return x.version < y.version;
    return x.node_offset < y.node_offset;
  });
  for (std::uint32_t i = 0; i < order_.size();) {
    const std::uint32_t ino = data_[order_[i]].ino;
    std::uint32_t end = i;
    while (end < order_.size() && data_[order_[end]].ino == ino) ++end;
    const DataNode& newest = data_[order_[end - 1]];
    inodes_.emplace(ino, Inode{i, end - i, newest.mode, newest.isize});
    i = end;
  }
}

const Inode* Extractor::FindInode(std::uint32_t ino) const {
  const auto found = inodes_.find(ino);
  return found == inodes_.end() ? nullptr : &found->second;
}

// The newest directory entry for each (parent, name) wins; an entry with inode 0 deletes the name.
std::vector<const DirentNode*> Extractor::LiveDirents() {
  std::vector<const DirentNode*> sorted;
  sorted.reserve(dirents_.size());
  for (const DirentNode& dirent : dirents_) sorted.push_back(&dirent);
  std::sort(sorted.begin(), sorted.end(), [](const DirentNode* a, const DirentNode* b) {
    if (a->pino != b->pino) return a->pino < b->pino;
    if (a->name != b->name) return a->name < b->name;
    if (a->version != b->version) return a->version < b->version;
    return a->node_offset < b->node_offset;
  });
  std::vector<const DirentNode*> live;
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    const bool newest = i + 1 == sorted.size() || sorted[i + 1]->pino != sorted[i]->pino ||
                        sorted[i + 1]->name != sorted[i]->name;
    if (!newest) continue;
    if (sorted[i]->ino == 0) {
      ++stats_.deleted_names;
    } else {
      live.push_back(sorted[i]);
    }
  }
  return live;
}

bool Extractor::IsDirectory(const DirentNode& dirent) const {
  if (dirent.ino == kRootIno) return true;
  if (const Inode* inode = FindInode(dirent.ino)) return S_ISDIR(inode->mode);
  return dirent.type == kDtDir;
}

void Extractor::MakeOrphanRoot(std::uint32_t ino, Dir& dir, const std::string& why) {
  lost_found_used_ = true;
  dir.path = lost_found_ + "/" + std::to_string(ino);
  dir.depth = 1;
  dir.state = Dir::State::kDone;
  Gap(GapKind::kCorrupt, 0,
      "directory inode " + std::to_string(ino) + " " + why + "; what it holds is under " +
          Shown(dir.path));
}

// The path of directory `ino`, following parent links without recursion. A directory that has no
// name, whose ancestors loop, or that lies too deep becomes a folder of lost+found.
const Dir& Extractor::Resolve(std::uint32_t ino) {
  std::vector<std::uint32_t> chain;
  std::uint32_t current = ino;
  while (true) {
    Dir& dir = dirs_[current];
    if (dir.state == Dir::State::kDone) break;
    if (dir.state == Dir::State::kVisiting) {
      MakeOrphanRoot(current, dir, "is its own ancestor (its directory entries form a loop)");
      break;
    }
    if (!dir.named) {
      const bool has_inode = FindInode(current) != nullptr;
      MakeOrphanRoot(current, dir,
                     has_inode ? "is not named by any live directory entry"
                               : "has neither an inode node nor a name");
      break;
    }
    dir.state = Dir::State::kVisiting;
    chain.push_back(current);
    current = dir.parent;
  }
  // Parents are resolved before their children: each link's parent was pushed right after it.
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    Dir& dir = dirs_[*it];
    if (dir.state == Dir::State::kDone) continue;  // became an orphan root (a loop)
    const Dir& parent = dirs_[dir.parent];
    if (parent.depth + 1 > kMaxDepth || parent.path.size() + 1 + dir.name.size() > kMaxPath) {
      MakeOrphanRoot(*it, dir, "lies too deep in the tree");
      continue;
    }
    dir.path = Join(parent.path, dir.name);
    dir.depth = parent.depth + 1;
    dir.state = Dir::State::kDone;
  }
  return dirs_[ino];
}

void Extractor::BuildTree() {
  Dir& root = dirs_[kRootIno];
  root.state = Dir::State::kDone;
  root.named = true;
  std::vector<const DirentNode*> kept;
  kept.reserve(dirents_.size());
  for (const DirentNode* dirent : LiveDirents()) {
    const auto where = [&] {
      return "directory entry " + Shown(dirent->name) + " at " + HexOffset(dirent->node_offset) +
             " (in directory inode " + std::to_string(dirent->pino) + ")";
    };
    if (!ValidName(dirent->name)) {
      Gap(GapKind::kCorrupt, dirent->node_offset, where() + " has an invalid name; skipped");
      continue;
    }
    if (const Inode* parent = FindInode(dirent->pino);
        parent != nullptr && !S_ISDIR(parent->mode) && dirent->pino != kRootIno) {
      Gap(GapKind::kCorrupt, dirent->node_offset,
          where() + ": its parent is not a directory; skipped");
      continue;
    }
    if (IsDirectory(*dirent)) {
      if (dirent->ino == kRootIno) {
        Gap(GapKind::kCorrupt, dirent->node_offset, where() + " names the root; skipped");
        continue;
      }
      Dir& dir = dirs_[dirent->ino];
      if (dir.named) {
        Gap(GapKind::kCorrupt, dirent->node_offset,
            where() + " is a second name for directory inode " + std::to_string(dirent->ino) +
                "; skipped");
        continue;
      }
      dir.named = true;
      dir.parent = dirent->pino;
      dir.name = dirent->name;
    }
    if (dirent->pino == kRootIno && dirent->name == kLostFound) {
      lost_found_ = std::string(kLostFound) + ".jffs2";
    }
    kept.push_back(dirent);
  }
  for (const DirentNode* dirent : kept) {
    if (IsDirectory(*dirent)) {
      Resolve(dirent->ino);
      continue;
    }
    const std::string parent = Resolve(dirent->pino).path;
    if (parent.size() + 1 + dirent->name.size() > kMaxPath) {
      Gap(GapKind::kCorrupt, dirent->node_offset,
          "the path of " + Shown(dirent->name) + " is too long; skipped");
      continue;
    }
    entries_.push_back(Entry{Join(parent, dirent->name), dirent->ino, dirent->node_offset});
  }
}

Status Extractor::EmitDirectories() {
  std::vector<std::pair<std::string, std::uint32_t>> dirs;
  for (const auto& [ino, dir] : dirs_) {
    if (ino == kRootIno || dir.state != Dir::State::kDone) continue;
    const Inode* inode = FindInode(ino);
    dirs.emplace_back(dir.path, inode != nullptr ? inode->mode & 07777 : 0755);
  }
  if (lost_found_used_) dirs.emplace_back(lost_found_, 0700);
  std::sort(dirs.begin(), dirs.end());
  for (const auto& [path, mode] : dirs) {
    IOTMARK_TRY(ctx_.budget().CheckTime());
    if (auto added = ctx_.sink().AddDirectory(path, mode); !added) {
      IOTMARK_TRY(SinkFailed(added.error()));
    }
  }
  return Ok();
}

Status Extractor::EmitEntries() {
  std::sort(entries_.begin(), entries_.end(),
            [](const Entry& a, const Entry& b) { return a.path < b.path; });
  std::unordered_map<std::uint32_t, const Entry*> first_names;  // null: the file was skipped
  const std::uint64_t max_file = ctx_.budget().limits().max_file_bytes;
  for (const Entry& entry : entries_) {
    IOTMARK_TRY(ctx_.budget().CheckTime());
    const Inode* inode = FindInode(entry.ino);
    if (inode == nullptr) {
      Gap(GapKind::kCorrupt, entry.node_offset,
          Shown(entry.path) + " names inode " + std::to_string(entry.ino) +
              ", which has no valid inode node; skipped");
      continue;
    }
    const std::uint32_t mode = inode->mode & 07777;
    Status added = Ok();
    switch (inode->mode & S_IFMT) {
      case S_IFREG: {
        const auto [first, inserted] = first_names.emplace(entry.ino, &entry);
        if (!inserted) {
          if (first->second != nullptr) hardlinks_.emplace_back(entry.path, first->second->path);
          continue;
        }
        if (inode->size > max_file) {
          first->second = nullptr;
          Gap(GapKind::kLimit, entry.node_offset,
              "file " + Shown(entry.path) + " has " + std::to_string(inode->size) +
                  " bytes, more than the limit of " + std::to_string(max_file) + "; not extracted");
          continue;
        }
        if (inode->size == 0) {
          added = ctx_.sink().AddFile(entry.path, mode, {});
          break;
        }
        auto job = std::make_unique<FileJob>();
        job->path = entry.path;
        job->mode = mode;
        job->size = inode->size;
        job->pieces = Overlay(std::span(order_).subspan(inode->first, inode->count), data_);
        files_.push_back(std::move(job));
        continue;
      }
      case S_IFLNK:
        IOTMARK_TRY(AddSymlink(entry, *inode));
        continue;
      case S_IFCHR:
        added = ctx_.sink().AddSpecial(entry.path, model::EntryKind::kCharDevice, mode);
        break;
      case S_IFBLK:
        added = ctx_.sink().AddSpecial(entry.path, model::EntryKind::kBlockDevice, mode);
        break;
      case S_IFIFO:
        added = ctx_.sink().AddSpecial(entry.path, model::EntryKind::kFifo, mode);
        break;
      case S_IFSOCK:
        added = ctx_.sink().AddSpecial(entry.path, model::EntryKind::kSocket, mode);
        break;
      default:
        Gap(GapKind::kCorrupt, entry.node_offset,
            Shown(entry.path) + " has an unknown file type (mode " + HexOffset(inode->mode) +
                "); skipped");
        continue;
    }
    if (!added) IOTMARK_TRY(SinkFailed(added.error()));
  }
  return Ok();
}

// A symlink's target is its inode's data, like a small file's.
Status Extractor::AddSymlink(const Entry& entry, const Inode& inode) {
  if (inode.size > kMaxLinkTarget || inode.size == 0) {
    Gap(GapKind::kCorrupt, entry.node_offset,
        "symlink " + Shown(entry.path) + " has a target of " + std::to_string(inode.size) +
            " bytes; skipped");
    return Ok();
  }
  std::string target(inode.size, '\0');
  Worker worker;
  for (const Piece& piece : Overlay(std::span(order_).subspan(inode.first, inode.count), data_)) {
    auto* dest = reinterpret_cast<std::uint8_t*>(target.data()) + piece.start;
    if (auto problem = Fill(worker, piece, piece.start, piece.start + piece.length, dest)) {
      Gap(problem->kind, data_[piece.node].node_offset,
          "symlink " + Shown(entry.path) + ": " + problem->reason + "; skipped");
      return Ok();
    }
  }
  if (auto added = ctx_.sink().AddSymlink(entry.path, target, inode.mode & 07777); !added) {
    return SinkFailed(added.error());
  }
  return Ok();
}

// Writes file bytes [from, to) of `piece` to `dest`, decoding its node straight there when the
// whole node is wanted.
std::optional<DecodeProblem> Extractor::Fill(Worker& worker, const Piece& piece, std::uint64_t from,
                                             std::uint64_t to, std::uint8_t* dest) {
  const DataNode& node = data_[piece.node];
  const ByteView input = chunk_.subspan(node.data_offset, node.csize);
  const std::uint64_t skip = piece.skip + (from - piece.start);
  const std::uint64_t length = to - from;
  std::optional<DecodeProblem> problem;
  if (skip == 0 && length == node.dsize) {
    problem = worker.decoder.Decode(node.compr, input, {dest, length});
  } else {
    worker.scratch.Reset(node.dsize);
    problem = worker.decoder.Decode(node.compr, input, {worker.scratch.data.get(), node.dsize});
    if (!problem) std::memcpy(dest, worker.scratch.data.get() + skip, length);
  }
  if (problem) std::memset(dest, 0, length);
  return problem;
}

// Big files first, their segments in order, so that the workers finish together.
Status Extractor::ExtractFiles() {
  std::stable_sort(files_.begin(), files_.end(),
                   [](const auto& a, const auto& b) { return a->size > b->size; });
  std::vector<std::uint64_t> unit_ends;  // units before the end of each file
  std::uint64_t units = 0;
  for (const auto& file : files_) {
    units += file->segments();
    unit_ends.push_back(units);
  }
  if (units == 0) return Ok();
  const std::size_t workers = std::min<std::uint64_t>(units, ctx_.pool().concurrency());
  std::atomic<std::uint64_t> next{0};
  {
    TaskGroup group(ctx_.pool());
    for (std::size_t i = 0; i < workers; ++i) {
      group.Run([this, &unit_ends, &next] { RunWorker(unit_ends, next); });
    }
    group.Wait();
  }
  std::lock_guard lock(stop_mutex_);
  if (stop_error_) return tl::unexpected(*stop_error_);
  return Ok();
}

void Extractor::RunWorker(const std::vector<std::uint64_t>& unit_ends,
                          std::atomic<std::uint64_t>& next) {
  Worker worker;
  while (!stopping()) {
    const std::uint64_t unit = next.fetch_add(1, std::memory_order_relaxed);
    if (unit >= unit_ends.back()) break;
    if (auto in_time = ctx_.budget().CheckTime(); !in_time) {
      RequestStop(in_time.error());
      break;
    }
    const auto index = static_cast<std::size_t>(
        std::upper_bound(unit_ends.begin(), unit_ends.end(), unit) - unit_ends.begin());
    const std::uint64_t segment = unit - (index == 0 ? 0 : unit_ends[index - 1]);
    FileJob& file = *files_[index];
    bool dropped = false;
    {
      std::lock_guard lock(file.mutex);
      dropped = file.dropped;
    }
    if (dropped) {
      worker.output.Reset(0);
    } else {
      DecodeSegment(worker, file, segment);
    }
    Commit(file, segment, worker.output);
  }
}

void Extractor::DecodeSegment(Worker& worker, FileJob& file, std::uint64_t segment) {
  const std::uint64_t begin = segment * kSegmentBytes;
  const std::uint64_t end = std::min(begin + kSegmentBytes, file.size);
  worker.output.Reset(end - begin);
  std::uint8_t* out = worker.output.data.get();
  auto piece = std::partition_point(file.pieces.begin(), file.pieces.end(),
                                    [&](const Piece& p) { return p.start + p.length <= begin; });
  std::uint64_t cursor = begin;
  for (; piece != file.pieces.end() && piece->start < end; ++piece) {
    const std::uint64_t from = std::max(piece->start, begin);
    const std::uint64_t to = std::min(piece->start + piece->length, end);
    if (from > cursor) std::memset(out + (cursor - begin), 0, from - cursor);  // a hole
    if (auto problem = Fill(worker, *piece, from, to, out + (from - begin))) {
      const DataNode& node = data_[piece->node];
      Gap(problem->kind, node.node_offset,
          "file " + Shown(file.path) + ": node at " + HexOffset(node.node_offset) + " (bytes " +
              std::to_string(from) + " to " + std::to_string(to) + "): " + problem->reason +
              "; those bytes are zeros");
    }
    cursor = to;
  }
  if (end > cursor) std::memset(out + (cursor - begin), 0, end - cursor);
}

// Hands a decoded segment over: written now if it is the file's next one (with any later ones
// that were waiting), else kept until its turn.
void Extractor::Commit(FileJob& file, std::uint64_t segment, Buffer& buffer) {
  std::lock_guard lock(file.mutex);
  if (segment != file.next_segment) {
    file.pending.emplace(segment, std::move(buffer));
    buffer = Buffer{};
    return;
  }
  WriteSegment(file, buffer.view());
  ++file.next_segment;
  for (auto it = file.pending.find(file.next_segment); it != file.pending.end();
       it = file.pending.find(file.next_segment)) {
    WriteSegment(file, it->second.view());
    file.pending.erase(it);
    ++file.next_segment;
  }
  if (file.next_segment == file.segments() && file.writer) {
    if (auto closed = file.writer->Close(); !closed && ShouldStop(closed.error())) {
      RequestStop(closed.error());
    }
    file.writer.reset();
  }
}

void Extractor::WriteSegment(FileJob& file, ByteView bytes) {
  if (file.dropped || stopping()) return;
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

// Files whose every name was deleted: their nodes stay on flash until garbage collection.
void Extractor::CountUnnamed() {
  std::unordered_set<std::uint32_t> named;
  for (const Entry& entry : entries_) named.insert(entry.ino);
  for (const auto& [ino, inode] : inodes_) {
    if (ino != kRootIno && !S_ISDIR(inode.mode) && !named.contains(ino)) ++stats_.unnamed_inodes;
  }
}

void Extractor::SetMeta() {
  std::map<std::string, std::uint64_t> compressions;
  for (const std::uint32_t index : order_) {
    if (data_[index].dsize > 0) ++compressions[CompressionName(data_[index].compr)];
  }
  std::string list;
  for (const auto& [name, count] : compressions) list += (list.empty() ? "" : ",") + name;
  if (!list.empty()) ctx_.SetMeta("compression", list);
  ctx_.SetMeta("inodes", std::to_string(inodes_.size()));
  ctx_.SetMeta("data_nodes", std::to_string(data_.size()));
  ctx_.SetMeta("dirent_nodes", std::to_string(dirents_.size()));
  if (stats_.obsolete > 0) ctx_.SetMeta("obsolete_nodes", std::to_string(stats_.obsolete));
  if (stats_.xattr > 0) ctx_.SetMeta("xattr_nodes", std::to_string(stats_.xattr));
  if (stats_.deleted_names > 0) ctx_.SetMeta("deleted_names", std::to_string(stats_.deleted_names));
  if (stats_.unnamed_inodes > 0) {
    ctx_.SetMeta("unnamed_inodes", std::to_string(stats_.unnamed_inodes));
  }
}

Status Extractor::Run() {
  const ScanResult scan = ScanNodes(chunk_, endian_, this);
  if (scan.nodes == 0) return Fail(ErrorCode::kCorruptInput, "no JFFS2 node at the chunk's start");
  IOTMARK_TRY(ctx_.budget().CheckTime());
  VerifyData();
  IndexInodes();
  BuildTree();
  CountUnnamed();
  SetMeta();
  IOTMARK_TRY(EmitDirectories());
  IOTMARK_TRY(EmitEntries());
  IOTMARK_TRY(ExtractFiles());
  for (const auto& [path, existing] : hardlinks_) {
    if (auto added = ctx_.sink().AddHardlink(path, existing); !added) {
      IOTMARK_TRY(SinkFailed(added.error()));
    }
  }
  if (const std::uint64_t total = gaps_.load(); total > kMaxListedGaps) {
    ctx_.AddGap(GapKind::kCorrupt, 0,
                std::to_string(total - kMaxListedGaps) + " further JFFS2 problems not listed");
  }
  return Ok();
}

}  // namespace

std::vector<Piece> Overlay(std::span<const std::uint32_t> by_version,
                           const std::vector<DataNode>& nodes) {
  std::vector<Piece> pieces;
  std::map<std::uint64_t, std::uint64_t> claimed;  // disjoint byte ranges taken by newer nodes
  std::uint64_t limit = UINT64_MAX;                // the smallest isize of the newer nodes
  for (auto it = by_version.rbegin(); it != by_version.rend(); ++it) {
    const DataNode& node = nodes[*it];
    limit = std::min<std::uint64_t>(limit, node.isize);
    const std::uint64_t begin = node.offset;
    const std::uint64_t end = std::min<std::uint64_t>(begin + node.dsize, limit);
    if (begin >= end) continue;
    const auto emit = [&](std::uint64_t from, std::uint64_t to) {
      pieces.push_back(Piece{*it, static_cast<std::uint32_t>(from - begin), from, to - from});
    };
    auto range = claimed.upper_bound(begin);
    if (range != claimed.begin() && std::prev(range)->second >= begin) --range;
    std::uint64_t cursor = begin;
    std::uint64_t merged_begin = begin;
    std::uint64_t merged_end = end;
    while (range != claimed.end() && range->first <= end) {
      if (range->first > cursor) emit(cursor, std::min(range->first, end));
      cursor = std::max(cursor, range->second);
      merged_begin = std::min(merged_begin, range->first);
      merged_end = std::max(merged_end, range->second);
      range = claimed.erase(range);
    }
    if (cursor < end) emit(cursor, end);
    claimed.emplace(merged_begin, merged_end);
  }
  std::sort(pieces.begin(), pieces.end(),
            [](const Piece& a, const Piece& b) { return a.start < b.start; });
  return pieces;
}

Status ExtractFilesystem(ByteView chunk, Endian endian, ExtractContext& ctx) {
  Extractor extractor(chunk, endian, ctx);
  return extractor.Run();
}

}  // namespace iotmark::unpack::formats::jffs2
