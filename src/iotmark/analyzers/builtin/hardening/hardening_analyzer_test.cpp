#include "iotmark/analyzers/builtin/hardening/hardening_analyzer.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "iotmark/analyzers/testing/tree_builder.hpp"

namespace iotmark::analyzers::builtin {
namespace {

namespace fs = std::filesystem;
using testing::RunAnalyzer;
using testing::RunCommand;
using testing::ScratchDir;
using testing::TreeBuilder;

// Every weakness the analyzer looks for in one program: executable stack, fixed address, no
// RELRO, no canary, no fortification, an RPATH in /tmp, and gets, strcpy and system.
constexpr std::string_view kWeakProgram = R"(#include <stdlib.h>
#include <string.h>
char *gets(char*);
int main(int argc, char** argv) {
  char buffer[16];
  if (argc > 3) gets(buffer);
  strcpy(buffer, argv[0]);
  return system(buffer);
}
)";
constexpr const char* kWeakFlags =
    "-O0 -z execstack -fno-pie -no-pie -Wl,-z,norelro -fno-stack-protector -U_FORTIFY_SOURCE "
    "-Wl,--disable-new-dtags -Wl,-rpath,/tmp/x";

constexpr std::string_view kPlainProgram = R"(#include <stdio.h>
int main(void) { puts("hello"); return 0; }
)";

// Compiles `source` with gcc and `flags` into `scratch`; empty if gcc cannot.
fs::path Compile(const ScratchDir& scratch, const std::string& name, std::string_view source,
                 const std::string& flags) {
  const auto c_file = scratch.path() / (name + ".c");
  std::ofstream(c_file) << source;
  const auto out = scratch.path() / name;
  return RunCommand("gcc " + flags + " -o '" + out.string() + "' '" + c_file.string() +
                    "' >/dev/null 2>&1") == 0
             ? out
             : fs::path();
}

const model::Finding* FindFinding(const model::AnalysisReport& report, std::string_view id) {
  for (const auto& finding : report.findings) {
    if (finding.id == id) return &finding;
  }
  return nullptr;
}

nlohmann::json FactValue(const model::AnalysisReport& report, std::string_view name) {
  const auto* fact = report.FindFact(name);
  EXPECT_NE(fact, nullptr) << name;
  return fact != nullptr ? fact->value : nlohmann::json();
}

TEST(HardeningAnalyzer, IsInTheBuiltinList) {
  bool found = false;
  for (const auto factory : BuiltinAnalyzers()) found = found || factory()->name() == "hardening";
  EXPECT_TRUE(found);
}

TEST(HardeningAnalyzer, FindsNoWeaknessInWellHardenedDebianBinaries) {
  if (!fs::exists("/usr/sbin/dropbear")) GTEST_SKIP() << "dropbear is not installed";
  ScratchDir scratch;
  TreeBuilder tree(scratch);
  tree.Copy("/usr/sbin/dropbear", "/usr/sbin/dropbear")
      .Copy("/lib/libz.so.1", fs::canonical("/usr/lib/x86_64-linux-gnu/libz.so.1"))
      .File("/etc/passwd", "root:x:0:0::/root:/bin/sh\n");
  const auto report = RunAnalyzer(tree, MakeHardeningAnalyzer());
  EXPECT_TRUE(report.gaps.empty()) << report.gaps[0].reason;
  EXPECT_EQ(FactValue(report, "hardening.elf_count"), 2);
  for (const char* name : {"hardening.without_nx_count", "hardening.without_pie_count",
                           "hardening.without_relro_count", "hardening.without_canary_count",
                           "hardening.without_fortify_count", "hardening.with_rpath_count",
                           "hardening.not_stripped_count", "hardening.symbols_unknown_count"}) {
    EXPECT_EQ(FactValue(report, name), 0) << name;
  }
  EXPECT_EQ(FactValue(report, "hardening.architectures"), nlohmann::json({"x86_64"}));
  const auto imports = FactValue(report, "hardening.dangerous_imports");
  EXPECT_EQ(imports.size(), 9u);  // every listed function, with zero counts too
  EXPECT_EQ(imports["gets"], 0);
  for (const char* id :
       {"hardening.executable_stack", "hardening.no_pie_exposed", "hardening.no_relro",
        "hardening.no_canary", "hardening.insecure_rpath", "hardening.dangerous_function.gets"}) {
    EXPECT_EQ(FindFinding(report, id), nullptr) << id;
  }
}

