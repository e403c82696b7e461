#include "iotmark/sbom/sbom_document.hpp"

#include "iotmark/base/bytes.hpp"
#include "iotmark/base/sha256.hpp"

namespace iotmark::sbom {

namespace {

std::string ComponentType(const model::Component& component) {
  if (component.name == "linux") return "operating-system";
  if (component.name == "u-boot") return "firmware";
  if (component.name == "busybox" || component.name == "dropbear" || component.name == "openssh" ||
      component.name.find("httpd") != std::string::npos) {
    return "application";
  }
  return "library";
}

double ConfidenceValue(model::Confidence confidence) {
  switch (confidence) {
    case model::Confidence::kHigh:
      return 0.9;
    case model::Confidence::kMedium:
      return 0.6;
    case model::Confidence::kLow:
      return 0.3;
  }
  return 0.3;
}

std::string Technique(const std::string& method) {
  if (method.find("dpkg") != std::string::npos || method.find("opkg") != std::string::npos) {
    return "manifest-analysis";
  }
  if (method.starts_with("filename")) return "filename";
  return "binary-analysis";
}

std::string Ref(const model::Component& component, std::size_t index) {
  return "component-" + std::to_string(index) + "-" + component.name + "@" + component.version;
}

std::string Location(const model::Evidence& evidence) {
  return evidence.system_path.empty() ? evidence.path : evidence.system_path;
}

// SPDX ids allow letters, digits, '.' and '-'.
std::string SpdxId(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-';
    out.push_back(ok ? c : '-');
  }
  return out;
}

}  // namespace

