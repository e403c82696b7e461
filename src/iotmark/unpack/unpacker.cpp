#include "iotmark/unpack/unpacker.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <system_error>

#include "iotmark/base/mapped_file.hpp"
#include "iotmark/base/sha256.hpp"
#include "iotmark/base/thread_pool.hpp"
#include "iotmark/unpack/carver.hpp"
#include "iotmark/unpack/entry_sink.hpp"
#include "iotmark/unpack/extract_context.hpp"

namespace iotmark::unpack {

namespace {

using model::ChunkStatus;
using model::ExtractionNode;
using model::GapKind;

// Files smaller than this cannot hold a chunk worth carving.
constexpr std::uint64_t kMinCarveSize = 16;

model::GapKind GapKindOf(const Error& error) {
  switch (error.code) {
    case ErrorCode::kLimitExceeded:
      return GapKind::kLimit;
    case ErrorCode::kIo:
      return GapKind::kIo;
    case ErrorCode::kUnsupportedFormat:
      return GapKind::kUnsupported;
    case ErrorCode::kIntegrityFailure:
      return GapKind::kCorrupt;
    default:
      return GapKind::kCorrupt;
  }
}

std::string Join(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}

// Opens `relative` (a path we wrote) beneath `root_fd`, refusing to follow any symlink on the
// way: an archive may have replaced one of our files with a link since.
Result<MappedFile> OpenBeneath(int root_fd, const std::string& relative) {
  int dir = ::fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
  std::size_t pos = 0;
  while (true) {
    const std::size_t slash = relative.find('/', pos);
    if (slash == std::string::npos) break;
    const std::string part = relative.substr(pos, slash - pos);
    const int next = ::openat(dir, part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    ::close(dir);
    if (next < 0) return Fail(ErrorCode::kIo, "cannot open directory of " + relative);
    dir = next;
    pos = slash + 1;
  }
  auto file = MappedFile::OpenAt(dir, relative.substr(pos));
  ::close(dir);
  return file;
}

// Creates a fresh directory `name` (or `name.1`, `name.2`, ... if taken) in `parent_fd`.
Result<std::pair<int, std::string>> MakeFreshDir(int parent_fd, const std::string& name) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    const std::string candidate = attempt == 0 ? name : name + "." + std::to_string(attempt);
    if (::mkdirat(parent_fd, candidate.c_str(), 0700) == 0) {
      const int fd =
          ::openat(parent_fd, candidate.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) break;
      return std::make_pair(fd, candidate);
    }
    if (errno != EEXIST) break;
  }
  return Fail(ErrorCode::kIo, "cannot create directory " + name + ": " + std::strerror(errno));
}

Result<int> OpenDirBeneath(int root_fd, const std::string& relative) {
  int dir = ::fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
  std::size_t pos = 0;
  while (pos < relative.size()) {
    std::size_t slash = relative.find('/', pos);
    if (slash == std::string::npos) slash = relative.size();
    const std::string part = relative.substr(pos, slash - pos);
    const int next = ::openat(dir, part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    ::close(dir);
    if (next < 0) return Fail(ErrorCode::kIo, "cannot open directory " + relative);
    dir = next;
    pos = slash + 1;
  }
  return dir;
}

// Erased flash (0xff), zeros, or zeros up to an alignment followed by erased flash (a
// filesystem padded to 4 KiB, then the rest of the erase block): "0xff", "0x00", "0x00+0xff".
const char* PaddingFill(ByteView region) {
  if (IsFilledWith(region, 0xff)) return "0xff";
  if (IsFilledWith(region, 0x00)) return "0x00";
  const auto* first_ff =
      static_cast<const std::uint8_t*>(std::memchr(region.data(), 0xff, region.size()));
  if (first_ff == nullptr) return nullptr;
  const auto split = static_cast<std::size_t>(first_ff - region.data());
  if (IsFilledWith(region.first(split), 0x00) && IsFilledWith(region.subspan(split), 0xff)) {
    return "0x00+0xff";
  }
  return nullptr;
}

std::string SafeImageName(const std::filesystem::path& image) {
  std::string name = image.filename().string();
  if (name.empty() || name == "." || name == "..") name = "image";
  return name;
}

}  // namespace

struct Unpacker::Impl {
  UnpackOptions options;
  const FormatList* formats;
  Carver carver;
  ThreadPool pool;

