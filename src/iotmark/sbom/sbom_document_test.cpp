#include "iotmark/sbom/sbom_document.hpp"

#include <gtest/gtest.h>

#include "iotmark/sbom/identifiers.hpp"
#include "iotmark/share/sarif.hpp"

namespace iotmark::sbom {
namespace {

std::vector<model::Component> Sample() {
  model::Component busybox;
  busybox.name = "busybox";
  busybox.version = "1.35.0";
  busybox.purl = "pkg:generic/busybox@1.35.0";
  busybox.cpe = "cpe:2.3:a:busybox:busybox:1.35.0:*:*:*:*:*:*:*";
  busybox.method = "signature";
  busybox.confidence = model::Confidence::kHigh;
  model::Evidence where;
  where.path = "x/bin/busybox";
  where.system_path = "/bin/busybox";
  busybox.locations.push_back(where);
  model::Component unknown;
  unknown.name = "uhttpd";
  unknown.method = "filename";
  unknown.confidence = model::Confidence::kLow;
  return {busybox, unknown};
}

const SbomSubject kSubject{"fw.bin", std::string(64, 'a'), 10, "0.1.0", "2026-11-23T00:00:00Z"};

TEST(CycloneDx, WritesASpecVersion15BomWithIdentityEvidence) {
  const auto bom = ToCycloneDx(kSubject, Sample());
  EXPECT_EQ(bom["bomFormat"], "CycloneDX");
  EXPECT_EQ(bom["specVersion"], "1.5");
  EXPECT_TRUE(bom["serialNumber"].get<std::string>().starts_with("urn:uuid:"));
  EXPECT_EQ(bom["metadata"]["component"]["type"], "firmware");
  ASSERT_EQ(bom["components"].size(), 2u);
  const auto& first = bom["components"][0];
  EXPECT_EQ(first["purl"], "pkg:generic/busybox@1.35.0");
  EXPECT_EQ(first["evidence"]["occurrences"][0]["location"], "/bin/busybox");
  EXPECT_EQ(first["evidence"]["identity"]["methods"][0]["technique"], "binary-analysis");
  EXPECT_FALSE(bom["components"][1].contains("version"));
  EXPECT_EQ(bom["dependencies"][0]["dependsOn"].size(), 2u);
  EXPECT_EQ(ToCycloneDx(kSubject, Sample()), bom);  // deterministic
}

TEST(Spdx, WritesAnSpdx23DocumentWithCpeAndPurlReferences) {
  const auto doc = ToSpdx(kSubject, Sample());
  EXPECT_EQ(doc["spdxVersion"], "SPDX-2.3");
  EXPECT_EQ(doc["dataLicense"], "CC0-1.0");
  ASSERT_EQ(doc["packages"].size(), 3u);
  const auto& refs = doc["packages"][1]["externalRefs"];
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(refs[0]["referenceType"], "cpe23Type");
  EXPECT_EQ(refs[1]["referenceType"], "purl");
  EXPECT_FALSE(doc["packages"][2].contains("externalRefs"));
  EXPECT_EQ(doc["relationships"].size(), 3u);
}

TEST(Identifiers, EscapesCpeComponentsAndPercentEncodesPurls) {
  EXPECT_EQ(EscapeCpeComponent("1.35.0-4+b3"), "1.35.0-4\\+b3");
  EXPECT_EQ(EscapeCpeComponent(""), "*");
  EXPECT_EQ(FormatCpe(ParseCpeBase("o:linux:linux_kernel")),
            "cpe:2.3:o:linux:linux_kernel:*:*:*:*:*:*:*:*");
  EXPECT_EQ(PurlWithVersion("pkg:deb/busybox", "1:1.35.0+b3"), "pkg:deb/busybox@1%3A1.35.0%2Bb3");
  EXPECT_EQ(StableUuid("x").size(), 36u);
  EXPECT_EQ(StableUuid("x")[14], '5');
}

TEST(Sarif, MapsFindingsToRulesResultsAndLocations) {
  model::Finding finding;
  finding.id = "credentials.default_password";
  finding.severity = model::Severity::kCritical;
  finding.title = "Default password";
  finding.detail = "root has password root";
  finding.cwe = "CWE-798";
  model::Evidence where;
  where.path = "x/etc/shadow";
  where.system_path = "/etc/shadow";
  where.offset = 0;
  finding.evidence.push_back(where);
  const auto log = share::ToSarif({finding, finding}, "0.1.0", "fw.bin");
  EXPECT_EQ(log["version"], "2.1.0");
  const auto& run = log["runs"][0];
  EXPECT_EQ(run["tool"]["driver"]["rules"].size(), 1u);
  ASSERT_EQ(run["results"].size(), 2u);
  EXPECT_EQ(run["results"][0]["level"], "error");
  EXPECT_EQ(run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "etc/shadow");
}

}  // namespace
}  // namespace iotmark::sbom
