// The result of running the analyzers over an unpacked image: facts, findings, components and
// the gaps of the analysis itself, in a canonical order so equal inputs give equal bytes.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "iotmark/model/component.hpp"
#include "iotmark/model/fact.hpp"
#include "iotmark/model/finding.hpp"
#include "iotmark/model/gap.hpp"

namespace iotmark::model {

struct AnalysisReport {
  std::vector<std::string> analyzers;  // the analyzers that ran, in list order
  std::vector<Fact> facts;             // sorted by name
  std::vector<Finding> findings;       // most severe first, then by id and first evidence path
  std::vector<Component> components;   // sorted by name, version, first location
  std::vector<Gap> gaps;               // analysis that could not be completed, and why

  // Sorts every list into its canonical order.
  void Normalize();
  [[nodiscard]] const Fact* FindFact(std::string_view name) const;
};

nlohmann::json ToJson(const Evidence& evidence);
nlohmann::json ToJson(const Finding& finding);
nlohmann::json ToJson(const Component& component);
nlohmann::json ToJson(const AnalysisReport& report);

}  // namespace iotmark::model
