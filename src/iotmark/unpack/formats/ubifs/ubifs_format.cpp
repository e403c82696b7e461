// UBIFS, the flash filesystem of UBI volumes, read from an image of one volume (as mkfs.ubifs
// writes it, or as the UBI extractor writes a volume out). The superblock (LEB 0) gives the
// geometry; the newest intact master node (LEBs 1 and 2) points at the root of the index, a B-tree
// whose leaves are inode, directory entry and data nodes keyed by inode number. The extractor
// walks the whole index once, builds the directory tree from the entries, then decodes the files'
// data nodes (4 KiB blocks, each compressed on its own) in parallel and writes every file once, in
// order. The journal is not replayed: changes written after the last commit are reported as a gap.
//
// Written by hand: Debian has no library that reads UBIFS images (the kernel driver and
// mtd-utils' fsck.ubifs work on UBI devices). Blocks are decoded by liblzo2, zlib and libzstd.
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
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
#include "iotmark/unpack/extract_context.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/formats/ubifs/ubifs_decoder.hpp"
#include "iotmark/unpack/formats/ubifs/ubifs_nodes.hpp"

namespace iotmark::unpack::formats {

namespace {

using model::GapKind;
using ubifs::Branch;
using ubifs::Dent;
using ubifs::Inode;
using ubifs::NodeCheck;

constexpr Magic kMagics[] = {{std::string_view("\x31\x18\x10\x06", 4), 0}};

// Directories nested deeper than this are not entered (the sink refuses such paths anyway).
constexpr int kMaxDepth = 256;
// Large files are decoded in segments of this many blocks (1 MiB) so one big file keeps every
// worker busy; segments are written in order.
constexpr std::uint64_t kSegmentBlocks = 256;
// A compressed block never needs more room than the block itself (UBIFS stores it uncompressed
// then); some slack for the padding of encrypted blocks.
constexpr std::size_t kMaxDataNode = ubifs::kDataHeaderSize + ubifs::kBlockSize + 64;
// More problems than this in one filesystem are summed up in one gap.
constexpr std::size_t kMaxListedProblems = 64;
// The clock is read once per this many index nodes.
constexpr std::uint64_t kTimeCheckInterval = 1024;

// An untrusted name as it may appear in a gap's reason: control bytes escaped, length capped.
std::string Shown(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "'";
  for (const char c : text.substr(0, 160)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      out += "\\x";
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xf]);
    } else {
      out.push_back(c);
    }
  }
  if (text.size() > 160) out += "...";
  return out + "'";
}

// Where a node lives: LEB number, offset in it, length.
struct Location {
  std::uint32_t lnum = 0;
  std::uint32_t offs = 0;
  std::uint32_t len = 0;
};

std::string Where(const Location& at) {
  return "LEB " + std::to_string(at.lnum) + " offset " + HexOffset(at.offs);
}

struct DataRef {
  std::uint32_t block = 0;
  Location at;
};

// Output bytes of one segment, uninitialised (every byte is written before it is read).
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

// A regular file to decode, and (while workers decode its segments) the state that writes the
// segments into the file in order.
struct FileJob {
  std::string path;
  std::uint32_t inode = 0;
  std::uint32_t mode = 0;
  std::uint64_t size = 0;
  std::vector<DataRef> blocks;  // sorted by block number, all inside the file
  std::size_t segments = 0;

  std::mutex mutex;
  std::optional<FileWriter> writer;
  std::size_t next_segment = 0;
  bool dropped = false;  // the sink refused the file or a limit stopped it
  std::map<std::size_t, Buffer> pending;
  // Damaged blocks are zero-filled; the first one is described in the file's gap.
  std::uint64_t bad_blocks = 0;
  std::uint64_t first_block = UINT64_MAX;
  GapKind first_kind = GapKind::kCorrupt;
  std::uint64_t first_offset = 0;
  std::string first_problem;
};

struct Worker {
  ubifs::BlockDecoder decoder;
  Buffer output;
  std::array<std::uint8_t, ubifs::kBlockSize> scratch{};
};

class UbifsExtractor {
 public:
  UbifsExtractor(ByteView chunk, const ubifs::Superblock& sb, ExtractContext& ctx)
      : chunk_(chunk), sb_(sb), ctx_(ctx) {}

