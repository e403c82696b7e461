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
std::unique_ptr<const Format> MakeIhexFormat();
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

const Format& Ihex() {
  static const auto format = formats::MakeIhexFormat();
  return *format;
}

Bytes Text(const std::string& text) { return Bytes(text.begin(), text.end()); }
std::string AsString(const Bytes& bytes) { return std::string(bytes.begin(), bytes.end()); }

std::string Quoted(const fs::path& path) { return "'" + path.string() + "'"; }

// The first `size` bytes of busybox as a binary file, and that file converted by `command`
// ("objcopy ..." or "srec_cat ...", with {in} and {out} replaced).
struct Converted {
  Bytes source;
  Bytes hex;
};

Converted Convert(const ScratchDir& scratch, std::size_t size, const std::string& command) {
  const fs::path in = scratch.path() / "source.bin";
  const fs::path out = scratch.path() / "out.hex";
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

// The hex lines of a file, each with its line break.
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

TEST(IhexFormat, RebuildsTheBytesObjcopyConvertedAcrossA64KBoundary) {
  ScratchDir scratch;
  const auto c = Convert(scratch, 150000, "objcopy -I binary -O ihex {in} {out}");
  ASSERT_GT(c.hex.size(), 300000u);
  const auto x = ProbeAndExtract(Ihex(), c.hex, 0, scratch, {}, "busybox-head.hex");
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, c.hex.size());
  EXPECT_TRUE(x.chunk->issues.empty());
  EXPECT_EQ(x.chunk->meta.at("address_range"), "0x00000000-0x000249ef");
  EXPECT_EQ(x.chunk->meta.at("data_bytes"), "150000");
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  ASSERT_EQ(x.entries.size(), 1u);
  EXPECT_EQ(x.entries[0].path, "busybox-head.bin");
  EXPECT_EQ(x.Read("busybox-head.bin"), c.source);
}

TEST(IhexFormat, PlacesDataAtItsLinearAddressAndReadsTheStartAddress) {
  ScratchDir scratch;
  const auto c = Convert(scratch, 5000,
                         "srec_cat {in} -binary -offset 0x08000000 -o {out} -intel "
                         "-execution-start-address=0x08000101");
  const auto x = ProbeAndExtract(Ihex(), c.hex, 0, scratch);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, c.hex.size());
  EXPECT_EQ(x.chunk->meta.at("start_address"), "0x08000101");
  EXPECT_EQ(x.chunk->meta.at("address_range"), "0x08000000-0x08001387");
  ASSERT_TRUE(x.status);
  ASSERT_EQ(x.entries.size(), 1u);
  EXPECT_EQ(x.entries[0].path, "image.bin");
  EXPECT_EQ(x.Read("image.bin"), c.source);
}

TEST(IhexFormat, FollowsSegmentAddressing) {
  ScratchDir scratch;
  const auto c = Convert(scratch, 3000,
                         "srec_cat {in} -binary -offset 0x12340 -o {out} -intel "
                         "-address-length=3 -execution-start-address=0x12345");
  ASSERT_NE(AsString(c.hex).find(":02000002"), std::string::npos);
  const auto x = ProbeAndExtract(Ihex(), c.hex, 0, scratch);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->meta.at("address_range"), "0x00012340-0x00012ef7");
  EXPECT_EQ(x.chunk->meta.at("start_address"), "0x0001:0x2345");
  ASSERT_TRUE(x.status);
  EXPECT_EQ(x.Read("image.bin"), c.source);
}

TEST(IhexFormat, FillsHolesWithErasedFlashBytes) {
  const Bytes hex = Text(
      ":0400000001020304F2\n"
      ":0400100005060708D2\n"
      ":00000001FF\n");
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Ihex(), hex, 0, scratch);
  ASSERT_TRUE(x.chunk);
  ASSERT_TRUE(x.status);
  Bytes expected = {1, 2, 3, 4};
  expected.resize(16, 0xff);
  for (std::uint8_t b : {5, 6, 7, 8}) expected.push_back(b);
  EXPECT_EQ(x.Read("image.bin"), expected);
}

TEST(IhexFormat, ReadsTheSample) {
  const auto path = testing::SharedSamplePath("ihex/fact_testfile.hex");
  if (path.empty() || !fs::exists(path)) GTEST_SKIP() << "shared sample ihex/fact_testfile.hex";
  const Bytes hex = ReadFileBytes(path);
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Ihex(), hex, 0, scratch, {}, "fact_testfile.hex");
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, hex.size());
  EXPECT_EQ(x.chunk->meta.at("records"), "3");
  EXPECT_EQ(x.chunk->meta.at("address_range"), "0x00000000-0x00000012");
  ASSERT_TRUE(x.status);
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  ASSERT_EQ(x.entries.size(), 1u);
  EXPECT_EQ(AsString(x.Read("fact_testfile.bin")), "test string in file");
}

