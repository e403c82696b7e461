// What a format's extractor is given: where to write, whom to tell about gaps and facts, which
// limits apply, and a thread pool for independent blocks.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "iotmark/base/limits.hpp"
#include "iotmark/base/thread_pool.hpp"
#include "iotmark/model/gap.hpp"
#include "iotmark/unpack/entry_sink.hpp"

namespace iotmark::unpack {

class ExtractContext {
 public:
  ExtractContext(EntrySink& sink, Budget& budget, ThreadPool& pool, JobRecord& record,
                 std::string blob, std::string blob_name, std::uint64_t chunk_offset,
                 std::uint64_t chunk_length, std::uint64_t blob_size, std::string format);

  EntrySink& sink() { return sink_; }
  Budget& budget() { return budget_; }
  ThreadPool& pool() { return pool_; }

  // Records a gap at `offset` bytes into the chunk (thread-safe).
  void AddGap(model::GapKind kind, std::uint64_t offset, std::string reason);
  // Records a fact about the chunk for the report (thread-safe).
  void SetMeta(std::string key, std::string value);
  [[nodiscard]] std::map<std::string, std::string> TakeMeta();
  [[nodiscard]] std::uint64_t gap_count() const;

  // For chunks probed with length_from_extract: the input bytes the stream really used.
  void SetConsumed(std::uint64_t bytes) { consumed_ = bytes; }
  [[nodiscard]] std::optional<std::uint64_t> consumed() const { return consumed_; }

  // The name to give a single decompressed output: the blob's name without one of `suffixes`
  // when the chunk is the whole blob ("rootfs.tar.gz" -> "rootfs.tar"), else "decompressed".
  [[nodiscard]] std::string DecompressedName(
      std::initializer_list<std::string_view> suffixes) const;

 private:
  EntrySink& sink_;
  Budget& budget_;
  ThreadPool& pool_;
  JobRecord& record_;
  std::string blob_;       // blob path relative to the output root ("" = the image)
  std::string blob_name_;  // last component of the blob's name
  std::uint64_t chunk_offset_;
  std::uint64_t chunk_length_;
  std::uint64_t blob_size_;
  std::string format_;
  mutable std::mutex mutex_;
  std::map<std::string, std::string> meta_;
  std::uint64_t gaps_ = 0;
  std::optional<std::uint64_t> consumed_;
};

}  // namespace iotmark::unpack