  Status Run();

 private:
  void Problem(GapKind kind, std::uint64_t offset, std::string reason);
  [[nodiscard]] std::uint64_t OffsetOf(const Location& at) const {
    return std::uint64_t{at.lnum} * sb_.leb_size + at.offs;
  }
  // The node at `at`, checked for type, length (exactly at.len) and CRC.
  [[nodiscard]] NodeCheck NodeAt(const Location& at, std::uint8_t type, std::size_t min_len,
                                 std::size_t max_len) const;
  std::optional<ubifs::Master> FindMaster();
  void CheckJournal(const ubifs::Master& master);
  Status WalkIndex(const ubifs::Master& master);
  void ReadLeaf(const Branch& branch);
  Status BuildTree();
  Status AddEntry(const Dent& dent, const std::string& parent, int depth,
                  std::vector<std::pair<std::uint32_t, std::pair<std::string, int>>>& stack);
  Status AddRegularFile(const std::string& path, const Inode& inode);
  Status SinkFailed(const Error& error) {
    // Refused entries are already gaps recorded by the sink; only limits and I/O stop us.
    return ShouldStop(error) ? Status(tl::unexpected(error)) : Ok();
  }

  Status ExtractFiles();
  void RunWorker(const std::vector<std::pair<FileJob*, std::size_t>>& units,
                 std::atomic<std::size_t>& next);
  void DecodeSegment(Worker& worker, FileJob& file, std::size_t segment);
  void DecodeBlock(Worker& worker, FileJob& file, const DataRef& ref, std::uint8_t* dest,
                   std::uint32_t room);
  void BlockProblem(FileJob& file, GapKind kind, const DataRef& ref, std::string reason);
  void Commit(FileJob& file, std::size_t segment, Buffer& buffer);
  void WriteSegment(FileJob& file, ByteView bytes);
  void RequestStop(const Error& error);
  [[nodiscard]] bool stopping() const { return stop_.load(std::memory_order_relaxed); }

  ByteView chunk_;
  const ubifs::Superblock& sb_;
  ExtractContext& ctx_;
  std::size_t listed_ = 0;
  std::size_t unlisted_ = 0;

  std::unordered_map<std::uint32_t, Inode> inodes_;
  std::unordered_map<std::uint32_t, std::vector<Dent>> entries_;  // by parent inode
  std::unordered_map<std::uint32_t, std::vector<DataRef>> data_;  // by inode
  std::uint64_t index_nodes_ = 0;
  std::uint64_t xattrs_ = 0;
  std::uint64_t encrypted_ = 0;

  std::uint64_t listed_entries_ = 0;
  bool entry_limit_hit_ = false;
  std::unordered_set<std::uint32_t> listed_dirs_;
  std::unordered_map<std::uint32_t, std::string> first_paths_;  // file inode -> path
  std::vector<std::unique_ptr<FileJob>> files_;
  std::vector<std::pair<std::string, std::string>> hardlinks_;  // path, existing path

  std::atomic<bool> stop_{false};
  std::mutex stop_mutex_;
  std::optional<Error> stop_error_;
};

void UbifsExtractor::Problem(GapKind kind, std::uint64_t offset, std::string reason) {
  if (listed_ < kMaxListedProblems) {
    ++listed_;
    ctx_.AddGap(kind, offset, std::move(reason));
  } else {
    ++unlisted_;
  }
}

NodeCheck UbifsExtractor::NodeAt(const Location& at, std::uint8_t type, std::size_t min_len,
                                 std::size_t max_len) const {
  NodeCheck check;
  // Nodes sit at 8-byte aligned offsets inside one LEB of the filesystem.
  if (at.lnum >= sb_.leb_cnt || at.offs % 8 != 0 || at.offs > sb_.leb_size ||
      at.len > sb_.leb_size - at.offs || at.len < min_len || at.len > max_len) {
    check.problem = "the reference points outside the filesystem";
    return check;
  }
  const std::uint64_t offset = OffsetOf(at);
  if (offset >= chunk_.size()) {
    check.problem = "the node lies past the end of the image";
    check.truncated = true;
    return check;
  }
  const ByteView rest = chunk_.subspan(
      offset, std::min<std::uint64_t>(sb_.leb_size - at.offs, chunk_.size() - offset));
  check = ubifs::CheckNode(rest, type, min_len, max_len);
  // Cut off is only what the end of the image cut: a node running past its LEB is damaged.
  if (check.truncated && offset + at.len <= chunk_.size()) {
    check.problem = "the node's length differs from the index's";
    check.truncated = false;
  }
  if (check.ok() && check.node.size() != at.len) {
    check.problem = "the node's length differs from the index's";
    check.node = {};
  }
  return check;
}

