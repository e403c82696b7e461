// Fuzz target for the whole unpacker: carving, every format, recursion and the safe writer, on
// arbitrary bytes, with tight limits.
#include <fstream>

#include "fuzz_target.hpp"
#include "iotmark/unpack/unpacker.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace iotmark;
  static unpack::Unpacker unpacker = [] {
    unpack::UnpackOptions options;
    options.threads = 0;
    options.limits.max_total_bytes = 64 << 20;
    options.limits.max_entries = 2000;
    options.limits.max_depth = 6;
    options.limits.ratio_floor_bytes = 1 << 20;
    options.limits.max_time = std::chrono::seconds(10);
    auto created = unpack::Unpacker::Create(options);
    if (!created) std::abort();
    return std::move(*created);
  }();
  const auto input = fuzz::ScratchRoot() / "input.bin";
  {
    std::ofstream out(input, std::ios::binary);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  (void)unpacker.Run(input, fuzz::ScratchRoot() / "out");
  fuzz::ResetScratch();
  return 0;
}
