#include "iotmark/analyzers/builtin/components/package_db.hpp"

namespace iotmark::analyzers::builtin {

namespace {

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

}  // namespace

std::vector<InstalledPackage> ParsePackageStanzas(std::string_view text, std::size_t max_packages) {
  std::vector<InstalledPackage> packages;
  InstalledPackage current;
  bool installed = true;
  auto flush = [&] {
    if (!current.name.empty() && installed && packages.size() < max_packages) {
      packages.push_back(std::move(current));
    }
    current = {};
    installed = true;
  };
  std::size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const auto line = text.substr(start, end - start);
    start = end + 1;
    if (Trim(line).empty()) {
      flush();
      if (end == text.size()) break;
      continue;
    }
    if (line.front() == ' ' || line.front() == '\t') continue;  // continuation of a field
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const auto key = line.substr(0, colon);
    const auto value = std::string(Trim(line.substr(colon + 1)));
    if (key == "Package") {
      current.name = value;
    } else if (key == "Version") {
      current.version = value;
    } else if (key == "Architecture") {
      current.architecture = value;
    } else if (key == "Source") {
      current.source = value.substr(0, value.find(' '));
    } else if (key == "Status") {
      installed = value.find("not-installed") == std::string::npos &&
                  value.find("config-files") == std::string::npos &&
                  value.find("deinstall") == std::string::npos;
    }
    if (end == text.size()) break;
  }
  flush();
  return packages;
}

std::string UpstreamVersion(std::string_view version) {
  if (const auto colon = version.find(':'); colon != std::string_view::npos && colon < 4) {
    version.remove_prefix(colon + 1);
  }
  if (const auto dash = version.rfind('-'); dash != std::string_view::npos && dash > 0) {
    version = version.substr(0, dash);
  }
  return std::string(version);
}

}  // namespace iotmark::analyzers::builtin