TEST(IhexFormat, FindsAFileInsideOtherTextAndEndsAfterItsEndOfFileRecord) {
  ScratchDir scratch;
  const auto c = Convert(scratch, 700, "objcopy -I binary -O ihex {in} {out}");
  const std::string before = "boot log 12:10:33 :10 ratio\r\nflash image follows:\n";
  const std::string after = ":10 more text that is not a record\n";
  Bytes blob = Text(before);
  blob.insert(blob.end(), c.hex.begin(), c.hex.end());
  const Bytes tail = Text(after);
  blob.insert(blob.end(), tail.begin(), tail.end());

  FormatList formats;
  formats.push_back(formats::MakeIhexFormat());
  auto carver = Carver::Create(formats);
  ASSERT_TRUE(carver);
  auto found = carver->Find(blob, 1000);
  ASSERT_TRUE(found);
  std::vector<std::uint64_t> accepted;
  for (const auto& candidate : found->list) {
    if (auto chunk = Ihex().Probe(blob, candidate.start)) {
      accepted.push_back(candidate.start);
      if (accepted.size() == 1) {
        EXPECT_EQ(chunk->length, c.hex.size());
        EXPECT_TRUE(chunk->issues.empty());
      }
    }
  }
  // Inside the file every data line probes too (the carver skips what a chunk covers).
  ASSERT_FALSE(accepted.empty());
  EXPECT_EQ(accepted.front(), before.size());
  const auto x = ProbeAndExtract(Ihex(), blob, before.size(), scratch);
  ASSERT_TRUE(x.status);
  EXPECT_EQ(x.Read("image.bin"), c.source);
}

TEST(IhexFormat, LeavesOutARecordWithABadChecksumAndNamesItsLine) {
  ScratchDir scratch;
  const auto c = Convert(scratch, 200, "objcopy -I binary -O ihex {in} {out}");
  auto lines = Lines(c.hex);
  ASSERT_GE(lines.size(), 5u);
  const std::size_t digit = lines[2].find_last_not_of("\r\n");
  lines[2][digit] = lines[2][digit] == '0' ? '1' : '0';
  const Bytes hex = Join(lines);
  const auto x = ProbeAndExtract(Ihex(), hex, 0, scratch);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, hex.size());
  ASSERT_TRUE(x.status);
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "line 3: record checksum does not match")) << GapList(x);
  Bytes expected = c.source;
  std::fill(expected.begin() + 32, expected.begin() + 48, 0xff);
  EXPECT_EQ(x.Read("image.bin"), expected);
}

TEST(IhexFormat, ReportsTruncationAndKeepsTheRecordsBeforeIt) {
  ScratchDir scratch;
  const auto c = Convert(scratch, 200, "objcopy -I binary -O ihex {in} {out}");
  const std::string text = AsString(c.hex);
  // Cut inside the fifth record.
  const std::size_t fifth =
      text.find('\n', text.find('\n', text.find('\n', text.find('\n') + 1) + 1) + 1) + 1;
  const Bytes cut(c.hex.begin(), c.hex.begin() + static_cast<std::ptrdiff_t>(fifth + 20));
  const auto x = ProbeAndExtract(Ihex(), cut, 0, scratch);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, cut.size());
  ASSERT_EQ(x.chunk->issues.size(), 1u);
  EXPECT_EQ(x.chunk->issues[0].kind, GapKind::kTruncated);
  ASSERT_TRUE(x.status);
  EXPECT_EQ(x.Read("image.bin"), Bytes(c.source.begin(), c.source.begin() + 64));

  // Cut between records: still a truncation.
  const Bytes at_line(c.hex.begin(), c.hex.begin() + static_cast<std::ptrdiff_t>(fifth));
  const auto y = Ihex().Probe(at_line, 0);
  ASSERT_TRUE(y);
  EXPECT_EQ(y->length, at_line.size());
  ASSERT_EQ(y->issues.size(), 1u);
  EXPECT_EQ(y->issues[0].kind, GapKind::kTruncated);

  for (std::size_t size = 0; size <= c.hex.size(); size += 7) {
    const Bytes piece(c.hex.begin(), c.hex.begin() + static_cast<std::ptrdiff_t>(size));
    ScratchDir s;
    const auto z = ProbeAndExtract(Ihex(), piece, 0, s);
    if (z.chunk) {
      EXPECT_LE(z.chunk->length, size);
      EXPECT_TRUE(z.status);
    }
  }
}

