// ELF facts with libelf (elfutils) on the mapped bytes of each file, one parse per file.
//
// libelf reads headers, sections, notes and symbols and converts byte order. Hand-written here is
// only what libelf has no view of: reading the dynamic symbol table through the dynamic segment
// (DT_SYMTAB with its size from DT_HASH, DT_GNU_HASH or DT_MIPS_SYMTABNO) for files whose section
// headers are gone, which `sstrip` does to most firmware binaries, and the up-front checks of the
// ELF header that bound every table by the file size before libelf sees it.
//
// elf_memory() takes a non-const pointer, but opened this way (ELF_C_READ_MMAP) libelf never
// writes to the image: data in the wrong byte order or alignment is converted into buffers of its
// own. The mapping is PROT_READ, so a write would fault at once; the tests run big-endian and
// unaligned inputs to keep it that way.
#include "iotmark/inventory/elf_index.hpp"

#include <gelf.h>
#include <libelf.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <string_view>
#include <utility>

namespace iotmark::inventory {

namespace {

// Candidates are handed to workers in batches of at most this many files or bytes.
constexpr std::size_t kBatchFiles = 64;
constexpr std::uint64_t kBatchBytes = 16ULL << 20;
constexpr std::size_t kMaxNoteSections = 64;
constexpr std::size_t kMaxNotesPerSection = 1024;
constexpr std::size_t kMaxBuildIdBytes = 64;
constexpr std::size_t kMaxDynamicEntries = 1 << 16;

struct ElfDeleter {
  void operator()(Elf* elf) const { elf_end(elf); }
};
using ElfHandle = std::unique_ptr<Elf, ElfDeleter>;

bool InitLibelf() {
  static const bool ready = elf_version(EV_CURRENT) != EV_NONE;
  return ready;
}

std::string LibelfError() {
  const char* text = elf_errmsg(-1);
  return text != nullptr ? text : "unknown libelf error";
}

std::string MachineName(std::uint16_t machine, bool is64) {
  switch (machine) {
    case EM_386:
      return "x86";
    case EM_X86_64:
      return "x86_64";
    case EM_ARM:
      return "arm";
    case EM_AARCH64:
      return "aarch64";
    case EM_MIPS:
    case EM_MIPS_RS3_LE:
      return is64 ? "mips64" : "mips";
    case EM_PPC:
      return "powerpc";
    case EM_PPC64:
      return "powerpc64";
    case EM_RISCV:
      return "riscv";
    case EM_SH:
      return "sh";
    case EM_SPARC:
    case EM_SPARC32PLUS:
      return "sparc";
    case EM_SPARCV9:
      return "sparc64";
    case EM_XTENSA:
      return "xtensa";
    case EM_ARC:
    case EM_ARC_COMPACT:
    case EM_ARCV2:
      return "arc";
    case EM_68K:
      return "m68k";
    case EM_S390:
      return is64 ? "s390x" : "s390";
    case EM_IA_64:
      return "ia64";
    case EM_PARISC:
      return "parisc";
    case EM_MICROBLAZE:
      return "microblaze";
    case EM_ALTERA_NIOS2:
      return "nios2";
    case EM_OPENRISC:
      return "openrisc";
    case EM_LOONGARCH:
      return "loongarch";
    case EM_CSKY:
      return "csky";
    case EM_NDS32:
      return "nds32";
    case EM_AVR:
      return "avr";
    case EM_CRIS:
      return "cris";
    case EM_BPF:
      return "bpf";
    case EM_ALPHA:
      return "alpha";
    case EM_M32R:
      return "m32r";
    case EM_H8_300:
      return "h8300";
    case EM_V850:
      return "v850";
    case EM_MN10300:
      return "mn10300";
    case EM_TI_C6000:
      return "c6x";
    case EM_QDSP6:
      return "hexagon";
    case EM_LATTICEMICO32:
      return "lm32";
    default:
      return "em-" + std::to_string(machine);
  }
}

std::string_view TypeName(std::uint16_t type) {
  switch (type) {
    case ET_REL:
      return "relocatable";
    case ET_EXEC:
      return "executable";
    case ET_DYN:
      return "shared-object";
    case ET_CORE:
      return "core";
    default:
      return "unknown";
  }
}

bool IsCanarySymbol(std::string_view name) {
  return name == "__stack_chk_fail" || name == "__stack_chk_guard" ||
         name == "__stack_chk_fail_local" || name == "__stack_smash_handler";
}

bool IsFortifySymbol(std::string_view name) {
  return name.size() > 6 && name.starts_with("__") && name.ends_with("_chk");
}

// Splits a colon-separated search path, keeping empty entries: they mean the current directory.
std::vector<std::string> SplitSearchPath(std::string_view text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const auto colon = text.find(':', start);
    out.emplace_back(text.substr(start, colon == std::string_view::npos ? colon : colon - start));
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  return out;
}

// Sorting views and copying once is markedly cheaper than sorting strings for large tables.
std::vector<std::string> SortedUnique(std::vector<std::string_view>& views) {
  std::sort(views.begin(), views.end());
  views.erase(std::unique(views.begin(), views.end()), views.end());
  return {views.begin(), views.end()};
}

struct ElfProblem {
  model::GapKind kind;
  std::string reason;
};

// Checks the ELF header against the file before libelf sees it, so every table libelf sizes
// from the header lies inside the file. A missing section header table is not fatal (segments
// are enough), so that is reported separately.
std::optional<ElfProblem> CheckHeader(ByteView bytes, bool& sections_usable) {
  sections_usable = true;
  if (bytes.size() < EI_NIDENT)
    return ElfProblem{model::GapKind::kTruncated, "the file ends inside the ELF identification"};
  const auto elf_class = bytes[EI_CLASS];
  const auto data = bytes[EI_DATA];
  if ((elf_class != ELFCLASS32 && elf_class != ELFCLASS64) ||
      (data != ELFDATA2LSB && data != ELFDATA2MSB)) {
    return ElfProblem{model::GapKind::kCorrupt, "unknown ELF class or byte order"};
  }
  const bool is64 = elf_class == ELFCLASS64;
  const std::size_t header_size = is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
  if (bytes.size() < header_size)
    return ElfProblem{model::GapKind::kTruncated, "the file ends inside the ELF header"};
  ByteReader reader(bytes,
                    data == ELFDATA2MSB ? ByteReader::Order::kBig : ByteReader::Order::kLittle);
  reader.Seek(EI_NIDENT + 8);  // e_type, e_machine, e_version
  auto word = [&] { return is64 ? reader.Read<std::uint64_t>() : reader.Read<std::uint32_t>(); };
  (void)word();  // e_entry
  const std::uint64_t phoff = word();
  const std::uint64_t shoff = word();
  reader.Skip(6);  // e_flags, e_ehsize
  const std::uint64_t phentsize = reader.Read<std::uint16_t>();
  const std::uint64_t phnum = reader.Read<std::uint16_t>();
  const std::uint64_t shentsize = reader.Read<std::uint16_t>();
  const std::uint64_t shnum = reader.Read<std::uint16_t>();
  const std::uint64_t size = bytes.size();
  auto fits = [size](std::uint64_t offset, std::uint64_t count, std::uint64_t entry) {
    return offset <= size && count <= (size - offset) / entry;
  };
  if (phnum != 0 && phnum != PN_XNUM) {
    const std::uint64_t expected = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
    if (phentsize != expected) {
      return ElfProblem{model::GapKind::kCorrupt, "program header entries have the wrong size"};
    }
    if (!fits(phoff, phnum, expected)) {
      return ElfProblem{model::GapKind::kTruncated,
                        "the program header table lies beyond the end of the file"};
    }
  }
  if (shoff != 0) {
    const std::uint64_t expected = is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
    // With more than SHN_LORESERVE sections e_shnum is 0 and libelf reads the count from the
    // first section header; it bounds that count by the file size itself.
    sections_usable =
        shentsize == expected && fits(shoff, std::max<std::uint64_t>(shnum, 1), expected);
  }
  return std::nullopt;
}

struct LoadSegment {
  std::uint64_t vaddr = 0;
  std::uint64_t offset = 0;
  std::uint64_t filesz = 0;
};

// What the dynamic section says, as raw values; strings are resolved once the string table is
// known.
struct DynamicTable {
  bool present = false;
  std::vector<std::uint64_t> needed;
  std::vector<std::uint64_t> rpath;
  std::vector<std::uint64_t> runpath;
  std::optional<std::uint64_t> soname;
  std::uint64_t flags = 0;
  std::uint64_t flags_1 = 0;
  bool bind_now = false;
  std::optional<std::uint64_t> strtab;
  std::optional<std::uint64_t> strsz;
  std::optional<std::uint64_t> symtab;
  std::optional<std::uint64_t> syment;
  std::optional<std::uint64_t> hash;
  std::optional<std::uint64_t> gnu_hash;
  std::optional<std::uint64_t> mips_symtabno;
};

class ElfParser {
 public:
  ElfParser(ByteView bytes, Elf* elf, const ElfLimits& limits, ElfFacts& facts,
            std::vector<ElfProblem>& problems)
      : bytes_(bytes), elf_(elf), limits_(limits), facts_(facts), problems_(problems) {}

