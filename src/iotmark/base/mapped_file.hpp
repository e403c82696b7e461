// A read-only memory mapping of a file: the unpacker reads every blob through one.
#pragma once

#include <filesystem>

#include "iotmark/base/bytes.hpp"
#include "iotmark/base/result.hpp"

namespace iotmark {

class MappedFile {
 public:
  // Maps `path` read-only. Refuses anything that is not a regular file (devices, FIFOs) so a
  // crafted tree cannot make the reader block or read a device.
  static Result<MappedFile> Open(const std::filesystem::path& path);
  // Same, relative to an open directory, never following a symlink in the last component.
  static Result<MappedFile> OpenAt(int dir_fd, const std::string& name);

  MappedFile() = default;
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  [[nodiscard]] ByteView bytes() const { return {data_, size_}; }

 private:
  static Result<MappedFile> FromFd(int fd, const std::string& what);
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace iotmark