std::optional<ubifs::Master> UbifsExtractor::FindMaster() {
  std::vector<ubifs::Master> masters;
  for (const std::uint64_t lnum : {1, 2}) {
    const std::uint64_t begin = lnum * sb_.leb_size;
    const std::uint64_t end = std::min<std::uint64_t>(begin + sb_.leb_size, chunk_.size());
    // Every update appends a master node; the LEB is scanned for all of them.
    for (std::uint64_t at = begin; at + ubifs::kMasterSize <= end; at += 8) {
      if (LoadLe<std::uint32_t>(chunk_, at) != ubifs::kNodeMagic) continue;
      const NodeCheck check = ubifs::CheckNode(chunk_.subspan(at, end - at), ubifs::kMasterNode,
                                               ubifs::kMasterSize, ubifs::kMasterSize);
      if (!check.ok()) continue;
      masters.push_back(ubifs::ParseMaster(check.node));
      at += ubifs::kMasterSize - 8;
    }
  }
  std::stable_sort(masters.begin(), masters.end(),
                   [](const auto& a, const auto& b) { return a.sqnum > b.sqnum; });
  for (const auto& master : masters) {
    const Location root{master.root_lnum, master.root_offs, master.root_len};
    if (NodeAt(root, ubifs::kIndexNode, ubifs::kIndexHeaderSize + ubifs::kMinBranchSize,
               sb_.leb_size)
            .ok()) {
      if (&master != &masters.front()) {
        Problem(GapKind::kCorrupt, sb_.leb_size,
                "the newest master node points at a damaged index root; an older one was used");
      }
      return master;
    }
  }
  if (!masters.empty()) {
    // Let the walk report what is wrong with the newest one's root.
    return masters.front();
  }
  return std::nullopt;
}

// The log LEB of the last commit starts with a commit start node; a reference node after it
// names a bud written since, whose changes the committed index does not have.
void UbifsExtractor::CheckJournal(const ubifs::Master& master) {
  if ((master.flags & ubifs::kMasterDirty) != 0) {
    Problem(GapKind::kUnsupported, sb_.leb_size,
            "the filesystem was not unmounted cleanly; the index as last committed is extracted");
  }
  if (master.log_lnum >= sb_.leb_cnt) return;
  const std::uint64_t begin = std::uint64_t{master.log_lnum} * sb_.leb_size;
  const std::uint64_t end = std::min<std::uint64_t>(begin + sb_.leb_size, chunk_.size());
  std::uint64_t buds = 0;
  for (std::uint64_t at = begin; at + ubifs::kCommonHeaderSize <= end; at += 8) {
    if (LoadLe<std::uint32_t>(chunk_, at) != ubifs::kNodeMagic) continue;
    const NodeCheck check = ubifs::CheckNode(chunk_.subspan(at, end - at), ubifs::kRefNode, 64, 64);
    if (check.ok()) ++buds;
  }
  if (buds > 0) {
    Problem(GapKind::kUnsupported, begin,
            "the journal holds " + std::to_string(buds) +
                " bud(s) written after the last commit; those changes are not replayed");
  }
}