TEST(IhexFormat, RejectsOrdinaryTextAndLoneRecords) {
  const auto probe = [](const std::string& text) { return Ihex().Probe(Text(text), 0); };
  EXPECT_FALSE(probe(":10 is a ratio\n"));
  EXPECT_FALSE(probe(":10:33 the clock\n"));
  // Right shape, wrong checksum.
  EXPECT_FALSE(probe(":0400000001020304F3\n:0400040005060708DE\n:00000001FF\n"));
  // Two good data records and then text: too few to believe.
  EXPECT_FALSE(probe(":0400000001020304F2\n:0400040005060708DE\nhello\n"));
  // Only an end-of-file record: nothing to extract.
  EXPECT_FALSE(probe(":020000040000FA\n:00000001FF\n"));
  // Unknown record type 06.
  EXPECT_FALSE(probe(":0400000601020304EC\n:0400000601020304EC\n:0400000601020304EC\n"));
  // One data record and the end-of-file record: a complete file.
  EXPECT_TRUE(probe(":0400000001020304F2\n:00000001FF\n"));
  // Three good records and then text: a damaged file.
  const auto damaged =
      probe(":0400000001020304F2\n:0400040005060708DE\n:0400080005060708DA\ntext\n");
  ASSERT_TRUE(damaged);
  ASSERT_EQ(damaged->issues.size(), 1u);
  EXPECT_EQ(damaged->issues[0].kind, GapKind::kCorrupt);
}

TEST(IhexFormat, WritesFarApartRegionsAsSeparateFilesInsteadOfFillingTheSpan) {
  const Bytes hex = Text(
      ":0400000001020304F2\n"
      ":02000004FFFFFC\n"
      ":04FFF00005060708F3\n"
      ":00000001FF\n");
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Ihex(), hex, 0, scratch);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->meta.at("address_range"), "0x00000000-0xfffffff3");
  ASSERT_TRUE(x.status);
  EXPECT_TRUE(HasGap(x, GapKind::kLimit, "written as separate regions")) << GapList(x);
  ASSERT_EQ(x.entries.size(), 2u);
  EXPECT_EQ(x.Read("image@0x00000000.bin"), Bytes({1, 2, 3, 4}));
  EXPECT_EQ(x.Read("image@0xfffffff0.bin"), Bytes({5, 6, 7, 8}));
}

TEST(IhexFormat, RefusesAnImageLargerThanTheFileLimit) {
  ScratchDir scratch;
  const auto c = Convert(scratch, 5000, "objcopy -I binary -O ihex {in} {out}");
  Limits limits;
  limits.max_file_bytes = 4096;
  const auto x = ProbeAndExtract(Ihex(), c.hex, 0, scratch, limits);
  ASSERT_TRUE(x.chunk);
  ASSERT_TRUE(x.status);
  EXPECT_TRUE(HasGap(x, GapKind::kLimit, "written as separate regions")) << GapList(x);
  EXPECT_TRUE(
      HasGap(x, GapKind::kLimit,
             "the region at 0x00000000 is not written (5000 bytes, more than the file limit"))
      << GapList(x);
  EXPECT_TRUE(x.entries.empty());
}

TEST(IhexFormat, ReportsOverlappingRecords) {
  const Bytes hex = Text(
      ":0400000001020304F2\n"
      ":0400020005060708E0\n"
      ":00000001FF\n");
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Ihex(), hex, 0, scratch);
  ASSERT_TRUE(x.status);
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "overlap")) << GapList(x);
  EXPECT_EQ(x.Read("image.bin"), Bytes({1, 2, 3, 4, 7, 8}));
}

TEST(IhexFormat, SurvivesRandomDamage) {
  ScratchDir scratch;
  const auto c = Convert(scratch, 600, "objcopy -I binary -O ihex {in} {out}");
  std::mt19937 random(5);
  for (int round = 0; round < 300; ++round) {
    Bytes hex = c.hex;
    const int flips = 1 + static_cast<int>(random() % 6);
    for (int i = 0; i < flips; ++i) {
      const char alphabet[] = "0123456789ABCDEF:\n\r x";
      hex[random() % hex.size()] = static_cast<std::uint8_t>(alphabet[random() % 22]);
    }
    ScratchDir s;
    const auto x = ProbeAndExtract(Ihex(), hex, 0, s);
    if (x.chunk) {
      EXPECT_LE(x.chunk->length, hex.size());
      EXPECT_TRUE(x.status);
    }
  }
  const Bytes noise = [] {
    Bytes bytes(100000);
    std::mt19937 r(3);
    for (auto& b : bytes) b = static_cast<std::uint8_t>(r());
    return bytes;
  }();
  for (std::size_t start = 0; start < noise.size(); start += 997) {
    EXPECT_FALSE(Ihex().Probe(noise, start));
  }
}

TEST(IhexFormat, ReplaysItsFuzzCorpusWithoutCrashing) {
  const fs::path corpus = fs::path(IOTMARK_SOURCE_DIR) / "fuzz" / "corpus" / "ihex";
  if (!fs::exists(corpus)) GTEST_SKIP() << "no corpus at " << corpus;
  FormatList formats;
  formats.push_back(formats::MakeIhexFormat());
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
      ScratchDir scratch;
      const auto x = ProbeAndExtract(Ihex(), blob, start, scratch);
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
