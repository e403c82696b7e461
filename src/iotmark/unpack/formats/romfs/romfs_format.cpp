// Linux RomFS ("-rom1fs-"): a big-endian superblock (full size, a checksum over its first 512
// bytes, the volume name) followed by 16-byte aligned file headers (next|type, spec, size,
// checksum, name) chained per directory. The probe takes full_size as the extent. Files are
// stored uncompressed and written straight from the image; hard links are replayed once every
// file is out. Hand-written: no Debian library reads romfs images.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "iotmark/unpack/entry_sink.hpp"
#include "iotmark/unpack/extract_context.hpp"
#include "iotmark/unpack/format.hpp"

namespace iotmark::unpack::formats {

namespace {

using model::EntryKind;
using model::GapKind;

constexpr std::string_view kRomfsMagic = "-rom1fs-";
constexpr std::uint64_t kHeaderSize = 16;
constexpr std::uint64_t kAlign = 16;
// The superblock checksum covers at most this many leading bytes.
constexpr std::uint64_t kChecksumSpan = 512;
// Names (and the volume name) are NUL-terminated; longer ones are not what genromfs writes.
constexpr std::uint64_t kMaxName = 256;
constexpr int kMaxDepth = 256;
// Hard links to hard links are followed this far.
constexpr int kMaxLinkHops = 16;

enum Type : std::uint32_t {
  kHardlink = 0,
  kDirectory = 1,
  kRegular = 2,
  kSymlink = 3,
  kBlockDevice = 4,
  kCharDevice = 5,
  kSocket = 6,
  kFifo = 7,
};
constexpr std::uint32_t kTypeMask = 7;
constexpr std::uint32_t kExecBit = 8;

// RomFS stores no permissions: the kernel gives each type a mode and adds x for the exec bit.
constexpr std::uint32_t kModes[8] = {0, 0644, 0644, 0777, 0600, 0600, 0644, 0644};

constexpr Magic kMagics[] = {{kRomfsMagic, 0}};

std::uint64_t AlignUp(std::uint64_t value) { return (value + kAlign - 1) / kAlign * kAlign; }

// Sum of big-endian 32-bit words: zero for a correct superblock or file header.
std::uint32_t WordSum(ByteView bytes) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i + 4 <= bytes.size(); i += 4) sum += *LoadBe<std::uint32_t>(bytes, i);
  return sum;
}

// A NUL-terminated name at `offset`, at most kMaxName bytes; nullopt if no NUL comes in time.
std::optional<std::string_view> NameAt(ByteView image, std::uint64_t offset) {
  if (offset >= image.size()) return std::nullopt;
  const std::size_t limit = std::min<std::uint64_t>(image.size() - offset, kMaxName + 1);
  const auto* begin = image.data() + offset;
  const void* nul = std::memchr(begin, 0, limit);
  if (nul == nullptr) return std::nullopt;
  return std::string_view(reinterpret_cast<const char*>(begin),
                          static_cast<const std::uint8_t*>(nul) - begin);
}

struct Header {
  std::uint64_t at = 0;
  std::uint64_t next = 0;  // 0: the last of its directory
  std::uint32_t type = 0;
  bool exec = false;
  std::uint32_t spec = 0;
  std::uint32_t size = 0;
  std::string_view name;
  std::uint64_t data = 0;  // where the data starts: after the name, 16-byte aligned

  [[nodiscard]] std::uint32_t mode() const { return kModes[type] | (exec ? 0111 : 0); }
};

// The header at `at`, if it and its name lie inside `image`.
std::optional<Header> HeaderAt(ByteView image, std::uint64_t at) {
  if (at > image.size() || image.size() - at < kHeaderSize) return std::nullopt;
  ByteReader reader(image.subspan(at), ByteReader::Order::kBig);
  Header header;
  header.at = at;
  const auto next = reader.Read<std::uint32_t>();
  header.next = next & ~std::uint32_t{kAlign - 1};
  header.type = next & kTypeMask;
  header.exec = (next & kExecBit) != 0;
  header.spec = reader.Read<std::uint32_t>();
  header.size = reader.Read<std::uint32_t>();
  const auto name = NameAt(image, at + kHeaderSize);
  if (!name) return std::nullopt;
  header.name = *name;
  header.data = at + kHeaderSize + AlignUp(name->size() + 1);
  return header;
}