Status UbifsExtractor::WalkIndex(const ubifs::Master& master) {
  struct Pending {
    Location at;
    int level;  // what the parent says it must be; -1 for the root
  };
  std::vector<Pending> stack;
  stack.push_back({{master.root_lnum, master.root_offs, master.root_len}, -1});
  std::unordered_set<std::uint64_t> visited;
  for (std::uint64_t round = 0; !stack.empty(); ++round) {
    if (round % kTimeCheckInterval == 0) IOTMARK_TRY(ctx_.budget().CheckTime());
    const Pending pending = stack.back();
    stack.pop_back();
    const std::string where = "index node at " + Where(pending.at);
    if (!visited.insert((std::uint64_t{pending.at.lnum} << 32) | pending.at.offs).second) {
      Problem(GapKind::kCorrupt, OffsetOf(pending.at),
              where + " is referenced twice (a loop or a shared subtree); not followed again");
      continue;
    }
    const NodeCheck check = NodeAt(pending.at, ubifs::kIndexNode,
                                   ubifs::kIndexHeaderSize + ubifs::kMinBranchSize, sb_.leb_size);
    std::optional<ubifs::IndexNode> index;
    std::string problem = check.problem;
    if (check.ok()) {
      index = ubifs::ParseIndex(check.node);
      if (!index) {
        problem = "its branches do not fit its length";
      } else if (index->level > ubifs::kMaxLevels ||
                 (pending.level >= 0 && index->level != pending.level)) {
        problem = "its level " + std::to_string(index->level) + " is impossible here";
      }
    }
    if (!problem.empty()) {
      Problem(check.truncated ? GapKind::kTruncated : GapKind::kCorrupt,
              std::min<std::uint64_t>(OffsetOf(pending.at), chunk_.size()),
              where + ": " + problem + "; the entries below it are missing");
      continue;
    }
    ++index_nodes_;
    if (index->level > 0) {
      // Pushed in reverse so the tree is read in key order.
      for (auto it = index->branches.rbegin(); it != index->branches.rend(); ++it) {
        stack.push_back({{it->lnum, it->offs, it->len}, index->level - 1});
      }
      continue;
    }
    for (const Branch& branch : index->branches) ReadLeaf(branch);
  }
  return Ok();
}

void UbifsExtractor::ReadLeaf(const Branch& branch) {
  const Location at{branch.lnum, branch.offs, branch.len};
  const auto failed = [&](const std::string& what, const NodeCheck& check) {
    Problem(check.truncated ? GapKind::kTruncated : GapKind::kCorrupt,
            std::min<std::uint64_t>(OffsetOf(at), chunk_.size()),
            what + " of inode " + std::to_string(branch.key.inode) + " at " + Where(at) + ": " +
                (check.ok() ? std::string("it does not parse") : check.problem) + "; skipped");
  };
  switch (branch.key.type) {
    case ubifs::kDataKey:
      data_[branch.key.inode].push_back(DataRef{branch.key.value, at});
      return;
    case ubifs::kXentKey:
      ++xattrs_;  // extended attributes are not extracted
      return;
    case ubifs::kInodeKey: {
      const NodeCheck check = NodeAt(at, ubifs::kInodeNode, ubifs::kInodeHeaderSize,
                                     ubifs::kInodeHeaderSize + ubifs::kMaxInodeData);
      std::optional<Inode> inode;
      if (check.ok()) inode = ubifs::ParseInode(check.node);
      if (!inode || inode->key.inode != branch.key.inode || inode->key.type != ubifs::kInodeKey) {
        failed("the inode node", check);
        return;
      }
      auto [it, added] = inodes_.try_emplace(branch.key.inode, *inode);
      if (!added && inode->sqnum > it->second.sqnum) it->second = std::move(*inode);
      return;
    }
    case ubifs::kDentKey: {
      const NodeCheck check = NodeAt(at, ubifs::kDentNode, ubifs::kDentHeaderSize + 2,
                                     ubifs::kDentHeaderSize + ubifs::kMaxNameLength + 1);
      std::optional<Dent> dent;
      if (check.ok()) dent = ubifs::ParseDent(check.node);
      if (!dent || dent->key.inode != branch.key.inode || dent->key.type != ubifs::kDentKey) {
        failed("a directory entry", check);
        return;
      }
      entries_[branch.key.inode].push_back(std::move(*dent));
      return;
    }
    default:
      Problem(GapKind::kCorrupt, std::min<std::uint64_t>(OffsetOf(at), chunk_.size()),
              "the index holds a key of unknown type " + std::to_string(branch.key.type) + " at " +
                  Where(at) + "; skipped");
  }
}

