// iotmark sbom IMAGE: the components of a firmware image as a CycloneDX or SPDX document.
#include <memory>

#include "commands/commands.hpp"
#include "commands/scan_command.hpp"

namespace iotmark::cli {

Verb RegisterSbom(CLI::App& app) {
  auto flags = std::make_shared<UnpackFlags>();
  auto scan = std::make_shared<ScanFlags>();
  auto* command = app.add_subcommand(
      "sbom",
      "Unpack a firmware image, identify its components and write them as an SBOM: CycloneDX "
      "1.5 JSON (default) or SPDX 2.3 JSON, each component with its version, PURL, CPE 2.3 and "
      "where it was found.");
  AddUnpackFlags(*command, *flags);
  command->add_option("--format", scan->sbom_format, "cyclonedx (default) or spdx")
      ->check(CLI::IsMember({"cyclonedx", "spdx"}));
  command->add_option("-o,--output", scan->sbom_path,
                      "Write the SBOM to FILE (default: standard output)");
  command->add_option("--data-dir", scan->data_dir, "The data directory (default: as for scan)");
  return [command, flags, scan]() -> int {
    if (!command->parsed()) return -1;
    if (scan->sbom_path.empty()) scan->sbom_path = "-";
    scan->only = {"components"};
    flags->quiet = true;
    return RunScanCommand(*flags, *scan);
  };
}

}  // namespace iotmark::cli
