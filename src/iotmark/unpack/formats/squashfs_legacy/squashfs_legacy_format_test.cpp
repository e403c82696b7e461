#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "iotmark/base/sha256.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/formats/squashfs_legacy/legacy_metadata.hpp"
#include "iotmark/unpack/formats/squashfs_legacy/legacy_superblock.hpp"
#include "iotmark/unpack/formats/squashfs_legacy/legacy_test_writer.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeSquashfsLegacyFormat();
}  // namespace iotmark::unpack::formats

namespace iotmark::unpack {
namespace {

namespace fs = std::filesystem;
namespace sq3 = testing::squashfs3;
using model::EntryKind;
using model::GapKind;
using testing::Extraction;
using testing::ProbeAndExtract;
using testing::ReadFileBytes;
using testing::ScratchDir;

const Format& Legacy() {
  static const auto format = formats::MakeSquashfsLegacyFormat();
  return *format;
}

bool HasGap(const Extraction& x, GapKind kind, const std::string& text) {
  return std::any_of(x.gaps.begin(), x.gaps.end(), [&](const model::Gap& gap) {
    return gap.kind == kind && gap.reason.find(text) != std::string::npos;
  });
}

std::string GapList(const Extraction& x) {
  std::string out;
  for (const auto& gap : x.gaps) {
    out += std::string(model::ToString(gap.kind)) + ": " + gap.reason + "\n";
  }
  return out;
}

std::string Sha(std::string_view text) { return Sha256::Hex(AsBytes(text)); }

// --- The FACT samples: the same three files in every 2.x, 3.x and AVM 4.0 variant -------------

struct Sample {
  const char* name;
  const char* version;
  const char* byte_order;
  std::uint64_t bytes_used;
  const char* compression;
};

class SquashfsLegacySampleTest : public ::testing::TestWithParam<Sample> {};

TEST_P(SquashfsLegacySampleTest, ExtractsEveryFileOfTheSample) {
  const Sample& sample = GetParam();
  const fs::path path = testing::SharedSamplePath(std::string("squashfs/") + sample.name);
  if (path.empty()) GTEST_SKIP() << "shared samples are not available";
  const auto bytes = ReadFileBytes(path);
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Legacy(), bytes, 0, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->length, sample.bytes_used);  // not the 4 KiB padding after it
  EXPECT_TRUE(x.chunk->issues.empty());
  EXPECT_EQ(x.chunk->meta.at("version"), sample.version);
  EXPECT_EQ(x.chunk->meta.at("byte_order"), sample.byte_order);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  EXPECT_EQ(x.meta.at("compression"), sample.compression);

  ASSERT_EQ(x.entries.size(), 4u);
  const auto* folder = x.Find("generic folder");
  ASSERT_NE(folder, nullptr);
  EXPECT_EQ(folder->kind, EntryKind::kDirectory);
  EXPECT_EQ(folder->mode, 0755u);
  const std::map<std::string, std::string> files = {
      {"generic folder/test file 3_.txt", "The third test file!"},
      {"testfile1", "test file:\ncontent: MyTestRule 1.2.3\nVersion: Program 0.0.0.0\n"},
      {"testfile2", "This is the second test file"}};
  for (const auto& [name, content] : files) {
    SCOPED_TRACE(name);
    const auto* file = x.Find(name);
    ASSERT_NE(file, nullptr);
    EXPECT_EQ(file->kind, EntryKind::kFile);
    EXPECT_EQ(file->mode, 0644u);
    EXPECT_EQ(file->size, content.size());
    EXPECT_EQ(file->sha256, Sha(content));
    EXPECT_EQ(Sha256::Hex(x.Read(name)), Sha(content));
  }
}

INSTANTIATE_TEST_SUITE_P(
    FactSamples, SquashfsLegacySampleTest,
    ::testing::Values(
        Sample{"fact_zlib_le.sqfs3", "3.1", "little-endian", 0x19f, "zlib"},
        Sample{"fact_zlib_be.sqfs3", "3.1", "big-endian", 0x1a1, "zlib"},
        Sample{"fact_lzma1_le.sqfs3", "3.L", "little-endian", 0x19f, "lzma (raw, lc=3 lp=0 pb=2)"},
        Sample{"fact_lzma1_be.sqfs3", "3.L", "big-endian", 0x19e, "lzma (raw, lc=3 lp=0 pb=2)"},
        Sample{"fact_lzma_le.sqfs2", "2.L", "little-endian", 0x128, "lzma (raw, lc=3 lp=0 pb=2)"},
        Sample{"fact_lzma_be.sqfs2", "2.L", "big-endian", 0x129, "lzma (raw, lc=3 lp=0 pb=2)"},
        Sample{"fact_avm_be.sqfs4", "4.0", "big-endian", 0x210, "xz"}),
    [](const ::testing::TestParamInfo<Sample>& param_info) {
      std::string name = param_info.param.name;
      std::replace_if(
          name.begin(), name.end(), [](char c) { return !std::isalnum(c); }, '_');
      return name;
    });

TEST(SquashfsLegacyFormat, NamesTheLittleEndianMetadataHeadersOfAvmImages) {
  const fs::path path = testing::SharedSamplePath("squashfs/fact_avm_be.sqfs4");
  if (path.empty()) GTEST_SKIP() << "shared samples are not available";
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Legacy(), ReadFileBytes(path), 0, scratch);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  ASSERT_EQ(x.meta.count("quirk"), 1u);
  EXPECT_NE(x.meta.at("quirk").find("little-endian"), std::string::npos);
}

