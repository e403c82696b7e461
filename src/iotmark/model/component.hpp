// Component: a piece of software identified in the image, with its version, identifiers for
// vulnerability matching (PURL, CPE 2.3), where it was found and how sure we are.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "iotmark/model/evidence.hpp"

namespace iotmark::model {

enum class Confidence { kLow, kMedium, kHigh };

std::string_view ToString(Confidence confidence);

struct Component {
  std::string name;     // canonical lower-case name: "busybox"
  std::string version;  // as found: "1.35.0"; empty when unknown
  std::string supplier;
  std::string purl;    // "pkg:generic/busybox@1.35.0"
  std::string cpe;     // "cpe:2.3:a:busybox:busybox:1.35.0:*:*:*:*:*:*:*"
  std::string method;  // how it was identified: "signature", "opkg", "dpkg", "kernel-banner"
  Confidence confidence = Confidence::kMedium;
  std::vector<Evidence> locations;
};

}  // namespace iotmark::model