  // False if the image is not an ELF file libelf can read; the reason is in `problems`.
  bool Parse(bool sections_usable) {
    if (!ReadHeader()) return false;
    if (!ReadSegments()) return false;
    if (sections_usable) ReadSections();
    ReadDynamic();
    ResolveDynamicStrings();
    ReadDynamicSymbols();
    // Dynamic symbols show every import; the full table matters only when there are none.
    if (symtab_ != nullptr && !facts_.symbols_known) ScanStaticSymbols();
    if (facts_.build_id.empty()) ReadBuildIdFromSegments();
    Classify();
    return true;
  }

 private:
  void Report(model::GapKind kind, std::string reason) {
    problems_.push_back({kind, std::move(reason)});
  }

  bool ReadHeader() {
    GElf_Ehdr header;
    if (gelf_getehdr(elf_, &header) == nullptr) {
      Report(model::GapKind::kCorrupt, "unreadable ELF header: " + LibelfError());
      return false;
    }
    is64_ = gelf_getclass(elf_) == ELFCLASS64;
    facts_.bits = is64_ ? 64 : 32;
    facts_.big_endian = header.e_ident[EI_DATA] == ELFDATA2MSB;
    facts_.e_machine = header.e_machine;
    facts_.machine = MachineName(header.e_machine, is64_);
    e_type_ = header.e_type;
    facts_.type = TypeName(e_type_);
    return true;
  }

