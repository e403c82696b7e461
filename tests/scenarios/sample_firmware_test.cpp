// The embedded sample product (tests/fixtures/make_sample_firmware.sh) unpacked end to end and
// checked file by file against what went into it.
#include <gtest/gtest.h>

#include "iotmark/base/mapped_file.hpp"
#include "iotmark/base/sha256.hpp"
#include "scenario_support.hpp"

namespace iotmark::scenario {
namespace {

using model::ChunkStatus;
using model::EntryKind;

class SampleFirmware : public ::testing::Test {
 protected:
  void SetUp() override {
    image_ = testing::FixturePath("sample/firmware.bin");
    if (!std::filesystem::exists(image_)) GTEST_SKIP() << "fixture missing: " << image_;
    manifest_ = ReadManifest(testing::FixturePath("sample/manifest.txt"));
    auto report = Unpack(image_, scratch_.path() / "out");
    ASSERT_TRUE(report) << report.error().ToString();
    report_ = std::move(*report);
  }

  std::string Sha256Of(const std::string& relative) {
    auto file = MappedFile::Open(scratch_.path() / "out" / relative);
    return file ? Sha256::Hex(file->bytes()) : "";
  }

  testing::ScratchDir scratch_;
  std::filesystem::path image_;
  std::map<std::string, std::string> manifest_;
  model::UnpackReport report_;
};

constexpr const char* kRoot = "firmware.bin_extract/0x110000.squashfs";

TEST_F(SampleFirmware, FindsEveryContainerAtItsOffset) {
  const auto& top = report_.tree.children;
  ASSERT_GE(top.size(), 4u);
  EXPECT_EQ(top[0].format, "uimage");
  EXPECT_EQ(top[0].offset, 0u);
  EXPECT_EQ(top[0].status, ChunkStatus::kExtracted);
  const auto* squashfs = FindChunk(report_.tree, "squashfs");
  ASSERT_NE(squashfs, nullptr);
  EXPECT_EQ(squashfs->offset, 0x110000u);
  EXPECT_EQ(squashfs->status, ChunkStatus::kExtracted);
  const auto* gzip = FindChunk(report_.tree, "gzip");
  ASSERT_NE(gzip, nullptr);
  EXPECT_EQ(gzip->offset, 0x220000u);
  EXPECT_NE(FindChunk(*gzip, "tar"), nullptr) << "the config backup tarball inside the gzip";
  for (const auto& node : top) {
    if (node.format == "padding") {
      EXPECT_TRUE(node.meta.at("fill") == "0xff" || node.meta.at("fill") == "0x00+0xff");
    }
    if (node.format == "unknown") {
      ADD_FAILURE() << "unknown region at " << node.offset << ": the sample has none";
    }
  }
}

TEST_F(SampleFirmware, ReportsNoGaps) {
  for (const auto& gap : report_.gaps) ADD_FAILURE() << gap.blob << " " << gap.reason;
}

TEST_F(SampleFirmware, ExtractsRealBinariesByteForByte) {
  const auto* busybox = FindEntry(report_, std::string(kRoot) + "/bin/busybox");
  ASSERT_NE(busybox, nullptr);
  EXPECT_EQ(busybox->sha256, manifest_.at("busybox_sha256"));
  EXPECT_EQ(busybox->type, "elf");
  EXPECT_EQ(busybox->mode & 07777, 04755u) << "the setuid bit is kept in the report";
  EXPECT_EQ(Sha256Of(std::string(kRoot) + "/bin/busybox"), manifest_.at("busybox_sha256"));
  const auto* dropbear = FindEntry(report_, std::string(kRoot) + "/usr/sbin/dropbear");
  ASSERT_NE(dropbear, nullptr);
  EXPECT_EQ(dropbear->sha256, manifest_.at("dropbear_sha256"));
}

TEST_F(SampleFirmware, RecordsLinksAsLinks) {
  const auto* sh = FindEntry(report_, std::string(kRoot) + "/bin/sh");
  ASSERT_NE(sh, nullptr);
  EXPECT_EQ(sh->kind, EntryKind::kSymlink);
  EXPECT_EQ(sh->link_target, "busybox");
  const auto* reboot = FindEntry(report_, std::string(kRoot) + "/sbin/reboot");
  ASSERT_NE(reboot, nullptr);
  EXPECT_EQ(reboot->link_target, "../bin/busybox");
  EXPECT_TRUE(std::filesystem::is_symlink(scratch_.path() / "out" / kRoot / "bin/sh"));
}

TEST_F(SampleFirmware, DecompressesTheKernelAndReadsItsBanner) {
  const auto* uimage = FindChunk(report_.tree, "uimage");
  ASSERT_NE(uimage, nullptr);
  EXPECT_EQ(uimage->meta.at("compression"), "lzma");
  const auto* kernel = FindChunk(report_.tree, "linux_kernel");
  ASSERT_NE(kernel, nullptr);
  EXPECT_EQ(kernel->meta.at("version"), "5.10.176");
  bool payload_found = false;
  for (const auto& entry : report_.inventory) {
    if (entry.sha256 == manifest_.at("uimage_payload_sha256")) payload_found = true;
  }
  EXPECT_TRUE(payload_found) << "the decompressed kernel payload is in the inventory";
}

TEST_F(SampleFirmware, UnpacksTheConfigBackupInsideTheGzip) {
  bool shadow_found = false;
  for (const auto& entry : report_.inventory) {
    if (entry.path.ends_with("/etc/shadow") &&
        entry.path.find("0x220000.gzip") != std::string::npos) {
      shadow_found = true;
      EXPECT_EQ(entry.mode & 0777, 0600u);
    }
  }
  EXPECT_TRUE(shadow_found);
}

TEST_F(SampleFirmware, GivesTheSameReportTwice) {
  testing::ScratchDir again;
  auto second = Unpack(image_, again.path() / "out");
  ASSERT_TRUE(second);
  EXPECT_EQ(model::ToCanonicalJson(model::ToJson(report_)),
            model::ToCanonicalJson(model::ToJson(*second)));
}

}  // namespace
}  // namespace iotmark::scenario
