// The component signatures of data/components/signatures.yaml, loaded and checked.
#pragma once

#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "iotmark/base/data_store.hpp"
#include "iotmark/base/result.hpp"
#include "iotmark/model/component.hpp"

namespace iotmark::analyzers::builtin {

struct SignatureRule {
  enum class Kind { kMatch, kFilename, kStrings };
  Kind kind = Kind::kMatch;
  std::string expression;
  std::string scan;   // what the shared content scan looks for (match rules; default expression)
  std::regex regex;   // the same expression, to extract group 1
  std::string files;  // glob on the file name; empty = any file
  std::optional<model::Confidence> confidence;  // overrides the default
  std::string where;                            // file:line:column of the rule, for messages
};

struct ComponentSignature {
  std::string name;
  std::string cpe;              // "vendor:product" or "o:vendor:product"
  std::string cpe_update_from;  // split "9.2p1" into version "9.2" and update "p1" at this
  std::string purl;             // base, without version
  std::vector<std::string> packages;
  std::vector<SignatureRule> rules;
};

inline constexpr std::string_view kSignaturesFile = "components/signatures.yaml";

// Loads and validates the signatures; an error names the file, line and column.
Result<std::vector<ComponentSignature>> LoadSignatures(const DataStore& data);

}  // namespace iotmark::analyzers::builtin
