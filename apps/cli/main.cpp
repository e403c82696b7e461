// iotmark command line: parses arguments, calls the library, prints. Nothing else lives here.
#include <CLI/CLI.hpp>
#include <iostream>
#include <vector>

#include "commands/commands.hpp"
#include "exit_codes.hpp"

int main(int argc, char** argv) {
  using namespace iotmark::cli;
  CLI::App app{
      "iotmark " IOTMARK_VERSION
      " - assess the cybersecurity of IoT products.\n\n"
      "Exit codes: 0 done; 1 done with gaps (see the report); 2 usage error; 3 the image cannot "
      "be read; 4 the output cannot be written; 5 internal error."};
  app.set_version_flag("--version", IOTMARK_VERSION);
  app.require_subcommand(1);
  std::vector<Verb> verbs = {RegisterScan(app), RegisterSbom(app), RegisterUnpack(app),
                             RegisterFormats(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return code == 0 ? kExitOk : kExitUsage;
  }
  for (const Verb& verb : verbs) {
    if (const int code = verb(); code >= 0) return code;
  }
  return kExitUsage;
}
