// Fuzz target for the ELF index (libelf and the hand-written dynamic-segment reader): the input
// becomes the one file of a scratch tree and the index is built over it, with tight caps. Any
// crash, hang, sanitizer report or runaway allocation is a bug.
#include <fstream>

#include "fuzz_target.hpp"
#include "iotmark/base/thread_pool.hpp"
#include "iotmark/inventory/elf_index.hpp"
#include "iotmark/inventory/file_tree.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace iotmark;
  static ThreadPool pool(0);
  {
    std::ofstream out(fuzz::ScratchRoot() / "input.elf", std::ios::binary);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  model::UnpackReport report;
  report.tree.kind = model::ExtractionNode::Kind::kBlob;
  model::InventoryEntry entry;
  entry.path = "input.elf";
  entry.size = size;
  entry.mode = 0100755;
  entry.type = "data";
  report.inventory.push_back(entry);
  if (auto tree = inventory::FileTree::Open(fuzz::ScratchRoot(), report)) {
    inventory::ElfLimits limits;
    limits.max_sections = 4096;
    limits.max_symbols_scanned = 1 << 16;
    limits.max_symbols_kept = 256;
    limits.max_strings = 256;
    const auto index = inventory::ElfIndex::Build(*tree, pool, limits);
    // Touch everything the index kept, so the sanitizers see any bad string.
    std::size_t total = index.gaps().size();
    for (const auto& elf : index.all()) {
      total += elf.machine.size() + elf.interpreter.size() + elf.soname.size();
      for (const auto* list : {&elf.needed, &elf.rpath, &elf.runpath, &elf.imports, &elf.exports}) {
        for (const auto& item : *list) total += item.size();
      }
    }
    (void)total;
  }
  fuzz::ResetScratch();
  return 0;
}
