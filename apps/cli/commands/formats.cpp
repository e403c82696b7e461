// iotmark formats: the formats this build recognises, with their magics.
#include <iomanip>
#include <iostream>

#include "commands/commands.hpp"
#include "iotmark/unpack/format.hpp"

namespace iotmark::cli {

Verb RegisterFormats(CLI::App& app) {
  auto* command = app.add_subcommand("formats", "List the formats the unpacker recognises");
  return [command]() -> int {
    if (!command->parsed()) return -1;
    for (const auto& format : unpack::BuiltinFormats()) {
      std::cout << std::left << std::setw(14) << format->name() << format->description() << "\n";
    }
    return 0;
  };
}

}  // namespace iotmark::cli
