// Fuzz target for one format (IOTMARK_FUZZ_FORMAT): probe the input at offset 0 and at every
// place the carver finds the format's magic, then extract what the probe accepts, with tight
// limits. Any crash, hang, sanitizer report or write outside the scratch directory is a bug.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>

#include "fuzz_target.hpp"
#include "iotmark/base/thread_pool.hpp"
#include "iotmark/unpack/carver.hpp"
#include "iotmark/unpack/entry_sink.hpp"
#include "iotmark/unpack/extract_context.hpp"
#include "iotmark/unpack/format.hpp"

namespace {

using namespace iotmark;

const unpack::Format& TheFormat() {
  static const unpack::Format* format = [] {
    for (const auto& f : unpack::BuiltinFormats()) {
      if (f->name() == IOTMARK_FUZZ_FORMAT) return f.get();
    }
    std::abort();
  }();
  return *format;
}

Limits FuzzLimits() {
  Limits limits;
  limits.max_total_bytes = 64 << 20;
  limits.max_file_bytes = 32 << 20;
  limits.max_entries = 2000;
  limits.ratio_floor_bytes = 1 << 20;
  limits.max_time = std::chrono::seconds(10);
  return limits;
}

void ProbeAndExtract(ByteView blob, std::uint64_t start, ThreadPool& pool) {
  const unpack::Format& format = TheFormat();
  auto chunk = format.Probe(blob, start);
  if (!chunk || chunk->transparent || chunk->offset >= blob.size()) return;
  const std::uint64_t length = std::min<std::uint64_t>(chunk->length, blob.size() - chunk->offset);
  const Limits limits = FuzzLimits();
  Budget budget(limits);
  RatioGuard ratio(limits, length);
  unpack::JobRecord record;
  const int fd = ::open(fuzz::ScratchRoot().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  {
    unpack::EntrySink sink(fd, "out", budget, &ratio, record, "fuzz", std::string(format.name()));
    unpack::ExtractContext context(sink, budget, pool, record, "fuzz", "fuzz.bin", chunk->offset,
                                   length, blob.size(), std::string(format.name()));
    (void)format.Extract(blob.subspan(chunk->offset, length), *chunk, context);
  }
  fuzz::ResetScratch();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static ThreadPool pool(1);
  static const unpack::Carver carver = [] {
    auto result = unpack::Carver::Create(unpack::BuiltinFormats());
    if (!result) std::abort();
    return std::move(*result);
  }();
  const ByteView blob(data, size);
  ProbeAndExtract(blob, 0, pool);
  auto candidates = carver.Find(blob, 64);
  if (!candidates) return 0;
  for (const auto& candidate : candidates->list) {
    if (candidate.start == 0) continue;
    if (unpack::BuiltinFormats()[candidate.format_index]->name() != TheFormat().name()) continue;
    ProbeAndExtract(blob, candidate.start, pool);
  }
  return 0;
}
