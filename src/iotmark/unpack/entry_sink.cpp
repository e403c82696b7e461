#include "iotmark/unpack/entry_sink.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace iotmark::unpack {

namespace {

constexpr std::size_t kMaxComponents = 256;
constexpr std::size_t kMaxComponentLength = 255;
constexpr std::uint64_t kMaxNamedRefusals = 100;
constexpr std::uint32_t kPermissionBits = 0777;

std::string ErrnoText(int error) { return std::strerror(error); }

// A readable rendering of an untrusted path for a gap message: control bytes escaped, long
// paths shortened.
std::string Printable(std::string_view path) {
  std::string out;
  for (char c : path.substr(0, 200)) {
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
  if (path.size() > 200) out += "...";
  return out;
}

std::string SniffType(ByteView head) {
  if (head.size() >= 4 && head[0] == 0x7f && head[1] == 'E' && head[2] == 'L' && head[3] == 'F') {
    return "elf";
  }
  if (head.size() >= 2 && head[0] == '#' && head[1] == '!') return "script";
  if (head.empty()) return "empty";
  std::size_t printable = 0;
  const std::size_t n = std::min<std::size_t>(head.size(), 512);
  for (std::size_t i = 0; i < n; ++i) {
    const auto b = head[i];
    if (b == 0) return "data";
    if ((b >= 0x20 && b < 0x7f) || b == '\n' || b == '\r' || b == '\t' || b >= 0x80) ++printable;
  }
  return printable * 100 >= n * 95 ? "text" : "data";
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  [[nodiscard]] int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------

void JobRecord::AddEntry(model::InventoryEntry entry) {
  std::lock_guard lock(mutex_);
  entries_.push_back(std::move(entry));
}

void JobRecord::AddGap(model::Gap gap) {
  std::lock_guard lock(mutex_);
  gaps_.push_back(std::move(gap));
}

std::vector<model::InventoryEntry> JobRecord::TakeEntries() {
  std::lock_guard lock(mutex_);
  return std::exchange(entries_, {});
}

std::vector<model::Gap> JobRecord::TakeGaps() {
  std::lock_guard lock(mutex_);
  return std::exchange(gaps_, {});
}

// ---------------------------------------------------------------------------------------------

FileWriter::FileWriter(EntrySink& sink, int fd, std::string path, std::uint32_t mode)
    : sink_(&sink), fd_(fd), path_(std::move(path)), mode_(mode) {}

FileWriter::FileWriter(FileWriter&& other) noexcept
    : sink_(other.sink_),
      fd_(std::exchange(other.fd_, -1)),
      path_(std::move(other.path_)),
      mode_(other.mode_),
      size_(other.size_),
      hash_(std::move(other.hash_)),
      type_(std::move(other.type_)) {}

FileWriter::~FileWriter() { (void)Close(); }

Status FileWriter::Write(ByteView bytes) {
  if (fd_ < 0) return Fail(ErrorCode::kInternal, "write after close: " + path_);
  if (bytes.empty()) return Ok();
  const Limits& limits = sink_->budget_.limits();
  if (size_ + bytes.size() > limits.max_file_bytes) {
    return Fail(ErrorCode::kLimitExceeded, "file " + Printable(path_) + " passed the limit of " +
                                               std::to_string(limits.max_file_bytes) + " bytes");
  }
  IOTMARK_TRY(sink_->budget_.ChargeBytes(bytes.size()));
  if (sink_->ratio_ != nullptr) IOTMARK_TRY(sink_->ratio_->Add(bytes.size()));
  if (size_ == 0) type_ = SniffType(bytes);
  hash_.Update(bytes);
  const std::uint8_t* data = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, data, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Fail(ErrorCode::kIo, "cannot write " + Printable(path_) + ": " + ErrnoText(errno));
    }
    data += n;
    left -= static_cast<std::size_t>(n);
  }
  size_ += bytes.size();
  return Ok();
}

Status FileWriter::Close() {
  if (fd_ < 0) return Ok();
  const int result = ::close(std::exchange(fd_, -1));
  sink_->Record(model::InventoryEntry{.path = path_,
                                      .kind = model::EntryKind::kFile,
                                      .size = size_,
                                      .mode = mode_,
                                      .type = type_.empty() ? "empty" : type_,
                                      .sha256 = hash_.FinishHex(),
                                      .link_target = {},
                                      .materialized = true});
  sink_->AddWritten(path_);
  if (result != 0) return Fail(ErrorCode::kIo, "cannot close " + Printable(path_));
  return Ok();
}

// ---------------------------------------------------------------------------------------------

EntrySink::EntrySink(int dir_fd, std::string prefix, Budget& budget, RatioGuard* ratio,
                     JobRecord& record, std::string blob, std::string format)
    : dir_fd_(dir_fd),
      prefix_(std::move(prefix)),
      budget_(budget),
      ratio_(ratio),
      record_(record),
      blob_(std::move(blob)),
      format_(std::move(format)) {}

EntrySink::~EntrySink() {
  Finish();
  if (dir_fd_ >= 0) ::close(dir_fd_);
}

void EntrySink::Finish() {
  std::lock_guard lock(mutex_);
  if (finished_) return;
  finished_ = true;
  if (refused_ > kMaxNamedRefusals) {
    record_.AddGap(model::Gap{
        model::GapKind::kUnsafeEntry, blob_, 0, format_,
        std::to_string(refused_ - kMaxNamedRefusals) + " more unsafe entries were refused"});
  }
  if (absolute_paths_ > 0) {
    record_.AddGap(model::Gap{model::GapKind::kUnsafeEntry, blob_, 0, format_,
                              std::to_string(absolute_paths_) +
                                  " entries had absolute paths; they were placed under " +
                                  (prefix_.empty() ? std::string(".") : prefix_)});
  }
}

tl::unexpected<Error> EntrySink::Refuse(std::string_view path, std::string reason) {
  {
    // A crafted archive can hold millions of bad entries: the first ones are named, the rest
    // counted in one summary gap (Finish()).
    std::lock_guard lock(mutex_);
    if (++refused_ > kMaxNamedRefusals) {
      return Fail(ErrorCode::kInvalidArgument, "unsafe entry '" + Printable(path) + "': " + reason);
    }
  }
  record_.AddGap(model::Gap{model::GapKind::kUnsafeEntry, blob_, 0, format_,
                            "entry '" + Printable(path) + "' refused: " + reason});
  return Fail(ErrorCode::kInvalidArgument, "unsafe entry '" + Printable(path) + "': " + reason);
}

void EntrySink::Record(model::InventoryEntry entry) { record_.AddEntry(std::move(entry)); }

void EntrySink::AddWritten(std::string path) {
  std::lock_guard lock(mutex_);
  written_.push_back(std::move(path));
}

std::vector<std::string> EntrySink::written_files() const {
  std::lock_guard lock(mutex_);
  return written_;
}

Result<EntrySink::Placement> EntrySink::Place(std::string_view path) {
  IOTMARK_TRY(budget_.CheckTime());
  if (path.find('\0') != std::string_view::npos) return Refuse(path, "name contains a NUL byte");
  if (path.starts_with('/')) {
    std::lock_guard lock(mutex_);
    ++absolute_paths_;
  }
  std::vector<std::string_view> parts;
  std::size_t pos = 0;
  while (pos <= path.size()) {
    const std::size_t slash = std::min(path.find('/', pos), path.size());
    const std::string_view part = path.substr(pos, slash - pos);
    pos = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") return Refuse(path, "'..' would leave the extraction directory");
    if (part.size() > kMaxComponentLength) return Refuse(path, "a name is longer than 255 bytes");
    parts.push_back(part);
  }
  if (parts.empty()) return Refuse(path, "empty name");
  if (parts.size() > kMaxComponents) return Refuse(path, "more than 256 directory levels");

  Placement placement;
  Fd dir(::fcntl(dir_fd_, F_DUPFD_CLOEXEC, 0));
  if (dir.get() < 0) return Fail(ErrorCode::kIo, "cannot duplicate a directory handle");
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    const std::string name(parts[i]);
    int fd = ::openat(dir.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
      if (::mkdirat(dir.get(), name.c_str(), 0755) != 0 && errno != EEXIST) {
        return Fail(ErrorCode::kIo,
                    "cannot create directory for '" + Printable(path) + "': " + ErrnoText(errno));
      }
      IOTMARK_TRY(budget_.ChargeEntry());
      fd = ::openat(dir.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) {
      if (errno == ELOOP || errno == ENOTDIR) {
        return Refuse(path, "'" + Printable(name) + "' on its way is a symlink or a file");
      }
      return Fail(ErrorCode::kIo,
                  "cannot open directory for '" + Printable(path) + "': " + ErrnoText(errno));
    }
    dir = Fd(fd);
    placement.relative += name;
    placement.relative += '/';
  }
  placement.name = std::string(parts.back());
  placement.relative += placement.name;
  placement.parent_fd = dir.release();
  return placement;
}

namespace {

// Makes room for a new entry named `name`: an earlier entry of the same name is replaced (the
// later one wins, as in tar), unless it is a directory.
Status ClearName(int parent_fd, const std::string& name, std::string_view shown) {
  struct stat st {};
  if (::fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return Ok();
  if (S_ISDIR(st.st_mode)) {
    return Fail(ErrorCode::kInvalidArgument,
                "'" + Printable(shown) + "' already exists as a directory");
  }
  if (::unlinkat(parent_fd, name.c_str(), 0) != 0) {
    return Fail(ErrorCode::kIo, "cannot replace '" + Printable(shown) + "': " + ErrnoText(errno));
  }
  return Ok();
}

}  // namespace

Status EntrySink::AddDirectory(std::string_view path, std::uint32_t mode) {
  auto placed = Place(path);
  if (!placed) return tl::unexpected(placed.error());
  Fd parent(placed->parent_fd);
  const std::string relative = prefix_ + "/" + placed->relative;
  struct stat st {};
  if (::fstatat(parent.get(), placed->name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      return Refuse(path, "a non-directory of that name exists (a link or a file)");
    }
  } else {
    if (::mkdirat(parent.get(), placed->name.c_str(), 0700) != 0) {
      return Fail(ErrorCode::kIo,
                  "cannot create directory '" + Printable(path) + "': " + ErrnoText(errno));
    }
    IOTMARK_TRY(budget_.ChargeEntry());
  }
  // Owner keeps full access so the rest of the pipeline can read and clean up the tree.
  if (::fchmodat(parent.get(), placed->name.c_str(), (mode & kPermissionBits) | 0700, 0) != 0) {
    return Fail(ErrorCode::kIo, "cannot set the mode of '" + Printable(path) + "'");
  }
  Record(model::InventoryEntry{.path = relative,
                               .kind = model::EntryKind::kDirectory,
                               .size = 0,
                               .mode = mode,
                               .type = {},
                               .sha256 = {},
                               .link_target = {},
                               .materialized = true});
  return Ok();
}

Result<FileWriter> EntrySink::CreateFile(std::string_view path, std::uint32_t mode) {
  auto placed = Place(path);
  if (!placed) return tl::unexpected(placed.error());
  Fd parent(placed->parent_fd);
  if (auto cleared = ClearName(parent.get(), placed->name, path); !cleared) {
    if (cleared.error().code == ErrorCode::kInvalidArgument) {
      return Refuse(path, cleared.error().message);
    }
    return tl::unexpected(cleared.error());
  }
  IOTMARK_TRY(budget_.ChargeEntry());
  // O_EXCL|O_NOFOLLOW: never write through a link, never into something that appeared meanwhile.
  const int fd = ::openat(parent.get(), placed->name.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                          (mode & kPermissionBits) | 0600);
  if (fd < 0) {
    return Fail(ErrorCode::kIo, "cannot create '" + Printable(path) + "': " + ErrnoText(errno));
  }
  // Set explicitly: the umask must not decide, and setuid/setgid/sticky never reach the disk.
  if (::fchmod(fd, (mode & kPermissionBits) | 0600) != 0) {
    ::close(fd);
    return Fail(ErrorCode::kIo, "cannot set the mode of '" + Printable(path) + "'");
  }
  return FileWriter(*this, fd, prefix_ + "/" + placed->relative, mode);
}

Status EntrySink::AddFile(std::string_view path, std::uint32_t mode, ByteView content) {
  auto writer = CreateFile(path, mode);
  if (!writer) return tl::unexpected(writer.error());
  IOTMARK_TRY(writer->Write(content));
  return writer->Close();
}

Status EntrySink::AddSymlink(std::string_view path, std::string_view target, std::uint32_t mode) {
  if (target.empty() || target.find('\0') != std::string_view::npos || target.size() > 4095) {
    return Refuse(path, "symlink target is empty, too long or has a NUL byte");
  }
  auto placed = Place(path);
  if (!placed) return tl::unexpected(placed.error());
  Fd parent(placed->parent_fd);
  if (auto cleared = ClearName(parent.get(), placed->name, path); !cleared) {
    return Refuse(path, cleared.error().message);
  }
  IOTMARK_TRY(budget_.ChargeEntry());
  // The link is created as stated (so the tree looks like the device's), and recorded; nothing
  // in iotmark ever follows it, and later entries cannot be written through it (see Place()).
  const std::string target_text(target);
  if (::symlinkat(target_text.c_str(), parent.get(), placed->name.c_str()) != 0) {
    return Fail(ErrorCode::kIo,
                "cannot create symlink '" + Printable(path) + "': " + ErrnoText(errno));
  }
  Record(model::InventoryEntry{.path = prefix_ + "/" + placed->relative,
                               .kind = model::EntryKind::kSymlink,
                               .size = target.size(),
                               .mode = mode,
                               .type = {},
                               .sha256 = {},
                               .link_target = target_text,
                               .materialized = true});
  return Ok();
}

Status EntrySink::AddHardlink(std::string_view path, std::string_view existing) {
  auto source = Place(existing);
  if (!source) return tl::unexpected(source.error());
  Fd source_parent(source->parent_fd);
  struct stat st {};
  if (::fstatat(source_parent.get(), source->name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
      !S_ISREG(st.st_mode)) {
    return Refuse(path, "hard link to '" + Printable(existing) +
                            "', which is not a regular file extracted before it");
  }
  auto placed = Place(path);
  if (!placed) return tl::unexpected(placed.error());
  Fd parent(placed->parent_fd);
  if (auto cleared = ClearName(parent.get(), placed->name, path); !cleared) {
    return Refuse(path, cleared.error().message);
  }
  IOTMARK_TRY(budget_.ChargeEntry());
  // linkat without AT_SYMLINK_FOLLOW links the file itself; both ends are inside the sink.
  if (::linkat(source_parent.get(), source->name.c_str(), parent.get(), placed->name.c_str(), 0) !=
      0) {
    return Fail(ErrorCode::kIo,
                "cannot create hard link '" + Printable(path) + "': " + ErrnoText(errno));
  }
  Record(model::InventoryEntry{.path = prefix_ + "/" + placed->relative,
                               .kind = model::EntryKind::kHardlink,
                               .size = static_cast<std::uint64_t>(st.st_size),
                               .mode = st.st_mode & 07777,
                               .type = {},
                               .sha256 = {},
                               .link_target = prefix_ + "/" + source->relative,
                               .materialized = true});
  return Ok();
}

Status EntrySink::AddSpecial(std::string_view path, model::EntryKind kind, std::uint32_t mode) {
  auto placed = Place(path);
  if (!placed) return tl::unexpected(placed.error());
  Fd parent(placed->parent_fd);
  IOTMARK_TRY(budget_.ChargeEntry());
  Record(model::InventoryEntry{.path = prefix_ + "/" + placed->relative,
                               .kind = kind,
                               .size = 0,
                               .mode = mode,
                               .type = {},
                               .sha256 = {},
                               .link_target = {},
                               .materialized = false});
  return Ok();
}

}  // namespace iotmark::unpack
