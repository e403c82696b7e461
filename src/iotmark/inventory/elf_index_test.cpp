#include "iotmark/inventory/elf_index.hpp"

#include <elf.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>

#include "iotmark/analyzers/testing/tree_builder.hpp"
#include "iotmark/base/mapped_file.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::inventory {
namespace {

namespace fs = std::filesystem;
using testing::ReadFileBytes;
using testing::RunCommand;
using testing::ScratchDir;
using testing::TreeBuilder;
using testing::WriteFileBytes;

// A program that copies into a fixed buffer, so -fstack-protector and _FORTIFY_SOURCE act on it.
constexpr std::string_view kProgram = R"(#include <stdio.h>
#include <string.h>
int main(int argc, char** argv) {
  char buffer[16];
  strcpy(buffer, argc > 5 ? argv[1] : "x");
  sprintf(buffer + 1, "%d", argc);
  puts(buffer);
  return 0;
}
)";

// The same without libc, for targets this machine has no libc for (i386, big-endian MIPS).
constexpr std::string_view kBareProgram = R"(char *strcpy(char*, const char*);
int puts(const char*);
int main(int argc, char** argv) { char b[64]; strcpy(b, argv[0]); puts(b); return 0; }
void __start(void) { main(0, 0); }
)";
constexpr std::string_view kBareLibrary = R"(long __stack_chk_guard;
void __stack_chk_fail(void) {}
char *strcpy(char* d, const char* s) { (void)s; return d; }
int puts(const char* s) { (void)s; return 0; }
)";

struct Parsed {
  std::optional<ElfFacts> facts;
  std::vector<model::Gap> gaps;
};

// Parses through a read-only mapping, as the index does, so a write by libelf would fault.
Parsed ParseFile(const fs::path& path) {
  Parsed parsed;
  auto mapped = MappedFile::Open(path);
  EXPECT_TRUE(mapped.has_value()) << path;
  if (!mapped) return parsed;
  parsed.facts = ParseElf(mapped->bytes(), 7, path.filename().string(), {}, parsed.gaps);
  return parsed;
}

Parsed ParseBytes(const ScratchDir& scratch, ByteView bytes, const ElfLimits& limits = {}) {
  const auto path = scratch.path() / "input.elf";
  WriteFileBytes(path, bytes);
  Parsed parsed;
  auto mapped = MappedFile::Open(path);
  if (!mapped) return parsed;
  parsed.facts = ParseElf(mapped->bytes(), 0, "input.elf", limits, parsed.gaps);
  return parsed;
}

