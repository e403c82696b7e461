// Gap: where input was odd or analysis is incomplete (a truncated filesystem, a limit hit, an
// unsafe archive entry). Never an error of the tool, never a weakness of the product.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace iotmark::model {

enum class GapKind {
  kTruncated,    // the structure claims more bytes than the blob has
  kCorrupt,      // a structure does not parse or a checksum does not match
  kUnsafeEntry,  // an entry that would escape the tree, a device node, a setuid bit ...
  kLimit,        // a configured limit stopped the work
  kUnsupported,  // recognised, but this variant cannot be read (yet)
  kEncrypted,    // recognised, but the payload is encrypted
  kIo,           // the output could not be written
};

std::string_view ToString(GapKind kind);

struct Gap {
  GapKind kind = GapKind::kCorrupt;
  std::string blob;          // path of the blob, relative to the output root ("" = the image)
  std::uint64_t offset = 0;  // in that blob
  std::string format;        // the format being read, if any
  std::string reason;        // what was odd, in a sentence
};

}  // namespace iotmark::model
