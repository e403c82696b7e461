// Evidence: one observed fact with its provenance (which file, where in it, which check, which
// rule), so that every finding and component can be traced back to bytes of the image.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace iotmark::model {

struct Evidence {
  std::string path;                     // inventory path, relative to the output root
  std::string system_path;              // path inside its filesystem ("/etc/passwd"), if known
  std::optional<std::uint64_t> offset;  // in that file
  std::string sha256;                   // of that file, as the inventory records it
  std::string check;                    // analyzer and check: "credentials.passwd"
  std::string rule;                     // the data rule that fired, if any: "signature:busybox"
  std::string excerpt;                  // what was seen, short; secrets are redacted
};

}  // namespace iotmark::model
