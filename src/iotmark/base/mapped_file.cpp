#include "iotmark/base/mapped_file.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace iotmark {

namespace {
std::string ErrnoText() { return std::strerror(errno); }
}  // namespace

Result<MappedFile> MappedFile::Open(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    return Fail(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                "cannot open " + path.string() + ": " + ErrnoText());
  }
  return FromFd(fd, path.string());
}

Result<MappedFile> MappedFile::OpenAt(int dir_fd, const std::string& name) {
  // openat2 refuses any symlink and any `..` on the way, not only in the last component, so a
  // path from a crafted tree cannot leave the directory; kernels before 5.6 lack it.
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(::syscall(SYS_openat2, dir_fd, name.c_str(), &how, sizeof how));
  if (fd < 0 && errno == ENOSYS) {
    fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  }
  if (fd < 0) return Fail(ErrorCode::kIo, "cannot open " + name + ": " + ErrnoText());
  return FromFd(fd, name);
}

Result<MappedFile> MappedFile::FromFd(int fd, const std::string& what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const std::string text = ErrnoText();
    ::close(fd);
    return Fail(ErrorCode::kIo, "cannot stat " + what + ": " + text);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Fail(ErrorCode::kInvalidArgument, what + " is not a regular file");
  }
  MappedFile file;
  file.size_ = static_cast<std::size_t>(st.st_size);
  if (file.size_ > 0) {
    void* data = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (data == MAP_FAILED) {
      const std::string text = ErrnoText();
      ::close(fd);
      return Fail(ErrorCode::kIo, "cannot map " + what + ": " + text);
    }
    file.data_ = static_cast<const std::uint8_t*>(data);
  }
  ::close(fd);
  return file;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<std::uint8_t*>(data_), size_);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) ::munmap(const_cast<std::uint8_t*>(data_), size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

}  // namespace iotmark