TEST(HardeningAnalyzer, ReportsEveryWeaknessOfAWeakNetworkDaemon) {
  ScratchDir scratch;
  const auto weak = Compile(scratch, "weak", kWeakProgram, kWeakFlags);
  if (weak.empty()) GTEST_SKIP() << "gcc cannot build the weak program here";
  TreeBuilder tree(scratch);
  tree.Copy("/usr/sbin/httpd", weak);
  const auto report = RunAnalyzer(tree, MakeHardeningAnalyzer());
  EXPECT_TRUE(report.gaps.empty());
  EXPECT_EQ(FactValue(report, "hardening.elf_count"), 1);
  for (const char* name : {"hardening.without_nx_count", "hardening.without_pie_count",
                           "hardening.without_relro_count", "hardening.without_canary_count",
                           "hardening.without_fortify_count", "hardening.with_rpath_count",
                           "hardening.not_stripped_count"}) {
    EXPECT_EQ(FactValue(report, name), 1) << name;
  }
  EXPECT_EQ(FactValue(report, "hardening.symbols_unknown_count"), 0);
  const auto imports = FactValue(report, "hardening.dangerous_imports");
  EXPECT_EQ(imports["gets"], 1);
  EXPECT_EQ(imports["strcpy"], 1);
  EXPECT_EQ(imports["system"], 1);
  EXPECT_EQ(imports["sprintf"], 0);

  const auto* stack = FindFinding(report, "hardening.executable_stack");
  ASSERT_NE(stack, nullptr);
  EXPECT_EQ(stack->severity, model::Severity::kMedium);
  EXPECT_EQ(stack->analyzer, "hardening");
  ASSERT_EQ(stack->evidence.size(), 1u);
  EXPECT_EQ(stack->evidence[0].system_path, "/usr/sbin/httpd");
  EXPECT_FALSE(stack->evidence[0].sha256.empty());

  const auto* pie = FindFinding(report, "hardening.no_pie_exposed");
  ASSERT_NE(pie, nullptr);
  EXPECT_EQ(pie->severity, model::Severity::kLow);
  EXPECT_NE(pie->evidence[0].excerpt.find("runs as httpd"), std::string::npos);

  const auto* rpath = FindFinding(report, "hardening.insecure_rpath");
  ASSERT_NE(rpath, nullptr);
  EXPECT_EQ(rpath->cwe, "CWE-426");
  EXPECT_EQ(rpath->severity, model::Severity::kMedium);
  EXPECT_NE(rpath->evidence[0].excerpt.find("/tmp/x"), std::string::npos);

  EXPECT_NE(FindFinding(report, "hardening.no_relro"), nullptr);
  EXPECT_NE(FindFinding(report, "hardening.no_canary"), nullptr);
  const auto* gets = FindFinding(report, "hardening.dangerous_function.gets");
  ASSERT_NE(gets, nullptr);
  EXPECT_EQ(gets->cwe, "CWE-242");
  EXPECT_EQ(gets->severity, model::Severity::kMedium);
  const auto* system = FindFinding(report, "hardening.dangerous_function.system");
  ASSERT_NE(system, nullptr);
  EXPECT_EQ(system->cwe, "CWE-78");
  EXPECT_EQ(FindFinding(report, "hardening.dangerous_function.strcpy")->cwe, "CWE-120");
  EXPECT_EQ(FindFinding(report, "hardening.dangerous_function.sprintf"), nullptr);
}

TEST(HardeningAnalyzer, FlagsMissingPieOnlyWhereTheProgramIsExposed) {
  ScratchDir scratch;
  const auto nopie = Compile(scratch, "nopie", kPlainProgram, "-O2 -fno-pie -no-pie");
  if (nopie.empty()) GTEST_SKIP() << "gcc cannot build here";
  TreeBuilder tree(scratch);
  tree.Copy("/usr/bin/quiet", nopie).Copy("/usr/bin/su", nopie, 04755);
  if (fs::exists("/bin/busybox")) {
    tree.Copy("/bin/busybox", "/bin/busybox").Symlink("/usr/sbin/telnetd", "../../bin/busybox");
  }
  const auto report = RunAnalyzer(tree, MakeHardeningAnalyzer());
  const bool with_busybox = fs::exists("/bin/busybox");
  EXPECT_EQ(FactValue(report, "hardening.without_pie_count"), with_busybox ? 3 : 2);
  const auto* finding = FindFinding(report, "hardening.no_pie_exposed");
  ASSERT_NE(finding, nullptr);
  ASSERT_EQ(finding->evidence.size(), with_busybox ? 2u : 1u);
  for (const auto& evidence : finding->evidence) {
    EXPECT_NE(evidence.system_path, "/usr/bin/quiet");
    if (evidence.system_path == "/usr/bin/su") {
      EXPECT_NE(evidence.excerpt.find("setuid"), std::string::npos);
    } else {
      EXPECT_EQ(evidence.system_path, "/bin/busybox");
      EXPECT_NE(evidence.excerpt.find("runs as telnetd"), std::string::npos);
    }
  }
  if (with_busybox) {
    // A stripped static binary: its canary cannot be seen, so it is not counted as missing one.
    EXPECT_EQ(FactValue(report, "hardening.symbols_unknown_count"), 1);
    EXPECT_EQ(FactValue(report, "hardening.without_canary_count"), 2);
  }
}

