// Finds every place in a blob where a known format's magic bytes announce a chunk, in one pass
// over the bytes with a multi-literal Hyperscan database built from every format's magics.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "iotmark/base/bytes.hpp"
#include "iotmark/base/result.hpp"
#include "iotmark/unpack/format.hpp"

namespace iotmark::unpack {

struct Candidate {
  std::uint64_t start = 0;         // where the chunk would start
  std::uint32_t format_index = 0;  // index into the format list (its priority)
  auto operator<=>(const Candidate&) const = default;
};

class Carver {
 public:
  static Result<Carver> Create(const FormatList& formats);
  ~Carver();
  Carver(Carver&&) noexcept;
  Carver& operator=(Carver&&) noexcept;
  Carver(const Carver&) = delete;
  Carver& operator=(const Carver&) = delete;

  struct Candidates {
    std::vector<Candidate> list;  // sorted by start, then by format priority; no duplicates
    bool truncated = false;       // more than `max` matches: only the first `max` are listed
  };
  // Thread-safe.
  [[nodiscard]] Result<Candidates> Find(ByteView blob, std::uint64_t max) const;

 private:
  struct Database;
  explicit Carver(std::unique_ptr<Database> database);
  std::unique_ptr<Database> database_;
};

}  // namespace iotmark::unpack