struct Superblock {
  std::uint32_t full_size = 0;
  std::string_view volume;
  std::uint64_t first = 0;  // the root directory's first header
};

std::optional<Superblock> ParseSuperblock(ByteView image) {
  if (image.size() < 2 * kHeaderSize || AsChars(image.first(kRomfsMagic.size())) != kRomfsMagic) {
    return std::nullopt;
  }
  Superblock sb;
  sb.full_size = *LoadBe<std::uint32_t>(image, 8);
  const auto volume = NameAt(image, kHeaderSize);
  if (!volume) return std::nullopt;
  sb.volume = *volume;
  sb.first = kHeaderSize + AlignUp(volume->size() + 1);
  if (sb.full_size < sb.first + kHeaderSize) return std::nullopt;
  return sb;
}

// Plausible as a first file header even though the superblock checksum failed: its links stay
// inside the image and its name is printable.
bool PlausibleHeader(ByteView image, const Superblock& sb) {
  const auto header = HeaderAt(image, sb.first);
  if (!header || header->name.empty() || header->next >= sb.full_size) return false;
  if (header->type == kDirectory || header->type == kHardlink) {
    if (header->spec >= sb.full_size || header->spec % kAlign != 0) return false;
  }
  return std::all_of(header->name.begin(), header->name.end(),
                     [](char c) { return static_cast<unsigned char>(c) >= 0x20; });
}

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

Status SinkFailed(const Status& added) {
  // Refused entries are already gaps, recorded by the sink; only limits and I/O stop us.
  if (!added && ShouldStop(added.error())) return added;
  return Ok();
}

class RomfsExtractor {
 public:
  RomfsExtractor(ByteView image, const Superblock& sb, ExtractContext& ctx)
      : image_(image), sb_(sb), ctx_(ctx), visited_(image.size() / kAlign + 1, false) {}

  Status Run();

 private:
  struct PendingDir {
    std::uint64_t first;
    std::string path;
    int depth;
  };
  struct Link {
    std::string path;
    std::uint64_t target;
    std::uint64_t at;
  };

  void Gap(GapKind kind, std::uint64_t offset, std::string reason) {
    ctx_.AddGap(kind, offset, std::move(reason));
  }
  [[nodiscard]] GapKind KindPast(std::uint64_t offset) const {
    return offset > image_.size() && offset <= sb_.full_size ? GapKind::kTruncated
                                                             : GapKind::kCorrupt;
  }
  Status List(const PendingDir& dir, std::vector<PendingDir>& stack);
  Status AddEntry(const Header& header, const std::string& path, int depth,
                  std::vector<PendingDir>& stack);
  Status AddData(const Header& header, const std::string& path);
  Status AddLink(const Link& link);

  ByteView image_;
  const Superblock& sb_;
  ExtractContext& ctx_;
  std::vector<bool> visited_;                                  // headers read, by offset / 16
  std::unordered_map<std::uint64_t, std::string> file_paths_;  // header offset -> path
  std::vector<Link> links_;
  std::uint64_t entries_ = 0;
  bool full_ = false;
};

Status RomfsExtractor::Run() {
  std::vector<PendingDir> stack;
  stack.push_back({sb_.first, "", 0});
  while (!stack.empty() && !full_) {
    IOTMARK_TRY(ctx_.budget().CheckTime());
    const PendingDir dir = std::move(stack.back());
    stack.pop_back();
    IOTMARK_TRY(List(dir, stack));
  }
  // Hard links last, so that every file they may name is out.
  for (const Link& link : links_) IOTMARK_TRY(AddLink(link));
  return Ok();
}

