#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "iotmark/unpack/carver.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeSrecFormat();
}  // namespace iotmark::unpack::formats

namespace iotmark::unpack {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;
using model::GapKind;
using testing::Extraction;
using testing::ProbeAndExtract;
using testing::ReadFileBytes;
using testing::RunCommand;
using testing::ScratchDir;

const Format& Srec() {
  static const auto format = formats::MakeSrecFormat();
  return *format;
}

Bytes Text(const std::string& text) { return Bytes(text.begin(), text.end()); }
std::string AsString(const Bytes& bytes) { return std::string(bytes.begin(), bytes.end()); }
std::string Quoted(const fs::path& path) { return "'" + path.string() + "'"; }

struct Converted {
  Bytes source;
  Bytes srec;
};

// The first `size` bytes of busybox, and that file converted by `command` ({in}, {out}).
Converted Convert(const ScratchDir& scratch, std::size_t size, const std::string& command) {
  const fs::path in = scratch.path() / "source.bin";
  const fs::path out = scratch.path() / "out.srec";
  Bytes source = ReadFileBytes("/bin/busybox");
  source.resize(std::min(source.size(), size));
  testing::WriteFileBytes(in, source);
  std::string line = command;
  line.replace(line.find("{in}"), 4, Quoted(in));
  line.replace(line.find("{out}"), 5, Quoted(out));
  EXPECT_EQ(RunCommand(line + " 2>/dev/null"), 0) << line;
  return Converted{source, ReadFileBytes(out)};
}

std::string GapList(const Extraction& x) {
  std::string out;
  for (const auto& gap : x.gaps) {
    out += std::string(model::ToString(gap.kind)) + ": " + gap.reason + "\n";
  }
  return out;
}

bool HasGap(const Extraction& x, GapKind kind, const std::string& text) {
  return std::any_of(x.gaps.begin(), x.gaps.end(), [&](const model::Gap& gap) {
    return gap.kind == kind && gap.reason.find(text) != std::string::npos;
  });
}

std::vector<std::string> Lines(const Bytes& text) {
  std::vector<std::string> lines;
  std::string current;
  for (const std::uint8_t c : text) {
    current.push_back(static_cast<char>(c));
    if (c == '\n') {
      lines.push_back(current);
      current.clear();
    }
  }
  if (!current.empty()) lines.push_back(current);
  return lines;
}

Bytes Join(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& line : lines) text += line;
  return Text(text);
}

TEST(SrecFormat, RebuildsTheBytesObjcopyConvertedWithSixteenBitAddresses) {
  ScratchDir scratch;
  const auto c = Convert(scratch, 40000, "objcopy -I binary -O srec {in} {out}");
  ASSERT_EQ(AsString(c.srec).substr(0, 2), "S0");
  const auto x = ProbeAndExtract(Srec(), c.srec, 0, scratch, {}, "busybox-head.srec");
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, c.srec.size());
  EXPECT_TRUE(x.chunk->issues.empty());
  EXPECT_EQ(x.chunk->meta.at("terminated"), "yes");
  // objcopy names the output file in the header.
  EXPECT_TRUE(x.chunk->meta.at("header").ends_with("/out.srec")) << x.chunk->meta.at("header");
  EXPECT_EQ(x.chunk->meta.at("start_address"), "0x00000000");
  EXPECT_EQ(x.chunk->meta.at("address_range"), "0x00000000-0x00009c3f");
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  ASSERT_EQ(x.entries.size(), 1u);
  EXPECT_EQ(x.entries[0].path, "busybox-head.bin");
  EXPECT_EQ(x.Read("busybox-head.bin"), c.source);
}

TEST(SrecFormat, ReadsThirtyTwoBitAddressesAndACountRecordWithoutTermination) {
  ScratchDir scratch;
  // srec_cat writes S3 records, an S5 count and, without a start address, no S7.
  const auto c = Convert(scratch, 70000, "srec_cat {in} -binary -offset 0x08000000 -o {out}");
  const std::string text = AsString(c.srec);
  ASSERT_NE(text.find("\nS3"), std::string::npos);
  ASSERT_EQ(text.find("\nS7"), std::string::npos);
  const auto x = ProbeAndExtract(Srec(), c.srec, 0, scratch);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, c.srec.size());
  EXPECT_TRUE(x.chunk->issues.empty());
  EXPECT_EQ(x.chunk->meta.at("terminated"), "no");
  EXPECT_EQ(x.chunk->meta.at("header"), "http://srecord.sourceforge.net/");
  EXPECT_EQ(x.chunk->meta.at("address_range"), "0x08000000-0x0801116f");
  ASSERT_TRUE(x.status);
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  EXPECT_EQ(x.Read("image.bin"), c.source);
}

