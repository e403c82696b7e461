// Package identifiers for vulnerability matching: CPE 2.3 formatted strings (NVD) and PURLs,
// with the escaping each one requires.
#pragma once

#include <string>
#include <string_view>

namespace iotmark::sbom {

struct CpeName {
  char part = 'a';  // a: application, o: operating system, h: hardware
  std::string vendor;
  std::string product;
  std::string version;  // "*" when unknown
  std::string update;   // "*" when none
};

// "vendor:product", "o:vendor:product" -> a CpeName without version.
CpeName ParseCpeBase(std::string_view text);
// "cpe:2.3:a:vendor:product:version:update:*:*:*:*:*:*" with CPE 2.3 escaping.
std::string FormatCpe(const CpeName& name);
// Escapes one component of a CPE 2.3 formatted string.
std::string EscapeCpeComponent(std::string_view value);

// Appends "@version" to a PURL base, percent-encoding what the PURL spec asks for.
std::string PurlWithVersion(std::string_view base, std::string_view version);
std::string PercentEncode(std::string_view text);

}  // namespace iotmark::sbom
