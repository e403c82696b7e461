#include "iotmark/analyzers/builtin/components/signature_set.hpp"

namespace iotmark::analyzers::builtin {

namespace {

const std::string kFile(kSignaturesFile);

Status Invalid(const YAML::Node& node, const std::string& message) {
  return Fail(ErrorCode::kCorruptInput, YamlWhere(kFile, node) + ": " + message);
}

Result<std::string> RequiredString(const YAML::Node& parent, const char* key) {
  const auto node = parent[key];
  if (!node || !node.IsScalar() || node.Scalar().empty()) {
    return tl::unexpected(Invalid(parent, std::string("missing '") + key + "'").error());
  }
  return node.Scalar();
}

std::string OptionalString(const YAML::Node& parent, const char* key) {
  const auto node = parent[key];
  return node && node.IsScalar() ? node.Scalar() : std::string();
}

Result<SignatureRule> LoadRule(const YAML::Node& node) {
  if (!node.IsMap()) return tl::unexpected(Invalid(node, "a rule must be a mapping").error());
  SignatureRule rule;
  rule.where = YamlWhere(kFile, node);
  int kinds = 0;
  for (const auto& [key, kind] : {std::pair{"match", SignatureRule::Kind::kMatch},
                                  std::pair{"filename", SignatureRule::Kind::kFilename},
                                  std::pair{"strings", SignatureRule::Kind::kStrings}}) {
    if (node[key]) {
      ++kinds;
      rule.kind = kind;
      rule.expression = OptionalString(node, key);
    }
  }
  if (kinds != 1 || rule.expression.empty()) {
    return tl::unexpected(
        Invalid(node, "a rule needs exactly one of match, filename, strings").error());
  }
  rule.files = OptionalString(node, "files");
  rule.scan = OptionalString(node, "scan");
  if (rule.scan.empty()) rule.scan = rule.expression;
  if (rule.kind == SignatureRule::Kind::kStrings && rule.files.empty()) {
    return tl::unexpected(Invalid(node, "a strings rule needs 'files'").error());
  }
  const auto confidence = OptionalString(node, "confidence");
  if (confidence == "high") {
    rule.confidence = model::Confidence::kHigh;
  } else if (confidence == "medium") {
    rule.confidence = model::Confidence::kMedium;
  } else if (confidence == "low") {
    rule.confidence = model::Confidence::kLow;
  } else if (!confidence.empty()) {
    return tl::unexpected(Invalid(node, "confidence must be high, medium or low").error());
  }
  try {
    rule.regex = std::regex(rule.expression, std::regex::ECMAScript | std::regex::optimize);
  } catch (const std::regex_error& e) {
    return tl::unexpected(
        Invalid(node, "expression does not compile: " + std::string(e.what())).error());
  }
  return rule;
}

}  // namespace

Result<std::vector<ComponentSignature>> LoadSignatures(const DataStore& data) {
  auto root = data.LoadYaml(kSignaturesFile);
  if (!root) return tl::unexpected(root.error());
  const auto list = (*root)["components"];
  if (!list || !list.IsSequence()) {
    return tl::unexpected(Invalid(*root, "missing the 'components' list").error());
  }
  std::vector<ComponentSignature> signatures;
  for (const auto& node : list) {
    ComponentSignature signature;
    auto name = RequiredString(node, "name");
    if (!name) return tl::unexpected(name.error());
    signature.name = *name;
    auto cpe = RequiredString(node, "cpe");
    if (!cpe) return tl::unexpected(cpe.error());
    signature.cpe = *cpe;
    auto purl = RequiredString(node, "purl");
    if (!purl) return tl::unexpected(purl.error());
    signature.purl = *purl;
    signature.cpe_update_from = OptionalString(node, "cpe_update_from");
    if (const auto packages = node["packages"]; packages && packages.IsSequence()) {
      for (const auto& package : packages)
        signature.packages.push_back(package.as<std::string>(""));
    }
    const auto rules = node["rules"];
    if (!rules || !rules.IsSequence() || rules.size() == 0) {
      return tl::unexpected(Invalid(node, "component " + signature.name + " has no rules").error());
    }
    for (const auto& rule_node : rules) {
      auto rule = LoadRule(rule_node);
      if (!rule) return tl::unexpected(rule.error());
      signature.rules.push_back(std::move(*rule));
    }
    signatures.push_back(std::move(signature));
  }
  return signatures;
}

}  // namespace iotmark::analyzers::builtin