TEST(SrecFormat, ReadsTwentyFourBitAddressesAndTheS8StartAddress) {
  ScratchDir scratch;
  const auto c = Convert(scratch, 3000,
                         "srec_cat {in} -binary -offset 0x123400 -o {out} -motorola "
                         "-address-length=3 -execution-start-address=0x123456");
  ASSERT_NE(AsString(c.srec).find("\nS8"), std::string::npos);
  const auto x = ProbeAndExtract(Srec(), c.srec, 0, scratch);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, c.srec.size());
  EXPECT_EQ(x.chunk->meta.at("start_address"), "0x00123456");
  EXPECT_EQ(x.chunk->meta.at("terminated"), "yes");
  ASSERT_TRUE(x.status);
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  EXPECT_EQ(x.Read("image.bin"), c.source);
}

TEST(SrecFormat, ReadsTheSample) {
  const auto path = testing::SharedSamplePath("srec/fact_testfile.srec");
  if (path.empty() || !fs::exists(path)) GTEST_SKIP() << "shared sample srec/fact_testfile.srec";
  const Bytes srec = ReadFileBytes(path);
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Srec(), srec, 0, scratch, {}, "fact_testfile.srec");
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, srec.size());
  EXPECT_EQ(x.chunk->meta.at("header"), "hello!");
  EXPECT_EQ(x.chunk->meta.at("records"), "6");
  EXPECT_EQ(x.chunk->meta.at("address_range"), "0x00000000-0x00000045");
  ASSERT_TRUE(x.status);
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  ASSERT_EQ(x.entries.size(), 1u);
  const Bytes image = x.Read("fact_testfile.bin");
  ASSERT_EQ(image.size(), 70u);
  // PowerPC code ("mflr r0" first) and then the text it prints.
  EXPECT_EQ(Bytes(image.begin(), image.begin() + 4), Bytes({0x7c, 0x08, 0x02, 0xa6}));
  EXPECT_EQ(AsString(Bytes(image.begin() + 56, image.end())), std::string("Hello world.\n\0", 14));
}

TEST(SrecFormat, FindsAFileInsideOtherText) {
  ScratchDir scratch;
  const auto c = Convert(scratch, 500, "objcopy -I binary -O srec {in} {out}");
  const std::string before = "Stored in AWS S3 bucket S1130000 with S0 headers\nS-records:\n";
  const std::string after = "S113 trailing notes\n";
  Bytes blob = Text(before);
  blob.insert(blob.end(), c.srec.begin(), c.srec.end());
  const Bytes tail = Text(after);
  blob.insert(blob.end(), tail.begin(), tail.end());

  FormatList formats;
  formats.push_back(formats::MakeSrecFormat());
  auto carver = Carver::Create(formats);
  ASSERT_TRUE(carver);
  auto found = carver->Find(blob, 1000);
  ASSERT_TRUE(found);
  std::vector<std::uint64_t> accepted;
  for (const auto& candidate : found->list) {
    if (Srec().Probe(blob, candidate.start)) accepted.push_back(candidate.start);
  }
  ASSERT_FALSE(accepted.empty());
  EXPECT_EQ(accepted.front(), before.size());
  const auto x = ProbeAndExtract(Srec(), blob, before.size(), scratch);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, c.srec.size());
  ASSERT_TRUE(x.status);
  EXPECT_EQ(x.Read("image.bin"), c.source);
}

TEST(SrecFormat, LeavesOutARecordWithABadChecksumAndChecksTheCount) {
  const std::vector<std::string> good =
      Lines(Text("S00600004844521B\n"
                 "S107000001020304EE\n"
                 "S107000405060708DA\n"
                 "S1070008090A0B0CC6\n"
                 "S5030003F9\n"
                 "S9030000FC\n"));
  {
    ScratchDir scratch;
    const auto x = ProbeAndExtract(Srec(), Join(good), 0, scratch);
    ASSERT_TRUE(x.chunk);
    ASSERT_TRUE(x.status);
    EXPECT_TRUE(x.gaps.empty()) << GapList(x);
    EXPECT_EQ(x.Read("image.bin"), Bytes({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
  }
  std::vector<std::string> bad = good;
  bad[2] = "S107000405060708DB\n";
  bad[4] = "S5030004F8\n";
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Srec(), Join(bad), 0, scratch);
  ASSERT_TRUE(x.chunk);
  ASSERT_TRUE(x.status);
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "line 3: record checksum does not match")) << GapList(x);
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "line 5: the count record says 4 data records, 3 came"))
      << GapList(x);
  EXPECT_EQ(x.Read("image.bin"), Bytes({1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff, 9, 10, 11, 12}));
}