  bool ReadSegments() {
    std::size_t count = 0;
    if (elf_getphdrnum(elf_, &count) != 0) {
      Report(model::GapKind::kCorrupt, "unreadable program headers: " + LibelfError());
      return false;
    }
    if (count > limits_.max_segments) {
      Report(model::GapKind::kLimit, "only the first " + std::to_string(limits_.max_segments) +
                                         " of " + std::to_string(count) + " segments read");
      count = limits_.max_segments;
    }
    for (std::size_t i = 0; i < count; ++i) {
      GElf_Phdr segment;
      if (gelf_getphdr(elf_, static_cast<int>(i), &segment) == nullptr) {
        Report(model::GapKind::kCorrupt, "unreadable program header " + std::to_string(i));
        return false;
      }
      OnSegment(segment);
    }
    return true;
  }

  void OnSegment(const GElf_Phdr& segment) {
    switch (segment.p_type) {
      case PT_LOAD:
        if (segment.p_filesz > 0) {
          loads_.push_back({segment.p_vaddr, segment.p_offset, segment.p_filesz});
        }
        break;
      case PT_INTERP:
        has_interp_ = true;
        if (const auto text = StringAt(FileRange(segment.p_offset, segment.p_filesz), 0)) {
          facts_.interpreter = std::string(*text);
        }
        break;
      case PT_DYNAMIC:
        has_dynamic_segment_ = true;
        dynamic_segment_ = segment;
        break;
      case PT_GNU_STACK:
        gnu_stack_flags_ = segment.p_flags;
        break;
      case PT_GNU_RELRO:
        has_relro_ = true;
        break;
      case PT_NOTE:
        if (note_segments_.size() < kMaxNoteSections) note_segments_.push_back(segment);
        break;
      default:
        break;
    }
  }

  void ReadSections() {
    std::size_t count = 0;
    if (elf_getshdrnum(elf_, &count) != 0) return;  // segments are enough
    if (count > limits_.max_sections) {
      Report(model::GapKind::kLimit, "only the first " + std::to_string(limits_.max_sections) +
                                         " of " + std::to_string(count) + " sections read");
      count = limits_.max_sections;
    }
    std::size_t notes = 0;
    for (std::size_t i = 1; i < count; ++i) {
      Elf_Scn* section = elf_getscn(elf_, i);
      GElf_Shdr header;
      if (section == nullptr || gelf_getshdr(section, &header) == nullptr) continue;
      switch (header.sh_type) {
        case SHT_SYMTAB:
          facts_.stripped = false;
          symtab_ = section;
          break;
        case SHT_DYNSYM:
          dynsym_ = section;
          break;
        case SHT_DYNAMIC:
          dynamic_section_ = section;
          break;
        case SHT_NOTE:
          if (facts_.build_id.empty() && notes++ < kMaxNoteSections) {
            ReadBuildId(elf_getdata(section, nullptr));
          }
          break;
        default:
          break;
      }
    }
  }