bool Contains(const std::vector<std::string>& list, std::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

// Compiles kProgram (or `source`) with gcc and `flags`; empty path if the toolchain cannot.
fs::path Compile(const ScratchDir& scratch, const std::string& name, const std::string& flags,
                 std::string_view source = kProgram, const std::string& compiler = "gcc") {
  const auto c_file = scratch.path() / (name + ".c");
  std::ofstream(c_file) << source;
  const auto out = scratch.path() / name;
  // Flags go after the source, so libraries named in them resolve its symbols.
  const std::string command = compiler + " -o '" + out.string() + "' '" + c_file.string() + "' " +
                              flags + " >/dev/null 2>&1";
  return RunCommand(command) == 0 ? out : fs::path();
}

#define COMPILE_OR_SKIP(var, ...)        \
  const auto var = Compile(__VA_ARGS__); \
  if (var.empty()) GTEST_SKIP() << "cannot build " #var " with gcc here"

TEST(ElfIndex, ReadsTheStaticBusyboxAsAStaticNonPieExecutable) {
  if (!fs::exists("/bin/busybox")) GTEST_SKIP() << "busybox-static is not installed";
  const auto parsed = ParseFile("/bin/busybox");
  ASSERT_TRUE(parsed.facts.has_value());
  const auto& elf = *parsed.facts;
  EXPECT_TRUE(parsed.gaps.empty());
  EXPECT_EQ(elf.file, 7u);
  EXPECT_EQ(elf.machine, "x86_64");
  EXPECT_EQ(elf.bits, 64);
  EXPECT_FALSE(elf.big_endian);
  EXPECT_EQ(elf.type, "executable");
  EXPECT_TRUE(elf.statically_linked);
  EXPECT_FALSE(elf.pie);
  EXPECT_TRUE(elf.interpreter.empty());
  EXPECT_TRUE(elf.needed.empty());
  EXPECT_TRUE(elf.imports.empty());
  EXPECT_TRUE(elf.stripped);
  EXPECT_FALSE(elf.symbols_known);  // stripped and static: canary and fortify cannot be seen
  EXPECT_EQ(elf.build_id.size(), 40u);
}

TEST(ElfIndex, ReadsDropbearAsAFullyHardenedPieExecutable) {
  if (!fs::exists("/usr/sbin/dropbear")) GTEST_SKIP() << "dropbear is not installed";
  const auto parsed = ParseFile("/usr/sbin/dropbear");
  ASSERT_TRUE(parsed.facts.has_value());
  const auto& elf = *parsed.facts;
  EXPECT_TRUE(parsed.gaps.empty());
  EXPECT_EQ(elf.type, "pie-executable");
  EXPECT_TRUE(elf.pie);
  EXPECT_FALSE(elf.statically_linked);
  EXPECT_EQ(elf.interpreter, "/lib64/ld-linux-x86-64.so.2");
  EXPECT_TRUE(elf.nx);
  EXPECT_EQ(elf.relro, Relro::kFull);
  EXPECT_TRUE(elf.canary);
  EXPECT_TRUE(elf.fortify);
  EXPECT_TRUE(elf.symbols_known);
  EXPECT_TRUE(Contains(elf.needed, "libc.so.6"));
  EXPECT_TRUE(Contains(elf.imports, "__stack_chk_fail"));
  EXPECT_TRUE(std::is_sorted(elf.imports.begin(), elf.imports.end()));
  EXPECT_TRUE(std::adjacent_find(elf.imports.begin(), elf.imports.end()) == elf.imports.end());
  EXPECT_EQ(elf.build_id.size(), 40u);
}

TEST(ElfIndex, ReadsLsAsADynamicallyLinkedPieExecutable) {
  const auto parsed = ParseFile("/bin/ls");
  ASSERT_TRUE(parsed.facts.has_value());
  EXPECT_TRUE(parsed.facts->pie);
  EXPECT_TRUE(Contains(parsed.facts->needed, "libc.so.6"));
  EXPECT_TRUE(parsed.facts->soname.empty());
  EXPECT_FALSE(parsed.facts->imports.empty());
}

TEST(ElfIndex, ReadsASharedLibraryWithItsSonameAndExports) {
  const fs::path library = fs::canonical("/usr/lib/x86_64-linux-gnu/libz.so.1");
  const auto parsed = ParseFile(library);
  ASSERT_TRUE(parsed.facts.has_value());
  const auto& elf = *parsed.facts;
  EXPECT_EQ(elf.type, "shared-object");
  EXPECT_FALSE(elf.pie);
  EXPECT_EQ(elf.soname, "libz.so.1");
  EXPECT_TRUE(Contains(elf.exports, "inflate"));
  EXPECT_FALSE(Contains(elf.imports, "inflate"));
  EXPECT_TRUE(Contains(elf.needed, "libc.so.6"));
}

TEST(ElfIndex, SeesEveryProtectionOfAHardenedBuild) {
  ScratchDir scratch;
  COMPILE_OR_SKIP(path, scratch, "hardened",
                  "-O2 -D_FORTIFY_SOURCE=2 -fstack-protector-all -fPIE -pie -Wl,-z,relro,-z,now");
  const auto parsed = ParseFile(path);
  ASSERT_TRUE(parsed.facts.has_value());
  const auto& elf = *parsed.facts;
  EXPECT_TRUE(elf.nx);
  EXPECT_TRUE(elf.pie);
  EXPECT_EQ(elf.relro, Relro::kFull);
  EXPECT_TRUE(elf.canary);
  EXPECT_TRUE(elf.fortify);
  EXPECT_FALSE(elf.stripped);
  EXPECT_TRUE(elf.rpath.empty());
  EXPECT_TRUE(elf.runpath.empty());
  EXPECT_TRUE(Contains(elf.imports, "__sprintf_chk"));
  EXPECT_TRUE(elf.exports.empty() || !Contains(elf.exports, "__sprintf_chk"));
}

TEST(ElfIndex, SeesAnExecutableStack) {
  ScratchDir scratch;
  COMPILE_OR_SKIP(path, scratch, "execstack", "-O2 -z execstack");
  const auto parsed = ParseFile(path);
  ASSERT_TRUE(parsed.facts.has_value());
  EXPECT_FALSE(parsed.facts->nx);
}

TEST(ElfIndex, SeesANonPieExecutable) {
  ScratchDir scratch;
  COMPILE_OR_SKIP(path, scratch, "nopie", "-O2 -fno-pie -no-pie");
  const auto parsed = ParseFile(path);
  ASSERT_TRUE(parsed.facts.has_value());
  EXPECT_EQ(parsed.facts->type, "executable");
  EXPECT_FALSE(parsed.facts->pie);
  EXPECT_FALSE(parsed.facts->statically_linked);
}

TEST(ElfIndex, TellsNoPartialAndFullRelroApart) {
  ScratchDir scratch;
  COMPILE_OR_SKIP(none, scratch, "norelro", "-O2 -Wl,-z,norelro");
  COMPILE_OR_SKIP(partial, scratch, "partial", "-O2 -Wl,-z,relro,-z,lazy");
  COMPILE_OR_SKIP(full, scratch, "full", "-O2 -Wl,-z,relro,-z,now");
  EXPECT_EQ(ParseFile(none).facts->relro, Relro::kNone);
  EXPECT_EQ(ParseFile(partial).facts->relro, Relro::kPartial);
  EXPECT_EQ(ParseFile(full).facts->relro, Relro::kFull);
}

TEST(ElfIndex, SeesNeitherCanaryNorFortifyWhenBothAreOff) {
  ScratchDir scratch;
  COMPILE_OR_SKIP(path, scratch, "plain", "-O2 -fno-stack-protector -U_FORTIFY_SOURCE");
  const auto parsed = ParseFile(path);
  ASSERT_TRUE(parsed.facts.has_value());
  EXPECT_FALSE(parsed.facts->canary);
  EXPECT_FALSE(parsed.facts->fortify);
  EXPECT_TRUE(parsed.facts->symbols_known);
  EXPECT_TRUE(Contains(parsed.facts->imports, "strcpy"));
  EXPECT_TRUE(Contains(parsed.facts->imports, "sprintf"));
}

TEST(ElfIndex, ReadsRpathAndRunpathEntries) {
  ScratchDir scratch;
  COMPILE_OR_SKIP(rpath, scratch, "rpath", "-Wl,--disable-new-dtags -Wl,-rpath,/tmp/x:lib");
  COMPILE_OR_SKIP(runpath, scratch, "runpath", "-Wl,--enable-new-dtags -Wl,-rpath,/tmp/y");
  const auto old_style = ParseFile(rpath);
  ASSERT_TRUE(old_style.facts.has_value());
  EXPECT_EQ(old_style.facts->rpath, (std::vector<std::string>{"/tmp/x", "lib"}));
  EXPECT_TRUE(old_style.facts->runpath.empty());
  const auto new_style = ParseFile(runpath);
  ASSERT_TRUE(new_style.facts.has_value());
  EXPECT_EQ(new_style.facts->runpath, (std::vector<std::string>{"/tmp/y"}));
  EXPECT_TRUE(new_style.facts->rpath.empty());
}

TEST(ElfIndex, TellsStrippedFromUnstrippedAndStaticFromDynamic) {
  ScratchDir scratch;
  COMPILE_OR_SKIP(stripped, scratch, "stripped", "-O2 -s");
  COMPILE_OR_SKIP(static_full, scratch, "static", "-O2 -static");
  COMPILE_OR_SKIP(static_stripped, scratch, "static_stripped", "-O2 -static -s");
  EXPECT_TRUE(ParseFile(stripped).facts->stripped);
  EXPECT_TRUE(ParseFile(stripped).facts->symbols_known);
  const auto full = ParseFile(static_full);
  EXPECT_TRUE(full.facts->statically_linked);
  EXPECT_FALSE(full.facts->stripped);
  EXPECT_TRUE(full.facts->symbols_known);
  const auto bare = ParseFile(static_stripped);
  EXPECT_TRUE(bare.facts->statically_linked);
  EXPECT_TRUE(bare.facts->stripped);
  EXPECT_FALSE(bare.facts->symbols_known);
}

TEST(ElfIndex, ReadsImportsThroughTheDynamicSegmentWhenSectionHeadersAreGone) {
  ScratchDir scratch;
  COMPILE_OR_SKIP(path, scratch, "sstrip",
                  "-O2 -D_FORTIFY_SOURCE=2 -fstack-protector-all -Wl,-z,relro,-z,now");
  const auto without_sections = scratch.path() / "sstripped";
  if (RunCommand("llvm-objcopy --strip-sections '" + path.string() + "' '" +
                 without_sections.string() + "'") != 0) {
    GTEST_SKIP() << "llvm-objcopy is not installed";
  }
  const auto before = ParseFile(path);
  const auto after = ParseFile(without_sections);
  ASSERT_TRUE(after.facts.has_value());
  EXPECT_TRUE(after.gaps.empty());
  EXPECT_EQ(after.facts->imports, before.facts->imports);  // found through DT_GNU_HASH
  EXPECT_EQ(after.facts->needed, before.facts->needed);
  EXPECT_TRUE(after.facts->canary);
  EXPECT_TRUE(after.facts->fortify);
  EXPECT_EQ(after.facts->relro, Relro::kFull);
  EXPECT_EQ(after.facts->build_id, before.facts->build_id);  // from PT_NOTE
  EXPECT_FALSE(after.facts->build_id.empty());
}

TEST(ElfIndex, ReadsA32BitExecutable) {
  ScratchDir scratch;
  const auto library = Compile(scratch, "lib32.so", "-m32 -nostdlib -shared -fPIC", kBareLibrary);
  if (library.empty()) GTEST_SKIP() << "gcc -m32 does not work here";
  COMPILE_OR_SKIP(path, scratch, "prog32",
                  "-m32 -nostdlib -fno-pie -no-pie -fstack-protector-all "
                  "-Wl,--dynamic-linker,/lib/ld-linux.so.2 -Wl,-e,__start '" +
                      library.string() + "'",
                  kBareProgram);
  const auto parsed = ParseFile(path);
  ASSERT_TRUE(parsed.facts.has_value());
  EXPECT_EQ(parsed.facts->bits, 32);
  EXPECT_EQ(parsed.facts->machine, "x86");
  EXPECT_EQ(parsed.facts->type, "executable");
  EXPECT_EQ(parsed.facts->interpreter, "/lib/ld-linux.so.2");
  EXPECT_TRUE(parsed.facts->canary);
  EXPECT_TRUE(Contains(parsed.facts->imports, "strcpy"));
}

TEST(ElfIndex, ReadsBigEndianMipsBinariesWithAndWithoutSections) {
  ScratchDir scratch;
  const std::string clang = "clang --target=mips-linux-gnu -fuse-ld=lld -nostdlib";
  const auto library =
      Compile(scratch, "libc.so.0", "-shared -fPIC -Wl,-soname,libc.so.0", kBareLibrary, clang);
  if (library.empty()) GTEST_SKIP() << "clang cannot target big-endian MIPS here";
  COMPILE_OR_SKIP(path, scratch, "prog_mips",
                  "-fstack-protector-all -Wl,--dynamic-linker,/lib/ld-uClibc.so.0 "
                  "-Wl,-e,__start '" +
                      library.string() + "'",
                  kBareProgram, clang);
  const auto lib = ParseFile(library);
  ASSERT_TRUE(lib.facts.has_value());
  EXPECT_EQ(lib.facts->soname, "libc.so.0");
  EXPECT_TRUE(Contains(lib.facts->exports, "strcpy"));
  const auto parsed = ParseFile(path);
  ASSERT_TRUE(parsed.facts.has_value());
  const auto& elf = *parsed.facts;
  EXPECT_TRUE(elf.big_endian);
  EXPECT_EQ(elf.machine, "mips");
  EXPECT_EQ(elf.bits, 32);
  EXPECT_EQ(elf.interpreter, "/lib/ld-uClibc.so.0");
  EXPECT_EQ(elf.needed, (std::vector<std::string>{"libc.so.0"}));
  EXPECT_TRUE(elf.canary);
  EXPECT_TRUE(Contains(elf.imports, "__stack_chk_guard"));
  EXPECT_TRUE(Contains(elf.imports, "strcpy"));

  const auto without_sections = scratch.path() / "prog_mips_sstripped";
  if (RunCommand("llvm-objcopy --strip-sections '" + path.string() + "' '" +
                 without_sections.string() + "'") != 0) {
    return;
  }
  const auto sstripped = ParseFile(without_sections);
  ASSERT_TRUE(sstripped.facts.has_value());
  EXPECT_EQ(sstripped.facts->imports, elf.imports);  // found through DT_HASH
  EXPECT_EQ(sstripped.facts->needed, elf.needed);
}

// A minimal big-endian 64-bit PowerPC ELF header with no tables at all.
std::vector<std::uint8_t> PowerPcHeader() {
  std::vector<std::uint8_t> bytes(64, 0);
  const std::uint8_t ident[] = {0x7f, 'E', 'L', 'F', ELFCLASS64, ELFDATA2MSB, EV_CURRENT};
  std::copy(std::begin(ident), std::end(ident), bytes.begin());
  bytes[17] = ET_EXEC;  // e_type, big-endian
  bytes[19] = EM_PPC64;
  bytes[23] = EV_CURRENT;
  bytes[53] = 64;  // e_ehsize
  return bytes;
}

TEST(ElfIndex, ReadsAHandMadeBigEndianHeader) {
  ScratchDir scratch;
  const auto parsed = ParseBytes(scratch, PowerPcHeader());
  ASSERT_TRUE(parsed.facts.has_value());
  EXPECT_EQ(parsed.facts->machine, "powerpc64");
  EXPECT_TRUE(parsed.facts->big_endian);
  EXPECT_EQ(parsed.facts->bits, 64);
  EXPECT_EQ(parsed.facts->type, "executable");
  EXPECT_FALSE(parsed.facts->nx);  // no PT_GNU_STACK: the stack is executable
  EXPECT_TRUE(parsed.facts->statically_linked);
}

TEST(ElfIndex, ReportsATruncatedElfAsAGapNamingTheFile) {
  ScratchDir scratch;
  auto bytes = ReadFileBytes("/bin/ls");
  const auto header_only = ParseBytes(scratch, ByteView(bytes).first(40));
  EXPECT_FALSE(header_only.facts.has_value());
  ASSERT_EQ(header_only.gaps.size(), 1u);
  EXPECT_EQ(header_only.gaps[0].kind, model::GapKind::kTruncated);
  EXPECT_EQ(header_only.gaps[0].blob, "input.elf");
  EXPECT_NE(header_only.gaps[0].reason.find("ELF header"), std::string::npos);

  const auto half = ParseBytes(scratch, ByteView(bytes).first(bytes.size() / 2));
  ASSERT_FALSE(half.gaps.empty());
  EXPECT_NE(half.gaps[0].reason.find("section header table"), std::string::npos);
}

TEST(ElfIndex, ReportsCorruptHeadersAsGaps) {
  ScratchDir scratch;
  auto bytes = ReadFileBytes("/bin/ls");
  bytes[EI_CLASS] = 9;
  const auto bad_class = ParseBytes(scratch, bytes);
  EXPECT_FALSE(bad_class.facts.has_value());
  ASSERT_EQ(bad_class.gaps.size(), 1u);
  EXPECT_EQ(bad_class.gaps[0].kind, model::GapKind::kCorrupt);

  bytes = ReadFileBytes("/bin/ls");
  bytes[54] = 7;  // e_phentsize
  const auto bad_entries = ParseBytes(scratch, bytes);
  EXPECT_FALSE(bad_entries.facts.has_value());
  ASSERT_EQ(bad_entries.gaps.size(), 1u);
  EXPECT_NE(bad_entries.gaps[0].reason.find("program header"), std::string::npos);
}

TEST(ElfIndex, SurvivesAHugeSectionCountInTheFirstSectionHeader) {
  ScratchDir scratch;
  auto bytes = PowerPcHeader();
  bytes.resize(64 + 64, 0);
  bytes[47] = 64;             // e_shoff = 64
  bytes[59] = 64;             // e_shentsize
  bytes[60] = bytes[61] = 0;  // e_shnum = 0: the count is in sh_size of section 0
  for (int i = 0; i < 8; ++i) bytes[64 + 32 + i] = 0xff;  // sh_size
  const auto parsed = ParseBytes(scratch, bytes);
  EXPECT_TRUE(parsed.facts.has_value() || !parsed.gaps.empty());
}

TEST(ElfIndex, SurvivesRandomBytesAfterTheElfMagic) {
  ScratchDir scratch;
  std::mt19937 random(1234);
  for (int round = 0; round < 300; ++round) {
    std::vector<std::uint8_t> bytes(16 + random() % 4096);
    for (auto& byte : bytes) byte = static_cast<std::uint8_t>(random());
    const std::uint8_t magic[] = {0x7f, 'E', 'L', 'F'};
    std::copy(std::begin(magic), std::end(magic), bytes.begin());
    bytes[EI_CLASS] = static_cast<std::uint8_t>(1 + random() % 2);
    bytes[EI_DATA] = static_cast<std::uint8_t>(1 + random() % 2);
    const auto parsed = ParseBytes(scratch, bytes);
    EXPECT_TRUE(parsed.facts.has_value() || !parsed.gaps.empty());
  }
}

// Overwrites bytes of real binaries in their headers and tables: libelf and the dynamic-segment
// reader must never crash, hang or read outside the file.
TEST(ElfIndex, SurvivesCorruptedRealBinaries) {
  ScratchDir scratch;
  std::vector<fs::path> sources = {"/bin/ls", "/usr/lib/x86_64-linux-gnu/libz.so.1"};
  const auto mips = Compile(scratch, "libc.so.0", "-shared -fPIC", kBareLibrary,
                            "clang --target=mips-linux-gnu -fuse-ld=lld -nostdlib");
  if (!mips.empty()) sources.push_back(mips);
  std::mt19937 random(99);
  for (const auto& source : sources) {
    const auto original = ReadFileBytes(fs::canonical(source));
    for (int round = 0; round < 200; ++round) {
      auto bytes = original;
      const std::size_t span = std::min<std::size_t>(bytes.size(), 4096);
      for (int n = 0; n < 8; ++n) {
        bytes[random() % span] = static_cast<std::uint8_t>(random());
      }
      ElfLimits tight;
      tight.max_symbols_kept = 16;
      const auto parsed = ParseBytes(scratch, bytes, tight);
      EXPECT_TRUE(parsed.facts.has_value() || !parsed.gaps.empty());
    }
  }
}

TEST(ElfIndex, CapsTheSymbolsItKeepsWithAGap) {
  ScratchDir scratch;
  ElfLimits limits;
  limits.max_symbols_kept = 5;
  const auto bytes = ReadFileBytes(fs::canonical("/usr/lib/x86_64-linux-gnu/libz.so.1"));
  const auto parsed = ParseBytes(scratch, bytes, limits);
  ASSERT_TRUE(parsed.facts.has_value());
  EXPECT_EQ(parsed.facts->exports.size(), 5u);
  ASSERT_FALSE(parsed.gaps.empty());
  EXPECT_EQ(parsed.gaps[0].kind, model::GapKind::kLimit);
}

TEST(ElfIndex, IndexesOnlyTheElfFilesOfATreeAndNamesTheBrokenOnes) {
  ScratchDir scratch;
  TreeBuilder builder(scratch);
  auto ls = ReadFileBytes("/bin/ls");
  ls.resize(100);
  builder.Copy("/bin/ls", "/bin/ls")
      .Copy("/lib/libz.so.1", fs::canonical("/usr/lib/x86_64-linux-gnu/libz.so.1"))
      .File("/etc/passwd", "root:x:0:0::/root:/bin/sh\n")
      .File("/bin/broken", std::string_view(reinterpret_cast<const char*>(ls.data()), ls.size()))
      .Symlink("/bin/dir", "ls");
  auto tree = FileTree::Open(builder.root(), builder.report());
  ASSERT_TRUE(tree.has_value());
  ThreadPool pool(2);
  const auto index = ElfIndex::Build(*tree, pool);
  ASSERT_EQ(index.all().size(), 2u);
  for (const auto& elf : index.all()) {
    EXPECT_EQ(index.For(elf.file), &elf);
  }
  const auto& files = tree->files();
  EXPECT_EQ(files[index.all()[0].file].system_path, "/bin/ls");
  EXPECT_EQ(files[index.all()[1].file].system_path, "/lib/libz.so.1");
  ASSERT_EQ(index.gaps().size(), 1u);
  EXPECT_EQ(index.gaps()[0].blob, "fs.bin_extract/0x0.squashfs/bin/broken");
  EXPECT_EQ(index.For(9999), nullptr);
}

// This machine's programs and libraries (at most `max_size` bytes each) as an unpack report
// rooted at "/".
model::UnpackReport SystemBinaries(std::uint64_t max_size) {
  model::UnpackReport report;
  report.tree.kind = model::ExtractionNode::Kind::kBlob;
  for (const std::string dir : {"usr/bin", "usr/lib/x86_64-linux-gnu"}) {
    for (const auto& entry : fs::directory_iterator("/" + dir)) {
      const auto name = entry.path().filename().string();
      if (!entry.is_regular_file() || entry.is_symlink() || entry.file_size() > max_size) continue;
      if (dir != "usr/bin" && name.find(".so") == std::string::npos) continue;
      model::InventoryEntry item;
      item.path = dir + "/" + name;
      item.size = entry.file_size();
      item.type = "data";
      report.inventory.push_back(item);
    }
  }
  std::sort(report.inventory.begin(), report.inventory.end(),
            [](const auto& a, const auto& b) { return a.path < b.path; });
  return report;
}

double CpuMilliseconds() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) * 1e3 + static_cast<double>(now.tv_nsec) / 1e6;
}