TEST(HardeningAnalyzer, AcceptsOriginAndSystemSearchPathsAndFlagsRelativeOnes) {
  ScratchDir scratch;
  const auto origin =
      Compile(scratch, "origin", kPlainProgram, "-Wl,-rpath,'$ORIGIN/../lib':/usr/lib/extra");
  const auto relative = Compile(scratch, "relative", kPlainProgram, "-Wl,-rpath,lib");
  const auto var = Compile(scratch, "var", kPlainProgram, "-Wl,-rpath,/usr/../var/lib");
  if (origin.empty() || relative.empty() || var.empty()) GTEST_SKIP() << "gcc cannot build here";
  TreeBuilder tree(scratch);
  tree.Copy("/bin/origin", origin).Copy("/bin/relative", relative).Copy("/bin/var", var);
  const auto report = RunAnalyzer(tree, MakeHardeningAnalyzer());
  EXPECT_EQ(FactValue(report, "hardening.with_rpath_count"), 2);
  const auto* finding = FindFinding(report, "hardening.insecure_rpath");
  ASSERT_NE(finding, nullptr);
  ASSERT_EQ(finding->evidence.size(), 2u);
  EXPECT_EQ(finding->evidence[0].system_path, "/bin/relative");
  EXPECT_NE(finding->evidence[0].excerpt.find("relative"), std::string::npos);
  EXPECT_EQ(finding->evidence[1].system_path, "/bin/var");
  EXPECT_NE(finding->evidence[1].excerpt.find("/var"), std::string::npos);
}

TEST(HardeningAnalyzer, CapsEvidenceAndSaysHowManyMoreThereAre) {
  ScratchDir scratch;
  const auto weak = Compile(scratch, "weak", kWeakProgram, kWeakFlags);
  if (weak.empty()) GTEST_SKIP() << "gcc cannot build the weak program here";
  TreeBuilder tree(scratch);
  for (int i = 0; i < 60; ++i) tree.Copy("/usr/bin/tool" + std::to_string(100 + i), weak);
  const auto report = RunAnalyzer(tree, MakeHardeningAnalyzer());
  EXPECT_EQ(FactValue(report, "hardening.without_nx_count"), 60);
  const auto* finding = FindFinding(report, "hardening.executable_stack");
  ASSERT_NE(finding, nullptr);
  EXPECT_EQ(finding->evidence.size(), 50u);
  EXPECT_NE(finding->detail.find("60 binaries"), std::string::npos);
  EXPECT_NE(finding->detail.find("10 more"), std::string::npos);
  EXPECT_EQ(report.FindFact("hardening.without_nx_count")->evidence.size(), 50u);
}

TEST(HardeningAnalyzer, CountsArchitecturesButNotObjectFiles) {
  ScratchDir scratch;
  const auto object = Compile(scratch, "module.ko", kPlainProgram, "-c");
  if (object.empty()) GTEST_SKIP() << "gcc cannot build here";
  TreeBuilder tree(scratch);
  tree.Copy("/lib/modules/module.ko", object, 0644);
  const auto report = RunAnalyzer(tree, MakeHardeningAnalyzer());
  EXPECT_EQ(FactValue(report, "hardening.elf_count"), 0);
  EXPECT_EQ(FactValue(report, "hardening.without_nx_count"), 0);
  EXPECT_EQ(FactValue(report, "hardening.architectures"), nlohmann::json({"x86_64"}));
  EXPECT_TRUE(report.findings.empty());
}

TEST(HardeningAnalyzer, RefusesADataFileWithAMissingCwe) {
  ScratchDir scratch;
  fs::create_directories(scratch.path() / "hardening");
  fs::copy_file(testing::ProjectDataDir() / "hardening/binary_context.yaml",
                scratch.path() / "hardening/binary_context.yaml");
  std::ofstream(scratch.path() / "hardening/dangerous_functions.yaml")
      << "functions:\n  - name: gets\n    severity: low\n    why: x\n";
  const DataStore data(scratch.path());
  inventory::PatternSet patterns;
  AnalyzerSetup setup{data, patterns};
  const auto prepared = MakeHardeningAnalyzer()->Prepare(setup);
  ASSERT_FALSE(prepared.has_value());
  EXPECT_NE(prepared.error().message.find("dangerous_functions.yaml:2"), std::string::npos)
      << prepared.error().message;
  EXPECT_NE(prepared.error().message.find("cwe"), std::string::npos);
}

}  // namespace
}  // namespace iotmark::analyzers::builtin