  // The bytes of [offset, offset + size) clipped to the file.
  [[nodiscard]] ByteView FileRange(std::uint64_t offset, std::uint64_t size) const {
    if (offset >= bytes_.size()) return {};
    return bytes_.subspan(offset, std::min<std::uint64_t>(size, bytes_.size() - offset));
  }

  // A NUL-terminated string at `offset` of `table`; nothing if it runs off the table or is
  // longer than the limit.
  [[nodiscard]] std::optional<std::string_view> StringAt(ByteView table,
                                                         std::uint64_t offset) const {
    if (offset >= table.size()) return std::nullopt;
    const auto rest = AsChars(table.subspan(offset));
    const auto length = rest.find('\0');
    if (length == std::string_view::npos || length > limits_.max_string_length) {
      return std::nullopt;
    }
    return rest.substr(0, length);
  }

  // The file bytes of a section; empty for SHT_NOBITS or one that lies outside the file.
  [[nodiscard]] ByteView SectionBytes(Elf_Scn* section) const {
    GElf_Shdr header;
    if (section == nullptr || gelf_getshdr(section, &header) == nullptr ||
        header.sh_type == SHT_NOBITS || header.sh_offset > bytes_.size() ||
        header.sh_size > bytes_.size() - header.sh_offset) {
      return {};
    }
    return bytes_.subspan(header.sh_offset, header.sh_size);
  }

  [[nodiscard]] ByteView LinkedStrings(Elf_Scn* section) const {
    GElf_Shdr header;
    if (section == nullptr || gelf_getshdr(section, &header) == nullptr) return {};
    return SectionBytes(elf_getscn(elf_, header.sh_link));
  }

  // The file offset of [vaddr, vaddr + size) if one loaded segment holds all of it in the file.
  [[nodiscard]] std::optional<std::uint64_t> FileOffsetOf(std::uint64_t vaddr,
                                                          std::uint64_t size) const {
    for (const auto& load : loads_) {
      if (vaddr < load.vaddr) continue;
      const std::uint64_t delta = vaddr - load.vaddr;
      if (delta >= load.filesz || size > load.filesz - delta) continue;
      if (load.offset > bytes_.size() || delta > bytes_.size() - load.offset) continue;
      const std::uint64_t offset = load.offset + delta;
      if (size > bytes_.size() - offset) continue;
      return offset;
    }
    return std::nullopt;
  }

  void ReadBuildId(Elf_Data* data) {
    if (data == nullptr || (data->d_type != ELF_T_NHDR && data->d_type != ELF_T_NHDR8)) return;
    std::size_t offset = 0;
    for (std::size_t n = 0; n < kMaxNotesPerSection && offset < data->d_size; ++n) {
      GElf_Nhdr note;
      std::size_t name_offset = 0;
      std::size_t desc_offset = 0;
      const std::size_t next = gelf_getnote(data, offset, &note, &name_offset, &desc_offset);
      if (next <= offset) return;
      if (note.n_type == NT_GNU_BUILD_ID && note.n_namesz == 4 && note.n_descsz > 0 &&
          note.n_descsz <= kMaxBuildIdBytes &&
          std::memcmp(static_cast<const char*>(data->d_buf) + name_offset, "GNU", 4) == 0) {
        static constexpr char kHex[] = "0123456789abcdef";
        const auto* desc = static_cast<const std::uint8_t*>(data->d_buf) + desc_offset;
        for (std::size_t i = 0; i < note.n_descsz; ++i) {
          facts_.build_id.push_back(kHex[desc[i] >> 4]);
          facts_.build_id.push_back(kHex[desc[i] & 0xf]);
        }
        return;
      }
      offset = next;
    }
  }

  void ReadBuildIdFromSegments() {
    for (const auto& segment : note_segments_) {
      if (!facts_.build_id.empty()) return;
      if (segment.p_offset > bytes_.size() || segment.p_filesz > bytes_.size() - segment.p_offset) {
        continue;
      }
      ReadBuildId(elf_getdata_rawchunk(elf_, static_cast<std::int64_t>(segment.p_offset),
                                       segment.p_filesz,
                                       segment.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR));
    }
  }