// Not a timed assertion: prints how long indexing this machine's programs and libraries takes,
// for comparison with the reference image (504 ELF files, 57 MB, well under 100 ms wanted).
TEST(ElfIndex, IndexesTheSystemProgramsAndLibrariesAndPrintsHowLongItTook) {
  for (const std::uint64_t max_size : {std::uint64_t{512} << 10, std::uint64_t{1} << 40}) {
    const auto report = SystemBinaries(max_size);
    auto tree = FileTree::Open("/", report);
    ASSERT_TRUE(tree.has_value());
    ThreadPool pool(1);                  // with the waiting thread: two threads
    (void)ElfIndex::Build(*tree, pool);  // warm the page cache
    const auto cpu = CpuMilliseconds();
    const auto start = std::chrono::steady_clock::now();
    const auto index = ElfIndex::Build(*tree, pool);
    const std::chrono::duration<double, std::milli> elapsed =
        std::chrono::steady_clock::now() - start;
    std::uint64_t elf_bytes = 0;
    for (const auto& elf : index.all()) elf_bytes += tree->files()[elf.file].entry->size;
    std::printf(
        "[ timing ] %s: %zu ELF (%.0f MB), %zu gaps: %.1f ms wall, %.1f ms CPU on 2 threads\n",
        max_size < (1ULL << 40) ? "files up to 512 KiB" : "all files", index.all().size(),
        static_cast<double>(elf_bytes) / 1e6, index.gaps().size(), elapsed.count(),
        CpuMilliseconds() - cpu);
    for (const auto& gap : index.gaps())
      std::printf("[ timing ] gap %s: %s\n", gap.blob.c_str(), gap.reason.c_str());
    EXPECT_GT(index.all().size(), 100u);
  }
}

}  // namespace
}  // namespace iotmark::inventory
