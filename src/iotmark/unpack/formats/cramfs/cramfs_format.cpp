// CramFS, the compressed ROM filesystem of Linux, in either byte order (mkfs.cramfs writes the
// host's; cramfsswap converts). The probe checks the superblock ("Compressed ROMFS" signature,
// known flags, a root directory where the kernel expects it, the CRC-32 when the fsid says there
// is one) and takes the superblock's size field as the extent. Files are sequences of zlib blocks
// of one page (4096 bytes) addressed by a block pointer table; the extended pointers of newer
// kernels (direct pointers, uncompressed blocks) are read too. Hand-written: no Debian library
// reads cramfs images (only fsck.cramfs, a program); zlib decodes the blocks.
#include <zlib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "iotmark/base/thread_pool.hpp"
#include "iotmark/unpack/entry_sink.hpp"
#include "iotmark/unpack/extract_context.hpp"
#include "iotmark/unpack/format.hpp"

namespace iotmark::unpack::formats {

namespace {

using model::EntryKind;
using model::GapKind;

constexpr std::uint32_t kCramfsMagic = 0x28cd3d45;
constexpr std::string_view kSignature = "Compressed ROMFS";
constexpr std::uint64_t kSignatureOffset = 16;
constexpr std::uint64_t kCrcOffset = 32;
constexpr std::uint64_t kSuperblockSize = 76;
// mkfs.cramfs -p leaves this much room for boot code in front of the superblock; every offset
// then still counts from the start of the image.
constexpr std::uint64_t kBootPadding = 512;
constexpr std::uint64_t kInodeSize = 12;
constexpr std::uint32_t kPageSize = 4096;
// The kernel refuses compressed blocks longer than two pages.
constexpr std::uint64_t kMaxCompressedBlock = 2 * kPageSize;
constexpr int kMaxDepth = 256;
// Inodes lie below 2^28 (a 26-bit offset in words) plus one listing of at most 2^24 bytes.
constexpr std::uint64_t kMaxInodeEnd = (std::uint64_t{1} << 28) + (std::uint64_t{1} << 24);
constexpr std::uint32_t kMaxLinkTarget = 4095;
// Decoded blocks are handed to the sink in batches of this many bytes.
constexpr std::size_t kWriteBatch = 64 * kPageSize;

constexpr std::uint32_t kFlagFsidVersion2 = 0x00000001;
constexpr std::uint32_t kFlagHoles = 0x00000100;
constexpr std::uint32_t kFlagWrongSignature = 0x00000200;
constexpr std::uint32_t kFlagShiftedRootOffset = 0x00000400;
constexpr std::uint32_t kFlagExtBlockPointers = 0x00000800;
constexpr std::uint32_t kSupportedFlags =
    0x000000ff | kFlagHoles | kFlagWrongSignature | kFlagShiftedRootOffset | kFlagExtBlockPointers;

// Block pointer bits of images with kFlagExtBlockPointers.
constexpr std::uint32_t kBlockUncompressed = 0x80000000;
constexpr std::uint32_t kBlockDirect = 0x40000000;
constexpr std::uint32_t kBlockFlags = kBlockUncompressed | kBlockDirect;

constexpr std::uint32_t kTypeMask = 0170000;
constexpr std::uint32_t kTypeSocket = 0140000;
constexpr std::uint32_t kTypeSymlink = 0120000;
constexpr std::uint32_t kTypeRegular = 0100000;
constexpr std::uint32_t kTypeBlock = 0060000;
constexpr std::uint32_t kTypeDirectory = 0040000;
constexpr std::uint32_t kTypeChar = 0020000;
constexpr std::uint32_t kTypeFifo = 0010000;

constexpr Magic kMagics[] = {{"\x45\x3d\xcd\x28", 0},
                             {"\x28\xcd\x3d\x45", 0},
                             {"\x45\x3d\xcd\x28", kBootPadding},
                             {"\x28\xcd\x3d\x45", kBootPadding}};

struct Inode {
  std::uint32_t mode = 0;
  std::uint32_t size = 0;        // bytes of a file or a listing; a device's number
  std::uint32_t name_bytes = 0;  // the name field, NUL-padded to a multiple of 4
  std::uint64_t offset = 0;      // data or first child, in bytes from the image start