std::string StableUuid(std::string_view seed) {
  auto hex = Sha256::Hex(AsBytes(seed)).substr(0, 32);
  hex[12] = '5';  // a name-based UUID
  static constexpr char kVariant[] = "89ab";
  hex[16] = kVariant[std::stoi(hex.substr(16, 1), nullptr, 16) & 3];
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

nlohmann::json ToCycloneDx(const SbomSubject& subject,
                           const std::vector<model::Component>& components) {
  nlohmann::json bom;
  bom["bomFormat"] = "CycloneDX";
  bom["specVersion"] = "1.5";
  bom["serialNumber"] = "urn:uuid:" + StableUuid("cyclonedx:" + subject.image_sha256);
  bom["version"] = 1;
  nlohmann::json firmware = {{"type", "firmware"},
                             {"bom-ref", "firmware"},
                             {"name", subject.image_name},
                             {"hashes", {{{"alg", "SHA-256"}, {"content", subject.image_sha256}}}}};
  bom["metadata"] = {
      {"timestamp", subject.created},
      {"tools",
       {{"components",
         {{{"type", "application"}, {"name", "iotmark"}, {"version", subject.tool_version}}}}}},
      {"component", firmware}};
  nlohmann::json list = nlohmann::json::array();
  nlohmann::json refs = nlohmann::json::array();
  for (std::size_t i = 0; i < components.size(); ++i) {
    const auto& component = components[i];
    nlohmann::json entry = {{"type", ComponentType(component)},
                            {"bom-ref", Ref(component, i)},
                            {"name", component.name}};
    if (!component.version.empty()) entry["version"] = component.version;
    if (!component.supplier.empty()) entry["supplier"] = {{"name", component.supplier}};
    if (!component.purl.empty()) entry["purl"] = component.purl;
    if (!component.cpe.empty()) entry["cpe"] = component.cpe;
    nlohmann::json occurrences = nlohmann::json::array();
    for (const auto& location : component.locations) {
      occurrences.push_back({{"location", Location(location)}});
    }
    const double confidence = ConfidenceValue(component.confidence);
    entry["evidence"] = {{"identity",
                          {{"field", component.purl.empty() ? "name" : "purl"},
                           {"confidence", confidence},
                           {"methods",
                            {{{"technique", Technique(component.method)},
                              {"confidence", confidence},
                              {"value", component.method}}}}}},
                         {"occurrences", occurrences}};
    entry["properties"] = {{{"name", "iotmark:method"}, {"value", component.method}},
                           {{"name", "iotmark:confidence"},
                            {"value", std::string(model::ToString(component.confidence))}}};
    refs.push_back(entry["bom-ref"]);
    list.push_back(std::move(entry));
  }
  bom["components"] = std::move(list);
  bom["dependencies"] = {{{"ref", "firmware"}, {"dependsOn", refs}}};
  return bom;
}

nlohmann::json ToSpdx(const SbomSubject& subject, const std::vector<model::Component>& components) {
  nlohmann::json doc;
  doc["spdxVersion"] = "SPDX-2.3";
  doc["dataLicense"] = "CC0-1.0";
  doc["SPDXID"] = "SPDXRef-DOCUMENT";
  doc["name"] = "iotmark SBOM of " + subject.image_name;
  doc["documentNamespace"] = "https://iotmark.dev/spdx/" + subject.image_sha256 + "/" +
                             StableUuid("spdx:" + subject.image_sha256);
  doc["creationInfo"] = {{"created", subject.created},
                         {"creators", {"Tool: iotmark-" + subject.tool_version}}};
  nlohmann::json packages = nlohmann::json::array();
  nlohmann::json relationships = nlohmann::json::array();
  packages.push_back(
      {{"SPDXID", "SPDXRef-Firmware"},
       {"name", subject.image_name},
       {"downloadLocation", "NOASSERTION"},
       {"filesAnalyzed", false},
       {"primaryPackagePurpose", "FIRMWARE"},
       {"checksums", {{{"algorithm", "SHA256"}, {"checksumValue", subject.image_sha256}}}},
       {"licenseConcluded", "NOASSERTION"},
       {"licenseDeclared", "NOASSERTION"},
       {"copyrightText", "NOASSERTION"}});
  relationships.push_back({{"spdxElementId", "SPDXRef-DOCUMENT"},
                           {"relationshipType", "DESCRIBES"},
                           {"relatedSpdxElement", "SPDXRef-Firmware"}});
  for (std::size_t i = 0; i < components.size(); ++i) {
    const auto& component = components[i];
    const std::string id = "SPDXRef-Package-" + std::to_string(i) + "-" + SpdxId(component.name);
    nlohmann::json package = {{"SPDXID", id},
                              {"name", component.name},
                              {"downloadLocation", "NOASSERTION"},
                              {"filesAnalyzed", false},
                              {"licenseConcluded", "NOASSERTION"},
                              {"licenseDeclared", "NOASSERTION"},
                              {"copyrightText", "NOASSERTION"}};
    if (!component.version.empty()) package["versionInfo"] = component.version;
    nlohmann::json refs = nlohmann::json::array();
    if (!component.cpe.empty()) {
      refs.push_back({{"referenceCategory", "SECURITY"},
                      {"referenceType", "cpe23Type"},
                      {"referenceLocator", component.cpe}});
    }
    if (!component.purl.empty()) {
      refs.push_back({{"referenceCategory", "PACKAGE-MANAGER"},
                      {"referenceType", "purl"},
                      {"referenceLocator", component.purl}});
    }
    if (!refs.empty()) package["externalRefs"] = refs;
    std::string where;
    for (const auto& location : component.locations) {
      if (!where.empty()) where += ", ";
      where += Location(location);
    }
    package["comment"] = "Identified by " + component.method + " (" +
                         std::string(model::ToString(component.confidence)) + " confidence) in " +
                         where;
    packages.push_back(std::move(package));
    relationships.push_back({{"spdxElementId", "SPDXRef-Firmware"},
                             {"relationshipType", "CONTAINS"},
                             {"relatedSpdxElement", id}});
  }
  doc["packages"] = std::move(packages);
  doc["relationships"] = std::move(relationships);
  return doc;
}

}  // namespace iotmark::sbom
