// SBOM documents of an analysed image: CycloneDX 1.5 JSON and SPDX 2.3 JSON. Both are built
// from the same inputs and are deterministic given the same creation time.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "iotmark/model/component.hpp"

namespace iotmark::sbom {

struct SbomSubject {
  std::string image_name;
  std::string image_sha256;
  std::uint64_t image_size = 0;
  std::string tool_version;
  std::string created;  // RFC 3339 UTC, e.g. "2026-11-23T10:00:00Z"
};

nlohmann::json ToCycloneDx(const SbomSubject& subject,
                           const std::vector<model::Component>& components);
nlohmann::json ToSpdx(const SbomSubject& subject, const std::vector<model::Component>& components);

// A name-based UUID (SHA-256 of `seed`, version and variant bits set), for serial numbers that
// stay the same for the same image.
std::string StableUuid(std::string_view seed);

}  // namespace iotmark::sbom