TEST(SquashfsLegacyFormat, LeavesStandardLittleEndianVersion4ImagesToTheSquashfsFormat) {
  for (const char* name :
       {"fact_avm_le.sqfs4", "fact_gzip.sqfs", "fact_xz.sqfs", "binwalk_squashfs.bin"}) {
    SCOPED_TRACE(name);
    const fs::path path = testing::SharedSamplePath(std::string("squashfs/") + name);
    if (path.empty()) GTEST_SKIP() << "shared samples are not available";
    EXPECT_FALSE(Legacy().Probe(ReadFileBytes(path), 0).has_value());
  }
}

// --- Images from the test writer ------------------------------------------------------------

std::string Pattern(std::size_t size, std::uint32_t seed, bool compressible) {
  std::mt19937 random(seed);
  std::string out(size, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    out[i] = compressible ? static_cast<char>("squashfs legacy "[(i / 7 + seed) % 16])
                          : static_cast<char>(random());
  }
  return out;
}

std::vector<sq3::Node> SampleTree() {
  std::string sparse(3 * 4096 + 100, '\0');
  sparse.replace(4096 * 2 + 5, 6, "middle");
  return {
      {"bin", sq3::Kind::kDir, "", 0755},
      {"bin/busybox", sq3::Kind::kFile, Pattern(3 * 4096 + 1234, 1, true), 0755},
      {"bin/sh", sq3::Kind::kSymlink, "busybox"},
      {"bin/tool-link", sq3::Kind::kHardlink, "bin/busybox"},
      {"bin/random", sq3::Kind::kFile, Pattern(2 * 4096 + 77, 2, false), 0700},
      {"bin/exact", sq3::Kind::kFile, Pattern(2 * 4096, 3, true), 0644},
      {"etc", sq3::Kind::kDir, "", 0750},
      {"etc/passwd", sq3::Kind::kFile, "root:x:0:0:root:/root:/bin/sh\n", 0644},
      {"etc/empty", sq3::Kind::kFile, "", 0600},
      {"etc/deep", sq3::Kind::kDir, "", 0755},
      {"etc/deep/er", sq3::Kind::kDir, "", 0755},
      {"etc/deep/er/file.txt", sq3::Kind::kFile, "deep\n", 0644},
      {"etc/deep/empty-dir", sq3::Kind::kDir, "", 0700},
      {"etc/passwd-link", sq3::Kind::kHardlink, "etc/passwd"},
      {"var", sq3::Kind::kDir, "", 0755},
      {"var/sparse.img", sq3::Kind::kFile, sparse, 0644},
      {"dev", sq3::Kind::kDir, "", 0755},
      {"dev/console", sq3::Kind::kCharDevice, "", 0600},
      {"dev/sda", sq3::Kind::kBlockDevice, "", 0660},
      {"dev/fifo", sq3::Kind::kFifo, "", 0644},
      {"dev/socket", sq3::Kind::kSocket, "", 0755},
  };
}