  Impl(UnpackOptions opts, const FormatList* list, Carver c)
      : options(std::move(opts)), formats(list), carver(std::move(c)), pool(options.threads) {}
};

namespace {

struct Job {
  const FormatList& formats;
  const Carver& carver;
  ThreadPool& pool;
  Budget budget;
  JobRecord record;
  int root_fd;
  Progress* progress;
  std::atomic<std::uint64_t> chunks{0};
  std::atomic<std::uint64_t> unknown_chunks{0};
  std::atomic<std::uint64_t> max_depth{0};
};

struct Blob {
  ByteView bytes;
  std::string path;  // relative to the output root; "" for the image
  std::string name;  // its file name
  int depth = 0;
};

class BlobProcessor {
 public:
  BlobProcessor(Job& job, const Blob& blob) : job_(job), blob_(blob) {}

  ExtractionNode Run();

 private:
  struct Extracted {
    ExtractionNode node;
    std::vector<std::string> files;
  };
  void AddGap(GapKind kind, std::uint64_t offset, std::string format, std::string reason) {
    job_.record.AddGap(model::Gap{kind, blob_.path, offset, std::move(format), std::move(reason)});
  }
  std::optional<Extracted> ExtractChunk(const Format& format, Chunk chunk);
  Result<std::pair<int, std::string>> ExtractDir();
  void AddUnknown(std::vector<ExtractionNode>& out, std::uint64_t begin, std::uint64_t end);
  // Progress of the top-level image: how far into it extraction has got.
  void ReportCarved(std::uint64_t until) {
    if (blob_.depth != 0 || job_.progress == nullptr) return;
    std::uint64_t seen = job_.progress->image_bytes_carved.load();
    while (until > seen && !job_.progress->image_bytes_carved.compare_exchange_weak(seen, until)) {
    }
    job_.progress->bytes_written.store(job_.budget.bytes_written());
  }