  // The dynamic table from its section if there is one, else from PT_DYNAMIC.
  void ReadDynamic() {
    Elf_Data* data = nullptr;
    if (dynamic_section_ != nullptr) data = elf_getdata(dynamic_section_, nullptr);
    if (data == nullptr && has_dynamic_segment_) {
      const auto& segment = dynamic_segment_;
      if (segment.p_offset <= bytes_.size() &&
          segment.p_filesz <= bytes_.size() - segment.p_offset) {
        data = elf_getdata_rawchunk(elf_, static_cast<std::int64_t>(segment.p_offset),
                                    segment.p_filesz, ELF_T_DYN);
      }
      dynamic_section_ = nullptr;  // its strings come from DT_STRTAB then
    }
    if (data == nullptr || data->d_type != ELF_T_DYN) return;
    const std::size_t entry_size = gelf_fsize(elf_, ELF_T_DYN, 1, EV_CURRENT);
    if (entry_size == 0) return;
    const std::size_t count = std::min(data->d_size / entry_size, kMaxDynamicEntries);
    dynamic_.present = true;
    for (std::size_t i = 0; i < count; ++i) {
      GElf_Dyn entry;
      if (gelf_getdyn(data, static_cast<int>(i), &entry) == nullptr) break;
      if (entry.d_tag == DT_NULL) break;
      OnDynamicEntry(entry.d_tag, entry.d_un.d_val);
    }
  }

  void OnDynamicEntry(std::int64_t tag, std::uint64_t value) {
    auto push = [&](std::vector<std::uint64_t>& list) {
      if (list.size() < limits_.max_strings) list.push_back(value);
    };
    switch (tag) {
      case DT_NEEDED:
        push(dynamic_.needed);
        break;
      case DT_RPATH:
        push(dynamic_.rpath);
        break;
      case DT_RUNPATH:
        push(dynamic_.runpath);
        break;
      case DT_SONAME:
        dynamic_.soname = value;
        break;
      case DT_FLAGS:
        dynamic_.flags = value;
        break;
      case DT_FLAGS_1:
        dynamic_.flags_1 = value;
        break;
      case DT_BIND_NOW:
        dynamic_.bind_now = true;
        break;
      case DT_STRTAB:
        dynamic_.strtab = value;
        break;
      case DT_STRSZ:
        dynamic_.strsz = value;
        break;
      case DT_SYMTAB:
        dynamic_.symtab = value;
        break;
      case DT_SYMENT:
        dynamic_.syment = value;
        break;
      case DT_HASH:
        dynamic_.hash = value;
        break;
      case DT_GNU_HASH:
        dynamic_.gnu_hash = value;
        break;
      case DT_MIPS_SYMTABNO:
        dynamic_.mips_symtabno = value;
        break;
      default:
        break;
    }
  }

  // The dynamic string table: the section the dynamic section links to, else DT_STRTAB.
  [[nodiscard]] ByteView DynamicStrings() const {
    if (dynamic_section_ != nullptr) {
      const auto strings = LinkedStrings(dynamic_section_);
      if (!strings.empty()) return strings;
    }
    if (!dynamic_.strtab) return {};
    const auto offset = FileOffsetOf(*dynamic_.strtab, 1);
    if (!offset) return {};
    const std::uint64_t size = dynamic_.strsz.value_or(bytes_.size());
    return FileRange(*offset, size);
  }

  void ResolveDynamicStrings() {
    if (!dynamic_.present) return;
    dynstr_ = DynamicStrings();
    std::size_t unresolved = 0;
    auto text = [&](std::uint64_t offset) {
      auto found = StringAt(dynstr_, offset);
      if (!found) ++unresolved;
      return found;
    };
    for (const auto offset : dynamic_.needed) {
      if (const auto name = text(offset)) facts_.needed.emplace_back(*name);
    }
    for (const auto offset : dynamic_.rpath) {
      if (const auto path = text(offset)) Append(facts_.rpath, SplitSearchPath(*path));
    }
    for (const auto offset : dynamic_.runpath) {
      if (const auto path = text(offset)) Append(facts_.runpath, SplitSearchPath(*path));
    }
    if (dynamic_.soname) {
      if (const auto name = text(*dynamic_.soname)) facts_.soname = std::string(*name);
    }
    if (unresolved > 0) {
      Report(model::GapKind::kCorrupt,
             dynstr_.empty() ? "dynamic string table not found in the file"
                             : std::to_string(unresolved) +
                                   " dynamic entries name strings outside the string table");
    }
  }