// Every node came out as written, and nothing else came out.
void ExpectTreeMatches(const Extraction& x, const std::vector<sq3::Node>& nodes) {
  EXPECT_EQ(x.entries.size(), nodes.size());
  std::map<std::string, const sq3::Node*> by_path;
  for (const auto& node : nodes) by_path[node.path] = &node;
  for (const auto& node : nodes) {
    SCOPED_TRACE(node.path);
    const auto* entry = x.Find(node.path);
    ASSERT_NE(entry, nullptr);
    switch (node.kind) {
      case sq3::Kind::kDir:
        EXPECT_EQ(entry->kind, EntryKind::kDirectory);
        EXPECT_EQ(entry->mode, node.mode);
        break;
      case sq3::Kind::kFile:
        EXPECT_EQ(entry->kind, EntryKind::kFile);
        EXPECT_EQ(entry->mode, node.mode);
        EXPECT_EQ(entry->size, node.data.size());
        EXPECT_EQ(entry->sha256, Sha(node.data));
        EXPECT_EQ(Sha256::Hex(x.Read(node.path)), Sha(node.data));
        break;
      case sq3::Kind::kSymlink:
        EXPECT_EQ(entry->kind, EntryKind::kSymlink);
        EXPECT_EQ(entry->link_target, node.data);
        break;
      case sq3::Kind::kHardlink:
        EXPECT_EQ(entry->kind, EntryKind::kHardlink);
        EXPECT_EQ(entry->link_target, node.data);
        EXPECT_EQ(Sha256::Hex(x.Read(node.path)), Sha(by_path.at(node.data)->data));
        break;
      case sq3::Kind::kCharDevice:
      case sq3::Kind::kBlockDevice:
      case sq3::Kind::kFifo:
      case sq3::Kind::kSocket: {
        const EntryKind kind = node.kind == sq3::Kind::kCharDevice    ? EntryKind::kCharDevice
                               : node.kind == sq3::Kind::kBlockDevice ? EntryKind::kBlockDevice
                               : node.kind == sq3::Kind::kFifo        ? EntryKind::kFifo
                                                                      : EntryKind::kSocket;
        EXPECT_EQ(entry->kind, kind);
        EXPECT_EQ(entry->mode, node.mode);
        EXPECT_FALSE(entry->materialized);
        break;
      }
    }
  }
}

struct Variant {
  const char* label;
  bool big_endian;
  sq3::Codec codec;
  const char* compression;  // meta after extraction; empty when nothing was compressed
};

class SquashfsLegacyWriterTest : public ::testing::TestWithParam<Variant> {};

TEST_P(SquashfsLegacyWriterTest, ExtractsEveryEntryOfAWrittenImage) {
  const Variant& v = GetParam();
  const auto nodes = SampleTree();
  const auto image = sq3::WriteImage(nodes, {v.big_endian, v.codec, 12, {}});
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Legacy(), image, 0, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->length, image.size());
  EXPECT_EQ(x.chunk->meta.at("version"), "3.1");
  EXPECT_EQ(x.chunk->meta.at("byte_order"), v.big_endian ? "big-endian" : "little-endian");
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  ExpectTreeMatches(x, nodes);
  if (*v.compression != '\0') {
    EXPECT_EQ(x.meta.at("compression"), v.compression);
  }
}

INSTANTIATE_TEST_SUITE_P(
    BothOrdersEveryCodec, SquashfsLegacyWriterTest,
    ::testing::Values(
        Variant{"LeZlib", false, sq3::Codec::kZlib, "zlib"},
        Variant{"BeZlib", true, sq3::Codec::kZlib, "zlib"},
        Variant{"LeLzmaAlone", false, sq3::Codec::kLzmaAlone, "lzma (lzma-alone headers)"},
        Variant{"BeLzmaAlone", true, sq3::Codec::kLzmaAlone, "lzma (lzma-alone headers)"},
        Variant{"LeLzmaRaw", false, sq3::Codec::kLzmaRaw, "lzma (raw, lc=3 lp=0 pb=2)"},
        Variant{"BeLzmaRaw", true, sq3::Codec::kLzmaRaw, "lzma (raw, lc=3 lp=0 pb=2)"},
        Variant{"LeStored", false, sq3::Codec::kStored, ""},
        Variant{"BeStored", true, sq3::Codec::kStored, ""}),
    [](const ::testing::TestParamInfo<Variant>& param_info) {
      return std::string(param_info.param.label);
    });

