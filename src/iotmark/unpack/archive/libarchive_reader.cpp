#include "iotmark/unpack/archive/libarchive_reader.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <locale.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace iotmark::unpack::archive {

std::string_view ToString(ArchiveFormat format) {
  switch (format) {
    case ArchiveFormat::kTar:
      return "tar";
    case ArchiveFormat::kCpio:
      return "cpio";
    case ArchiveFormat::kZip:
      return "zip";
    case ArchiveFormat::kSevenZip:
      return "7z";
    case ArchiveFormat::kAr:
      return "ar";
    case ArchiveFormat::kIso9660:
      return "iso9660";
  }
  return "archive";
}

namespace {

using model::GapKind;

// libarchive reports ARCHIVE_FAILED per header; a damaged archive could make it do so forever.
constexpr std::uint64_t kMaxConsecutiveFailures = 64;
constexpr std::uint64_t kMaxRetries = 16;
constexpr std::size_t kZeroBlockSize = 64 * 1024;

// An untrusted name made readable for a gap message: control bytes escaped, long names cut.
std::string Printable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 200)) {
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
  if (text.size() > 200) out += "...";
  return out;
}

// libarchive's messages are the only account of what went wrong; sort them into gap kinds.
GapKind KindOf(std::string_view message) {
  const auto has = [&](std::string_view word) { return message.find(word) != std::string::npos; };
  if (has("ncrypt") || has("assphrase") || has("ecrypt")) return GapKind::kEncrypted;
  if (has("runcat") || has("remature") || has("nexpected end") || has("nexpected EOF")) {
    return GapKind::kTruncated;
  }
  if (has("nsupported") || has("not supported")) return GapKind::kUnsupported;
  return GapKind::kCorrupt;
}

// The spelling-independent form of an archive path ("./a//b" and "a/b" name one entry), used to
// match hard-link targets with the entries they name.
std::string LinkKey(std::string_view path) {
  std::string key;
  std::size_t pos = 0;
  while (pos <= path.size()) {
    const std::size_t slash = std::min(path.find('/', pos), path.size());
    const std::string_view part = path.substr(pos, slash - pos);
    pos = slash + 1;
    if (part.empty() || part == ".") continue;
    if (!key.empty()) key += '/';
    key += part;
  }
  return key;
}

// The raw bytes of a name when libarchive has them, else its UTF-8 form.
const char* Either(const char* raw, const char* utf8) {
  if (raw != nullptr && raw[0] != '\0') return raw;
  if (utf8 != nullptr && utf8[0] != '\0') return utf8;
  return nullptr;
}

// libarchive converts names into the current locale's charset. A UTF-8 locale for this thread
// only keeps UTF-8 and UTF-16 names (zip, 7z, Joliet) intact, while raw tar and cpio names pass
// through unconverted; the process-wide locale is left alone.
class Utf8LocaleScope {
 public:
  Utf8LocaleScope() {
    static const locale_t utf8 = ::newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
    if (utf8 != static_cast<locale_t>(0)) {
      previous_ = ::uselocale(utf8);
      active_ = true;
    }
  }
  ~Utf8LocaleScope() {
    if (active_) ::uselocale(previous_);
  }
  Utf8LocaleScope(const Utf8LocaleScope&) = delete;
  Utf8LocaleScope& operator=(const Utf8LocaleScope&) = delete;

 private:
  locale_t previous_ = static_cast<locale_t>(0);
  bool active_ = false;
};