  Job& job_;
  const Blob& blob_;
  int extract_dir_fd_ = -1;
  std::string extract_dir_;
};

Result<std::pair<int, std::string>> BlobProcessor::ExtractDir() {
  if (extract_dir_fd_ >= 0) return std::make_pair(extract_dir_fd_, extract_dir_);
  // "<blob>_extract" beside the blob (the image's goes at the output root).
  const std::size_t slash = blob_.path.rfind('/');
  const std::string parent = slash == std::string::npos ? "" : blob_.path.substr(0, slash);
  auto parent_fd = OpenDirBeneath(job_.root_fd, parent);
  if (!parent_fd) return tl::unexpected(parent_fd.error());
  auto made = MakeFreshDir(*parent_fd, blob_.name + "_extract");
  ::close(*parent_fd);
  if (!made) return tl::unexpected(made.error());
  extract_dir_fd_ = made->first;
  extract_dir_ = Join(parent, made->second);
  return std::make_pair(extract_dir_fd_, extract_dir_);
}

std::optional<BlobProcessor::Extracted> BlobProcessor::ExtractChunk(const Format& format,
                                                                    Chunk chunk) {
  Extracted out;
  ExtractionNode& node = out.node;
  node.kind = ExtractionNode::Kind::kChunk;
  node.format = std::string(format.name());
  node.offset = chunk.offset;
  node.length = chunk.length;
  node.meta = chunk.meta;
  for (const ProbeIssue& issue : chunk.issues) {
    AddGap(issue.kind, chunk.offset, node.format, issue.reason);
  }

  auto dir = ExtractDir();
  if (!dir) {
    AddGap(GapKind::kIo, chunk.offset, node.format, dir.error().message);
    node.status = ChunkStatus::kFailed;
    return out;
  }
  const std::string chunk_dir_name = HexOffset(chunk.offset) + "." + node.format;
  auto chunk_dir = MakeFreshDir(dir->first, chunk_dir_name);
  if (!chunk_dir) {
    AddGap(GapKind::kIo, chunk.offset, node.format, chunk_dir.error().message);
    node.status = ChunkStatus::kFailed;
    return out;
  }
  node.path = Join(dir->second, chunk_dir->second);

  const ByteView bytes = blob_.bytes.subspan(chunk.offset, chunk.length);
  RatioGuard ratio(job_.budget.limits(), chunk.length);
  Status status;
  std::uint64_t gaps = 0;
  {
    EntrySink sink(chunk_dir->first, node.path, job_.budget, &ratio, job_.record, blob_.path,
                   node.format);
    ExtractContext context(sink, job_.budget, job_.pool, job_.record, blob_.path, blob_.name,
                           chunk.offset, chunk.length, blob_.bytes.size(), node.format);
    status = format.Extract(bytes, chunk, context);
    sink.Finish();
    for (auto& [key, value] : context.TakeMeta()) node.meta[key] = value;
    gaps = context.gap_count();
    out.files = sink.written_files();
    if (chunk.length_from_extract) {
      node.length = std::clamp<std::uint64_t>(context.consumed().value_or(1), 1, chunk.length);
    }
  }
  if (!status) {
    AddGap(GapKindOf(status.error()), chunk.offset, node.format, status.error().message);
  }
  // An empty chunk directory is removed; it only goes if nothing at all was written.
  const bool empty = ::unlinkat(dir->first, chunk_dir->second.c_str(), AT_REMOVEDIR) == 0;
  if (empty) node.path.clear();
  if (!status) {
    node.status = empty ? ChunkStatus::kFailed : ChunkStatus::kPartial;
  } else {
    node.status =
        (gaps > 0 || !chunk.issues.empty()) ? ChunkStatus::kPartial : ChunkStatus::kExtracted;
  }
  job_.chunks.fetch_add(1);
  return out;
}

void BlobProcessor::AddUnknown(std::vector<ExtractionNode>& out, std::uint64_t begin,
                               std::uint64_t end) {
  if (end <= begin) return;
  const ByteView region = blob_.bytes.subspan(begin, end - begin);
  ExtractionNode node;
  node.kind = ExtractionNode::Kind::kChunk;
  node.offset = begin;
  node.length = end - begin;
  if (const char* fill = PaddingFill(region)) {
    node.format = "padding";
    node.status = ChunkStatus::kPadding;
    node.meta["fill"] = fill;
  } else {
    node.format = "unknown";
    node.status = ChunkStatus::kUnknown;
    node.entropy = Entropy(region);
    job_.unknown_chunks.fetch_add(1);
  }
  out.push_back(std::move(node));
}

ExtractionNode BlobProcessor::Run() {
  ExtractionNode root;
  root.kind = ExtractionNode::Kind::kBlob;
  root.format = "file";
  root.path = blob_.path;
  root.length = blob_.bytes.size();
  if (job_.progress != nullptr) job_.progress->blobs_seen.fetch_add(1);
  struct Done {
    Progress* progress;
    ~Done() {
      if (progress != nullptr) progress->blobs_done.fetch_add(1);
    }
  } done{job_.progress};

  std::uint64_t depth = static_cast<std::uint64_t>(blob_.depth);
  std::uint64_t seen = job_.max_depth.load();
  while (depth > seen && !job_.max_depth.compare_exchange_weak(seen, depth)) {
  }

  auto found = job_.carver.Find(blob_.bytes, job_.budget.limits().max_candidates_per_blob);
  if (!found) {
    AddGap(GapKind::kIo, 0, "", found.error().message);
    return root;
  }
  if (found->truncated) {
    AddGap(GapKind::kLimit, 0, "",
           "more than " + std::to_string(job_.budget.limits().max_candidates_per_blob) +
               " signature matches; the rest of the blob was not carved");
  }

  std::vector<Extracted> chunks;
  std::vector<std::pair<const Format*, Chunk>> deferred;
  std::vector<ExtractionNode> marks;  // transparent chunks
  std::uint64_t covered_until = 0;
  for (const Candidate& candidate : found->list) {
    if (candidate.start < covered_until) continue;
    if (auto in_time = job_.budget.CheckTime(); !in_time) {
      AddGap(GapKind::kLimit, candidate.start, "", in_time.error().message);
      break;
    }
    const Format& format = *job_.formats[candidate.format_index];
    std::optional<Chunk> chunk = format.Probe(blob_.bytes, candidate.start);
    if (!chunk || chunk->offset != candidate.start || chunk->offset >= blob_.bytes.size()) {
      continue;
    }
    chunk->length = std::min<std::uint64_t>(chunk->length, blob_.bytes.size() - chunk->offset);
    if (chunk->transparent) {
      ExtractionNode mark;
      mark.kind = ExtractionNode::Kind::kChunk;
      mark.format = std::string(format.name());
      mark.offset = chunk->offset;
      mark.length = chunk->length;
      mark.status = ChunkStatus::kIdentified;
      mark.meta = chunk->meta;
      marks.push_back(std::move(mark));
      job_.chunks.fetch_add(1);
      continue;
    }
    if (chunk->length == 0) continue;
    if (blob_.depth >= job_.budget.limits().max_depth) {
      AddGap(GapKind::kLimit, chunk->offset, std::string(format.name()),
             "nesting deeper than " + std::to_string(job_.budget.limits().max_depth) +
                 " levels; this chunk was not extracted");
      break;
    }
    if (!chunk->length_from_extract) {
      // The extent is known: extract later, in parallel with the blob's other such chunks
      // (a kernel and a root filesystem decompress at the same time).
      covered_until = chunk->offset + chunk->length;
      deferred.emplace_back(&format, std::move(*chunk));
      continue;
    }
    // A stream whose end only decoding tells: extract now, carving resumes after it.
    auto extracted = ExtractChunk(format, std::move(*chunk));
    if (!extracted) continue;
    covered_until = extracted->node.offset + extracted->node.length;
    ReportCarved(covered_until);
    chunks.push_back(std::move(*extracted));
  }
  if (!deferred.empty()) {
    // Create the shared extraction directory before the tasks race to do it.
    if (auto dir = ExtractDir(); !dir) {
      AddGap(GapKind::kIo, 0, "", dir.error().message);
      deferred.clear();
    }
    std::vector<std::optional<Extracted>> results(deferred.size());
    {
      TaskGroup group(job_.pool);
      for (std::size_t i = 0; i < deferred.size(); ++i) {
        group.Run([this, &deferred, &results, i] {
          results[i] = ExtractChunk(*deferred[i].first, std::move(deferred[i].second));
          ReportCarved(results[i] ? results[i]->node.offset + results[i]->node.length : 0);
        });
      }
    }
    for (auto& result : results) {
      if (result) chunks.push_back(std::move(*result));
    }
  }
  if (extract_dir_fd_ >= 0) ::close(extract_dir_fd_);

  // Everything extracted from this blob is carved in turn, in parallel.
  {
    TaskGroup group(job_.pool);
    for (Extracted& extracted : chunks) {
      extracted.node.children.resize(extracted.files.size());
      for (std::size_t i = 0; i < extracted.files.size(); ++i) {
        group.Run([this, &extracted, i] {
          const std::string& path = extracted.files[i];
          auto file = OpenBeneath(job_.root_fd, path);
          if (!file) {
            AddGap(GapKind::kIo, 0, "", file.error().message);
            return;
          }
          if (file->bytes().size() < kMinCarveSize) return;
          const std::size_t slash = path.rfind('/');
          Blob child{file->bytes(), path,
                     slash == std::string::npos ? path : path.substr(slash + 1), blob_.depth + 1};
          extracted.node.children[i] = BlobProcessor(job_, child).Run();
        });
      }
    }
  }

  // The tree lists only the blobs in which something was found.
  std::vector<ExtractionNode> nodes = std::move(marks);
  for (Extracted& extracted : chunks) {
    auto& children = extracted.node.children;
    children.erase(std::remove_if(children.begin(), children.end(),
                                  [](const ExtractionNode& n) { return n.children.empty(); }),
                   children.end());
    nodes.push_back(std::move(extracted.node));
  }
  // Unknown regions are reported for the image, and for any blob where something was found.
  if (blob_.depth == 0 || !chunks.empty()) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> covered;
    for (const ExtractionNode& n : nodes) {
      if (n.status != ChunkStatus::kIdentified) covered.emplace_back(n.offset, n.offset + n.length);
    }
    std::sort(covered.begin(), covered.end());
    std::uint64_t at = 0;
    for (const auto& [begin, end] : covered) {
      AddUnknown(nodes, at, begin);
      at = std::max(at, end);
    }
    AddUnknown(nodes, at, blob_.bytes.size());
  }
  std::stable_sort(
      nodes.begin(), nodes.end(),
      [](const ExtractionNode& a, const ExtractionNode& b) { return a.offset < b.offset; });
  root.children = std::move(nodes);
  return root;
}

}  // namespace

