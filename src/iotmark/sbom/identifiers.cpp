#include "iotmark/sbom/identifiers.hpp"

#include <array>

namespace iotmark::sbom {

CpeName ParseCpeBase(std::string_view text) {
  CpeName name;
  if (text.size() > 2 && text[1] == ':' && (text[0] == 'a' || text[0] == 'o' || text[0] == 'h')) {
    name.part = text[0];
    text.remove_prefix(2);
  }
  const auto colon = text.find(':');
  name.vendor = std::string(text.substr(0, colon));
  name.product =
      colon == std::string_view::npos ? name.vendor : std::string(text.substr(colon + 1));
  name.version = "*";
  name.update = "*";
  return name;
}

std::string EscapeCpeComponent(std::string_view value) {
  if (value.empty()) return "*";
  if (value == "*" || value == "-") return std::string(value);
  std::string out;
  for (const char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    const bool plain = (byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z') ||
                       (byte >= '0' && byte <= '9') || c == '_' || c == '.' || c == '-';
    if (!plain) out.push_back('\\');
    out.push_back(static_cast<char>(byte >= 'A' && byte <= 'Z' ? byte - 'A' + 'a' : byte));
  }
  return out;
}

std::string FormatCpe(const CpeName& name) {
  std::string out = "cpe:2.3:";
  out.push_back(name.part);
  for (const auto* value : {&name.vendor, &name.product, &name.version, &name.update}) {
    out += ':';
    out += EscapeCpeComponent(*value);
  }
  out += ":*:*:*:*:*:*";
  return out;
}

std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    const bool plain = (byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z') ||
                       (byte >= '0' && byte <= '9') || c == '.' || c == '-' || c == '_' || c == '~';
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

std::string PurlWithVersion(std::string_view base, std::string_view version) {
  std::string out(base);
  if (!version.empty()) {
    out += '@';
    out += PercentEncode(version);
  }
  return out;
}

}  // namespace iotmark::sbom
