// Finding: a weakness of the product, with the evidence behind it. Findings never decide a
// requirement's verdict; catalogs do, from facts.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "iotmark/model/evidence.hpp"

namespace iotmark::model {

enum class Severity { kInfo, kLow, kMedium, kHigh, kCritical };

std::string_view ToString(Severity severity);

struct Finding {
  std::string id;        // stable check id: "credentials.default_password"
  std::string analyzer;  // the analyzer that raised it
  Severity severity = Severity::kMedium;
  std::string title;   // one line
  std::string detail;  // what exactly, in a sentence or two
  std::string cwe;     // "CWE-798", if one fits
  std::string advice;  // what the manufacturer should do
  std::vector<Evidence> evidence;
};

}  // namespace iotmark::model
