// Identifying the containers of a whole image: one Hyperscan pass for every format's magics, then
// each format's probe at each match (what `iotmark scan` does before it extracts anything).
//   iotmark_carver_bench [benchmark flags] IMAGE
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>

#include "iotmark/base/mapped_file.hpp"
#include "iotmark/unpack/carver.hpp"
#include "iotmark/unpack/format.hpp"

namespace {

using namespace iotmark;

std::string g_image;

void IdentifyContainers(benchmark::State& state) {
  auto image = MappedFile::Open(g_image);
  if (!image) {
    state.SkipWithError(image.error().ToString().c_str());
    return;
  }
  const auto& formats = unpack::BuiltinFormats();
  auto carver = unpack::Carver::Create(formats);
  if (!carver) {
    state.SkipWithError(carver.error().ToString().c_str());
    return;
  }
  std::size_t chunks = 0;
  for (auto _ : state) {
    auto found = carver->Find(image->bytes(), 1'000'000);
    chunks = 0;
    std::uint64_t covered_until = 0;
    for (const auto& candidate : found->list) {
      if (candidate.start < covered_until) continue;
      auto chunk = formats[candidate.format_index]->Probe(image->bytes(), candidate.start);
      if (!chunk) continue;
      ++chunks;
      if (!chunk->transparent && !chunk->length_from_extract) {
        covered_until = chunk->offset + chunk->length;
      }
    }
    benchmark::DoNotOptimize(chunks);
  }
  state.counters["chunks"] = static_cast<double>(chunks);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * image->bytes().size()));
}
BENCHMARK(IdentifyContainers)->Unit(benchmark::kMillisecond);

void CarverScanOnly(benchmark::State& state) {
  auto image = MappedFile::Open(g_image);
  if (!image) {
    state.SkipWithError(image.error().ToString().c_str());
    return;
  }
  auto carver = unpack::Carver::Create(unpack::BuiltinFormats());
  for (auto _ : state) {
    auto found = carver->Find(image->bytes(), 1'000'000);
    benchmark::DoNotOptimize(found);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * image->bytes().size()));
}
BENCHMARK(CarverScanOnly)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: iotmark_carver_bench [benchmark flags] IMAGE\n");
    return 2;
  }
  g_image = argv[1];
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