TEST(SquashfsLegacyFormat, TellsTheCodecOfEveryBlockApartInAMixedImage) {
  // sqlzma images: zlib metadata, LZMA-alone data; the decoder picks per block.
  const auto nodes = SampleTree();
  const auto image = sq3::WriteImage(nodes, {true, sq3::Codec::kZlib, 12, sq3::Codec::kLzmaAlone});
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Legacy(), image, 0, scratch);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  ExpectTreeMatches(x, nodes);
  EXPECT_EQ(x.meta.at("compression"), "zlib + lzma (lzma-alone headers)");
}

TEST(SquashfsLegacyFormat, DecodesLargeFilesInSegmentsWrittenInOrder) {
  const std::vector<sq3::Node> nodes = {
      {"big.bin", sq3::Kind::kFile, Pattern(9 * 1024 * 1024 + 333, 9, false), 0644},
      {"big-text.bin", sq3::Kind::kFile, Pattern(6 * 1024 * 1024, 10, true), 0644},
      {"small", sq3::Kind::kFile, "tail only", 0644}};
  const auto image = sq3::WriteImage(nodes, {true, sq3::Codec::kZlib, 12, {}});
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Legacy(), image, 0, scratch);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  ExpectTreeMatches(x, nodes);
}

TEST(SquashfsLegacyFormat, FindsAnImageInsideABlobAndCoversExactlyItsBytes) {
  const auto image = sq3::WriteImage(SampleTree(), {false, sq3::Codec::kZlib, 12, {}});
  std::vector<std::uint8_t> blob(5003, 0x00);
  blob.insert(blob.end(), image.begin(), image.end());
  blob.insert(blob.end(), 4096, 0xff);  // flash padding, then more data
  const std::string trailer = "hsqs and sqsh are only magic here";
  blob.insert(blob.end(), trailer.begin(), trailer.end());
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Legacy(), blob, 5003, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->offset, 5003u);
  EXPECT_EQ(x.chunk->length, image.size());
  EXPECT_TRUE(x.chunk->issues.empty());
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  ExpectTreeMatches(x, SampleTree());
}

TEST(SquashfsLegacyFormat, RejectsRandomBytesWithPlantedMagics) {
  std::vector<std::uint8_t> blob(1 << 16);
  std::mt19937 random(11);
  for (auto& byte : blob) byte = static_cast<std::uint8_t>(random());
  const char* magics[] = {"hsqs", "sqsh", "shsq", "qshs", "hsqt", "tqsh"};
  std::vector<std::uint64_t> offsets;
  for (std::uint64_t offset = 0, i = 0; offset + 200 < blob.size(); offset += 1021, ++i) {
    std::memcpy(&blob[offset], magics[i % 6], 4);
    // Half of them with a plausible version (3.1 or 2.0 in the magic's byte order).
    if (i % 2 == 0) {
      const bool big = i % 6 % 2 == 1;
      blob[offset + 28] = big ? 0 : (i % 4 == 0 ? 3 : 2);
      blob[offset + 29] = big ? (i % 4 == 0 ? 3 : 2) : 0;
      blob[offset + 30] = big ? 0 : 1;
      blob[offset + 31] = big ? 1 : 0;
    }
    offsets.push_back(offset);
  }
  for (const std::uint64_t offset : offsets) {
    EXPECT_FALSE(Legacy().Probe(blob, offset).has_value()) << offset;
  }
}

TEST(SquashfsLegacyFormat, RejectsSuperblocksWithImpossibleTables) {
  const auto image = sq3::WriteImage(SampleTree(), {false, sq3::Codec::kZlib, 12, {}});
  ASSERT_TRUE(Legacy().Probe(image, 0).has_value());
  const auto patched = [&](std::size_t offset, std::uint64_t value, std::size_t size) {
    auto copy = image;
    for (std::size_t i = 0; i < size; ++i)
      copy[offset + i] = static_cast<std::uint8_t>(value >> (8 * i));
    return copy;
  };
  const std::uint64_t dir_table = LoadLe<std::uint64_t>(image, 95).value();
  EXPECT_FALSE(
      Legacy().Probe(patched(87, dir_table + 1, 8), 0).has_value());  // inode table after dirs
  EXPECT_FALSE(
      Legacy().Probe(patched(95, image.size() + 10, 8), 0).has_value());  // dirs past the end
  EXPECT_FALSE(
      Legacy().Probe(patched(43, std::uint64_t{1} << 40, 8), 0).has_value());  // root outside
  EXPECT_FALSE(Legacy().Probe(patched(51, 5000, 4), 0).has_value());           // not a power of two
  EXPECT_FALSE(
      Legacy().Probe(patched(55, 0x7fffffff, 4), 0).has_value());  // fragments beyond the data
  EXPECT_FALSE(Legacy().Probe(patched(28, 5, 2), 0).has_value());  // version 5
  EXPECT_FALSE(
      Legacy().Probe(std::vector<std::uint8_t>(image.begin(), image.begin() + 100), 0).has_value());
}

