// One parse per ELF file of the tree (libelf), kept as plain facts that every analyzer reads:
// hardening flags, the libraries it needs, the symbols it imports and exports.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "iotmark/base/bytes.hpp"
#include "iotmark/base/thread_pool.hpp"
#include "iotmark/inventory/file_tree.hpp"
#include "iotmark/model/gap.hpp"

namespace iotmark::inventory {

enum class Relro { kNone, kPartial, kFull };

struct ElfFacts {
  std::uint32_t file = 0;  // index into FileTree::files()
  std::string machine;     // "arm", "mips", "x86_64", ... (lower case); "em-<number>" if unknown
  std::uint16_t e_machine = 0;
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
  // A symbol table (dynamic or static) could be read, so `canary` and `fortify` mean something;
  // false for stripped static binaries, whose use of either cannot be seen.
  bool symbols_known = false;
  std::string soname;
  std::string build_id;  // hex
  std::vector<std::string> rpath;
  std::vector<std::string> runpath;
  std::vector<std::string> needed;
  std::vector<std::string> imports;  // undefined dynamic symbols, sorted, unique
  std::vector<std::string> exports;  // defined global dynamic symbols, sorted, unique
};

// Caps that keep a crafted ELF from costing unbounded time or memory; a file that hits one gets
// a gap and keeps what was read up to the cap.
struct ElfLimits {
  std::size_t max_segments = 4096;
  std::size_t max_sections = 1 << 17;
  std::size_t max_symbols_scanned = 1 << 20;  // per symbol table
  std::size_t max_symbols_kept = 20000;       // per list (imports, exports)
  std::size_t max_strings = 4096;             // DT_NEEDED, rpath and runpath entries
  std::size_t max_string_length = 4096;
};

// Parses one ELF image. `file` is copied into the result; problems are appended to `gaps` with
// `path` as their blob. Returns nothing when the image is not an ELF file libelf can read.
std::optional<ElfFacts> ParseElf(ByteView bytes, std::uint32_t file, const std::string& path,
                                 const ElfLimits& limits, std::vector<model::Gap>& gaps);

class ElfIndex {
 public:
  // Parses every regular file of `tree` that starts with the ELF magic, in parallel.
  static ElfIndex Build(const FileTree& tree, ThreadPool& pool, const ElfLimits& limits = {});

  [[nodiscard]] std::span<const ElfFacts> all() const { return elves_; }  // sorted by file
  [[nodiscard]] const ElfFacts* For(std::uint32_t file) const;
  // ELF files that could not be read, or only in part (a limit, a truncated table), and why;
  // each gap names the file.
  [[nodiscard]] const std::vector<model::Gap>& gaps() const { return gaps_; }

 private:
  std::vector<ElfFacts> elves_;
  std::vector<model::Gap> gaps_;
};

}  // namespace iotmark::inventory
