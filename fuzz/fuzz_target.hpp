// Shared by the fuzz targets: a scratch directory reused across runs and emptied after each.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

namespace iotmark::fuzz {

// A private directory for one fuzzing process; Reset() empties it between inputs.
const std::filesystem::path& ScratchRoot();
void ResetScratch();

}  // namespace iotmark::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