Status RomfsExtractor::List(const PendingDir& dir, std::vector<PendingDir>& stack) {
  const std::string shown = dir.path.empty() ? "the root directory" : Shown(dir.path);
  const std::uint64_t max_entries = ctx_.budget().limits().max_entries;
  for (std::uint64_t at = dir.first; at != 0;) {
    // Each header belongs to one chain: meeting one again is a loop in `next` or a directory
    // pointing into a chain read before. Every header is thus read once.
    if (at / kAlign < visited_.size() && visited_[at / kAlign]) {
      Gap(GapKind::kCorrupt, at,
          "the chain of " + shown +
              " reaches a header read before (a loop); the rest of it "
              "is not read");
      return Ok();
    }
    const auto header = HeaderAt(image_, at);
    if (!header) {
      Gap(KindPast(at + kHeaderSize), std::min<std::uint64_t>(at, image_.size()),
          "a header of " + shown + " lies past the end of the image; the rest of it is missing");
      return Ok();
    }
    visited_[at / kAlign] = true;
    at = header->next;
    if (WordSum(image_.subspan(header->at, std::min(header->data, image_.size()) - header->at)) !=
        0) {
      Gap(GapKind::kCorrupt, header->at,
          "the header of " + Shown(header->name) + " in " + shown + " fails its checksum");
    }
    if (header->name == "." || header->name == "..") continue;
    if (header->name.empty() || header->name.find('/') != std::string_view::npos) {
      Gap(GapKind::kCorrupt, header->at,
          shown + " holds an invalid name " + Shown(header->name) + "; entry skipped");
      continue;
    }
    if (++entries_ > max_entries) {
      Gap(GapKind::kLimit, header->at,
          "more than " + std::to_string(max_entries) +
              " entries; the rest of the tree was not read");
      full_ = true;
      return Ok();
    }
    const std::string path =
        dir.path.empty() ? std::string(header->name) : dir.path + "/" + std::string(header->name);
    IOTMARK_TRY(AddEntry(*header, path, dir.depth + 1, stack));
  }
  return Ok();
}

Status RomfsExtractor::AddEntry(const Header& header, const std::string& path, int depth,
                                std::vector<PendingDir>& stack) {
  EntrySink& sink = ctx_.sink();
  switch (header.type) {
    case kHardlink:
      links_.push_back({path, header.spec, header.at});
      return Ok();
    case kDirectory: {
      IOTMARK_TRY(SinkFailed(sink.AddDirectory(path, header.mode())));
      const std::uint64_t first = header.spec & ~std::uint64_t{kAlign - 1};
      if (first == 0) return Ok();
      if (depth >= kMaxDepth) {
        Gap(GapKind::kLimit, header.at,
            "directory " + Shown(path) + " is nested deeper than " + std::to_string(kMaxDepth) +
                " levels; not entered");
      } else {
        stack.push_back({first, path, depth});
      }
      return Ok();
    }
    case kRegular:
    case kSymlink:
      return AddData(header, path);
    case kBlockDevice:
      return SinkFailed(sink.AddSpecial(path, EntryKind::kBlockDevice, header.mode()));
    case kCharDevice:
      return SinkFailed(sink.AddSpecial(path, EntryKind::kCharDevice, header.mode()));
    case kSocket:
      return SinkFailed(sink.AddSpecial(path, EntryKind::kSocket, header.mode()));
    default:
      return SinkFailed(sink.AddSpecial(path, EntryKind::kFifo, header.mode()));
  }
}

// A file's or a symlink's data: `size` bytes after the header and its name.
Status RomfsExtractor::AddData(const Header& header, const std::string& path) {
  std::uint64_t size = header.size;
  if (header.data > image_.size() || image_.size() - header.data < size) {
    const std::uint64_t available = header.data > image_.size() ? 0 : image_.size() - header.data;
    Gap(KindPast(header.data + size), std::min<std::uint64_t>(header.data, image_.size()),
        Shown(path) + " claims " + std::to_string(size) + " bytes but only " +
            std::to_string(available) + " remain; cut short");
    size = available;
  }
  const ByteView data = image_.subspan(std::min<std::uint64_t>(header.data, image_.size()), size);
  if (header.type == kSymlink) {
    return SinkFailed(ctx_.sink().AddSymlink(path, AsChars(data), header.mode()));
  }
  const Status added = ctx_.sink().AddFile(path, header.mode(), data);
  if (added) file_paths_.emplace(header.at, path);
  return SinkFailed(added);
}

