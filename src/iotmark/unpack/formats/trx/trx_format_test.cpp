#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "iotmark/base/sha256.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeTrxFormat();
}  // namespace iotmark::unpack::formats

namespace iotmark::unpack {
namespace {

using Bytes = std::vector<std::uint8_t>;
using testing::ProbeAndExtract;
using testing::ScratchDir;

void PutLe32(Bytes& out, std::size_t at, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) out[at + i] = static_cast<std::uint8_t>(value >> (8 * i));
}

// A TRX image as the Broadcom tools write it: header, then the partitions back to back; the CRC
// runs from flag_version to the end without zlib's final inversion.
Bytes BuildTrx(const std::vector<Bytes>& partitions, std::uint16_t version = 1,
               std::uint16_t flags = 0) {
  const std::size_t slots = version == 2 ? 4 : 3;
  const std::size_t header_size = 16 + 4 * slots;
  Bytes out(header_size, 0);
  out[0] = 'H';
  out[1] = 'D';
  out[2] = 'R';
  out[3] = '0';
  PutLe32(out, 12, static_cast<std::uint32_t>(version) << 16 | flags);
  for (std::size_t i = 0; i < partitions.size(); ++i) {
    PutLe32(out, 16 + 4 * i, static_cast<std::uint32_t>(out.size()));
    out.insert(out.end(), partitions[i].begin(), partitions[i].end());
  }
  PutLe32(out, 4, static_cast<std::uint32_t>(out.size()));
  const auto crc = static_cast<std::uint32_t>(crc32_z(0, out.data() + 12, out.size() - 12));
  PutLe32(out, 8, ~crc);
  return out;
}

Bytes Pattern(std::size_t size, std::uint8_t seed) {
  Bytes out(size);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& b : out) {
    x = x * 1103515245u + 12345u;
    b = static_cast<std::uint8_t>(x >> 16);
  }
  return out;
}

Bytes Embed(const Bytes& inner, std::size_t before, std::size_t after) {
  Bytes out = Pattern(before, 7);
  out.insert(out.end(), inner.begin(), inner.end());
  const Bytes tail = Pattern(after, 9);
  out.insert(out.end(), tail.begin(), tail.end());
  return out;
}

bool HasGap(const testing::Extraction& result, model::GapKind kind) {
  for (const auto& gap : result.gaps) {
    if (gap.kind == kind) return true;
  }
  return false;
}

class TrxFormatTest : public ::testing::Test {
 protected:
  std::unique_ptr<const Format> format_ = formats::MakeTrxFormat();
  ScratchDir scratch_;
};

TEST_F(TrxFormatTest, ExtractsEveryPartitionOfAnImageInsideOtherBytes) {
  const Bytes busybox = testing::ReadFileBytes("/bin/busybox");
  ASSERT_FALSE(busybox.empty());
  const std::vector<Bytes> parts = {Pattern(1000, 1), busybox, Pattern(333, 3)};
  const Bytes trx = BuildTrx(parts, 1, 0x0002);
  const Bytes blob = Embed(trx, 4096, 777);

  const auto result = ProbeAndExtract(*format_, blob, 4096, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->offset, 4096u);
  EXPECT_EQ(result.chunk->length, trx.size());
  EXPECT_TRUE(result.chunk->issues.empty());
  EXPECT_EQ(result.chunk->meta.at("crc"), "ok");
  EXPECT_EQ(result.chunk->meta.at("version"), "1");
  EXPECT_EQ(result.chunk->meta.at("flags"), "0x0002");
  ASSERT_TRUE(result.status) << result.status.error().ToString();
  EXPECT_TRUE(result.gaps.empty());
  ASSERT_EQ(result.entries.size(), 3u);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const auto* entry = result.Find("part" + std::to_string(i));
    ASSERT_NE(entry, nullptr) << i;
    EXPECT_EQ(entry->size, parts[i].size());
    EXPECT_EQ(entry->sha256, Sha256::Hex(parts[i]));
  }
  EXPECT_EQ(result.Find("part1")->type, "elf");
}

TEST_F(TrxFormatTest, ReadsVersionTwoWithFourPartitions) {
  const std::vector<Bytes> parts = {Pattern(10, 1), Pattern(20, 2), Pattern(30, 3), Pattern(40, 4)};
  const Bytes trx = BuildTrx(parts, 2);
  const auto result = ProbeAndExtract(*format_, trx, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->meta.at("version"), "2");
  EXPECT_EQ(result.chunk->meta.at("crc"), "ok");
  ASSERT_EQ(result.entries.size(), 4u);
  EXPECT_EQ(result.Find("part3")->sha256, Sha256::Hex(parts[3]));
}

TEST_F(TrxFormatTest, ReadsTheSampleWhoseFirstPartitionIsAZip) {
  const auto path = testing::SharedSamplePath("trx/fact_trx.img");
  if (path.empty()) GTEST_SKIP() << "shared sample trx/fact_trx.img is absent";
  const Bytes image = testing::ReadFileBytes(path);
  const auto result = ProbeAndExtract(*format_, image, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, image.size());
  EXPECT_EQ(result.chunk->meta.at("crc"), "ok");
  EXPECT_TRUE(result.chunk->issues.empty());
  ASSERT_TRUE(result.status);
  ASSERT_EQ(result.entries.size(), 1u);
  EXPECT_EQ(result.entries[0].path, "part0");
  EXPECT_EQ(result.entries[0].size, image.size() - 28);
  const Bytes part0 = result.Read("part0");
  ASSERT_GE(part0.size(), 4u);
  EXPECT_EQ(std::string(part0.begin(), part0.begin() + 4), std::string("PK\x03\x04", 4));
}