Status UbifsExtractor::BuildTree() {
  const auto root = inodes_.find(ubifs::kRootInode);
  if (root == inodes_.end() || !S_ISDIR(root->second.mode)) {
    Problem(GapKind::kCorrupt, 0,
            "the root directory's inode is missing or not a directory; its entries are still "
            "listed");
  }
  // (directory inode, (path, depth))
  std::vector<std::pair<std::uint32_t, std::pair<std::string, int>>> stack;
  stack.push_back({static_cast<std::uint32_t>(ubifs::kRootInode), {"", 0}});
  listed_dirs_.insert(static_cast<std::uint32_t>(ubifs::kRootInode));
  while (!stack.empty() && !entry_limit_hit_) {
    IOTMARK_TRY(ctx_.budget().CheckTime());
    auto [inode, place] = std::move(stack.back());
    stack.pop_back();
    auto found = entries_.find(inode);
    if (found == entries_.end()) continue;
    std::vector<Dent>& list = found->second;
    std::sort(list.begin(), list.end(),
              [](const Dent& a, const Dent& b) { return a.name < b.name; });
    const std::string* previous = nullptr;
    for (const Dent& dent : list) {
      // A name is in a directory once; a second entry is a damaged (shared) index leaf.
      if (previous != nullptr && *previous == dent.name) {
        Problem(GapKind::kCorrupt, 0,
                Shown(place.first.empty() ? dent.name : place.first + "/" + dent.name) +
                    " is listed twice; the second entry is ignored");
        continue;
      }
      previous = &dent.name;
      if (++listed_entries_ > ctx_.budget().limits().max_entries) {
        Problem(GapKind::kLimit, 0,
                "more than " + std::to_string(ctx_.budget().limits().max_entries) +
                    " entries; the rest of the tree was not read");
        entry_limit_hit_ = true;
        break;
      }
      IOTMARK_TRY(AddEntry(dent, place.first, place.second + 1, stack));
    }
  }
  return Ok();
}

Status UbifsExtractor::AddEntry(
    const Dent& dent, const std::string& parent, int depth,
    std::vector<std::pair<std::uint32_t, std::pair<std::string, int>>>& stack) {
  const std::string shown_parent = parent.empty() ? "the root directory" : Shown(parent);
  if (dent.name == "." || dent.name == ".." || dent.name.find('/') != std::string::npos ||
      dent.name.find('\0') != std::string::npos) {
    Problem(GapKind::kCorrupt, 0,
            shown_parent + " holds an invalid name " + Shown(dent.name) + "; entry skipped");
    return Ok();
  }
  const std::string path = parent.empty() ? dent.name : parent + "/" + dent.name;
  const auto found = dent.target <= UINT32_MAX
                         ? inodes_.find(static_cast<std::uint32_t>(dent.target))
                         : inodes_.end();
  if (found == inodes_.end()) {
    Problem(GapKind::kCorrupt, 0,
            Shown(path) + " names inode " + std::to_string(dent.target) +
                ", which the index does not hold; skipped");
    return Ok();
  }
  const Inode& inode = found->second;
  const auto number = static_cast<std::uint32_t>(dent.target);
  const std::uint32_t mode = inode.mode & 07777;
  EntrySink& sink = ctx_.sink();
  Status added;
  switch (inode.mode & S_IFMT) {
    case S_IFDIR:
      added = sink.AddDirectory(path, mode);
      if (!added) break;
      if (depth >= kMaxDepth) {
        Problem(GapKind::kLimit, 0,
                "directory " + Shown(path) + " is nested deeper than " + std::to_string(kMaxDepth) +
                    " levels; not entered");
      } else if (!listed_dirs_.insert(number).second) {
        Problem(GapKind::kCorrupt, 0,
                "directory " + Shown(path) +
                    " is a directory listed before (a loop or a shared directory); not entered");
      } else {
        stack.push_back({number, {path, depth}});
      }
      break;
    case S_IFREG:
      if ((inode.flags & ubifs::kInodeEncrypted) != 0) {
        ++encrypted_;
        return Ok();
      }
      if (const auto first = first_paths_.find(number); first != first_paths_.end()) {
        hardlinks_.emplace_back(path, first->second);
        return Ok();
      }
      return AddRegularFile(path, inode);
    case S_IFLNK:
      if (inode.data.empty()) {
        Problem(GapKind::kCorrupt, 0, "symlink " + Shown(path) + " has no target; skipped");
        return Ok();
      }
      added = sink.AddSymlink(path, inode.data, mode);
      break;
    case S_IFCHR:
      added = sink.AddSpecial(path, model::EntryKind::kCharDevice, mode);
      break;
    case S_IFBLK:
      added = sink.AddSpecial(path, model::EntryKind::kBlockDevice, mode);
      break;
    case S_IFIFO:
      added = sink.AddSpecial(path, model::EntryKind::kFifo, mode);
      break;
    case S_IFSOCK:
      added = sink.AddSpecial(path, model::EntryKind::kSocket, mode);
      break;
    default:
      Problem(GapKind::kCorrupt, 0, Shown(path) + " has an unknown file type; skipped");
      return Ok();
  }
  if (!added) return SinkFailed(added.error());
  return Ok();
}

