#include "iotmark/unpack/entry_sink.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack {
namespace {

namespace fs = std::filesystem;
using testing::ScratchDir;

class EntrySinkTest : public ::testing::Test {
 protected:
  EntrySinkTest()
      : root_(scratch_.path() / "out"), outside_(scratch_.path() / "outside"), budget_(limits_) {
    fs::create_directories(root_);
    fs::create_directories(outside_);
    sink_ = std::make_unique<EntrySink>(::open(root_.c_str(), O_RDONLY | O_DIRECTORY), "chunk",
                                        budget_, nullptr, record_, "image.bin", "tar");
  }

  // Nothing may ever appear outside the sink's directory.
  void ExpectOutsideUntouched() { EXPECT_TRUE(fs::is_empty(outside_)); }

  ScratchDir scratch_;
  fs::path root_;
  fs::path outside_;
  Limits limits_;
  Budget budget_;
  JobRecord record_;
  std::unique_ptr<EntrySink> sink_;
};

TEST_F(EntrySinkTest, WritesFilesWithHashAndOriginalMode) {
  ASSERT_TRUE(sink_->AddFile("bin/busybox", 04755,
                             AsBytes("\x7f"
                                     "ELF....")));
  sink_->Finish();
  const auto entries = record_.TakeEntries();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].path, "chunk/bin/busybox");
  EXPECT_EQ(entries[0].mode, 04755u);  // the report keeps the setuid bit ...
  EXPECT_EQ(entries[0].type, "elf");
  EXPECT_EQ(entries[0].sha256.size(), 64u);
  struct stat st {};
  ASSERT_EQ(::stat((root_ / "bin/busybox").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07000, 0u);  // ... the disk never gets it
}

TEST_F(EntrySinkTest, RefusesDotDotAndRecordsAGap) {
  auto status = sink_->AddFile("../outside/evil", 0644, AsBytes("x"));
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().code, ErrorCode::kInvalidArgument);
  status = sink_->AddFile("a/../../../outside/evil", 0644, AsBytes("x"));
  ASSERT_FALSE(status);
  ExpectOutsideUntouched();
  const auto gaps = record_.TakeGaps();
  ASSERT_EQ(gaps.size(), 2u);
  EXPECT_EQ(gaps[0].kind, model::GapKind::kUnsafeEntry);
  EXPECT_NE(gaps[0].reason.find(".."), std::string::npos);
}

TEST_F(EntrySinkTest, NamesTheFirstHundredRefusalsAndCountsTheRest) {
  for (int i = 0; i < 5000; ++i) {
    ASSERT_FALSE(sink_->AddFile("../x" + std::to_string(i), 0644, AsBytes("x")));
  }
  sink_->Finish();
  const auto gaps = record_.TakeGaps();
  ASSERT_EQ(gaps.size(), 101u);
  EXPECT_NE(gaps.back().reason.find("4900 more"), std::string::npos);
  ExpectOutsideUntouched();
}

TEST_F(EntrySinkTest, PlacesAbsolutePathsInsideTheTree) {
  ASSERT_TRUE(sink_->AddFile("/etc/passwd", 0644, AsBytes("root:x:0:0")));
  sink_->Finish();
  EXPECT_TRUE(fs::exists(root_ / "etc/passwd"));
  const auto gaps = record_.TakeGaps();
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_NE(gaps[0].reason.find("absolute"), std::string::npos);
}

TEST_F(EntrySinkTest, NeverWritesThroughASymlink) {
  ASSERT_TRUE(sink_->AddSymlink("escape", outside_.string()));
  ASSERT_TRUE(sink_->AddSymlink("link_file", (outside_ / "victim").string()));
  EXPECT_FALSE(sink_->AddFile("escape/evil", 0644, AsBytes("x")));
  EXPECT_FALSE(sink_->AddDirectory("escape/dir", 0755));
  // Writing a file over the link replaces the link, it does not write to its target.
  ASSERT_TRUE(sink_->AddFile("link_file", 0644, AsBytes("x")));
  EXPECT_FALSE(fs::is_symlink(root_ / "link_file"));
  ExpectOutsideUntouched();
}

TEST_F(EntrySinkTest, RecordsDevicesWithoutCreatingThem) {
  ASSERT_TRUE(sink_->AddSpecial("dev/console", model::EntryKind::kCharDevice, 020600));
  EXPECT_FALSE(fs::exists(root_ / "dev/console"));
  const auto entries = record_.TakeEntries();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_FALSE(entries[0].materialized);
  EXPECT_EQ(entries[0].kind, model::EntryKind::kCharDevice);
}

TEST_F(EntrySinkTest, HardLinksOnlyToFilesInsideTheSink) {
  ASSERT_TRUE(sink_->AddFile("bin/busybox", 0755, AsBytes("data")));
  ASSERT_TRUE(sink_->AddHardlink("bin/sh", "bin/busybox"));
  EXPECT_EQ(fs::hard_link_count(root_ / "bin/busybox"), 2u);
  EXPECT_FALSE(sink_->AddHardlink("bin/x", "../outside/victim"));
  EXPECT_FALSE(sink_->AddHardlink("bin/y", "/etc/shadow"));
  ExpectOutsideUntouched();
}

TEST_F(EntrySinkTest, StopsAtTheTotalSizeLimit) {
  limits_.max_total_bytes = 10;
  Budget budget(limits_);
  EntrySink sink(::open(root_.c_str(), O_RDONLY | O_DIRECTORY), "c", budget, nullptr, record_,
                 "image.bin", "gzip");
  auto status = sink.AddFile("big", 0644, AsBytes("0123456789abcdef"));
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().code, ErrorCode::kLimitExceeded);
  EXPECT_TRUE(ShouldStop(status.error()));
}

}  // namespace
}  // namespace iotmark::unpack