struct ArchiveCloser {
  void operator()(struct archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<struct archive, ArchiveCloser>;

void EnableFormat(struct archive* a, ArchiveFormat format) {
  switch (format) {
    case ArchiveFormat::kTar:
      archive_read_support_format_tar(a);
      break;
    case ArchiveFormat::kCpio:
      archive_read_support_format_cpio(a);
      break;
    // Both the seekable reader (central directory) and the streaming one (local headers, for
    // zips whose end is missing); libarchive lets the seekable one win when it can.
    case ArchiveFormat::kZip:
      archive_read_support_format_zip(a);
      break;
    case ArchiveFormat::kSevenZip:
      archive_read_support_format_7zip(a);
      break;
    case ArchiveFormat::kAr:
      archive_read_support_format_ar(a);
      break;
    case ArchiveFormat::kIso9660:
      archive_read_support_format_iso9660(a);
      break;
  }
}

class Reader {
 public:
  Reader(struct archive* a, ArchiveFormat format, ExtractContext& ctx, bool truncated)
      : a_(a), format_(format), ctx_(ctx), sink_(ctx.sink()), truncated_(truncated) {}

  Status Run();

 private:
  // A file stored under several names whose data is still to come: newc and crc cpio keep the
  // data on the last link only, and libarchive names the first one as every later link's target.
  struct PendingLink {
    std::string path;
    std::uint32_t mode = 0;
  };

  Status Entry(struct archive_entry* entry);
  Status Hardlink(struct archive_entry* entry, const std::string& path, const std::string& target,
                  std::uint32_t mode);
  Status WriteFile(struct archive_entry* entry, const std::string& path, std::uint32_t mode);
  Status FlushPendingLinks();
  // Turns a sink failure into a gap and Ok, unless the sink says to stop.
  Status Check(Status status, std::string_view path);
  void AddGap(GapKind kind, std::string reason);
  std::string Message() const {
    const char* text = archive_error_string(a_);
    return text != nullptr ? Printable(text) : std::string("libarchive gave no reason");
  }

  struct archive* a_;
  ArchiveFormat format_;
  ExtractContext& ctx_;
  EntrySink& sink_;
  bool truncated_;
  bool fatal_ = false;
  std::uint64_t headers_ = 0;
  std::map<std::string, std::vector<PendingLink>> pending_;  // by LinkKey of the first name
  std::map<std::string, std::string> link_data_;  // LinkKey of a first name -> where the data went
  std::map<std::string, std::uint64_t> sizes_;    // LinkKey -> size of the file written there
};

void Reader::AddGap(GapKind kind, std::string reason) {
  const la_int64_t position = archive_read_header_position(a_);
  ctx_.AddGap(kind, position > 0 ? static_cast<std::uint64_t>(position) : 0, std::move(reason));
}

Status Reader::Check(Status status, std::string_view path) {
  if (status) return Ok();
  if (ShouldStop(status.error())) return status;
  // kInvalidArgument: the sink refused the entry and has recorded why.
  if (status.error().code != ErrorCode::kInvalidArgument) {
    AddGap(GapKind::kIo, "entry '" + Printable(path) + "': " + status.error().message);
  }
  return Ok();
}

Status Reader::Run() {
  const Limits& limits = ctx_.budget().limits();
  std::uint64_t failures = 0;
  std::uint64_t retries = 0;
  while (!fatal_) {
    IOTMARK_TRY(ctx_.budget().CheckTime());
    struct archive_entry* entry = nullptr;
    const int r = archive_read_next_header(a_, &entry);
    if (r == ARCHIVE_EOF) break;
    if (r == ARCHIVE_RETRY) {
      if (++retries > kMaxRetries) {
        AddGap(GapKind::kCorrupt, "reading stopped: " + Message());
        break;
      }
      continue;
    }
    if (r == ARCHIVE_FATAL) {
      if (headers_ == 0) {
        IOTMARK_TRY(FlushPendingLinks());
        // An archive whose directory is encrypted cannot be read without its password.
        const ErrorCode code = KindOf(Message()) == GapKind::kEncrypted
                                   ? ErrorCode::kUnsupportedFormat
                                   : ErrorCode::kCorruptInput;
        return Fail(code, std::string(ToString(format_)) + ": " + Message());
      }
      AddGap(truncated_ ? GapKind::kTruncated : KindOf(Message()),
             "reading stopped after " + std::to_string(headers_) + " entries: " + Message());
      break;
    }
    if (r == ARCHIVE_FAILED) {
      AddGap(KindOf(Message()), "an entry could not be read: " + Message());
      if (++failures > kMaxConsecutiveFailures) break;
      continue;
    }
    failures = 0;
    retries = 0;
    if (++headers_ > limits.max_entries) {
      AddGap(GapKind::kLimit, "more than " + std::to_string(limits.max_entries) +
                                  " entries; the rest of the archive was not read");
      break;
    }
    if (headers_ == 1) {
      if (const char* name = archive_format_name(a_); name != nullptr) {
        ctx_.SetMeta("variant", name);
      }
    }
    const bool warned = r == ARCHIVE_WARN;
    const std::string warning = warned ? Message() : std::string();
    IOTMARK_TRY(Entry(entry));
    if (warned) {
      const char* name = Either(archive_entry_pathname(entry), archive_entry_pathname_utf8(entry));
      AddGap(KindOf(warning), "entry '" + Printable(name != nullptr ? name : "") + "': " + warning);
    }
  }
  return FlushPendingLinks();
}

Status Reader::Entry(struct archive_entry* entry) {
  const char* name = Either(archive_entry_pathname(entry), archive_entry_pathname_utf8(entry));
  if (name == nullptr) {
    AddGap(GapKind::kCorrupt, "an entry without a readable name was skipped");
    return Ok();
  }
  const std::string path(name);
  // GNU ar's symbol index ("/", "/SYM64/") and long-name table ("//") are not members.
  if (format_ == ArchiveFormat::kAr && (path == "/" || path == "//" || path == "/SYM64/")) {
    return Ok();
  }
  const auto mode = static_cast<std::uint32_t>(archive_entry_perm(entry)) & 07777;
  if (archive_entry_is_encrypted(entry) != 0) {
    AddGap(GapKind::kEncrypted,
           "entry '" + Printable(path) + "' is encrypted; its content was not extracted");
    return Ok();
  }
  if (const char* target =
          Either(archive_entry_hardlink(entry), archive_entry_hardlink_utf8(entry));
      target != nullptr) {
    return Hardlink(entry, path, target, mode);
  }
  switch (archive_entry_filetype(entry)) {
    case AE_IFDIR:
      // "./" or "/": the archive's root is the sink's directory itself.
      if (LinkKey(path).empty()) return Ok();
      return Check(sink_.AddDirectory(path, mode), path);
    case AE_IFLNK: {
      const char* target = Either(archive_entry_symlink(entry), archive_entry_symlink_utf8(entry));
      // An empty target is refused by the sink, which records the gap.
      return Check(sink_.AddSymlink(path, target != nullptr ? target : "", mode), path);
    }
    case AE_IFCHR:
      return Check(sink_.AddSpecial(path, model::EntryKind::kCharDevice, mode), path);
    case AE_IFBLK:
      return Check(sink_.AddSpecial(path, model::EntryKind::kBlockDevice, mode), path);
    case AE_IFIFO:
      return Check(sink_.AddSpecial(path, model::EntryKind::kFifo, mode), path);
    case AE_IFSOCK:
      return Check(sink_.AddSpecial(path, model::EntryKind::kSocket, mode), path);
    case AE_IFREG:
    case 0: {
      const bool sized = archive_entry_size_is_set(entry) != 0;
      if (format_ == ArchiveFormat::kCpio && sized && archive_entry_size(entry) == 0 &&
          archive_entry_nlink(entry) > 1) {
        pending_[LinkKey(path)].push_back({path, mode});
        return Ok();
      }
      return WriteFile(entry, path, mode);
    }
    default:
      AddGap(GapKind::kUnsupported, "entry '" + Printable(path) + "' has an unknown file type");
      return Ok();
  }
}

Status Reader::Hardlink(struct archive_entry* entry, const std::string& path,
                        const std::string& target, std::uint32_t mode) {
  const std::string key = LinkKey(target);
  const bool has_data = archive_entry_size_is_set(entry) != 0 && archive_entry_size(entry) > 0;
  if (auto pending = pending_.find(key); pending != pending_.end()) {
    if (!has_data) {
      pending->second.push_back({path, mode});
      return Ok();
    }
    // The link that carries the data: write it, then link the names seen before to it.
    std::vector<PendingLink> names = std::move(pending->second);
    pending_.erase(pending);
    IOTMARK_TRY(WriteFile(entry, path, mode));
    link_data_[key] = path;
    for (const PendingLink& name : names) {
      IOTMARK_TRY(Check(sink_.AddHardlink(name.path, path), name.path));
    }
    return Ok();
  }
  std::string existing = target;
  if (auto moved = link_data_.find(key); moved != link_data_.end()) existing = moved->second;
  if (has_data) {
    // Old cpio formats repeat the data on every link. Data that differs in size from the file
    // it names is not the same file: keep it as a file of its own rather than lose it.
    const auto known = sizes_.find(LinkKey(existing));
    if (known == sizes_.end() ||
        known->second != static_cast<std::uint64_t>(archive_entry_size(entry))) {
      return WriteFile(entry, path, mode);
    }
  }
  return Check(sink_.AddHardlink(path, existing), path);
}

Status Reader::WriteFile(struct archive_entry* entry, const std::string& path, std::uint32_t mode) {
  auto writer = sink_.CreateFile(path, mode);
  if (!writer) return Check(tl::unexpected(writer.error()), path);
  static const std::array<std::uint8_t, kZeroBlockSize> kZeros{};
  // Holes of sparse files are written out as zeros (the sink charges them like any output).
  const auto fill = [&](std::uint64_t bytes) -> Status {
    while (bytes > 0) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(bytes, kZeros.size()));
      IOTMARK_TRY(writer->Write(ByteView(kZeros.data(), n)));
      bytes -= n;
    }
    return Ok();
  };
  std::uint64_t at = 0;
  Status written = Ok();
  while (written) {
    const void* buffer = nullptr;
    std::size_t size = 0;
    la_int64_t offset = 0;
    const int r = archive_read_data_block(a_, &buffer, &size, &offset);
    if (r == ARCHIVE_EOF) {
      // A sparse file may end in a hole.
      if (archive_entry_sparse_count(entry) > 0 && archive_entry_size_is_set(entry) != 0 &&
          archive_entry_size(entry) > 0 &&
          static_cast<std::uint64_t>(archive_entry_size(entry)) > at) {
        written = fill(static_cast<std::uint64_t>(archive_entry_size(entry)) - at);
      }
      break;
    }
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      const std::string message = Message();
      GapKind kind = KindOf(message);
      // libarchive often says nothing when the input simply ends inside an entry's data.
      const bool silent = archive_error_string(a_) == nullptr;
      const bool short_data = archive_entry_size_is_set(entry) != 0 &&
                              archive_entry_size(entry) > 0 &&
                              static_cast<std::uint64_t>(archive_entry_size(entry)) > at;
      if (short_data && ((silent && r == ARCHIVE_FATAL) || truncated_)) {
        kind = GapKind::kTruncated;
      }
      const std::string reason =
          silent ? std::string(short_data && r == ARCHIVE_FATAL ? "the archive ends inside its data"
                                                                : "its data cannot be read")
                 : message;
      AddGap(kind, "entry '" + Printable(path) + "': " + reason + " (" + std::to_string(at) +
                       " bytes extracted)");
      if (r == ARCHIVE_FATAL) fatal_ = true;
      break;
    }
    if (offset < 0 || static_cast<std::uint64_t>(offset) < at) {
      AddGap(GapKind::kCorrupt,
             "entry '" + Printable(path) + "': data blocks out of order; the rest was skipped");
      break;
    }
    written = fill(static_cast<std::uint64_t>(offset) - at);
    if (written && size > 0) {
      written = writer->Write(ByteView(static_cast<const std::uint8_t*>(buffer), size));
    }
    at = static_cast<std::uint64_t>(offset) + size;
    if (r == ARCHIVE_WARN) {
      AddGap(KindOf(Message()), "entry '" + Printable(path) + "': " + Message());
      break;
    }
  }
  const std::uint64_t size = writer->size();
  Status closed = writer->Close();
  sizes_[LinkKey(path)] = size;
  if (!written) {
    IOTMARK_TRY(Check(written, path));
    return Ok();
  }
  return Check(closed, path);
}

