#include "iotmark/unpack/extract_context.hpp"

#include <utility>

namespace iotmark::unpack {

ExtractContext::ExtractContext(EntrySink& sink, Budget& budget, ThreadPool& pool, JobRecord& record,
                               std::string blob, std::string blob_name, std::uint64_t chunk_offset,
                               std::uint64_t chunk_length, std::uint64_t blob_size,
                               std::string format)
    : sink_(sink),
      budget_(budget),
      pool_(pool),
      record_(record),
      blob_(std::move(blob)),
      blob_name_(std::move(blob_name)),
      chunk_offset_(chunk_offset),
      chunk_length_(chunk_length),
      blob_size_(blob_size),
      format_(std::move(format)) {}

void ExtractContext::AddGap(model::GapKind kind, std::uint64_t offset, std::string reason) {
  record_.AddGap(model::Gap{kind, blob_, chunk_offset_ + offset, format_, std::move(reason)});
  std::lock_guard lock(mutex_);
  ++gaps_;
}

void ExtractContext::SetMeta(std::string key, std::string value) {
  std::lock_guard lock(mutex_);
  meta_[std::move(key)] = std::move(value);
}

std::map<std::string, std::string> ExtractContext::TakeMeta() {
  std::lock_guard lock(mutex_);
  return std::exchange(meta_, {});
}

std::uint64_t ExtractContext::gap_count() const {
  std::lock_guard lock(mutex_);
  return gaps_;
}

std::string ExtractContext::DecompressedName(
    std::initializer_list<std::string_view> suffixes) const {
  const bool whole_blob = chunk_offset_ == 0 && chunk_length_ == blob_size_;
  if (whole_blob) {
    const std::string_view name = blob_name_;
    for (std::string_view suffix : suffixes) {
      if (name.size() > suffix.size() && name.ends_with(suffix)) {
        std::string stem(name.substr(0, name.size() - suffix.size()));
        // "image.tgz" -> "image.tar": a short suffix that stood for a tarball keeps saying so.
        if (suffix == ".tgz" || suffix == ".tbz2" || suffix == ".txz") stem += ".tar";
        return stem;
      }
    }
  }
  return "decompressed";
}

}  // namespace iotmark::unpack
