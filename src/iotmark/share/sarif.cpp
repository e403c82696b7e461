#include "iotmark/share/sarif.hpp"

#include <map>

#include "iotmark/base/bytes.hpp"
#include "iotmark/base/sha256.hpp"

namespace iotmark::share {

namespace {

std::string Level(model::Severity severity) {
  switch (severity) {
    case model::Severity::kCritical:
    case model::Severity::kHigh:
      return "error";
    case model::Severity::kMedium:
      return "warning";
    case model::Severity::kLow:
    case model::Severity::kInfo:
      return "note";
  }
  return "note";
}

// GitHub code scanning reads this property to rank security results (0.0-10.0).
std::string SecuritySeverity(model::Severity severity) {
  switch (severity) {
    case model::Severity::kCritical:
      return "9.5";
    case model::Severity::kHigh:
      return "8.0";
    case model::Severity::kMedium:
      return "5.5";
    case model::Severity::kLow:
      return "3.0";
    case model::Severity::kInfo:
      return "0.0";
  }
  return "0.0";
}

// SARIF artifact URIs are relative references: no leading '/', percent-encoded.
std::string Uri(const model::Evidence& evidence) {
  std::string path = evidence.system_path.empty() ? evidence.path : evidence.system_path;
  while (!path.empty() && path.front() == '/') path.erase(0, 1);
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : path) {
    const auto byte = static_cast<unsigned char>(c);
    const bool plain = (byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z') ||
                       (byte >= '0' && byte <= '9') || c == '/' || c == '.' || c == '-' ||
                       c == '_' || c == '~';
    if (plain) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xf]);
    }
  }
  return out;
}

}  // namespace

nlohmann::json ToSarif(const std::vector<model::Finding>& findings, const std::string& tool_version,
                       const std::string& image_name) {
  std::map<std::string, std::size_t> rule_index;
  nlohmann::json rules = nlohmann::json::array();
  nlohmann::json results = nlohmann::json::array();
  for (const auto& finding : findings) {
    auto [it, fresh] = rule_index.try_emplace(finding.id, rules.size());
    if (fresh) {
      nlohmann::json tags = {"security", "firmware"};
      if (!finding.cwe.empty()) tags.push_back("external/cwe/" + finding.cwe);
      nlohmann::json rule = {
          {"id", finding.id},
          {"name", finding.id},
          {"shortDescription", {{"text", finding.title}}},
          {"defaultConfiguration", {{"level", Level(finding.severity)}}},
          {"properties",
           {{"tags", tags}, {"security-severity", SecuritySeverity(finding.severity)}}}};
      if (!finding.advice.empty()) rule["help"] = {{"text", finding.advice}};
      rules.push_back(std::move(rule));
    }
    nlohmann::json locations = nlohmann::json::array();
    for (std::size_t i = 0; i < finding.evidence.size() && i < 10; ++i) {
      const auto& evidence = finding.evidence[i];
      nlohmann::json physical = {{"artifactLocation", {{"uri", Uri(evidence)}}}};
      if (evidence.offset)
        physical["region"] = {{"byteOffset", *evidence.offset}, {"byteLength", 1}};
      locations.push_back({{"physicalLocation", physical}});
    }
    const std::string first = finding.evidence.empty() ? "" : Uri(finding.evidence.front());
    nlohmann::json result = {{"ruleId", finding.id},
                             {"ruleIndex", it->second},
                             {"level", Level(finding.severity)},
                             {"message", {{"text", finding.title + ": " + finding.detail}}},
                             {"partialFingerprints",
                              {{"iotmarkFinding/v1", Sha256::Hex(AsBytes(finding.id + "\n" + first +
                                                                         "\n" + finding.detail))
                                                         .substr(0, 32)}}}};
    if (!locations.empty()) result["locations"] = std::move(locations);
    results.push_back(std::move(result));
  }
  nlohmann::json run = {
      {"tool",
       {{"driver",
         {{"name", "iotmark"},
          {"version", tool_version},
          {"informationUri", "https://iotmark.dev"},
          {"rules", rules}}}}},
      {"results", results},
      {"artifacts", {{{"location", {{"uri", image_name}}}, {"roles", {"analysisTarget"}}}}}};
  return {{"$schema", "https://json.schemastore.org/sarif-2.1.0.json"},
          {"version", "2.1.0"},
          {"runs", {run}}};
}

}  // namespace iotmark::share
