// EntrySink: the only way extracted entries reach the disk. Paths are taken as an archive states
// them and placed strictly inside the sink's directory: no "..", absolute paths made relative,
// no write through a symlink, no device nodes, no setuid bits on disk. Everything is hashed as
// it is written and recorded in the inventory.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "iotmark/base/bytes.hpp"
#include "iotmark/base/limits.hpp"
#include "iotmark/base/result.hpp"
#include "iotmark/base/sha256.hpp"
#include "iotmark/model/extraction.hpp"

namespace iotmark::unpack {

class EntrySink;

// Collects inventory entries and gaps from every sink of one job (thread-safe).
class JobRecord {
 public:
  void AddEntry(model::InventoryEntry entry);
  void AddGap(model::Gap gap);
  std::vector<model::InventoryEntry> TakeEntries();
  std::vector<model::Gap> TakeGaps();

 private:
  std::mutex mutex_;
  std::vector<model::InventoryEntry> entries_;
  std::vector<model::Gap> gaps_;
};

// Streams one regular file into the tree. Close() (or the destructor) records it.
class FileWriter {
 public:
  FileWriter(FileWriter&& other) noexcept;
  FileWriter& operator=(FileWriter&&) = delete;
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;
  ~FileWriter();

  // Appends bytes; fails with kLimitExceeded when a size, ratio or time limit is hit.
  Status Write(ByteView bytes);
  Status Close();
  [[nodiscard]] std::uint64_t size() const { return size_; }

 private:
  friend class EntrySink;
  FileWriter(EntrySink& sink, int fd, std::string path, std::uint32_t mode);

  EntrySink* sink_;
  int fd_;
  std::string path_;  // relative to the output root
  std::uint32_t mode_;
  std::uint64_t size_ = 0;
  Sha256 hash_;
  std::string type_;
};

class EntrySink {
 public:
  // `dir_fd` is an open directory (the sink takes ownership); `prefix` is its path relative to
  // the output root, used in the inventory. `ratio` may be null.
  EntrySink(int dir_fd, std::string prefix, Budget& budget, RatioGuard* ratio, JobRecord& record,
            std::string blob, std::string format);
  ~EntrySink();
  EntrySink(const EntrySink&) = delete;
  EntrySink& operator=(const EntrySink&) = delete;

  // Each Add* returns kInvalidArgument for an entry it refused as unsafe (and records a gap
  // naming it); kLimitExceeded and kIo mean the extractor should stop (ShouldStop()).
  Status AddDirectory(std::string_view path, std::uint32_t mode);
  Result<FileWriter> CreateFile(std::string_view path, std::uint32_t mode);
  Status AddFile(std::string_view path, std::uint32_t mode, ByteView content);
  Status AddSymlink(std::string_view path, std::string_view target, std::uint32_t mode = 0777);
  // `existing` is a path previously added to this sink, in the archive's own spelling.
  Status AddHardlink(std::string_view path, std::string_view existing);
  // Device nodes, FIFOs and sockets are recorded in the inventory and never created.
  Status AddSpecial(std::string_view path, model::EntryKind kind, std::uint32_t mode);

  // Regular files written so far (relative to the output root), in the order written; hard
  // links are not repeated here.
  [[nodiscard]] std::vector<std::string> written_files() const;
  [[nodiscard]] const std::string& prefix() const { return prefix_; }
  // Records summary gaps (e.g. how many absolute paths were made relative). Idempotent.
  void Finish();

 private:
  friend class FileWriter;
  struct Placement {
    int parent_fd = -1;    // owned by the caller of Place; close it
    std::string name;      // last component
    std::string relative;  // sanitised path relative to the sink
  };
  // Sanitises `path` and opens (creating) its parent directories without following links.
  Result<Placement> Place(std::string_view path);
  tl::unexpected<Error> Refuse(std::string_view path, std::string reason);
  void Record(model::InventoryEntry entry);
  void AddWritten(std::string path);

  int dir_fd_;
  std::string prefix_;
  Budget& budget_;
  RatioGuard* ratio_;
  JobRecord& record_;
  std::string blob_;
  std::string format_;
  mutable std::mutex mutex_;
  std::vector<std::string> written_;
  std::uint64_t absolute_paths_ = 0;
  std::uint64_t refused_ = 0;
  bool finished_ = false;
};

// True for errors after which an extractor must stop rather than skip to the next entry.
inline bool ShouldStop(const Error& error) {
  return error.code == ErrorCode::kLimitExceeded || error.code == ErrorCode::kIo;
}

}  // namespace iotmark::unpack
