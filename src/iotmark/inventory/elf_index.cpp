// Placeholder until the libelf parser lands (being written now): no ELF facts yet.
#include "iotmark/inventory/elf_index.hpp"

namespace iotmark::inventory {

ElfIndex ElfIndex::Build(const FileTree& /*tree*/, ThreadPool& /*pool*/) { return {}; }

const ElfFacts* ElfIndex::For(std::uint32_t /*file*/) const { return nullptr; }

}  // namespace iotmark::inventory
