#include "iotmark/model/analysis_report.hpp"

#include <algorithm>
#include <tuple>

#include "iotmark/model/unpack_report.hpp"

namespace iotmark::model {

std::string_view ToString(Severity severity) {
  switch (severity) {
    case Severity::kInfo:
      return "info";
    case Severity::kLow:
      return "low";
    case Severity::kMedium:
      return "medium";
    case Severity::kHigh:
      return "high";
    case Severity::kCritical:
      return "critical";
  }
  return "unknown";
}

std::string_view ToString(Confidence confidence) {
  switch (confidence) {
    case Confidence::kLow:
      return "low";
    case Confidence::kMedium:
      return "medium";
    case Confidence::kHigh:
      return "high";
  }
  return "unknown";
}

std::string_view ToString(FactType type) {
  switch (type) {
    case FactType::kBoolean:
      return "boolean";
    case FactType::kInteger:
      return "integer";
    case FactType::kNumber:
      return "number";
    case FactType::kString:
      return "string";
    case FactType::kList:
      return "list";
    case FactType::kObject:
      return "object";
  }
  return "unknown";
}

bool Conforms(const nlohmann::json& value, FactType type) {
  switch (type) {
    case FactType::kBoolean:
      return value.is_boolean();
    case FactType::kInteger:
      return value.is_number_integer();
    case FactType::kNumber:
      return value.is_number();
    case FactType::kString:
      return value.is_string();
    case FactType::kList:
      return value.is_array();
    case FactType::kObject:
      return value.is_object();
  }
  return false;
}

namespace {

const std::string& FirstPath(const std::vector<Evidence>& evidence) {
  static const std::string kNone;
  return evidence.empty() ? kNone : evidence.front().path;
}

}  // namespace

void AnalysisReport::Normalize() {
  std::sort(facts.begin(), facts.end(),
            [](const Fact& a, const Fact& b) { return a.name < b.name; });
  std::stable_sort(findings.begin(), findings.end(), [](const Finding& a, const Finding& b) {
    return std::make_tuple(-static_cast<int>(a.severity), std::cref(a.id),
                           std::cref(FirstPath(a.evidence)), std::cref(a.detail)) <
           std::make_tuple(-static_cast<int>(b.severity), std::cref(b.id),
                           std::cref(FirstPath(b.evidence)), std::cref(b.detail));
  });
  std::stable_sort(components.begin(), components.end(),
                   [](const Component& a, const Component& b) {
                     return std::tie(a.name, a.version, FirstPath(a.locations)) <
                            std::tie(b.name, b.version, FirstPath(b.locations));
                   });
  std::stable_sort(gaps.begin(), gaps.end(), [](const Gap& a, const Gap& b) {
    return std::tie(a.blob, a.offset, a.reason) < std::tie(b.blob, b.offset, b.reason);
  });
}

const Fact* AnalysisReport::FindFact(std::string_view name) const {
  const auto it =
      std::lower_bound(facts.begin(), facts.end(), name,
                       [](const Fact& fact, std::string_view n) { return fact.name < n; });
  if (it != facts.end() && it->name == name) return &*it;
  for (const auto& fact : facts) {  // not normalized yet
    if (fact.name == name) return &fact;
  }
  return nullptr;
}

nlohmann::json ToJson(const Evidence& evidence) {
  nlohmann::json json = nlohmann::json::object();
  json["path"] = evidence.path;
  if (!evidence.system_path.empty()) json["system_path"] = evidence.system_path;
  if (evidence.offset) json["offset"] = *evidence.offset;
  if (!evidence.sha256.empty()) json["sha256"] = evidence.sha256;
  if (!evidence.check.empty()) json["check"] = evidence.check;
  if (!evidence.rule.empty()) json["rule"] = evidence.rule;
  if (!evidence.excerpt.empty()) json["excerpt"] = evidence.excerpt;
  return json;
}

namespace {

nlohmann::json ToJson(const std::vector<Evidence>& list) {
  nlohmann::json json = nlohmann::json::array();
  for (const auto& evidence : list) json.push_back(ToJson(evidence));
  return json;
}

}  // namespace

nlohmann::json ToJson(const Finding& finding) {
  nlohmann::json json;
  json["id"] = finding.id;
  json["analyzer"] = finding.analyzer;
  json["severity"] = ToString(finding.severity);
  json["title"] = finding.title;
  json["detail"] = finding.detail;
  if (!finding.cwe.empty()) json["cwe"] = finding.cwe;
  if (!finding.advice.empty()) json["advice"] = finding.advice;
  json["evidence"] = ToJson(finding.evidence);
  return json;
}

nlohmann::json ToJson(const Component& component) {
  nlohmann::json json;
  json["name"] = component.name;
  json["version"] = component.version;
  if (!component.supplier.empty()) json["supplier"] = component.supplier;
  if (!component.purl.empty()) json["purl"] = component.purl;
  if (!component.cpe.empty()) json["cpe"] = component.cpe;
  json["method"] = component.method;
  json["confidence"] = ToString(component.confidence);
  json["locations"] = ToJson(component.locations);
  return json;
}

nlohmann::json ToJson(const AnalysisReport& report) {
  nlohmann::json json;
  json["analyzers"] = report.analyzers;
  nlohmann::json facts = nlohmann::json::object();
  for (const auto& fact : report.facts) {
    facts[fact.name] = {{"value", fact.value}, {"evidence", ToJson(fact.evidence)}};
  }
  json["facts"] = std::move(facts);
  json["findings"] = nlohmann::json::array();
  for (const auto& finding : report.findings) json["findings"].push_back(ToJson(finding));
  json["components"] = nlohmann::json::array();
  for (const auto& component : report.components) {
    json["components"].push_back(ToJson(component));
  }
  json["gaps"] = nlohmann::json::array();
  for (const auto& gap : report.gaps) json["gaps"].push_back(ToJson(gap));
  return json;
}

}  // namespace iotmark::model