  void Append(std::vector<std::string>& list, std::vector<std::string> more) const {
    for (auto& item : more) {
      if (list.size() >= limits_.max_strings) return;
      list.push_back(std::move(item));
    }
  }

  // Reads the file's byte order. Offsets are checked by LoadLe/LoadBe.
  [[nodiscard]] std::optional<std::uint32_t> WordAt(std::uint64_t offset) const {
    return facts_.big_endian ? LoadBe<std::uint32_t>(bytes_, offset)
                             : LoadLe<std::uint32_t>(bytes_, offset);
  }

  // The number of dynamic symbols when only the dynamic segment describes them.
  [[nodiscard]] std::optional<std::uint64_t> DynamicSymbolCount() const {
    if (dynamic_.hash) {
      const auto offset = FileOffsetOf(*dynamic_.hash, 8);
      if (offset) {
        if (const auto nchain = WordAt(*offset + 4)) return *nchain;
      }
    }
    if (dynamic_.gnu_hash) {
      if (const auto count = GnuHashSymbolCount()) return count;
    }
    return dynamic_.mips_symtabno;
  }

  // DT_GNU_HASH holds no symbol count: it is one past the last symbol of the longest-numbered
  // bucket's chain, whose last entry has bit 0 set.
  [[nodiscard]] std::optional<std::uint64_t> GnuHashSymbolCount() const {
    const auto start = FileOffsetOf(*dynamic_.gnu_hash, 16);
    if (!start) return std::nullopt;
    const auto nbuckets = WordAt(*start);
    const auto symoffset = WordAt(*start + 4);
    const auto bloom_size = WordAt(*start + 8);
    if (!nbuckets || !symoffset || !bloom_size) return std::nullopt;
    const std::uint64_t buckets = *start + 16 + std::uint64_t{*bloom_size} * (is64_ ? 8 : 4);
    const std::uint64_t chains = buckets + std::uint64_t{*nbuckets} * 4;
    if (chains > bytes_.size()) return std::nullopt;
    std::uint32_t last = 0;
    for (std::uint32_t i = 0; i < *nbuckets; ++i) last = std::max(last, *WordAt(buckets + 4 * i));
    if (last < *symoffset) return *symoffset;
    // Every step reads a later word of the file, so this ends by the end of the file.
    for (std::uint64_t index = last;; ++index) {
      const auto chain = WordAt(chains + 4 * (index - *symoffset));
      if (!chain) return std::nullopt;
      if ((*chain & 1) != 0) return index + 1;
    }
  }

  // The dynamic symbols as libelf data: from the .dynsym section, else from DT_SYMTAB.
  Elf_Data* DynamicSymbolData(ByteView& strings) {
    if (dynsym_ != nullptr) {
      Elf_Data* data = elf_getdata(dynsym_, nullptr);
      strings = LinkedStrings(dynsym_);
      if (data != nullptr && data->d_type == ELF_T_SYM && !strings.empty()) return data;
    }
    if (!dynamic_.symtab) return nullptr;
    const std::size_t entry_size = gelf_fsize(elf_, ELF_T_SYM, 1, EV_CURRENT);
    if (entry_size == 0 || (dynamic_.syment && *dynamic_.syment != entry_size)) return nullptr;
    const auto offset = FileOffsetOf(*dynamic_.symtab, entry_size);
    auto count = DynamicSymbolCount();
    if (!offset || !count) {
      Report(model::GapKind::kCorrupt, "dynamic symbol table not found in the file");
      return nullptr;
    }
    count = std::min<std::uint64_t>(*count, (bytes_.size() - *offset) / entry_size);
    strings = dynstr_;
    return elf_getdata_rawchunk(elf_, static_cast<std::int64_t>(*offset), *count * entry_size,
                                ELF_T_SYM);
  }