  [[nodiscard]] std::uint32_t type() const { return mode & kTypeMask; }
};

// The image from its first byte (boot padding included), read in its own byte order.
class Image {
 public:
  Image(ByteView bytes, bool big_endian) : bytes_(bytes), big_endian_(big_endian) {}

  [[nodiscard]] ByteView bytes() const { return bytes_; }
  [[nodiscard]] std::uint64_t size() const { return bytes_.size(); }
  [[nodiscard]] bool big_endian() const { return big_endian_; }

  [[nodiscard]] std::optional<std::uint32_t> U32(std::uint64_t offset) const {
    if (offset > bytes_.size()) return std::nullopt;
    return big_endian_ ? LoadBe<std::uint32_t>(bytes_, offset)
                       : LoadLe<std::uint32_t>(bytes_, offset);
  }
  [[nodiscard]] std::optional<std::uint16_t> U16(std::uint64_t offset) const {
    if (offset > bytes_.size()) return std::nullopt;
    return big_endian_ ? LoadBe<std::uint16_t>(bytes_, offset)
                       : LoadLe<std::uint16_t>(bytes_, offset);
  }
  [[nodiscard]] bool Holds(std::uint64_t offset, std::uint64_t length) const {
    return offset <= bytes_.size() && bytes_.size() - offset >= length;
  }

  // The inode's bit fields (mode:16 uid:16, size:24 gid:8, namelen:6 offset:26) are allocated
  // from the low bits on little-endian machines and from the high bits on big-endian ones.
  [[nodiscard]] std::optional<Inode> InodeAt(std::uint64_t offset) const {
    const auto w0 = U32(offset);
    const auto w1 = U32(offset + 4);
    const auto w2 = U32(offset + 8);
    if (!w0 || !w1 || !w2) return std::nullopt;
    Inode inode;
    if (big_endian_) {
      inode.mode = *w0 >> 16;
      inode.size = *w1 >> 8;
      inode.name_bytes = (*w2 >> 26) * 4;
      inode.offset = std::uint64_t{*w2 & 0x03ffffff} * 4;
    } else {
      inode.mode = *w0 & 0xffff;
      inode.size = *w1 & 0x00ffffff;
      inode.name_bytes = (*w2 & 0x3f) * 4;
      inode.offset = std::uint64_t{*w2 >> 6} * 4;
    }
    return inode;
  }

 private:
  ByteView bytes_;
  bool big_endian_;
};

struct Superblock {
  bool big_endian = false;
  std::uint64_t base = 0;  // where the superblock sits: 0, or kBootPadding
  std::uint32_t size = 0;  // the image's length from its first byte (fsid version 2)
  std::uint32_t flags = 0;
  std::uint32_t crc = 0;
  std::uint32_t edition = 0;
  std::uint32_t files = 0;
  std::string name;
  Inode root;

