// Findings as SARIF 2.1.0, so manufacturers can gate their builds on them with the code-scanning
// tools they already use. Rules are the finding ids; locations are paths inside the image.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "iotmark/model/finding.hpp"

namespace iotmark::share {

nlohmann::json ToSarif(const std::vector<model::Finding>& findings, const std::string& tool_version,
                       const std::string& image_name);

}  // namespace iotmark::share