  void ReadDynamicSymbols() {
    ByteView strings;
    Elf_Data* data = DynamicSymbolData(strings);
    if (data == nullptr) return;
    facts_.symbols_known = true;
    bool imports_full = false;
    bool exports_full = false;
    std::vector<std::string_view> imports;
    std::vector<std::string_view> exports;
    ForEachSymbol(data, strings, "dynamic", [&](const GElf_Sym& symbol, std::string_view name) {
      const bool undefined = symbol.st_shndx == SHN_UNDEF;
      NoteProtection(name);
      const auto binding = GELF_ST_BIND(symbol.st_info);
      const auto type = GELF_ST_TYPE(symbol.st_info);
      if (binding == STB_LOCAL || type == STT_SECTION || type == STT_FILE) return;
      auto& list = undefined ? imports : exports;
      auto& full = undefined ? imports_full : exports_full;
      if (list.size() < limits_.max_symbols_kept) {
        list.push_back(name);
      } else {
        full = true;
      }
    });
    facts_.imports = SortedUnique(imports);
    facts_.exports = SortedUnique(exports);
    if (imports_full || exports_full) {
      Report(model::GapKind::kLimit, "only the first " + std::to_string(limits_.max_symbols_kept) +
                                         " dynamic " + (imports_full ? "imports" : "exports") +
                                         " kept");
    }
  }

  // The static symbol table only adds protections that static binaries link in.
  void ScanStaticSymbols() {
    Elf_Data* data = elf_getdata(symtab_, nullptr);
    const auto strings = LinkedStrings(symtab_);
    if (data == nullptr || data->d_type != ELF_T_SYM || strings.empty()) return;
    facts_.symbols_known = true;
    ForEachSymbol(data, strings, "static",
                  [&](const GElf_Sym&, std::string_view name) { NoteProtection(name); });
  }

  template <typename Visit>
  void ForEachSymbol(Elf_Data* data, ByteView strings, std::string_view which, Visit&& visit) {
    const std::size_t entry_size = gelf_fsize(elf_, ELF_T_SYM, 1, EV_CURRENT);
    if (entry_size == 0) return;
    std::size_t count = data->d_size / entry_size;
    if (count > limits_.max_symbols_scanned) {
      Report(model::GapKind::kLimit,
             "only the first " + std::to_string(limits_.max_symbols_scanned) + " of " +
                 std::to_string(count) + " " + std::string(which) + " symbols read");
      count = limits_.max_symbols_scanned;
    }
    for (std::size_t i = 1; i < count; ++i) {
      GElf_Sym symbol;
      if (gelf_getsym(data, static_cast<int>(i), &symbol) == nullptr) break;
      const auto name = StringAt(strings, symbol.st_name);
      if (!name || name->empty()) continue;
      visit(symbol, *name);
    }
  }

  void NoteProtection(std::string_view name) {
    if (IsCanarySymbol(name)) facts_.canary = true;
    if (IsFortifySymbol(name)) facts_.fortify = true;
  }

  void Classify() {
    const bool program = e_type_ == ET_EXEC || e_type_ == ET_DYN;
    const bool flagged_pie = (dynamic_.flags_1 & DF_1_PIE) != 0;
    if (e_type_ == ET_DYN && (flagged_pie || (has_interp_ && facts_.soname.empty()))) {
      facts_.pie = true;
      facts_.type = "pie-executable";
    }
    // A static PIE has a dynamic section for its self-relocation, but needs no library.
    facts_.statically_linked = program && !has_interp_ &&
                               (!has_dynamic_segment_ || (facts_.pie && dynamic_.needed.empty()));
    facts_.nx = gnu_stack_flags_.has_value() && (*gnu_stack_flags_ & PF_X) == 0;
    const bool bind_now = dynamic_.bind_now || (dynamic_.flags & DF_BIND_NOW) != 0 ||
                          (dynamic_.flags_1 & DF_1_NOW) != 0;
    facts_.relro = !has_relro_ ? Relro::kNone : bind_now ? Relro::kFull : Relro::kPartial;
  }

  ByteView bytes_;
  Elf* elf_;
  const ElfLimits& limits_;
  ElfFacts& facts_;
  std::vector<ElfProblem>& problems_;

