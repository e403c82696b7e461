// iotmark scan IMAGE: unpack into a private work directory, report, and clean up.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>

#include "commands/commands.hpp"
#include "commands/unpack_options.hpp"
#include "exit_codes.hpp"

namespace iotmark::cli {

namespace {

// Extracted trees may hold read-only directories; make them removable first.
void RemoveTree(const std::filesystem::path& root) {
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) {
      std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all,
                                   std::filesystem::perm_options::add, ec);
    }
  }
  std::filesystem::remove_all(root, ec);
}

}  // namespace

Verb RegisterScan(CLI::App& app) {
  auto flags = std::make_shared<UnpackFlags>();
  auto work_dir = std::make_shared<std::string>();
  auto* command = app.add_subcommand(
      "scan",
      "Unpack a firmware image and report what is inside: the extraction tree, every file with "
      "its SHA-256, and the gaps. The extracted files are removed afterwards unless --keep is "
      "given.");
  AddUnpackFlags(*command, *flags);
  command->add_option("--keep", *work_dir,
                      "Keep the extracted tree in this directory (must be empty or absent)");
  return [command, flags, work_dir]() -> int {
    if (!command->parsed()) return -1;
    if (!work_dir->empty()) return RunUnpackJob(*flags, *work_dir, true);
    std::string temp = (std::filesystem::temp_directory_path() / "iotmark-scan-XXXXXX").string();
    if (::mkdtemp(temp.data()) == nullptr) {
      std::cerr << "iotmark: cannot create a work directory in "
                << std::filesystem::temp_directory_path() << "\n";
      return kExitOutput;
    }
    const int code = RunUnpackJob(*flags, temp, false);
    RemoveTree(temp);
    return code;
  };
}

}  // namespace iotmark::cli
