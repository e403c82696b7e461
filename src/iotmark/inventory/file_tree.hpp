// The unpacked tree as analyzers see it: every inventory entry with its path inside the
// filesystem that holds it ("/etc/passwd"), lookups by that path across every extracted root,
// symlink resolution that never leaves a root, and safe read-only mapping of files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "iotmark/base/mapped_file.hpp"
#include "iotmark/base/result.hpp"
#include "iotmark/model/evidence.hpp"
#include "iotmark/model/extraction.hpp"
#include "iotmark/model/unpack_report.hpp"

namespace iotmark::inventory {

struct TreeFile {
  const model::InventoryEntry* entry = nullptr;
  std::string root;         // the extracted root that holds it: "fw.bin_extract/0x110000.squashfs"
  std::string system_path;  // its path inside that root, with a leading '/'
  std::string root_format;  // the format of that root's chunk: "squashfs", "tar", "" for none
  // Its content was itself unpacked (a filesystem image, a compressed blob): the files it held
  // are in the tree, so content checks skip it rather than count everything twice.
  bool unpacked = false;

  [[nodiscard]] const std::string& path() const { return entry->path; }
  [[nodiscard]] bool is_file() const { return entry->kind == model::EntryKind::kFile; }
};

class FileTree {
 public:
  // `root` is the output directory of an unpack job and `report` its report; both must outlive
  // the tree.
  static Result<FileTree> Open(const std::filesystem::path& root,
                               const model::UnpackReport& report);

  FileTree(FileTree&& other) noexcept;
  FileTree& operator=(FileTree&&) = delete;
  FileTree(const FileTree&) = delete;
  FileTree& operator=(const FileTree&) = delete;
  ~FileTree();

  [[nodiscard]] const std::vector<TreeFile>& files() const { return files_; }
  [[nodiscard]] const model::UnpackReport& report() const { return *report_; }
  [[nodiscard]] const std::filesystem::path& root() const { return root_; }

  // Every entry whose path inside its root is `system_path`, in all roots.
  [[nodiscard]] std::vector<const TreeFile*> FindAll(std::string_view system_path) const;
  // The entry at `system_path` in the same root as `base`, or nullptr.
  [[nodiscard]] const TreeFile* FindInRoot(const TreeFile& base,
                                           std::string_view system_path) const;
  // Follows symlinks (absolute targets are taken relative to the root, at most 40 hops) within
  // `file`'s root; returns the final entry, or nullptr if the chain breaks or loops.
  [[nodiscard]] const TreeFile* Resolve(const TreeFile& file) const;

  // Maps a regular file read-only; refuses anything reached through a symlink or `..`.
  [[nodiscard]] Result<MappedFile> Map(const TreeFile& file) const;

  // Evidence pointing at `file` (and `offset` in it) for `check`.
  [[nodiscard]] model::Evidence EvidenceFor(const TreeFile& file, std::string check,
                                            std::optional<std::uint64_t> offset = std::nullopt,
                                            std::string excerpt = {}) const;

 private:
  FileTree(std::filesystem::path root, const model::UnpackReport& report, int dir_fd);

  std::filesystem::path root_;
  const model::UnpackReport* report_;
  int dir_fd_ = -1;
  std::vector<TreeFile> files_;
  std::multimap<std::string, std::size_t, std::less<>> by_system_path_;
  std::map<std::pair<std::string, std::string>, std::size_t, std::less<>> by_root_and_path_;
};

// Joins a symlink target with the directory of the link, normalising "." and ".."; ".." never
// climbs above "/". Absolute targets start again at "/".
std::string JoinSystemPath(std::string_view link_path, std::string_view target);

}  // namespace iotmark::inventory