Status UbifsExtractor::AddRegularFile(const std::string& path, const Inode& inode) {
  const auto number = static_cast<std::uint32_t>(inode.key.inode);
  const std::uint32_t mode = inode.mode & 07777;
  const std::uint64_t max = ctx_.budget().limits().max_file_bytes;
  if (inode.size > max) {
    Problem(GapKind::kLimit, 0,
            "file " + Shown(path) + " has " + std::to_string(inode.size) +
                " bytes, more than the limit of " + std::to_string(max) + "; not extracted");
    return Ok();
  }
  first_paths_.emplace(number, path);
  if (inode.size == 0) {
    if (auto added = ctx_.sink().AddFile(path, mode, {}); !added) return SinkFailed(added.error());
    return Ok();
  }
  auto job = std::make_unique<FileJob>();
  job->path = path;
  job->inode = number;
  job->mode = mode;
  job->size = inode.size;
  const std::uint64_t block_count = (inode.size + ubifs::kBlockSize - 1) / ubifs::kBlockSize;
  job->segments = static_cast<std::size_t>((block_count + kSegmentBlocks - 1) / kSegmentBlocks);
  if (auto found = data_.find(number); found != data_.end()) {
    std::vector<DataRef>& refs = found->second;
    std::stable_sort(refs.begin(), refs.end(),
                     [](const DataRef& a, const DataRef& b) { return a.block < b.block; });
    // Blocks past the size are left over from a truncation; the same block twice is damage.
    for (const DataRef& ref : refs) {
      if (ref.block >= block_count) break;
      if (!job->blocks.empty() && job->blocks.back().block == ref.block) {
        Problem(GapKind::kCorrupt, OffsetOf(ref.at),
                "file " + Shown(path) + " has two data nodes for block " +
                    std::to_string(ref.block) + "; the first is used");
        continue;
      }
      job->blocks.push_back(ref);
    }
  }
  files_.push_back(std::move(job));
  return Ok();
}

void UbifsExtractor::RequestStop(const Error& error) {
  std::lock_guard lock(stop_mutex_);
  if (!stop_error_) stop_error_ = error;
  stop_.store(true, std::memory_order_relaxed);
}

Status UbifsExtractor::ExtractFiles() {
  // Big files first, their segments in order, so the workers finish together.
  std::vector<FileJob*> order;
  order.reserve(files_.size());
  for (const auto& file : files_) order.push_back(file.get());
  std::stable_sort(order.begin(), order.end(),
                   [](const FileJob* a, const FileJob* b) { return a->size > b->size; });
  std::vector<std::pair<FileJob*, std::size_t>> units;
  for (FileJob* file : order) {
    for (std::size_t segment = 0; segment < file->segments; ++segment) {
      units.emplace_back(file, segment);
    }
  }
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
  for (const auto& file : files_) {
    if (file->bad_blocks == 0) continue;
    Problem(file->first_kind, file->first_offset,
            "file " + Shown(file->path) + ": " + std::to_string(file->bad_blocks) +
                " data block(s) could not be read and are zero-filled (first: " +
                file->first_problem + ")");
  }
  std::lock_guard lock(stop_mutex_);
  if (stop_error_) return tl::unexpected(*stop_error_);
  return Ok();
}

void UbifsExtractor::RunWorker(const std::vector<std::pair<FileJob*, std::size_t>>& units,
                               std::atomic<std::size_t>& next) {
  Worker worker;
  while (!stopping()) {
    const std::size_t index = next.fetch_add(1, std::memory_order_relaxed);
    if (index >= units.size()) break;
    if (auto in_time = ctx_.budget().CheckTime(); !in_time) {
      RequestStop(in_time.error());
      break;
    }
    auto [file, segment] = units[index];
    bool skip = false;
    {
      std::lock_guard lock(file->mutex);
      skip = file->dropped;
    }
    if (skip) {
      worker.output.Reset(0);
    } else {
      DecodeSegment(worker, *file, segment);
    }
    Commit(*file, segment, worker.output);
  }
}