TEST_F(TrxFormatTest, ReportsACrcMismatchAndStillExtracts) {
  Bytes trx = BuildTrx({Pattern(100, 1), Pattern(100, 2)});
  trx[trx.size() - 1] ^= 0x55;
  const auto result = ProbeAndExtract(*format_, trx, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->meta.at("crc"), "mismatch");
  ASSERT_EQ(result.chunk->issues.size(), 1u);
  EXPECT_EQ(result.chunk->issues[0].kind, model::GapKind::kCorrupt);
  EXPECT_EQ(result.entries.size(), 2u);
}

TEST_F(TrxFormatTest, ClipsATruncatedImageAndSaysWhatIsMissing) {
  const Bytes full = BuildTrx({Pattern(100, 1), Pattern(100, 2), Pattern(100, 3)});
  // Cut inside the second partition: the third one is not there at all.
  const Bytes cut(full.begin(), full.begin() + 28 + 150);
  const auto result = ProbeAndExtract(*format_, cut, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, cut.size());
  ASSERT_EQ(result.chunk->issues.size(), 1u);
  EXPECT_EQ(result.chunk->issues[0].kind, model::GapKind::kTruncated);
  EXPECT_EQ(result.chunk->meta.at("crc"), "unchecked");
  ASSERT_TRUE(result.status);
  EXPECT_TRUE(HasGap(result, model::GapKind::kTruncated));
  ASSERT_EQ(result.entries.size(), 2u);
  EXPECT_EQ(result.Find("part0")->size, 100u);
  EXPECT_EQ(result.Find("part1")->size, 50u);
}

TEST_F(TrxFormatTest, RejectsHeadersThatDoNotHoldTogether) {
  const Bytes good = BuildTrx({Pattern(100, 1), Pattern(100, 2)});
  ASSERT_TRUE(format_->Probe(good, 0));

  Bytes bad_version = good;
  bad_version[14] = 3;
  EXPECT_FALSE(format_->Probe(bad_version, 0));

  Bytes out_of_order = good;
  PutLe32(out_of_order, 16, 100);
  PutLe32(out_of_order, 20, 50);
  EXPECT_FALSE(format_->Probe(out_of_order, 0));

  Bytes inside_header = good;
  PutLe32(inside_header, 16, 8);
  EXPECT_FALSE(format_->Probe(inside_header, 0));

  Bytes beyond_length = good;
  PutLe32(beyond_length, 20, static_cast<std::uint32_t>(good.size()) + 10);
  EXPECT_FALSE(format_->Probe(beyond_length, 0));

  Bytes no_partitions = good;
  PutLe32(no_partitions, 16, 0);
  PutLe32(no_partitions, 20, 0);
  EXPECT_FALSE(format_->Probe(no_partitions, 0));

  Bytes tiny_length = good;
  PutLe32(tiny_length, 4, 20);
  EXPECT_FALSE(format_->Probe(tiny_length, 0));

  const Bytes magic_only = {'H', 'D', 'R', '0', 1, 2};
  EXPECT_FALSE(format_->Probe(magic_only, 0));
  EXPECT_FALSE(format_->Probe(good, good.size()));
}

TEST_F(TrxFormatTest, SurvivesEveryTruncationOfAValidImage) {
  const Bytes full = BuildTrx({Pattern(40, 1), Pattern(40, 2), Pattern(40, 3)});
  for (std::size_t size = 0; size <= full.size(); size += 3) {
    const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(size));
    ScratchDir scratch;
    const auto result = ProbeAndExtract(*format_, cut, 0, scratch);
    if (size < 28) {
      EXPECT_FALSE(result.chunk) << size;
    } else {
      ASSERT_TRUE(result.chunk) << size;
      EXPECT_LE(result.chunk->length, size);
      EXPECT_TRUE(result.status) << size;
    }
  }
}

TEST_F(TrxFormatTest, SurvivesRandomDamageToTheHeader) {
  const Bytes seed = BuildTrx({Pattern(64, 1), Pattern(64, 2), Pattern(64, 3)});
  std::uint32_t x = 777;
  const auto next = [&x] {
    x = x * 1103515245u + 12345u;
    return x >> 8;
  };
  for (int round = 0; round < 300; ++round) {
    Bytes image = seed;
    const int flips = 1 + static_cast<int>(next() % 3);
    for (int i = 0; i < flips; ++i) image[4 + next() % 28] ^= static_cast<std::uint8_t>(next());
    ScratchDir scratch;
    const auto result = ProbeAndExtract(*format_, image, 0, scratch);
    if (!result.chunk) continue;
    EXPECT_LE(result.chunk->length, image.size());
    EXPECT_TRUE(result.status) << round;
    EXPECT_LE(result.entries.size(), 4u);
  }
}

}  // namespace
}  // namespace iotmark::unpack
