#include "iotmark/unpack/testing/format_harness.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "iotmark/base/thread_pool.hpp"
#include "iotmark/unpack/entry_sink.hpp"
#include "iotmark/unpack/extract_context.hpp"

namespace iotmark::testing {

ScratchDir::ScratchDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "iotmark-test-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) std::abort();
  path_ = pattern;
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  // Extracted trees may hold directories without write permission; make them removable.
  for (auto it = std::filesystem::recursive_directory_iterator(path_, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) {
      std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all,
                                   std::filesystem::perm_options::add, ec);
    }
  }
  std::filesystem::remove_all(path_, ec);
}

const model::InventoryEntry* Extraction::Find(const std::string& path) const {
  for (const auto& entry : entries) {
    if (entry.path == path) return &entry;
  }
  return nullptr;
}

std::vector<std::uint8_t> Extraction::Read(const std::string& path) const {
  return ReadFileBytes(root / path);
}

Extraction ProbeAndExtract(const unpack::Format& format, ByteView blob, std::uint64_t start,
                           const ScratchDir& scratch, const Limits& limits,
                           const std::string& blob_name) {
  Extraction result;
  result.root = scratch.path() / "out";
  std::filesystem::create_directories(result.root);
  result.chunk = format.Probe(blob, start);
  if (!result.chunk) return result;
  const unpack::Chunk& chunk = *result.chunk;
  const std::uint64_t length = std::min<std::uint64_t>(
      chunk.length, blob.size() - std::min<std::uint64_t>(chunk.offset, blob.size()));
  Budget budget(limits);
  RatioGuard ratio(limits, length);
  unpack::JobRecord record;
  ThreadPool pool(2);
  {
    const int fd = ::open(result.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    unpack::EntrySink sink(fd, "", budget, &ratio, record, blob_name, std::string(format.name()));
    unpack::ExtractContext context(sink, budget, pool, record, blob_name, blob_name, chunk.offset,
                                   length, blob.size(), std::string(format.name()));
    if (!chunk.transparent) {
      result.status = format.Extract(blob.subspan(chunk.offset, length), chunk, context);
    }
    sink.Finish();
    result.meta = context.TakeMeta();
    result.consumed = context.consumed();
  }
  result.entries = record.TakeEntries();
  for (auto& entry : result.entries) {
    if (entry.path.starts_with('/')) entry.path.erase(0, 1);
    if (entry.kind == model::EntryKind::kHardlink && entry.link_target.starts_with('/')) {
      entry.link_target.erase(0, 1);
    }
  }
  std::sort(result.entries.begin(), result.entries.end(),
            [](const auto& a, const auto& b) { return a.path < b.path; });
  result.gaps = record.TakeGaps();
  return result;
}

std::vector<std::uint8_t> ReadFileBytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void WriteFileBytes(const std::filesystem::path& path, ByteView bytes) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

std::filesystem::path FixturePath(const std::string& name) {
  return std::filesystem::path(IOTMARK_FIXTURE_DIR) / name;
}

std::filesystem::path SharedSamplePath(const std::string& relative) {
  const auto path =
      std::filesystem::path(IOTMARK_SOURCE_DIR) / ".." / "shared" / "data" / "formats" / relative;
  return std::filesystem::exists(path) ? path : std::filesystem::path();
}

int RunCommand(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace iotmark::testing