Status RomfsExtractor::AddLink(const Link& link) {
  std::uint64_t target = link.target;
  for (int hop = 0; hop < kMaxLinkHops; ++hop) {
    if (const auto found = file_paths_.find(target); found != file_paths_.end()) {
      return SinkFailed(ctx_.sink().AddHardlink(link.path, found->second));
    }
    const auto header = target % kAlign == 0 ? HeaderAt(image_, target) : std::nullopt;
    if (!header) {
      Gap(GapKind::kCorrupt, link.at,
          "hard link " + Shown(link.path) + " points outside the image; skipped");
      return Ok();
    }
    switch (header->type) {
      case kHardlink:
        target = header->spec;
        continue;
      case kDirectory:
        Gap(GapKind::kCorrupt, link.at,
            "hard link " + Shown(link.path) + " points to a directory; skipped");
        return Ok();
      case kRegular:
      case kSymlink:
        // A file no directory lists: its data is still worth having under the link's name.
        return AddData(*header, link.path);
      default: {
        std::vector<PendingDir> unused;
        return AddEntry(*header, link.path, 0, unused);
      }
    }
  }
  Gap(GapKind::kCorrupt, link.at,
      "hard link " + Shown(link.path) + " starts a chain of links that does not end; skipped");
  return Ok();
}

class RomfsFormat final : public Format {
 public:
  [[nodiscard]] std::string_view name() const override { return "romfs"; }
  [[nodiscard]] std::string_view description() const override {
    return "Linux RomFS read-only filesystem";
  }
  [[nodiscard]] std::span<const Magic> magics() const override { return kMagics; }

  [[nodiscard]] std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const ByteView rest = blob.subspan(start);
    const auto sb = ParseSuperblock(rest);
    if (!sb) return std::nullopt;
    Chunk chunk;
    chunk.offset = start;
    chunk.meta["volume"] = Printable(sb->volume);
    const std::uint64_t span = std::min<std::uint64_t>(sb->full_size, kChecksumSpan);
    if (rest.size() < span) {
      if (!PlausibleHeader(rest, *sb)) return std::nullopt;
      chunk.meta["checksum"] = "unchecked";
    } else if (WordSum(rest.first(span)) == 0) {
      chunk.meta["checksum"] = "ok";
    } else {
      // A failed checksum is forgiven only when everything else holds: the stated size fits
      // the blob and the first header is sound. A "-rom1fs-" string inside a program (BusyBox
      // carries one to recognise romfs) passes neither.
      if (sb->full_size > rest.size() || !PlausibleHeader(rest, *sb)) return std::nullopt;
      chunk.meta["checksum"] = "mismatch";
      chunk.issues.push_back({GapKind::kCorrupt, "romfs superblock checksum over the first " +
                                                     std::to_string(span) +
                                                     " bytes does not add up to zero"});
    }
    chunk.length = sb->full_size;
    if (sb->full_size > rest.size()) {
      chunk.length = rest.size();
      chunk.issues.push_back(
          {GapKind::kTruncated, "romfs image states " + std::to_string(sb->full_size) +
                                    " bytes but only " + std::to_string(rest.size()) + " remain"});
    }
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    const auto sb = ParseSuperblock(chunk);
    if (!sb) return Fail(ErrorCode::kCorruptInput, "romfs superblock does not parse");
    RomfsExtractor extractor(chunk, *sb, ctx);
    return extractor.Run();
  }
};

}  // namespace

std::unique_ptr<const Format> MakeRomfsFormat() { return std::make_unique<RomfsFormat>(); }

}  // namespace iotmark::unpack::formats