  bool is64_ = false;
  std::uint16_t e_type_ = ET_NONE;
  std::vector<LoadSegment> loads_;
  std::vector<GElf_Phdr> note_segments_;
  bool has_interp_ = false;
  bool has_dynamic_segment_ = false;
  GElf_Phdr dynamic_segment_{};
  std::optional<std::uint32_t> gnu_stack_flags_;
  bool has_relro_ = false;
  Elf_Scn* symtab_ = nullptr;
  Elf_Scn* dynsym_ = nullptr;
  Elf_Scn* dynamic_section_ = nullptr;
  DynamicTable dynamic_;
  ByteView dynstr_;
};

bool HasElfMagic(ByteView bytes) {
  return bytes.size() >= 4 && bytes[0] == 0x7f && bytes[1] == 'E' && bytes[2] == 'L' &&
         bytes[3] == 'F';
}

// The unpacker sniffs every file it writes; these types mean the first bytes are not ELF magic,
// so such files need not be opened at all.
bool SniffedAsOther(const std::string& type) {
  return type == "script" || type == "text" || type == "empty";
}

}  // namespace

std::optional<ElfFacts> ParseElf(ByteView bytes, std::uint32_t file, const std::string& path,
                                 const ElfLimits& limits, std::vector<model::Gap>& gaps) {
  std::vector<ElfProblem> problems;
  auto gap = [&](const ElfProblem& problem) {
    gaps.push_back({problem.kind, path, 0, "elf", "ELF file: " + problem.reason});
  };
  if (!InitLibelf()) {
    gap({model::GapKind::kUnsupported, "libelf does not support this ELF version"});
    return std::nullopt;
  }
  bool sections_usable = true;
  if (const auto problem = CheckHeader(bytes, sections_usable)) {
    gap(*problem);
    return std::nullopt;
  }
  if (!sections_usable) {
    gap({model::GapKind::kTruncated,
         "the section header table lies beyond the end of the "
         "file; read from the program headers only"});
  }
  ElfHandle elf(
      elf_memory(const_cast<char*>(reinterpret_cast<const char*>(bytes.data())), bytes.size()));
  if (!elf || elf_kind(elf.get()) != ELF_K_ELF) {
    gap({model::GapKind::kCorrupt, "not readable by libelf: " + LibelfError()});
    return std::nullopt;
  }
  ElfFacts facts;
  facts.file = file;
  ElfParser parser(bytes, elf.get(), limits, facts, problems);
  const bool parsed = parser.Parse(sections_usable);
  for (const auto& problem : problems) gap(problem);
  if (!parsed) return std::nullopt;
  return facts;
}

ElfIndex ElfIndex::Build(const FileTree& tree, ThreadPool& pool, const ElfLimits& limits) {
  const auto& files = tree.files();
  std::vector<std::vector<std::uint32_t>> batches;
  std::uint64_t batch_bytes = 0;
  for (std::uint32_t i = 0; i < files.size(); ++i) {
    const auto& file = files[i];
    if (!file.is_file() || !file.entry->materialized || file.unpacked || file.entry->size < 4 ||
        SniffedAsOther(file.entry->type)) {
      continue;
    }
    if (batches.empty() || batches.back().size() >= kBatchFiles || batch_bytes >= kBatchBytes) {
      batches.emplace_back();
      batch_bytes = 0;
    }
    batches.back().push_back(i);
    batch_bytes += file.entry->size;
  }

  ElfIndex index;
  std::mutex mutex;
  {
    TaskGroup group(pool);
    for (const auto& batch : batches) {
      group.Run([&, batch_ptr = &batch] {
        std::vector<ElfFacts> found;
        std::vector<model::Gap> gaps;
        for (const auto file_index : *batch_ptr) {
          // A file that cannot be mapped is already a gap of the content scan.
          const auto mapped = tree.Map(files[file_index]);
          if (!mapped || !HasElfMagic(mapped->bytes())) continue;
          auto facts =
              ParseElf(mapped->bytes(), file_index, files[file_index].path(), limits, gaps);
          if (facts) found.push_back(std::move(*facts));
        }
        std::lock_guard lock(mutex);
        std::move(found.begin(), found.end(), std::back_inserter(index.elves_));
        std::move(gaps.begin(), gaps.end(), std::back_inserter(index.gaps_));
      });
    }
    group.Wait();
  }
  std::sort(index.elves_.begin(), index.elves_.end(),
            [](const ElfFacts& a, const ElfFacts& b) { return a.file < b.file; });
  std::stable_sort(index.gaps_.begin(), index.gaps_.end(),
                   [](const model::Gap& a, const model::Gap& b) { return a.blob < b.blob; });
  return index;
}

const ElfFacts* ElfIndex::For(std::uint32_t file) const {
  const auto it =
      std::lower_bound(elves_.begin(), elves_.end(), file,
                       [](const ElfFacts& facts, std::uint32_t f) { return facts.file < f; });
  return it != elves_.end() && it->file == file ? &*it : nullptr;
}

}  // namespace iotmark::inventory
