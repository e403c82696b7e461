// What `scan` and `sbom` share: the scan flags and the job that runs them.
#pragma once

#include <string>
#include <vector>

#include "commands/unpack_options.hpp"

namespace iotmark::cli {

struct ScanFlags {
  std::string work_dir;  // keep the extracted tree here
  std::string data_dir;
  std::vector<std::string> only;
  bool no_analysis = false;
  std::string sbom_path;
  std::string sbom_format = "cyclonedx";
  std::string sarif_path;
};

// Scans flags.image (into a temporary work directory unless scan.work_dir is set) and writes
// what the flags ask for; returns the exit code.
int RunScanCommand(const UnpackFlags& flags, const ScanFlags& scan);

}  // namespace iotmark::cli
