// The recursive unpacker: carve an image, extract every chunk through its format, and do the
// same for every file that comes out, within the job's limits, into one output directory.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>

#include "iotmark/base/limits.hpp"
#include "iotmark/base/result.hpp"
#include "iotmark/model/unpack_report.hpp"
#include "iotmark/unpack/format.hpp"

namespace iotmark::unpack {

// Live counters a front end may poll while a job runs (e.g. for a progress bar).
struct Progress {
  std::atomic<std::uint64_t> blobs_seen{0};
  std::atomic<std::uint64_t> blobs_done{0};
  std::atomic<std::uint64_t> bytes_written{0};
  std::atomic<std::uint64_t> image_bytes_carved{0};  // of the top-level image
};

struct UnpackOptions {
  Limits limits;
  std::size_t threads = 2;       // worker threads besides the caller's
  Progress* progress = nullptr;  // optional
  std::string tool_version = "0.0.0";
};

class Unpacker {
 public:
  // Uses BuiltinFormats() unless a list is given (tests use their own).
  static Result<Unpacker> Create(UnpackOptions options, const FormatList* formats = nullptr);
  ~Unpacker();
  Unpacker(Unpacker&&) noexcept;
  Unpacker& operator=(Unpacker&&) noexcept;
  Unpacker(const Unpacker&) = delete;
  Unpacker& operator=(const Unpacker&) = delete;

  // Unpacks `image` into `output_dir`, which must be empty or not exist yet. Damage inside the
  // image becomes gaps in the report; an Error means the job could not run at all (the image is
  // unreadable, the output directory is not usable).
  Result<model::UnpackReport> Run(const std::filesystem::path& image,
                                  const std::filesystem::path& output_dir);

 private:
  struct Impl;
  explicit Unpacker(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace iotmark::unpack
