#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "iotmark/unpack/archive/sample_tree.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeIso9660Format();

namespace {

namespace fs = std::filesystem;
using archive::testing::Embed;
using archive::testing::ExpectSampleTree;
using archive::testing::GapList;
using archive::testing::HasGap;
using archive::testing::MakeSampleTree;
using iotmark::testing::ProbeAndExtract;
using iotmark::testing::ReadFileBytes;
using iotmark::testing::RunCommand;
using iotmark::testing::ScratchDir;
using model::EntryKind;
using model::GapKind;

class Iso9660FormatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!archive::testing::HaveSampleBinaries()) GTEST_SKIP() << "busybox or dropbear missing";
  }
  // Builds an image of the sample tree with genisoimage (-R: Rock Ridge, real modes and links).
  std::vector<std::uint8_t> Iso(const std::string& options) {
    const fs::path out = scratch_.path() / "a.iso";
    fs::remove(out);
    const std::string command = "genisoimage -quiet " + options + " -V FIRMWARE -o " +
                                out.string() + " " + tree_.root.string();
    EXPECT_EQ(RunCommand(command), 0) << command;
    return ReadFileBytes(out);
  }

  ScratchDir scratch_;
  ScratchDir out_;
  archive::testing::SampleTree tree_ = MakeSampleTree(scratch_.path());
  std::unique_ptr<const Format> format_ = MakeIso9660Format();
};

TEST_F(Iso9660FormatTest, ReadsAnImageBuiltByGenisoimageEmbeddedBetweenForeignBytes) {
  const auto image = Iso("-R -J");
  const auto blob = Embed(image, 777, 5000);
  const auto x = ProbeAndExtract(*format_, blob, 777, out_);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->offset, 777u);
  EXPECT_EQ(x.chunk->length, image.size());
  EXPECT_EQ(x.chunk->meta.at("volume_id"), "FIRMWARE");
  EXPECT_TRUE(x.chunk->issues.empty());
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  ExpectSampleTree(x, tree_);
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
}

TEST_F(Iso9660FormatTest, EveryDescriptorMagicPointsAtTheSameStartOrIsRejected) {
  // With Joliet the image has three descriptors (primary, supplementary, terminator): matches of
  // the later ones through the first magic's offset give starts that must be refused.
  const auto image = Iso("-R -J");
  const auto blob = Embed(image, 4096, 0);
  for (std::uint64_t sector = 17; sector <= 18; ++sector) {
    EXPECT_FALSE(format_->Probe(blob, 4096 + (sector - 16) * 2048)) << sector;
  }
  EXPECT_TRUE(format_->Probe(blob, 4096));
}

TEST_F(Iso9660FormatTest, ATruncatedImageGivesAGapAndWhatItStillHolds) {
  const auto image = Iso("-R");
  const std::vector<std::uint8_t> cut(image.begin(), image.begin() + image.size() / 2);
  const auto x = ProbeAndExtract(*format_, cut, 0, out_);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, cut.size());
  ASSERT_EQ(x.chunk->issues.size(), 1u);
  EXPECT_EQ(x.chunk->issues[0].kind, GapKind::kTruncated);
  EXPECT_FALSE(x.entries.empty());
  EXPECT_TRUE(!x.status || HasGap(x, GapKind::kTruncated)) << GapList(x);
}

TEST_F(Iso9660FormatTest, RejectsAPrimaryDescriptorWhoseHalvesDisagree) {
  auto image = Iso("-R");
  ASSERT_TRUE(format_->Probe(image, 0));
  image[0x8000 + 84] ^= 0x01;  // the big-endian half of the volume size
  EXPECT_FALSE(format_->Probe(image, 0));
  const auto noise = Embed({}, 64 * 1024, 0);
  EXPECT_FALSE(format_->Probe(noise, 0));
}

TEST_F(Iso9660FormatTest, ReadsTheSharedSample) {
  const fs::path sample = iotmark::testing::SharedSamplePath("iso9660/fact_test.iso");
  if (sample.empty()) GTEST_SKIP() << "shared samples not present";
  const auto image = ReadFileBytes(sample);
  const auto x = ProbeAndExtract(*format_, image, 0, out_);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, image.size());
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  std::size_t files = 0;
  for (const auto& entry : x.entries) files += entry.kind == EntryKind::kFile ? 1 : 0;
  EXPECT_GT(files, 0u);
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
}

}  // namespace
}  // namespace iotmark::unpack::formats