TEST(SrecFormat, ReportsACutRecordAndSurvivesEveryTruncation) {
  ScratchDir scratch;
  const auto c = Convert(scratch, 300, "objcopy -I binary -O srec {in} {out}");
  const auto lines = Lines(c.srec);
  ASSERT_GT(lines.size(), 6u);
  std::string head;
  for (int i = 0; i < 5; ++i) head += lines[i];
  head += lines[5].substr(0, 15);
  const Bytes cut = Text(head);
  const auto x = ProbeAndExtract(Srec(), cut, 0, scratch);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, cut.size());
  ASSERT_EQ(x.chunk->issues.size(), 1u);
  EXPECT_EQ(x.chunk->issues[0].kind, GapKind::kTruncated);
  ASSERT_TRUE(x.status);
  EXPECT_EQ(x.Read("image.bin"), Bytes(c.source.begin(), c.source.begin() + 64));

  for (std::size_t size = 0; size <= c.srec.size(); size += 5) {
    const Bytes piece(c.srec.begin(), c.srec.begin() + static_cast<std::ptrdiff_t>(size));
    ScratchDir s;
    const auto y = ProbeAndExtract(Srec(), piece, 0, s);
    if (y.chunk) {
      EXPECT_LE(y.chunk->length, size);
      EXPECT_TRUE(y.status);
    }
  }
}

TEST(SrecFormat, RejectsOrdinaryTextFirmly) {
  const auto probe = [](const std::string& text) { return Srec().Probe(Text(text), 0); };
  EXPECT_FALSE(probe("S1130000 is the part number\n"));
  EXPECT_FALSE(probe("S0030000FC\n"));                                   // a header alone
  EXPECT_FALSE(probe("S0030000FC\nS9030000FC\n"));                       // no data
  EXPECT_FALSE(probe("S107000001020304EF\nS9030000FC\n"));               // bad checksum first
  EXPECT_FALSE(probe("S00600004844521B\nS107000001020304EE\nnotes\n"));  // two, then text
  EXPECT_FALSE(probe("S4070000010203049F\nS4070000010203049F\nS4070000010203049F\n"));
  EXPECT_TRUE(probe("S107000001020304EE\nS9030000FC\n"));
  const auto three = probe("S00600004844521B\nS107000001020304EE\nS107000405060708DA\nnotes\n");
  ASSERT_TRUE(three);
  EXPECT_EQ(three->meta.at("terminated"), "no");
  EXPECT_EQ(three->length,
            std::string("S00600004844521B\nS107000001020304EE\nS107000405060708DA\n").size());
}

TEST(SrecFormat, SurvivesRandomDamage) {
  ScratchDir scratch;
  const auto c = Convert(scratch, 600, "objcopy -I binary -O srec {in} {out}");
  std::mt19937 random(11);
  for (int round = 0; round < 300; ++round) {
    Bytes srec = c.srec;
    const int flips = 1 + static_cast<int>(random() % 6);
    for (int i = 0; i < flips; ++i) {
      const char alphabet[] = "0123456789ABCDEFS\n\r x";
      srec[random() % srec.size()] = static_cast<std::uint8_t>(alphabet[random() % 22]);
    }
    ScratchDir s;
    const auto x = ProbeAndExtract(Srec(), srec, 0, s);
    if (x.chunk) {
      EXPECT_LE(x.chunk->length, srec.size());
      EXPECT_TRUE(x.status);
    }
  }
  Bytes noise(100000);
  std::mt19937 r(3);
  for (auto& b : noise) b = static_cast<std::uint8_t>(r());
  for (std::size_t start = 0; start < noise.size(); start += 997) {
    EXPECT_FALSE(Srec().Probe(noise, start));
  }
}

TEST(SrecFormat, ReplaysItsFuzzCorpusWithoutCrashing) {
  const fs::path corpus = fs::path(IOTMARK_SOURCE_DIR) / "fuzz" / "corpus" / "srec";
  if (!fs::exists(corpus)) GTEST_SKIP() << "no corpus at " << corpus;
  FormatList formats;
  formats.push_back(formats::MakeSrecFormat());
  auto carver = Carver::Create(formats);
  ASSERT_TRUE(carver);
  std::size_t files = 0;
  for (const auto& entry : fs::directory_iterator(corpus)) {
    const Bytes blob = ReadFileBytes(entry.path());
    auto found = carver->Find(blob, 64);
    ASSERT_TRUE(found);
    std::vector<std::uint64_t> starts = {0};
    for (const auto& candidate : found->list) starts.push_back(candidate.start);
    for (const std::uint64_t start : starts) {
      ScratchDir s;
      const auto x = ProbeAndExtract(Srec(), blob, start, s);
      if (x.chunk) {
        EXPECT_LE(x.chunk->offset + x.chunk->length, blob.size());
      }
    }
    ++files;
  }
  EXPECT_GE(files, 2u);
}

}  // namespace
}  // namespace iotmark::unpack