Unpacker::Unpacker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Unpacker::~Unpacker() = default;
Unpacker::Unpacker(Unpacker&&) noexcept = default;
Unpacker& Unpacker::operator=(Unpacker&&) noexcept = default;

Result<Unpacker> Unpacker::Create(UnpackOptions options, const FormatList* formats) {
  const FormatList* list = formats != nullptr ? formats : &BuiltinFormats();
  auto carver = Carver::Create(*list);
  if (!carver) return tl::unexpected(carver.error());
  return Unpacker(std::make_unique<Impl>(std::move(options), list, std::move(*carver)));
}

Result<model::UnpackReport> Unpacker::Run(const std::filesystem::path& image,
                                          const std::filesystem::path& output_dir) {
  auto mapped = MappedFile::Open(image);
  if (!mapped) return tl::unexpected(mapped.error());

  std::error_code ec;
  std::filesystem::create_directories(output_dir, ec);
  if (ec) {
    return Fail(ErrorCode::kIo,
                "cannot create output directory " + output_dir.string() + ": " + ec.message());
  }
  if (!std::filesystem::is_empty(output_dir, ec) || ec) {
    return Fail(ErrorCode::kConflict, "output directory " + output_dir.string() +
                                          " is not empty; iotmark never writes over files");
  }
  const int root_fd = ::open(output_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) {
    return Fail(ErrorCode::kIo, "cannot open output directory " + output_dir.string());
  }

  Job job{*impl_->formats, impl_->carver,          impl_->pool, Budget(impl_->options.limits), {},
          root_fd,         impl_->options.progress};
  model::UnpackReport report;
  report.tool_version = impl_->options.tool_version;
  report.image_name = SafeImageName(image);
  report.image_size = mapped->bytes().size();
  {
    TaskGroup group(impl_->pool);
    group.Run([&] { report.image_sha256 = Sha256::Hex(mapped->bytes()); });
    Blob blob{mapped->bytes(), "", report.image_name, 0};
    report.tree = BlobProcessor(job, blob).Run();
    report.tree.path = report.image_name;
  }
  ::close(root_fd);

  report.inventory = job.record.TakeEntries();
  std::sort(report.inventory.begin(), report.inventory.end(),
            [](const auto& a, const auto& b) { return a.path < b.path; });
  report.gaps = job.record.TakeGaps();
  std::sort(report.gaps.begin(), report.gaps.end(), [](const auto& a, const auto& b) {
    return std::tie(a.blob, a.offset, a.format, a.reason) <
           std::tie(b.blob, b.offset, b.format, b.reason);
  });
  report.stats.chunks = job.chunks.load();
  report.stats.unknown_chunks = job.unknown_chunks.load();
  report.stats.files = static_cast<std::uint64_t>(
      std::count_if(report.inventory.begin(), report.inventory.end(),
                    [](const auto& e) { return e.kind == model::EntryKind::kFile; }));
  report.stats.bytes_written = job.budget.bytes_written();
  report.stats.max_depth_reached = job.max_depth.load();
  if (impl_->options.progress != nullptr) {
    impl_->options.progress->bytes_written.store(report.stats.bytes_written);
    impl_->options.progress->image_bytes_carved.store(report.image_size);
  }
  return report;
}

}  // namespace iotmark::unpack
