#include "iotmark/unpack/carver.hpp"

#include <hs/hs.h>

#include <algorithm>
#include <mutex>
#include <string>

namespace iotmark::unpack {

struct Carver::Database {
  hs_database_t* db = nullptr;
  hs_scratch_t* prototype = nullptr;
  // Per pattern id: which format, and how far the magic sits from the chunk start.
  struct Pattern {
    std::uint32_t format_index;
    std::uint64_t magic_offset;
    std::uint64_t magic_length;
  };
  std::vector<Pattern> patterns;
  // Scratch spaces are per thread; a small pool avoids allocating one per blob.
  std::mutex mutex;
  std::vector<hs_scratch_t*> free_scratch;

  ~Database() {
    for (hs_scratch_t* s : free_scratch) hs_free_scratch(s);
    if (prototype != nullptr) hs_free_scratch(prototype);
    if (db != nullptr) hs_free_database(db);
  }

  hs_scratch_t* Acquire() {
    {
      std::lock_guard lock(mutex);
      if (!free_scratch.empty()) {
        hs_scratch_t* s = free_scratch.back();
        free_scratch.pop_back();
        return s;
      }
    }
    hs_scratch_t* s = nullptr;
    if (hs_clone_scratch(prototype, &s) != HS_SUCCESS) return nullptr;
    return s;
  }
  void Release(hs_scratch_t* s) {
    std::lock_guard lock(mutex);
    free_scratch.push_back(s);
  }
};

Carver::Carver(std::unique_ptr<Database> database) : database_(std::move(database)) {}
Carver::~Carver() = default;
Carver::Carver(Carver&&) noexcept = default;
Carver& Carver::operator=(Carver&&) noexcept = default;

Result<Carver> Carver::Create(const FormatList& formats) {
  auto database = std::make_unique<Database>();
  std::vector<std::string> literals;
  for (std::uint32_t i = 0; i < formats.size(); ++i) {
    for (const Magic& magic : formats[i]->magics()) {
      if (magic.bytes.empty()) continue;
      literals.emplace_back(magic.bytes);
      database->patterns.push_back({i, magic.offset, magic.bytes.size()});
    }
  }
  if (literals.empty()) return Fail(ErrorCode::kInvalidArgument, "no format has a magic");
  std::vector<const char*> expressions;
  std::vector<std::size_t> lengths;
  std::vector<unsigned> flags;
  std::vector<unsigned> ids;
  for (std::size_t i = 0; i < literals.size(); ++i) {
    expressions.push_back(literals[i].data());
    lengths.push_back(literals[i].size());
    flags.push_back(0);
    ids.push_back(static_cast<unsigned>(i));
  }
  hs_compile_error_t* error = nullptr;
  if (hs_compile_lit_multi(expressions.data(), flags.data(), ids.data(), lengths.data(),
                           static_cast<unsigned>(literals.size()), HS_MODE_BLOCK, nullptr,
                           &database->db, &error) != HS_SUCCESS) {
    std::string message = error != nullptr ? error->message : "unknown";
    hs_free_compile_error(error);
    return Fail(ErrorCode::kInternal, "cannot compile the magic database: " + message);
  }
  if (hs_alloc_scratch(database->db, &database->prototype) != HS_SUCCESS) {
    return Fail(ErrorCode::kInternal, "cannot allocate Hyperscan scratch space");
  }
  return Carver(std::move(database));
}

Result<Carver::Candidates> Carver::Find(ByteView blob, std::uint64_t max) const {
  Candidates result;
  if (blob.empty()) return result;
  hs_scratch_t* scratch = database_->Acquire();
  if (scratch == nullptr) return Fail(ErrorCode::kInternal, "cannot clone Hyperscan scratch");

  struct State {
    const std::vector<Database::Pattern>& patterns;
    std::vector<Candidate>& out;
    std::uint64_t max;
    bool truncated = false;
  } state{database_->patterns, result.list, max};

  auto on_match = [](unsigned id, unsigned long long /*from*/, unsigned long long to,
                     unsigned /*flags*/, void* context) -> int {
    auto& s = *static_cast<State*>(context);
    const auto& pattern = s.patterns[id];
    const std::uint64_t magic_start = to - pattern.magic_length;
    if (magic_start < pattern.magic_offset) return 0;
    if (s.out.size() >= s.max) {
      s.truncated = true;
      return 1;  // stop scanning
    }
    s.out.push_back({magic_start - pattern.magic_offset, pattern.format_index});
    return 0;
  };

  // Hyperscan takes 32-bit lengths: scan very large blobs in overlapping windows.
  constexpr std::uint64_t kWindow = std::uint64_t{1} << 30;
  constexpr std::uint64_t kOverlap = 4096;  // longer than any magic
  std::uint64_t base = 0;
  hs_error_t status = HS_SUCCESS;
  while (base < blob.size()) {
    const std::uint64_t length = std::min<std::uint64_t>(kWindow, blob.size() - base);
    const std::size_t before = result.list.size();
    status = hs_scan(database_->db, reinterpret_cast<const char*>(blob.data() + base),
                     static_cast<unsigned>(length), 0, scratch, on_match, &state);
    for (std::size_t i = before; i < result.list.size(); ++i) result.list[i].start += base;
    if (status != HS_SUCCESS || base + length >= blob.size()) break;
    base += length - kOverlap;
  }
  database_->Release(scratch);
  if (status != HS_SUCCESS && status != HS_SCAN_TERMINATED) {
    return Fail(ErrorCode::kInternal, "Hyperscan scan failed with code " + std::to_string(status));
  }
  std::sort(result.list.begin(), result.list.end());
  result.list.erase(std::unique(result.list.begin(), result.list.end()), result.list.end());
  result.truncated = state.truncated;
  return result;
}

}  // namespace iotmark::unpack