TEST(SquashfsLegacyFormat, ReportsAnImageCutShortAndSurvivesCutsAtManyPoints) {
  const auto image = sq3::WriteImage(SampleTree(), {true, sq3::Codec::kLzmaRaw, 12, {}});
  const std::uint64_t used = image.size();
  std::vector<std::uint64_t> cuts = {120, 500, used / 3, used / 2, used - 200, used - 1};
  for (const std::size_t table : {87, 95, 103, 71}) {
    const std::uint64_t start = LoadBe<std::uint64_t>(image, table).value();
    if (start + 7 < used) cuts.push_back(start + 7);
  }
  for (const std::uint64_t cut : cuts) {
    SCOPED_TRACE(cut);
    const std::vector<std::uint8_t> part(image.begin(),
                                         image.begin() + static_cast<std::ptrdiff_t>(cut));
    ScratchDir scratch;
    const auto x = ProbeAndExtract(Legacy(), part, 0, scratch);
    ASSERT_TRUE(x.chunk.has_value());
    EXPECT_EQ(x.chunk->length, cut);
    ASSERT_EQ(x.chunk->issues.size(), 1u);
    EXPECT_EQ(x.chunk->issues[0].kind, GapKind::kTruncated);
    if (x.status) {
      EXPECT_FALSE(x.gaps.empty());  // what is missing is said
    }
  }
}

TEST(SquashfsLegacyFormat, ReadsWhatItCanOfAnImageCutInsideItsFragmentTable) {
  const auto nodes = SampleTree();
  const auto image = sq3::WriteImage(nodes, {false, sq3::Codec::kZlib, 12, {}});
  const std::uint64_t fragment_table = LoadLe<std::uint64_t>(image, 103).value();
  const std::vector<std::uint8_t> part(image.begin(),
                                       image.begin() + static_cast<std::ptrdiff_t>(fragment_table));
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Legacy(), part, 0, scratch);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  // The tree is all there; files whose tails live in fragment blocks are cut and say so.
  EXPECT_EQ(x.entries.size(), nodes.size());
  EXPECT_TRUE(HasGap(x, GapKind::kTruncated, "'etc/passwd'")) << GapList(x);
  EXPECT_EQ(x.Find("etc/passwd")->size, 0u);
  EXPECT_EQ(x.Find("bin/exact")->sha256, Sha(nodes[5].data));  // whole blocks, no tail
}

TEST(SquashfsLegacyFormat, ReportsACorruptDataBlockAndExtractsTheOtherFiles) {
  const auto nodes = SampleTree();
  auto image = sq3::WriteImage(nodes, {false, sq3::Codec::kZlib, 12, {}});
  // bin/busybox's blocks come first in the data area, right after the 119-byte superblock.
  for (std::size_t i = 130; i < 160; ++i) image[i] ^= 0x5a;
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Legacy(), image, 0, scratch);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "'bin/busybox': block 0")) << GapList(x);
  EXPECT_EQ(x.Find("bin/busybox")->size, 0u);
  EXPECT_EQ(x.Find("etc/passwd")->sha256, Sha(nodes[7].data));
  EXPECT_EQ(x.Find("bin/random")->sha256, Sha(nodes[4].data));
}

TEST(SquashfsLegacyFormat, SurvivesCorruptedTablesWithoutCrashing) {
  const auto image = sq3::WriteImage(SampleTree(), {true, sq3::Codec::kStored, 12, {}});
  const std::uint64_t inode_table = LoadBe<std::uint64_t>(image, 87).value();
  std::mt19937 random(3);
  for (int round = 0; round < 60; ++round) {
    auto copy = image;
    // Flip a few bytes anywhere in the metadata: inodes, listings, fragment and uid tables.
    for (int i = 0; i < 4; ++i) {
      const std::uint64_t at = inode_table + random() % (copy.size() - inode_table);
      copy[at] = static_cast<std::uint8_t>(random());
    }
    ScratchDir scratch;
    const auto x = ProbeAndExtract(Legacy(), copy, 0, scratch);
    ASSERT_TRUE(x.chunk.has_value());
  }
}