  [[nodiscard]] bool has_fsid() const { return (flags & kFlagFsidVersion2) != 0; }
  [[nodiscard]] bool extended_pointers() const { return (flags & kFlagExtBlockPointers) != 0; }
};

// Reads the superblock `base` bytes into `image`; nullopt unless it is a plausible cramfs one.
std::optional<Superblock> ParseSuperblock(ByteView image, std::uint64_t base) {
  if (image.size() < base + kSuperblockSize) return std::nullopt;
  Superblock sb;
  sb.base = base;
  const auto magic = LoadLe<std::uint32_t>(image, base);
  if (magic == kCramfsMagic) {
    sb.big_endian = false;
  } else if (LoadBe<std::uint32_t>(image, base) == kCramfsMagic) {
    sb.big_endian = true;
  } else {
    return std::nullopt;
  }
  if (AsChars(image.subspan(base + kSignatureOffset, kSignature.size())) != kSignature) {
    return std::nullopt;
  }
  const Image view(image, sb.big_endian);
  sb.size = *view.U32(base + 4);
  sb.flags = *view.U32(base + 8);
  sb.crc = *view.U32(base + 32);
  sb.edition = *view.U32(base + 36);
  sb.files = *view.U32(base + 44);
  sb.name = std::string(CStringField(image.subspan(base + 48, 16)));
  sb.root = *view.InodeAt(base + 64);
  if ((sb.flags & ~kSupportedFlags) != 0) return std::nullopt;
  const Inode& root = sb.root;
  if (root.type() != kTypeDirectory || root.name_bytes != 0) return std::nullopt;
  // The root's listing starts right after the superblock, unless the image says it moved it.
  const std::uint64_t first_child = base + kSuperblockSize;
  const bool empty_root = root.size == 0 && (root.offset == 0 || root.offset == first_child);
  if (!empty_root && root.offset != first_child &&
      !((sb.flags & kFlagShiftedRootOffset) != 0 && root.offset >= first_child)) {
    return std::nullopt;
  }
  if (sb.has_fsid()) {
    if (sb.size < first_child || sb.files == 0) return std::nullopt;
    if (root.offset + root.size > sb.size) return std::nullopt;
  }
  return sb;
}

std::uint32_t ImageCrc(ByteView image, const Superblock& sb) {
  static constexpr std::array<std::uint8_t, 4> kZeroCrc{};
  const std::uint64_t crc_at = sb.base + kCrcOffset;
  uLong crc = crc32_z(0, image.data() + sb.base, kCrcOffset);
  crc = crc32_z(crc, kZeroCrc.data(), kZeroCrc.size());
  crc = crc32_z(crc, image.data() + crc_at + 4, sb.size - crc_at - 4);
  return static_cast<std::uint32_t>(crc);
}

// Untrusted text as it may appear in a report: control bytes escaped, length capped.
std::string Printable(std::string_view text) {
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

std::string Shown(std::string_view name) { return "'" + Printable(name) + "'"; }

struct Problem {
  GapKind kind = GapKind::kCorrupt;
  std::uint64_t offset = 0;  // in the image
  std::string reason;
};

struct Entry {
  std::string path;
  Inode inode;
  std::uint64_t at = 0;  // where the inode is
};

// Lists the tree below the root, parents before children. Every inode is read at most once (a
// directory pointing into a listing read before is a loop or an overlap, and is not followed),
// so the work is bounded by the size of the image.
class TreeWalker {
 public:
  TreeWalker(const Image& image, const Superblock& sb, std::uint64_t stated_size,
             std::uint64_t max_entries)
      : image_(image),
        sb_(sb),
        stated_size_(stated_size),
        max_entries_(max_entries),
        listed_(std::min(image.size(), kMaxInodeEnd) / 4 + 1, false) {}

  void Run();

  std::vector<Entry> entries;
  std::vector<Problem> problems;
  // The highest offset any structure reaches: the extent of an image without a size field.
  std::uint64_t end = 0;

 private:
  struct PendingDir {
    std::uint64_t offset;
    std::uint32_t size;
    std::string path;
    int depth;
  };

  // Reading past the end of an image that was cut off is a truncation; anything else is damage.
  [[nodiscard]] GapKind KindPast(std::uint64_t offset) const {
    return offset > image_.size() && offset <= stated_size_ ? GapKind::kTruncated
                                                            : GapKind::kCorrupt;
  }
  void List(const PendingDir& dir, std::vector<PendingDir>& stack);
  void NoteDataEnd(const Inode& inode);

  const Image& image_;
  const Superblock& sb_;
  std::uint64_t stated_size_;
  std::uint64_t max_entries_;
  std::vector<bool> listed_;  // by inode offset / 4
  std::unordered_set<std::string> paths_;
  bool full_ = false;
};

void TreeWalker::Run() {
  end = sb_.base + kSuperblockSize;
  std::vector<PendingDir> stack;
  if (sb_.root.size > 0) stack.push_back({sb_.root.offset, sb_.root.size, "", 0});
  while (!stack.empty() && !full_) {
    const PendingDir dir = std::move(stack.back());
    stack.pop_back();
    List(dir, stack);
  }
}

void TreeWalker::List(const PendingDir& dir, std::vector<PendingDir>& stack) {
  const std::string shown = dir.path.empty() ? "the root directory" : Shown(dir.path);
  std::uint64_t stop = dir.offset + dir.size;
  end = std::max(end, stop);
  if (stop > image_.size()) {
    problems.push_back({KindPast(stop), std::min(dir.offset, image_.size()),
                        "the listing of " + shown + " runs past the end of the image"});
    stop = image_.size();
  }
  std::uint64_t pos = dir.offset;
  while (pos < stop) {
    const std::uint64_t at = pos;
    if (stop - pos < kInodeSize) {
      problems.push_back(
          {GapKind::kCorrupt, at, "the listing of " + shown + " ends inside an entry"});
      return;
    }
    if (listed_[at / 4]) {
      problems.push_back({GapKind::kCorrupt, at,
                          "the listing of " + shown +
                              " reaches entries listed before (a directory loop or overlapping "
                              "directories); the rest of it is not read"});
      return;
    }
    listed_[at / 4] = true;
    const Inode inode = *image_.InodeAt(at);
    pos += kInodeSize + inode.name_bytes;
    if (pos > stop) {
      problems.push_back(
          {GapKind::kCorrupt, at, "an entry name runs past the end of the listing of " + shown});
      return;
    }
    const std::string_view name =
        CStringField(image_.bytes().subspan(at + kInodeSize, inode.name_bytes));
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos) {
      problems.push_back({GapKind::kCorrupt, at,
                          shown + " holds an invalid name " + Shown(name) + "; entry skipped"});
      continue;
    }
    if (entries.size() >= max_entries_) {
      problems.push_back({GapKind::kLimit, at,
                          "more than " + std::to_string(max_entries_) +
                              " entries; the rest of the tree was not read"});
      full_ = true;
      return;
    }
    std::string path = dir.path.empty() ? std::string(name) : dir.path + "/" + std::string(name);
    if (!paths_.insert(path).second) {
      problems.push_back({GapKind::kCorrupt, at,
                          Shown(path) + " is listed twice; the second "
                                        "entry is skipped"});
      continue;
    }
    NoteDataEnd(inode);
    if (inode.type() == kTypeDirectory && inode.size > 0) {
      if (dir.depth + 1 >= kMaxDepth) {
        problems.push_back({GapKind::kLimit, at,
                            "directory " + Shown(path) + " is nested deeper than " +
                                std::to_string(kMaxDepth) + " levels; not entered"});
      } else {
        stack.push_back({inode.offset, inode.size, path, dir.depth + 1});
      }
    }
    entries.push_back({std::move(path), inode, at});
  }
}

// For images without a size field: a file's data ends where its last block pointer says.
void TreeWalker::NoteDataEnd(const Inode& inode) {
  if ((inode.type() != kTypeRegular && inode.type() != kTypeSymlink) || inode.size == 0) return;
  const std::uint64_t blocks = (std::uint64_t{inode.size} + kPageSize - 1) / kPageSize;
  const std::uint64_t table_end = inode.offset + 4 * blocks;
  end = std::max(end, table_end);
  if (sb_.extended_pointers()) return;  // only images with a size field use these
  if (const auto last = image_.U32(table_end - 4)) end = std::max<std::uint64_t>(end, *last);
}

// Where one block of a file is and how it is stored.
struct BlockPlace {
  std::uint64_t start = 0;
  std::uint64_t length = 0;  // 0: a hole
  bool uncompressed = false;
};

// Decodes files block by block; one per worker (a z_stream is not shared between threads).
class BlockReader {
 public:
  BlockReader(const Image& image, const Superblock& sb, std::uint64_t stated_size)
      : image_(image), sb_(sb), stated_size_(stated_size) {
    ok_ = inflateInit(&zs_) == Z_OK;
  }
  ~BlockReader() {
    if (ok_) inflateEnd(&zs_);
  }
  BlockReader(const BlockReader&) = delete;
  BlockReader& operator=(const BlockReader&) = delete;

