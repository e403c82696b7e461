#include <gtest/gtest.h>

#include <algorithm>

#include "iotmark/analyzers/builtin/components/package_db.hpp"
#include "iotmark/analyzers/testing/tree_builder.hpp"

namespace iotmark::analyzers::builtin {
std::unique_ptr<Analyzer> MakeComponentsAnalyzer();

namespace {

using testing::RunAnalyzer;
using testing::ScratchDir;
using testing::TreeBuilder;

const model::Component* Find(const model::AnalysisReport& report, const std::string& name) {
  const auto it = std::find_if(report.components.begin(), report.components.end(),
                               [&](const auto& c) { return c.name == name; });
  return it == report.components.end() ? nullptr : &*it;
}

// Bytes as they sit in a binary: the version string between unrelated data.
std::string Embedded(std::string_view text) {
  std::string out(300, '\0');
  out += "\x7f\x13junk";
  out += text;
  out.push_back('\0');
  out += std::string(200, '\xff');
  return out;
}

TEST(ComponentsAnalyzer, IdentifiesRealDebianBinariesWithTheirVersions) {
  ScratchDir scratch;
  TreeBuilder tree(scratch);
  tree.Copy("/bin/busybox", "/bin/busybox")
      .Copy("/usr/sbin/dropbear", "/usr/sbin/dropbear")
      .Copy("/lib/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1")
      .Copy("/lib/libcrypto.so.3", "/usr/lib/x86_64-linux-gnu/libcrypto.so.3")
      .Copy("/lib/libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6");
  const auto report = RunAnalyzer(tree, MakeComponentsAnalyzer());
  EXPECT_TRUE(report.gaps.empty()) << report.gaps.front().reason;

  const auto* busybox = Find(report, "busybox");
  ASSERT_NE(busybox, nullptr);
  EXPECT_TRUE(busybox->version.find("1.35.0") != std::string::npos) << busybox->version;
  EXPECT_EQ(busybox->cpe, "cpe:2.3:a:busybox:busybox:1.35.0:*:*:*:*:*:*:*");
  EXPECT_EQ(busybox->purl, "pkg:generic/busybox@1.35.0");
  EXPECT_EQ(busybox->confidence, model::Confidence::kHigh);
  ASSERT_FALSE(busybox->locations.empty());
  EXPECT_EQ(busybox->locations[0].system_path, "/bin/busybox");
  EXPECT_TRUE(busybox->locations[0].offset.has_value());

  const auto* dropbear = Find(report, "dropbear");
  ASSERT_NE(dropbear, nullptr);
  EXPECT_EQ(dropbear->version, "2022.83");
  EXPECT_EQ(dropbear->cpe, "cpe:2.3:a:dropbear_ssh_project:dropbear_ssh:2022.83:*:*:*:*:*:*:*");

  const auto* zlib = Find(report, "zlib");
  ASSERT_NE(zlib, nullptr);
  EXPECT_EQ(zlib->version, "1.2.13");
  const auto* openssl = Find(report, "openssl");
  ASSERT_NE(openssl, nullptr);
  EXPECT_TRUE(openssl->version.starts_with("3.0.")) << openssl->version;
  const auto* glibc = Find(report, "glibc");
  ASSERT_NE(glibc, nullptr);
  EXPECT_TRUE(glibc->version.starts_with("2.36")) << glibc->version;
  EXPECT_EQ(glibc->cpe, "cpe:2.3:a:gnu:glibc:2.36:*:*:*:*:*:*:*");

  const auto* count = report.FindFact("components.count");
  ASSERT_NE(count, nullptr);
  EXPECT_EQ(count->value, static_cast<std::int64_t>(report.components.size()));
}

TEST(ComponentsAnalyzer, ReadsVersionStringsOfOtherReleases) {
  ScratchDir scratch;
  TreeBuilder tree(scratch);
  tree.File("/bin/busybox", Embedded("BusyBox v1.31.1 (2020-03-24 10:00:00 UTC)"))
      .File("/usr/lib/libssl.so.1.1", Embedded("OpenSSL 1.1.1n  15 Mar 2022"))
      .File("/usr/sbin/sshd", Embedded("OpenSSH_7.4p1"))
      .File("/usr/sbin/dnsmasq", Embedded("dnsmasq-2.80"))
      .File("/usr/sbin/lighttpd", Embedded("lighttpd/1.4.59"))
      .File("/usr/sbin/miniupnpd", Embedded("Linux/4.14 UPnP/1.1 MiniUPnPd/2.1"))
      .File("/lib/libuClibc-0.9.33.2.so", Embedded("nothing"))
      .File("/lib2/libuClibc-1.0.40.so", Embedded("nothing"));
  const auto report = RunAnalyzer(tree, MakeComponentsAnalyzer());
  ASSERT_NE(Find(report, "busybox"), nullptr);
  EXPECT_EQ(Find(report, "busybox")->version, "1.31.1");
  ASSERT_NE(Find(report, "openssl"), nullptr);
  EXPECT_EQ(Find(report, "openssl")->version, "1.1.1n");
  ASSERT_NE(Find(report, "openssh"), nullptr);
  EXPECT_EQ(Find(report, "openssh")->cpe, "cpe:2.3:a:openbsd:openssh:7.4:p1:*:*:*:*:*:*");
  ASSERT_NE(Find(report, "dnsmasq"), nullptr);
  EXPECT_EQ(Find(report, "dnsmasq")->version, "2.80");
  ASSERT_NE(Find(report, "lighttpd"), nullptr);
  ASSERT_NE(Find(report, "miniupnpd"), nullptr);
  EXPECT_EQ(Find(report, "miniupnpd")->version, "2.1");
  ASSERT_NE(Find(report, "uclibc"), nullptr);
  EXPECT_EQ(Find(report, "uclibc")->version, "0.9.33.2");
  EXPECT_EQ(Find(report, "uclibc")->confidence, model::Confidence::kMedium);
  ASSERT_NE(Find(report, "uclibc-ng"), nullptr);
  EXPECT_EQ(Find(report, "uclibc-ng")->version, "1.0.40");
}

TEST(ComponentsAnalyzer, FindsNothingInFilesWithoutSignatures) {
  ScratchDir scratch;
  TreeBuilder tree(scratch);
  tree.File("/etc/motd", "Welcome. OpenSSL is great. BusyBox rocks. version 1.2.3")
      .File("/bin/tool", Embedded("nginx/ is a web server"));
  const auto report = RunAnalyzer(tree, MakeComponentsAnalyzer());
  EXPECT_TRUE(report.components.empty());
  EXPECT_EQ(report.FindFact("components.count")->value, 0);
}

TEST(ComponentsAnalyzer, ReadsOpkgAndDpkgDatabasesAndMergesWithSignatures) {
  ScratchDir scratch;
  TreeBuilder tree(scratch);
  tree.File("/usr/lib/opkg/status",
            "Package: dnsmasq\nVersion: 2.89-4\nStatus: install user installed\nArchitecture: "
            "mipsel_24kc\n\nPackage: luci-base\nVersion: git-23.093.57360-e98243e\nStatus: install "
            "ok installed\nArchitecture: all\n\nPackage: removed\nVersion: 1\nStatus: deinstall ok "
            "not-installed\n")
      .File("/usr/sbin/dnsmasq", Embedded("dnsmasq-2.89"))
      .File("/var/lib/dpkg/status",
            "Package: busybox\nStatus: install ok installed\nVersion: 1:1.35.0-4+b3\n"
            "Description: tiny\n utilities\n\n");
  const auto report = RunAnalyzer(tree, MakeComponentsAnalyzer());
  const auto* dnsmasq = Find(report, "dnsmasq");
  ASSERT_NE(dnsmasq, nullptr);
  EXPECT_EQ(dnsmasq->version, "2.89-4");
  EXPECT_EQ(dnsmasq->cpe, "cpe:2.3:a:thekelleys:dnsmasq:2.89:*:*:*:*:*:*:*");
  EXPECT_EQ(dnsmasq->locations.size(), 2u);
  EXPECT_NE(dnsmasq->method.find("opkg"), std::string::npos);
  EXPECT_NE(dnsmasq->method.find("signature"), std::string::npos);
  const auto* luci = Find(report, "luci-base");
  ASSERT_NE(luci, nullptr);
  EXPECT_EQ(luci->purl, "pkg:opkg/luci-base@git-23.093.57360-e98243e?arch=all");
  EXPECT_EQ(Find(report, "removed"), nullptr);
  const auto* busybox = Find(report, "busybox");
  ASSERT_NE(busybox, nullptr);
  EXPECT_EQ(busybox->version, "1:1.35.0-4+b3");
  EXPECT_EQ(busybox->cpe, "cpe:2.3:a:busybox:busybox:1.35.0:*:*:*:*:*:*:*");
  const auto* managers = report.FindFact("components.package_managers");
  ASSERT_NE(managers, nullptr);
  EXPECT_EQ(managers->value, nlohmann::json({"dpkg", "opkg"}));
}

TEST(PackageDb, StripsEpochAndRevisionForTheUpstreamVersion) {
  EXPECT_EQ(UpstreamVersion("1:1.35.0-4+b3"), "1.35.0");
  EXPECT_EQ(UpstreamVersion("2.89-4"), "2.89");
  EXPECT_EQ(UpstreamVersion("2022.83"), "2022.83");
  EXPECT_EQ(ParsePackageStanzas("Package: a\nVersion: 1\n\n\nPackage: b\nVersion: 2").size(), 2u);
}

}  // namespace
}  // namespace iotmark::analyzers::builtin