TEST(SquashfsLegacyFormat, DoesNotFollowADirectoryLoop) {
  const std::vector<sq3::Node> nodes = {{"loopdir", sq3::Kind::kDir, "", 0755},
                                        {"other", sq3::Kind::kDir, "", 0755},
                                        {"other/file", sq3::Kind::kFile, "x\n", 0644}};
  // Stored metadata, so the directory entry can be edited in place.
  auto image = sq3::WriteImage(nodes, {false, sq3::Codec::kStored, 12, {}});
  const std::uint64_t root = LoadLe<std::uint64_t>(image, 43).value();
  const std::uint64_t dir_table = LoadLe<std::uint64_t>(image, 95).value();
  const auto name = AsBytes("loopdir");
  const auto at = std::search(image.begin() + static_cast<std::ptrdiff_t>(dir_table), image.end(),
                              name.begin(), name.end());
  ASSERT_NE(at, image.end());
  ASSERT_EQ(root >> 16, 0u);
  // The 5-byte entry before the name: offset:13, type:3, size:8, inode_number:16.
  const auto entry = static_cast<std::size_t>(at - image.begin()) - 5;
  image[entry] = static_cast<std::uint8_t>(root & 0xff);
  image[entry + 1] = static_cast<std::uint8_t>((image[entry + 1] & 0xe0) | ((root >> 8) & 0x1f));
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Legacy(), image, 0, scratch);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "'loopdir' is a directory listed before")) << GapList(x);
  ASSERT_NE(x.Find("other/file"), nullptr);
  EXPECT_EQ(x.Find("loopdir/other"), nullptr);
}

TEST(SquashfsLegacyFormat, SkipsAFileOverTheSizeLimitAndGoesOn) {
  const auto nodes = SampleTree();
  const auto image = sq3::WriteImage(nodes, {false, sq3::Codec::kZlib, 12, {}});
  Limits limits;
  limits.max_file_bytes = 10000;
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Legacy(), image, 0, scratch, limits);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kLimit, "'bin/busybox'")) << GapList(x);
  EXPECT_EQ(x.Find("bin/busybox"), nullptr);
  ASSERT_NE(x.Find("etc/passwd"), nullptr);
  EXPECT_EQ(x.Find("etc/passwd")->sha256, Sha(nodes[7].data));
}

TEST(SquashfsLegacyFormat, ReadsBitfieldsInBothConventions) {
  using formats::squashfs_legacy::Bits;
  using formats::squashfs_legacy::Order;
  // A 3.x inode header: type 2, mode 0644, uid 0, guid 255.
  const std::vector<std::uint8_t> le = {0x42, 0x1a, 0x00, 0xff};
  const std::vector<std::uint8_t> be = {0x21, 0xa4, 0x00, 0xff};
  EXPECT_EQ(Bits(le, 0, 4, Order::kLittle), 2u);
  EXPECT_EQ(Bits(le, 4, 12, Order::kLittle), 0644u);
  EXPECT_EQ(Bits(be, 0, 4, Order::kBig), 2u);
  EXPECT_EQ(Bits(be, 4, 12, Order::kBig), 0644u);
  EXPECT_EQ(Bits(be, 24, 8, Order::kBig), 255u);
}

TEST(SquashfsLegacyFormat, SurvivesEveryFuzzSeed) {
  const fs::path corpus = fs::path(IOTMARK_SOURCE_DIR) / "fuzz/corpus/squashfs_legacy";
  if (!fs::exists(corpus)) GTEST_SKIP() << "no corpus";
  std::size_t seeds = 0;
  for (const auto& file : fs::directory_iterator(corpus)) {
    SCOPED_TRACE(file.path().filename().string());
    const auto bytes = ReadFileBytes(file.path());
    ScratchDir scratch;
    (void)ProbeAndExtract(Legacy(), bytes, 0, scratch);
    ++seeds;
  }
  EXPECT_GE(seeds, 2u);
}

}  // namespace
}  // namespace iotmark::unpack
