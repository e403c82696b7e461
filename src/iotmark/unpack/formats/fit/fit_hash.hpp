// Checks a FIT image's hash node against its data: crc32 with zlib, md5 and the SHA family with
// OpenSSL, as U-Boot's own image loader does before booting.
#pragma once

#include <string>

#include "iotmark/base/bytes.hpp"
#include "iotmark/unpack/formats/fit/fit_tree.hpp"

namespace iotmark::unpack::formats::fit {

enum class HashCheck {
  kOk,
  kMismatch,
  kNoValue,      // the node names an algorithm but holds no value (an unsigned template)
  kUnsupported,  // an algorithm we do not compute (crc16-ccitt, a vendor's own)
};

// Computes `hash.algo` over `data` and compares it with `hash.value`; `computed` gets the digest
// in lower-case hex when one was computed.
HashCheck CheckHash(const FitHash& hash, ByteView data, std::string* computed = nullptr);

std::string HexBytes(ByteView bytes);

}  // namespace iotmark::unpack::formats::fit