void UbifsExtractor::DecodeSegment(Worker& worker, FileJob& file, std::size_t segment) {
  const std::uint64_t first_block = segment * kSegmentBlocks;
  const std::uint64_t begin = first_block * ubifs::kBlockSize;
  const std::uint64_t end = std::min(file.size, begin + kSegmentBlocks * ubifs::kBlockSize);
  worker.output.Reset(end - begin);
  std::uint8_t* out = worker.output.data.get();
  std::uint64_t filled = begin;  // bytes before this are decoded or zeroed
  auto it =
      std::lower_bound(file.blocks.begin(), file.blocks.end(), first_block,
                       [](const DataRef& ref, std::uint64_t block) { return ref.block < block; });
  for (; it != file.blocks.end(); ++it) {
    const std::uint64_t start = std::uint64_t{it->block} * ubifs::kBlockSize;
    if (start >= end) break;
    if (start > filled) std::memset(out + (filled - begin), 0, start - filled);  // a hole
    const auto room =
        static_cast<std::uint32_t>(std::min<std::uint64_t>(ubifs::kBlockSize, end - start));
    DecodeBlock(worker, file, *it, out + (start - begin), room);
    filled = start + room;
  }
  if (end > filled) std::memset(out + (filled - begin), 0, end - filled);
}

// Decodes one data node into `dest` (`room` bytes: a block, or what is left of the file), zeroing
// what the node does not cover; a damaged node leaves zeros and is counted against the file.
void UbifsExtractor::DecodeBlock(Worker& worker, FileJob& file, const DataRef& ref,
                                 std::uint8_t* dest, std::uint32_t room) {
  const NodeCheck check = NodeAt(ref.at, ubifs::kDataNode, ubifs::kDataHeaderSize, kMaxDataNode);
  std::string problem = check.problem;
  std::uint32_t produced = 0;
  if (check.ok()) {
    const ubifs::DataNode node = ubifs::ParseData(check.node);
    if (node.key.inode != file.inode || node.key.type != ubifs::kDataKey ||
        node.key.value != ref.block) {
      problem = "the node belongs to another file or block";
    } else if (node.size > ubifs::kBlockSize) {
      problem = "the node claims " + std::to_string(node.size) + " bytes";
    } else if (node.size <= room) {
      problem = worker.decoder.Decode(node.compression, node.payload, dest, node.size);
      produced = node.size;
    } else {
      // The file was truncated inside this block: decode it whole, keep what the file holds.
      problem =
          worker.decoder.Decode(node.compression, node.payload, worker.scratch.data(), node.size);
      std::memcpy(dest, worker.scratch.data(), room);
      produced = room;
    }
  }
  if (!problem.empty()) {
    produced = 0;
    BlockProblem(file, check.truncated ? GapKind::kTruncated : GapKind::kCorrupt, ref,
                 std::move(problem));
  }
  if (produced < room) std::memset(dest + produced, 0, room - produced);
}

void UbifsExtractor::BlockProblem(FileJob& file, GapKind kind, const DataRef& ref,
                                  std::string reason) {
  std::lock_guard lock(file.mutex);
  ++file.bad_blocks;
  if (ref.block < file.first_block) {
    file.first_block = ref.block;
    file.first_kind = kind;
    file.first_offset = std::min<std::uint64_t>(OffsetOf(ref.at), chunk_.size());
    file.first_problem =
        "block " + std::to_string(ref.block) + " at " + Where(ref.at) + ": " + std::move(reason);
  }
}

// Hands a decoded segment over: written now if it is the file's next one (with any later ones
// that were waiting), else kept until its turn.
void UbifsExtractor::Commit(FileJob& file, std::size_t segment, Buffer& buffer) {
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
  if (file.next_segment == file.segments && file.writer) {
    if (auto closed = file.writer->Close(); !closed && ShouldStop(closed.error())) {
      RequestStop(closed.error());
    }
    file.writer.reset();
  }
}

