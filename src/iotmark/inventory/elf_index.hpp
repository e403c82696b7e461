// One parse per ELF file of the tree (libelf), kept as plain facts that every analyzer reads:
// hardening flags, the libraries it needs, the symbols it imports and exports.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "iotmark/base/thread_pool.hpp"
#include "iotmark/inventory/file_tree.hpp"
#include "iotmark/model/gap.hpp"

namespace iotmark::inventory {

enum class Relro { kNone, kPartial, kFull };

struct ElfFacts {
  std::uint32_t file = 0;  // index into FileTree::files()
  std::string machine;     // "arm", "mips", "x86_64", ... (lower case)
  int bits = 32;
  bool big_endian = false;
  std::string type;  // "executable", "shared-object", "pie-executable", "relocatable", "core"
  std::string interpreter;  // PT_INTERP, if any
  bool statically_linked = false;
  bool nx = false;   // PT_GNU_STACK without PF_X
  bool pie = false;  // position independent executable
  Relro relro = Relro::kNone;
  bool canary = false;   // imports or defines __stack_chk_fail / __stack_chk_guard
  bool fortify = false;  // imports *_chk functions
  bool stripped = true;  // no .symtab
  std::string soname;
  std::string build_id;  // hex
  std::vector<std::string> rpath;
  std::vector<std::string> runpath;
  std::vector<std::string> needed;
  std::vector<std::string> imports;  // undefined dynamic symbols, sorted, unique
  std::vector<std::string> exports;  // defined global dynamic symbols, sorted, unique
};

class ElfIndex {
 public:
  // Parses every regular file of `tree` that starts with the ELF magic, in parallel.
  static ElfIndex Build(const FileTree& tree, ThreadPool& pool);

  [[nodiscard]] std::span<const ElfFacts> all() const { return elves_; }  // sorted by file
  [[nodiscard]] const ElfFacts* For(std::uint32_t file) const;
  // ELF files that could not be parsed, and why.
  [[nodiscard]] const std::vector<model::Gap>& gaps() const { return gaps_; }

 private:
  std::vector<ElfFacts> elves_;
  std::vector<model::Gap> gaps_;
};

}  // namespace iotmark::inventory
