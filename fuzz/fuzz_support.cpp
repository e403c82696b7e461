#include <unistd.h>

#include <cstdlib>
#include <string>

#include "fuzz_target.hpp"

namespace iotmark::fuzz {

const std::filesystem::path& ScratchRoot() {
  static const std::filesystem::path root = [] {
    std::string pattern = (std::filesystem::temp_directory_path() / "iotmark-fuzz-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(ScratchRoot(), ec);
    });
    return std::filesystem::path(pattern);
  }();
  return root;
}

void ResetScratch() {
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(ScratchRoot(), ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) {
      std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all,
                                   std::filesystem::perm_options::add, ec);
    }
  }
  for (const auto& entry : std::filesystem::directory_iterator(ScratchRoot(), ec)) {
    std::filesystem::remove_all(entry.path(), ec);
  }
}

}  // namespace iotmark::fuzz