  using Out = std::function<Status(ByteView)>;
  // Hands the content of `entry` to `out` in batches. A damaged block ends the content there
  // and is returned as a problem; an error from `out` is returned as the error.
  Result<std::optional<Problem>> Read(const Entry& entry, const Out& out);

 private:
  [[nodiscard]] GapKind KindPast(std::uint64_t offset) const {
    return offset > image_.size() && offset <= stated_size_ ? GapKind::kTruncated
                                                            : GapKind::kCorrupt;
  }
  std::optional<BlockPlace> Locate(std::uint64_t table, std::uint64_t index, std::uint64_t blocks,
                                   std::uint64_t expected, std::string& why) const;
  // Decodes one block into `out` (room for kPageSize bytes); returns the bytes produced.
  std::optional<std::size_t> Inflate(ByteView in, std::uint8_t* out, std::string& why);

  const Image& image_;
  const Superblock& sb_;
  std::uint64_t stated_size_;
  z_stream zs_{};
  bool ok_ = false;
};

std::optional<BlockPlace> BlockReader::Locate(std::uint64_t table, std::uint64_t index,
                                              std::uint64_t blocks, std::uint64_t expected,
                                              std::string& why) const {
  const std::uint32_t raw = *image_.U32(table + 4 * index);
  const bool extended = sb_.extended_pointers();
  const std::uint32_t flags = extended ? raw & kBlockFlags : 0;
  const std::uint64_t pointer = raw & ~flags;
  BlockPlace place;
  place.uncompressed = (flags & kBlockUncompressed) != 0;
  if ((flags & kBlockDirect) != 0) {
    // A direct pointer is the block's start (shifted by 2); a compressed block then begins
    // with its 16-bit length, an uncompressed one is a full page.
    place.start = pointer << 2;
    if (place.uncompressed) {
      place.length = expected;
    } else {
      const auto length = image_.U16(place.start);
      if (!length) {
        why = "its length lies past the end of the image";
        return std::nullopt;
      }
      place.length = *length;
      place.start += 2;
    }
  } else {
    // A plain pointer is the end of the block; the block starts where the previous one ended,
    // the first right after the table.
    place.start = table + 4 * blocks;
    if (index > 0) {
      const std::uint32_t previous = *image_.U32(table + 4 * (index - 1));
      const std::uint32_t previous_flags = extended ? previous & kBlockFlags : 0;
      const std::uint64_t previous_pointer = previous & ~previous_flags;
      if ((previous_flags & kBlockDirect) == 0) {
        place.start = previous_pointer;
      } else if ((previous_flags & kBlockUncompressed) != 0) {
        place.start = (previous_pointer << 2) + kPageSize;
      } else {
        const auto length = image_.U16(previous_pointer << 2);
        if (!length) {
          why = "the previous block's length lies past the end of the image";
          return std::nullopt;
        }
        place.start = (previous_pointer << 2) + 2 + *length;
      }
    }
    if (pointer < place.start) {
      why = "its pointer lies before its start";
      return std::nullopt;
    }
    place.length = pointer - place.start;
  }
  if (place.length > (place.uncompressed ? kPageSize : kMaxCompressedBlock)) {
    why = "it claims " + std::to_string(place.length) + " bytes";
    return std::nullopt;
  }
  return place;
}

std::optional<std::size_t> BlockReader::Inflate(ByteView in, std::uint8_t* out, std::string& why) {
  if (!ok_ || inflateReset(&zs_) != Z_OK) {
    why = "zlib could not be set up";
    return std::nullopt;
  }
  zs_.next_in = const_cast<Bytef*>(in.data());
  zs_.avail_in = static_cast<uInt>(in.size());
  zs_.next_out = out;
  zs_.avail_out = kPageSize;
  const int ret = inflate(&zs_, Z_FINISH);
  if (ret == Z_STREAM_END) return kPageSize - zs_.avail_out;
  if (zs_.avail_out == 0 && zs_.avail_in > 0) {
    why = "it decodes to more than " + std::to_string(kPageSize) + " bytes";
  } else if (ret == Z_BUF_ERROR) {
    why = "its zlib stream is cut short";
  } else {
    why = std::string("it does not decode (") + (zs_.msg != nullptr ? zs_.msg : "zlib error") + ")";
  }
  return std::nullopt;
}

Result<std::optional<Problem>> BlockReader::Read(const Entry& entry, const Out& out) {
  const Inode& inode = entry.inode;
  if (inode.size == 0) return std::nullopt;
  const std::uint64_t blocks = (std::uint64_t{inode.size} + kPageSize - 1) / kPageSize;
  const std::uint64_t table = inode.offset;
  if (!image_.Holds(table, 4 * blocks)) {
    return Problem{KindPast(table + 4 * blocks), entry.at,
                   "the block table of " + Shown(entry.path) + " lies past the end of the image"};
  }
  std::vector<std::uint8_t> batch;
  batch.reserve(kWriteBatch);
  std::optional<Problem> problem;
  for (std::uint64_t index = 0; index < blocks && !problem; ++index) {
    const std::uint64_t expected =
        std::min<std::uint64_t>(kPageSize, inode.size - index * kPageSize);
    const std::size_t filled = batch.size();
    batch.resize(filled + kPageSize);
    std::uint8_t* block = batch.data() + filled;
    std::string why;
    std::uint64_t produced = 0;
    const auto place = Locate(table, index, blocks, expected, why);
    if (place && !image_.Holds(place->start, place->length)) {
      problem = Problem{KindPast(place->start + place->length), entry.at,
                        Shown(entry.path) + ": block " + std::to_string(index) +
                            " lies past the end of the image; the file is cut there"};
    } else if (place && place->length > 0) {
      const ByteView stored = image_.bytes().subspan(place->start, place->length);
      if (place->uncompressed) {
        std::copy(stored.begin(), stored.end(), block);
        produced = stored.size();
      } else if (const auto n = Inflate(stored, block, why)) {
        produced = *n;
      }
    }
    if (!place || (place->length > 0 && !why.empty())) {
      problem = Problem{GapKind::kCorrupt, place ? place->start : table + 4 * index,
                        Shown(entry.path) + ": block " + std::to_string(index) + " is damaged (" +
                            why + "); the file is cut there"};
    }
    if (problem) {
      batch.resize(filled);
      break;
    }
    if (place->length > 0 && produced < expected) {
      // The kernel pads a short block with zeros; so do we, and say so.
      problem = Problem{GapKind::kCorrupt, place->start,
                        Shown(entry.path) + ": block " + std::to_string(index) + " holds " +
                            std::to_string(produced) + " bytes instead of " +
                            std::to_string(expected) + "; padded with zeros"};
    }
    std::fill(block + std::min(produced, expected), block + kPageSize, 0);
    batch.resize(filled + expected);
    if (batch.size() + kPageSize > kWriteBatch) {
      IOTMARK_TRY(out(batch));
      batch.clear();
    }
  }
  if (!batch.empty()) IOTMARK_TRY(out(batch));
  return problem;
}

class CramfsExtractor {
 public:
  CramfsExtractor(const Image& image, const Superblock& sb, ExtractContext& ctx)
      : image_(image), sb_(sb), ctx_(ctx) {}

