// Package databases found in a tree (dpkg's status file, opkg's status and control files): the
// installed packages with their versions, as their package manager recorded them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace iotmark::analyzers::builtin {

struct InstalledPackage {
  std::string name;
  std::string version;  // as recorded: "1:1.35.0-4+b3"
  std::string architecture;
  std::string source;  // source package, if given
};

// Parses RFC 822-style stanzas ("Package:", "Version:", "Status:"); packages whose Status says
// they are not installed are left out. Bounded: at most `max_packages` are returned.
std::vector<InstalledPackage> ParsePackageStanzas(std::string_view text,
                                                  std::size_t max_packages = 20000);

// "1:1.35.0-4+b3" -> "1.35.0": without epoch and distribution revision.
std::string UpstreamVersion(std::string_view version);

}  // namespace iotmark::analyzers::builtin
