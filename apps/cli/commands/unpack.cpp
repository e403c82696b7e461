// iotmark unpack IMAGE -o DIR: leave the extracted tree on disk for people who want to look.
#include <memory>

#include "commands/commands.hpp"
#include "commands/unpack_options.hpp"

namespace iotmark::cli {

Verb RegisterUnpack(CLI::App& app) {
  auto flags = std::make_shared<UnpackFlags>();
  auto output = std::make_shared<std::string>();
  auto* command = app.add_subcommand(
      "unpack",
      "Unpack a firmware image recursively into a directory: every container, filesystem and "
      "compressed stream at any offset, nothing written outside DIR.");
  AddUnpackFlags(*command, *flags);
  command->add_option("-o,--output", *output, "Output directory (must be empty or absent)")
      ->required();
  return [command, flags, output]() -> int {
    if (!command->parsed()) return -1;
    return RunUnpackJob(*flags, *output, true);
  };
}

}  // namespace iotmark::cli