  Status Run();

 private:
  void Report(const Problem& problem) { ctx_.AddGap(problem.kind, problem.offset, problem.reason); }
  std::uint64_t stated_size() const { return sb_.has_fsid() ? sb_.size : image_.size(); }
  Status AddEntry(const Entry& entry, BlockReader& reader);
  Status AddSymlink(const Entry& entry, BlockReader& reader);
  Status ExtractFiles(const std::vector<const Entry*>& files);
  void ExtractFile(const Entry& entry, BlockReader& reader);
  void RequestStop(const Error& error);

  const Image& image_;
  const Superblock& sb_;
  ExtractContext& ctx_;
  std::atomic<bool> stop_{false};
  std::mutex stop_mutex_;
  std::optional<Error> stop_error_;
};

Status SinkFailed(const Status& added) {
  // Refused entries are already gaps, recorded by the sink; only limits and I/O stop us.
  if (!added && ShouldStop(added.error())) return added;
  return Ok();
}

Status CramfsExtractor::Run() {
  TreeWalker walker(image_, sb_, stated_size(), ctx_.budget().limits().max_entries);
  walker.Run();
  for (const Problem& problem : walker.problems) Report(problem);
  BlockReader reader(image_, sb_, stated_size());
  std::vector<const Entry*> files;
  for (const Entry& entry : walker.entries) {
    IOTMARK_TRY(ctx_.budget().CheckTime());
    if (entry.inode.type() == kTypeRegular) {
      files.push_back(&entry);
    } else {
      IOTMARK_TRY(AddEntry(entry, reader));
    }
  }
  return ExtractFiles(files);
}

Status CramfsExtractor::AddEntry(const Entry& entry, BlockReader& reader) {
  EntrySink& sink = ctx_.sink();
  const std::uint32_t mode = entry.inode.mode & 07777;
  switch (entry.inode.type()) {
    case kTypeDirectory:
      return SinkFailed(sink.AddDirectory(entry.path, mode));
    case kTypeSymlink:
      return AddSymlink(entry, reader);
    case kTypeChar:
      return SinkFailed(sink.AddSpecial(entry.path, EntryKind::kCharDevice, mode));
    case kTypeBlock:
      return SinkFailed(sink.AddSpecial(entry.path, EntryKind::kBlockDevice, mode));
    case kTypeFifo:
      return SinkFailed(sink.AddSpecial(entry.path, EntryKind::kFifo, mode));
    case kTypeSocket:
      return SinkFailed(sink.AddSpecial(entry.path, EntryKind::kSocket, mode));
    default:
      Report({GapKind::kCorrupt, entry.at,
              Shown(entry.path) + " has an unknown file type (mode " + std::to_string(mode) +
                  "); skipped"});
      return Ok();
  }
}

Status CramfsExtractor::AddSymlink(const Entry& entry, BlockReader& reader) {
  if (entry.inode.size == 0 || entry.inode.size > kMaxLinkTarget) {
    Report({GapKind::kCorrupt, entry.at,
            "symlink " + Shown(entry.path) + " claims a target of " +
                std::to_string(entry.inode.size) + " bytes; not extracted"});
    return Ok();
  }
  std::string target;
  auto read = reader.Read(entry, [&target](ByteView bytes) {
    target.append(AsChars(bytes));
    return Ok();
  });
  if (!read) return tl::unexpected(read.error());
  if (*read) {
    Report(**read);
    return Ok();
  }
  return SinkFailed(ctx_.sink().AddSymlink(entry.path, target, entry.inode.mode & 07777));
}

void CramfsExtractor::RequestStop(const Error& error) {
  std::lock_guard lock(stop_mutex_);
  if (!stop_error_) stop_error_ = error;
  stop_.store(true, std::memory_order_relaxed);
}

// Files are independent: each worker takes the next one, decodes it and writes it whole.
Status CramfsExtractor::ExtractFiles(const std::vector<const Entry*>& files) {
  std::atomic<std::size_t> next{0};
  const std::size_t workers = std::min(ctx_.pool().concurrency(), files.size());
  {
    TaskGroup group(ctx_.pool());
    for (std::size_t w = 0; w < workers; ++w) {
      group.Run([this, &files, &next] {
        BlockReader reader(image_, sb_, stated_size());
        while (!stop_.load(std::memory_order_relaxed)) {
          const std::size_t i = next.fetch_add(1);
          if (i >= files.size()) break;
          if (auto time = ctx_.budget().CheckTime(); !time) {
            RequestStop(time.error());
            break;
          }
          ExtractFile(*files[i], reader);
        }
      });
    }
    group.Wait();
  }
  if (stop_error_) return tl::unexpected(*stop_error_);
  return Ok();
}

void CramfsExtractor::ExtractFile(const Entry& entry, BlockReader& reader) {
  auto writer = ctx_.sink().CreateFile(entry.path, entry.inode.mode & 07777);
  if (!writer) {
    if (ShouldStop(writer.error())) RequestStop(writer.error());
    return;
  }
  auto read = reader.Read(entry, [&writer](ByteView bytes) { return writer->Write(bytes); });
  auto closed = writer->Close();
  if (!read) {
    RequestStop(read.error());
    return;
  }
  if (*read) Report(**read);
  if (!closed && ShouldStop(closed.error())) RequestStop(closed.error());
}

std::string Hex32(std::uint32_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "0x";
  for (int shift = 28; shift >= 0; shift -= 4) out.push_back(kDigits[(value >> shift) & 0xf]);
  return out;
}

// The superblock at the start of `rest`, or 512 bytes into it (a padded image).
std::optional<Superblock> FindSuperblock(ByteView rest) {
  if (auto sb = ParseSuperblock(rest, 0)) return sb;
  return ParseSuperblock(rest, kBootPadding);
}

// Probes cap the walk of images without a size field; real images have far fewer entries.
constexpr std::uint64_t kProbeMaxEntries = 1'000'000;

class CramfsFormat final : public Format {
 public:
  [[nodiscard]] std::string_view name() const override { return "cramfs"; }
  [[nodiscard]] std::string_view description() const override {
    return "CramFS compressed ROM filesystem (either byte order)";
  }
  [[nodiscard]] std::span<const Magic> magics() const override { return kMagics; }