Status Reader::FlushPendingLinks() {
  // Links whose data never came: the file is empty (or its last link was lost to damage).
  auto pending = std::exchange(pending_, {});
  for (auto& [key, names] : pending) {
    const PendingLink& first = names.front();
    Status status = sink_.AddFile(first.path, first.mode, {});
    IOTMARK_TRY(Check(status, first.path));
    if (!status) continue;
    for (std::size_t i = 1; i < names.size(); ++i) {
      IOTMARK_TRY(Check(sink_.AddHardlink(names[i].path, first.path), names[i].path));
    }
  }
  return Ok();
}

}  // namespace

Status ReadArchive(ByteView chunk, ArchiveFormat format, ExtractContext& ctx, bool truncated) {
  Utf8LocaleScope locale;
  ArchivePtr a(archive_read_new());
  if (!a) return Fail(ErrorCode::kInternal, "libarchive: cannot allocate a reader");
  EnableFormat(a.get(), format);
  if (archive_read_open_memory(a.get(), chunk.data(), chunk.size()) != ARCHIVE_OK) {
    const char* text = archive_error_string(a.get());
    return Fail(ErrorCode::kCorruptInput,
                std::string(ToString(format)) + ": " +
                    (text != nullptr ? Printable(text) : std::string("not readable")));
  }
  Reader reader(a.get(), format, ctx, truncated);
  return reader.Run();
}

}  // namespace iotmark::unpack::archive