void UbifsExtractor::WriteSegment(FileJob& file, ByteView bytes) {
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

Status UbifsExtractor::Run() {
  const auto master = FindMaster();
  if (!master) {
    return Fail(ErrorCode::kCorruptInput, "UBIFS has no intact master node in LEBs 1 and 2");
  }
  ctx_.SetMeta("commit_number", std::to_string(master->commit_number));
  ctx_.SetMeta("highest_inode", std::to_string(master->highest_inum));
  CheckJournal(*master);
  IOTMARK_TRY(WalkIndex(*master));
  ctx_.SetMeta("index_nodes", std::to_string(index_nodes_));
  ctx_.SetMeta("inodes", std::to_string(inodes_.size()));
  if (xattrs_ > 0) ctx_.SetMeta("xattrs_skipped", std::to_string(xattrs_));
  Status status = BuildTree();
  if (status) status = ExtractFiles();
  if (status) {
    for (const auto& [path, existing] : hardlinks_) {
      if (auto added = ctx_.sink().AddHardlink(path, existing); !added) {
        status = SinkFailed(added.error());
        if (!status) break;
      }
    }
  }
  if (encrypted_ > 0) {
    ctx_.AddGap(
        GapKind::kEncrypted, 0,
        std::to_string(encrypted_) + " file(s) are encrypted (fscrypt) and were not extracted");
  }
  if (unlisted_ > 0) {
    ctx_.AddGap(GapKind::kCorrupt, 0,
                std::to_string(unlisted_) + " further problems in this UBIFS are not listed");
  }
  return status;
}

std::string_view KeyHashName(std::uint8_t hash) { return hash == 0 ? "r5" : "test"; }

class UbifsFormat final : public Format {
 public:
  [[nodiscard]] std::string_view name() const override { return "ubifs"; }
  [[nodiscard]] std::string_view description() const override {
    return "UBIFS flash filesystem image";
  }
  [[nodiscard]] std::span<const Magic> magics() const override { return kMagics; }

  [[nodiscard]] std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const ByteView rest = blob.subspan(start);
    // Every node starts with the magic; only a superblock (type 6) starts a filesystem.
    if (rest.size() < ubifs::kSuperblockSize || rest[20] != ubifs::kSuperblockNode) {
      return std::nullopt;
    }
    const auto sb = ubifs::ParseSuperblock(rest);
    if (!sb) return std::nullopt;
    Chunk chunk;
    chunk.offset = start;
    const std::uint64_t size = std::uint64_t{sb->leb_cnt} * sb->leb_size;
    chunk.length = std::min<std::uint64_t>(size, rest.size());
    if (size > rest.size()) {
      chunk.issues.push_back(
          ProbeIssue{GapKind::kTruncated, "the UBIFS superblock says the filesystem has " +
                                              std::to_string(sb->leb_cnt) + " LEBs of " +
                                              std::to_string(sb->leb_size) + " bytes; only " +
                                              std::to_string(rest.size()) + " bytes remain"});
    }
    chunk.meta["leb_size"] = std::to_string(sb->leb_size);
    chunk.meta["leb_count"] = std::to_string(sb->leb_cnt);
    chunk.meta["max_leb_count"] = std::to_string(sb->max_leb_cnt);
    chunk.meta["min_io_size"] = std::to_string(sb->min_io_size);
    chunk.meta["format_version"] = std::to_string(sb->fmt_version);
    chunk.meta["compression"] = std::string(ubifs::CompressionName(sb->default_compression));
    chunk.meta["key_hash"] = std::string(KeyHashName(sb->key_hash));
    chunk.meta["uuid"] = sb->uuid;
    if ((sb->flags & ubifs::kFlagEncryption) != 0) chunk.meta["encryption"] = "yes";
    if ((sb->flags & ubifs::kFlagAuthentication) != 0) chunk.meta["authentication"] = "yes";
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    const auto sb = ubifs::ParseSuperblock(chunk);
    if (!sb) return Fail(ErrorCode::kCorruptInput, "UBIFS superblock does not parse");
    UbifsExtractor extractor(chunk, *sb, ctx);
    return extractor.Run();
  }
};

}  // namespace

std::unique_ptr<const Format> MakeUbifsFormat() { return std::make_unique<UbifsFormat>(); }

}  // namespace iotmark::unpack::formats