  [[nodiscard]] std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const ByteView rest = blob.subspan(start);
    const auto sb = FindSuperblock(rest);
    if (!sb) return std::nullopt;
    Chunk chunk;
    chunk.offset = start;
    std::uint64_t extent = sb->size;
    if (!sb->has_fsid()) {
      // Old images have no size field: their extent is where their structures end.
      const Image image(rest, sb->big_endian);
      TreeWalker walker(image, *sb, UINT64_MAX, kProbeMaxEntries);
      walker.Run();
      extent = walker.end;
      chunk.meta["fsid"] = "none (an old image without size or CRC)";
    }
    chunk.meta["endianness"] = sb->big_endian ? "big" : "little";
    chunk.meta["flags"] = Hex32(sb->flags);
    if (!sb->name.empty()) chunk.meta["name"] = Printable(sb->name);
    if (sb->has_fsid()) {
      chunk.meta["edition"] = std::to_string(sb->edition);
      chunk.meta["files"] = std::to_string(sb->files);
    }
    if (sb->base != 0) chunk.meta["boot_padding"] = std::to_string(sb->base);
    if (sb->extended_pointers()) chunk.meta["block_pointers"] = "extended";
    if (extent > rest.size()) {
      chunk.length = rest.size();
      if (sb->has_fsid()) chunk.meta["crc"] = "unchecked";
      chunk.issues.push_back({GapKind::kTruncated, "cramfs image states " + std::to_string(extent) +
                                                       " bytes but only " +
                                                       std::to_string(rest.size()) + " remain"});
      return chunk;
    }
    chunk.length = extent;
    if (sb->has_fsid()) {
      const std::uint32_t crc = ImageCrc(rest, *sb);
      chunk.meta["crc"] = crc == sb->crc ? "ok" : "mismatch";
      if (crc != sb->crc) {
        chunk.issues.push_back({GapKind::kCorrupt, "cramfs CRC-32 mismatch: superblock says " +
                                                       Hex32(sb->crc) + ", data gives " +
                                                       Hex32(crc)});
      }
    }
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    const auto sb = FindSuperblock(chunk);
    if (!sb) return Fail(ErrorCode::kCorruptInput, "cramfs superblock does not parse");
    const Image image(chunk, sb->big_endian);
    CramfsExtractor extractor(image, *sb, ctx);
    return extractor.Run();
  }
};

}  // namespace

std::unique_ptr<const Format> MakeCramfsFormat() { return std::make_unique<CramfsFormat>(); }

}  // namespace iotmark::unpack::formats
