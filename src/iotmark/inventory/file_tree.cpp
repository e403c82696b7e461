#include "iotmark/inventory/file_tree.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace iotmark::inventory {

namespace {

constexpr int kMaxSymlinkHops = 40;

struct Root {
  std::string path;
  std::string format;
};

// Every chunk directory of the extraction tree is a root: files below it have paths relative
// to it that are paths inside the filesystem or archive it held.
void CollectRoots(const model::ExtractionNode& node, std::vector<Root>& roots) {
  if (node.kind == model::ExtractionNode::Kind::kChunk && !node.path.empty()) {
    roots.push_back({node.path, node.format});
  }
  for (const auto& child : node.children) CollectRoots(child, roots);
}

// Blobs whose extracted chunks cover at least half of them: their content lives on in the
// files extracted from them.
void CollectUnpackedBlobs(const model::ExtractionNode& node, std::vector<std::string>& out) {
  if (node.kind == model::ExtractionNode::Kind::kBlob && !node.path.empty()) {
    std::uint64_t covered = 0;
    for (const auto& chunk : node.children) {
      if (chunk.status == model::ChunkStatus::kExtracted ||
          chunk.status == model::ChunkStatus::kPartial) {
        covered += chunk.length;
      }
    }
    if (node.length > 0 && covered * 2 >= node.length) out.push_back(node.path);
  }
  for (const auto& child : node.children) CollectUnpackedBlobs(child, out);
}

bool IsUnder(std::string_view path, std::string_view dir) {
  return path.size() > dir.size() && path.substr(0, dir.size()) == dir && path[dir.size()] == '/';
}

}  // namespace

std::string JoinSystemPath(std::string_view link_path, std::string_view target) {
  std::vector<std::string_view> parts;
  auto push = [&parts](std::string_view text) {
    std::size_t start = 0;
    while (start <= text.size()) {
      const auto end = std::min(text.find('/', start), text.size());
      const auto part = text.substr(start, end - start);
      if (part == "..") {
        if (!parts.empty()) parts.pop_back();
      } else if (!part.empty() && part != ".") {
        parts.push_back(part);
      }
      start = end + 1;
    }
  };
  if (target.empty() || target.front() != '/') {
    const auto slash = link_path.rfind('/');
    push(slash == std::string_view::npos ? std::string_view{} : link_path.substr(0, slash));
  }
  push(target);
  std::string out;
  for (const auto part : parts) {
    out += '/';
    out += part;
  }
  return out.empty() ? "/" : out;
}

Result<FileTree> FileTree::Open(const std::filesystem::path& root,
                                const model::UnpackReport& report) {
  const int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return Fail(ErrorCode::kIo,
                "cannot open the unpacked tree " + root.string() + ": " + std::strerror(errno));
  }
  return FileTree(root, report, fd);
}

FileTree::FileTree(std::filesystem::path root, const model::UnpackReport& report, int dir_fd)
    : root_(std::move(root)), report_(&report), dir_fd_(dir_fd) {
  std::vector<Root> roots;
  CollectRoots(report.tree, roots);
  // Longest first, so the innermost root of a nested archive wins.
  std::sort(roots.begin(), roots.end(),
            [](const Root& a, const Root& b) { return a.path.size() > b.path.size(); });
  std::vector<std::string> unpacked;
  CollectUnpackedBlobs(report.tree, unpacked);
  std::sort(unpacked.begin(), unpacked.end());
  files_.reserve(report.inventory.size());
  for (const auto& entry : report.inventory) {
    TreeFile file;
    file.entry = &entry;
    file.unpacked = std::binary_search(unpacked.begin(), unpacked.end(), entry.path);
    const auto it = std::find_if(roots.begin(), roots.end(),
                                 [&](const Root& r) { return IsUnder(entry.path, r.path); });
    if (it != roots.end()) {
      file.root = it->path;
      file.root_format = it->format;
      file.system_path = entry.path.substr(it->path.size());
    } else {
      file.system_path = "/" + entry.path;
    }
    files_.push_back(std::move(file));
  }
  for (std::size_t i = 0; i < files_.size(); ++i) {
    by_system_path_.emplace(files_[i].system_path, i);
    by_root_and_path_.emplace(std::make_pair(files_[i].root, files_[i].system_path), i);
  }
}

FileTree::FileTree(FileTree&& other) noexcept
    : root_(std::move(other.root_)),
      report_(other.report_),
      dir_fd_(std::exchange(other.dir_fd_, -1)),
      files_(std::move(other.files_)),
      by_system_path_(std::move(other.by_system_path_)),
      by_root_and_path_(std::move(other.by_root_and_path_)) {}

FileTree::~FileTree() {
  if (dir_fd_ >= 0) ::close(dir_fd_);
}

std::vector<const TreeFile*> FileTree::FindAll(std::string_view system_path) const {
  std::vector<const TreeFile*> out;
  const auto [begin, end] = by_system_path_.equal_range(system_path);
  for (auto it = begin; it != end; ++it) out.push_back(&files_[it->second]);
  return out;
}

const TreeFile* FileTree::FindInRoot(const TreeFile& base, std::string_view system_path) const {
  const auto it = by_root_and_path_.find(std::make_pair(base.root, std::string(system_path)));
  return it == by_root_and_path_.end() ? nullptr : &files_[it->second];
}

const TreeFile* FileTree::Resolve(const TreeFile& file) const {
  const TreeFile* current = &file;
  for (int hop = 0; hop < kMaxSymlinkHops; ++hop) {
    if (current->entry->kind != model::EntryKind::kSymlink) return current;
    const std::string next = JoinSystemPath(current->system_path, current->entry->link_target);
    current = FindInRoot(*current, next);
    if (current == nullptr) return nullptr;
  }
  return nullptr;
}

Result<MappedFile> FileTree::Map(const TreeFile& file) const {
  if (!file.is_file() || !file.entry->materialized) {
    return Fail(ErrorCode::kInvalidArgument, file.path() + " is not a regular file");
  }
  return MappedFile::OpenAt(dir_fd_, file.path());
}

model::Evidence FileTree::EvidenceFor(const TreeFile& file, std::string check,
                                      std::optional<std::uint64_t> offset,
                                      std::string excerpt) const {
  model::Evidence evidence;
  evidence.path = file.path();
  evidence.system_path = file.system_path;
  evidence.offset = offset;
  evidence.sha256 = file.entry->sha256;
  evidence.check = std::move(check);
  evidence.excerpt = std::move(excerpt);
  return evidence;
}

}  // namespace iotmark::inventory
