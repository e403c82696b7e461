#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "iotmark/base/sha256.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeAndroidSparseFormat();
}  // namespace iotmark::unpack::formats

namespace iotmark::unpack {
namespace {

namespace fs = std::filesystem;
using model::EntryKind;
using model::GapKind;
using testing::Extraction;
using testing::ProbeAndExtract;
using testing::ReadFileBytes;
using testing::RunCommand;
using testing::ScratchDir;
using testing::WriteFileBytes;

constexpr std::size_t kPrefix = 3001;
constexpr std::size_t kSuffix = 7777;

const Format& Sparse() {
  static const auto format = formats::MakeAndroidSparseFormat();
  return *format;
}

std::string Quoted(const fs::path& path) { return "'" + path.string() + "'"; }

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

// The one file an extraction wrote.
const model::InventoryEntry& OnlyFile(const Extraction& x) {
  EXPECT_EQ(x.entries.size(), 1u);
  static const model::InventoryEntry kNone;
  return x.entries.empty() ? kNone : x.entries.front();
}

// An ext4 filesystem (mke2fs -d) holding real binaries, links and nested directories, and its
// sparse form made by img2simg.
struct Images {
  fs::path raw;
  fs::path sparse;
};

Images MakeImages(const ScratchDir& scratch) {
  const fs::path root = scratch.path() / "root";
  const std::string script = "set -e; mkdir -p " + Quoted(root) + "; cd " + Quoted(root) +
                             "; mkdir -p bin usr/sbin etc a/b/c/d"
                             "; cp /bin/busybox bin/busybox"
                             "; cp /usr/sbin/dropbear usr/sbin/dropbear"
                             "; ln -s busybox bin/sh; : > etc/empty"
                             "; echo deep > a/b/c/d/deep.txt";
  EXPECT_EQ(RunCommand(script), 0);
  Images images{scratch.path() / "system.ext4", scratch.path() / "system.img"};
  EXPECT_EQ(RunCommand("mke2fs -q -F -t ext4 -d " + Quoted(root) + " " + Quoted(images.raw) +
                       " 24M >/dev/null 2>&1"),
            0);
  EXPECT_EQ(RunCommand("img2simg " + Quoted(images.raw) + " " + Quoted(images.sparse) +
                       " >/dev/null 2>&1"),
            0);
  return images;
}

TEST(AndroidSparseFormat, ExpandsAnImageMadeByImg2simgFoundInsideALargerBlob) {
  ScratchDir scratch;
  const Images images = MakeImages(scratch);
  const auto sparse = ReadFileBytes(images.sparse);
  const auto raw = ReadFileBytes(images.raw);
  ASSERT_LT(sparse.size(), raw.size());
  std::vector<std::uint8_t> blob(kPrefix, 0x42);
  blob.insert(blob.end(), sparse.begin(), sparse.end());
  blob.insert(blob.end(), kSuffix, 0x3a);
  const auto x = ProbeAndExtract(Sparse(), blob, kPrefix, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->offset, kPrefix);
  EXPECT_EQ(x.chunk->length, sparse.size());
  EXPECT_TRUE(x.chunk->issues.empty());
  EXPECT_EQ(x.chunk->meta.at("block_size"), "4096");
  EXPECT_EQ(x.chunk->meta.at("expanded_size"), std::to_string(raw.size()));
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  const auto& file = OnlyFile(x);
  EXPECT_EQ(file.path, "decompressed.raw");  // a chunk inside a blob has no name of its own
  EXPECT_EQ(file.kind, EntryKind::kFile);
  EXPECT_EQ(file.size, raw.size());
  EXPECT_EQ(file.sha256, Sha256::Hex(raw));
  EXPECT_EQ(x.meta.at("expanded_size"), std::to_string(raw.size()));
}

TEST(AndroidSparseFormat, NamesTheExpandedImageAfterTheBlob) {
  ScratchDir scratch;
  const Images images = MakeImages(scratch);
  const auto x =
      ProbeAndExtract(Sparse(), ReadFileBytes(images.sparse), 0, scratch, {}, "system.img");
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_EQ(OnlyFile(x).path, "system.raw");
  EXPECT_EQ(OnlyFile(x).sha256, Sha256::Hex(ReadFileBytes(images.raw)));
}

TEST(AndroidSparseFormat, MatchesSimg2imgOnTheSharedSample) {
  const fs::path sample = testing::SharedSamplePath("android_sparse/fact_simg.img");
  if (sample.empty()) GTEST_SKIP() << "shared samples are not available";
  ScratchDir scratch;
  const fs::path reference = scratch.path() / "reference.raw";
  ASSERT_EQ(RunCommand("simg2img " + Quoted(sample) + " " + Quoted(reference)), 0);
  const auto bytes = ReadFileBytes(sample);
  const auto x = ProbeAndExtract(Sparse(), bytes, 0, scratch, {}, "fact_simg.img");
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->length, bytes.size());
  EXPECT_EQ(x.chunk->meta.at("expanded_size"), "10485760");
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  const auto& file = OnlyFile(x);
  EXPECT_EQ(file.path, "fact_simg.raw");
  EXPECT_EQ(file.size, 10485760u);
  EXPECT_EQ(file.sha256, Sha256::Hex(ReadFileBytes(reference)));
  // What is inside is an ext filesystem: its superblock magic at 1024 + 56.
  const auto expanded = x.Read("fact_simg.raw");
  EXPECT_EQ(LoadLe<std::uint16_t>(expanded, 1080).value(), 0xef53);
}

// A sparse image written by hand, with every chunk type img2simg does not write.
class SparseBuilder {
 public:
  explicit SparseBuilder(std::uint32_t block_size) : block_size_(block_size) {}

  void Raw(const std::vector<std::uint8_t>& data) {
    Header(0xcac1, static_cast<std::uint32_t>(data.size() / block_size_),
           static_cast<std::uint32_t>(12 + data.size()));
    Append(data);
  }
  void Fill(std::uint32_t blocks, std::uint32_t value) {
    Header(0xcac2, blocks, 16);
    Word(value);
    for (std::uint64_t i = 0; i < std::uint64_t{blocks} * block_size_ / 4; ++i) {
      for (int b = 0; b < 4; ++b) expanded_.push_back(static_cast<std::uint8_t>(value >> (8 * b)));
    }
  }
  // Huge don't-care chunks are not mirrored in expanded() (a test of limits never expands them).
  void DontCare(std::uint32_t blocks) {
    Header(0xcac3, blocks, 12);
    if (std::uint64_t{blocks} * block_size_ <= (std::uint64_t{64} << 20)) {
      expanded_.resize(expanded_.size() + std::uint64_t{blocks} * block_size_, 0);
    }
  }
  void Crc(bool right = true) {
    Header(0xcac4, 0, 16);
    const auto crc = static_cast<std::uint32_t>(crc32(0, expanded_.data(), expanded_.size()));
    Word(right ? crc : crc ^ 1);
  }

  // The file: header, then the chunks.
  [[nodiscard]] std::vector<std::uint8_t> Bytes() const {
    std::vector<std::uint8_t> out;
    const auto put32 = [&out](std::uint32_t v) {
      for (int b = 0; b < 4; ++b) out.push_back(static_cast<std::uint8_t>(v >> (8 * b)));
    };
    const auto put16 = [&out](std::uint16_t v) {
      out.push_back(static_cast<std::uint8_t>(v));
      out.push_back(static_cast<std::uint8_t>(v >> 8));
    };
    put32(0xed26ff3a);
    put16(1);
    put16(0);
    put16(28);
    put16(12);
    put32(block_size_);
    put32(blocks_);
    put32(chunks_);
    put32(0);
    out.insert(out.end(), body_.begin(), body_.end());
    return out;
  }
  [[nodiscard]] const std::vector<std::uint8_t>& expanded() const { return expanded_; }

 private:
  void Header(std::uint16_t type, std::uint32_t blocks, std::uint32_t total) {
    ++chunks_;
    blocks_ += blocks;
    const std::uint8_t head[12] = {static_cast<std::uint8_t>(type),
                                   static_cast<std::uint8_t>(type >> 8),
                                   0,
                                   0,
                                   static_cast<std::uint8_t>(blocks),
                                   static_cast<std::uint8_t>(blocks >> 8),
                                   static_cast<std::uint8_t>(blocks >> 16),
                                   static_cast<std::uint8_t>(blocks >> 24),
                                   static_cast<std::uint8_t>(total),
                                   static_cast<std::uint8_t>(total >> 8),
                                   static_cast<std::uint8_t>(total >> 16),
                                   static_cast<std::uint8_t>(total >> 24)};
    body_.insert(body_.end(), head, head + 12);
  }
  void Word(std::uint32_t value) {
    for (int b = 0; b < 4; ++b) body_.push_back(static_cast<std::uint8_t>(value >> (8 * b)));
  }
  void Append(const std::vector<std::uint8_t>& data) {
    body_.insert(body_.end(), data.begin(), data.end());
    expanded_.insert(expanded_.end(), data.begin(), data.end());
  }

  std::uint32_t block_size_;
  std::uint32_t chunks_ = 0;
  std::uint32_t blocks_ = 0;
  std::vector<std::uint8_t> body_;
  std::vector<std::uint8_t> expanded_;
};

std::vector<std::uint8_t> RandomBytes(std::size_t n, unsigned seed) {
  std::vector<std::uint8_t> out(n);
  std::mt19937 random(seed);
  for (auto& byte : out) byte = static_cast<std::uint8_t>(random());
  return out;
}

SparseBuilder EveryChunkType() {
  SparseBuilder builder(4096);
  builder.Raw(RandomBytes(3 * 4096, 1));
  builder.Fill(5, 0xdeadbeef);
  builder.Crc();
  builder.DontCare(300);  // 1.2 MB of zeros, written from a small buffer
  builder.Raw(RandomBytes(4096, 2));
  builder.Crc();
  return builder;
}

TEST(AndroidSparseFormat, ExpandsFillDontCareAndCrcChunksAsSimg2imgDoes) {
  const SparseBuilder builder = EveryChunkType();
  const auto bytes = builder.Bytes();
  ScratchDir scratch;
  WriteFileBytes(scratch.path() / "hand.simg", bytes);
  ASSERT_EQ(RunCommand("simg2img " + Quoted(scratch.path() / "hand.simg") + " " +
                       Quoted(scratch.path() / "hand.raw") + " >/dev/null 2>&1"),
            0);
  const auto reference = ReadFileBytes(scratch.path() / "hand.raw");
  ASSERT_EQ(reference, builder.expanded());
  const auto x = ProbeAndExtract(Sparse(), bytes, 0, scratch, {}, "hand.simg");
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->length, bytes.size());
  EXPECT_TRUE(x.chunk->issues.empty());
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  EXPECT_EQ(OnlyFile(x).path, "hand.raw");
  EXPECT_EQ(OnlyFile(x).sha256, Sha256::Hex(reference));
}

TEST(AndroidSparseFormat, ReportsACrcChunkThatDoesNotMatch) {
  SparseBuilder builder(4096);
  builder.Raw(RandomBytes(2 * 4096, 3));
  builder.Crc(false);
  builder.DontCare(2);
  const auto x = ProbeAndExtract(Sparse(), builder.Bytes(), 0, ScratchDir());
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "CRC-32 chunk at 0x")) << GapList(x);
  EXPECT_EQ(OnlyFile(x).size, 4u * 4096);
}

TEST(AndroidSparseFormat, ExpandsWhatIsThereOfAnImageCutShort) {
  ScratchDir scratch;
  const Images images = MakeImages(scratch);
  const auto sparse = ReadFileBytes(images.sparse);
  const auto raw = ReadFileBytes(images.raw);
  for (const std::size_t cut :
       {std::size_t{40}, std::size_t{5000}, sparse.size() / 2, sparse.size() - 1}) {
    SCOPED_TRACE(cut);
    const std::vector<std::uint8_t> part(sparse.begin(),
                                         sparse.begin() + static_cast<std::ptrdiff_t>(cut));
    ScratchDir out;
    const auto x = ProbeAndExtract(Sparse(), part, 0, out);
    ASSERT_TRUE(x.chunk.has_value());
    EXPECT_EQ(x.chunk->length, cut);
    ASSERT_EQ(x.chunk->issues.size(), 1u);
    EXPECT_EQ(x.chunk->issues[0].kind, GapKind::kTruncated);
    ASSERT_TRUE(x.status) << x.status.error().ToString();
    EXPECT_TRUE(HasGap(x, GapKind::kTruncated, "")) << GapList(x);
    const auto& file = OnlyFile(x);
    ASSERT_LE(file.size, raw.size());
    EXPECT_EQ(file.size % 4096, 0u);
    // What came out is the start of the real image.
    EXPECT_EQ(file.sha256, Sha256::Hex(ByteView(raw).first(file.size)));
  }
  EXPECT_FALSE(Sparse().Probe(ByteView(sparse).first(20), 0).has_value());
}

TEST(AndroidSparseFormat, EndsTheImageAtAMalformedChunk) {
  SparseBuilder builder = EveryChunkType();
  auto bytes = builder.Bytes();
  // The fill chunk (after the header and the 3-block raw chunk) gets an unknown type.
  const std::size_t fill = 28 + 12 + 3 * 4096;
  ASSERT_EQ(LoadLe<std::uint16_t>(bytes, fill).value(), 0xcac2);
  bytes[fill] = 0x99;
  bytes.insert(bytes.end(), 500, 0);  // other data after the image
  const auto x = ProbeAndExtract(Sparse(), bytes, 0, ScratchDir());
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->length, fill);
  ASSERT_EQ(x.chunk->issues.size(), 1u);
  EXPECT_EQ(x.chunk->issues[0].kind, GapKind::kCorrupt);
  EXPECT_NE(
      x.chunk->issues[0].reason.find("chunk 1 at 0x3028 (type 0xca99, 16 bytes) is malformed"),
      std::string::npos)
      << x.chunk->issues[0].reason;
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  // The probe's issue says why the image ends there; the extractor adds nothing misleading.
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  EXPECT_EQ(OnlyFile(x).sha256, Sha256::Hex(ByteView(builder.expanded()).first(3 * 4096)));
}

TEST(AndroidSparseFormat, RefusesToExpandPastTheLimitsBeforeWritingAnything) {
  SparseBuilder builder(4096);
  builder.Raw(RandomBytes(4096, 4));
  builder.DontCare(0xfffff);  // 4 GiB of zeros from a 40-byte chunk list
  const auto bytes = builder.Bytes();
  Limits limits;
  limits.max_file_bytes = std::uint64_t{1} << 40;
  limits.max_total_bytes = std::uint64_t{1} << 40;
  const auto x = ProbeAndExtract(Sparse(), bytes, 0, ScratchDir(), limits);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kLimit, "expansion limit")) << GapList(x);
  EXPECT_TRUE(x.entries.empty());
  Limits small;
  small.max_file_bytes = 1 << 20;
  const auto y = ProbeAndExtract(Sparse(), bytes, 0, ScratchDir(), small);
  EXPECT_TRUE(HasGap(y, GapKind::kLimit, "file limit")) << GapList(y);
  EXPECT_TRUE(y.entries.empty());
}

TEST(AndroidSparseFormat, RejectsFalseMatchesAndSurvivesRandomChunks) {
  std::vector<std::uint8_t> blob = RandomBytes(1 << 16, 9);
  for (std::uint64_t offset = 0; offset + 100 < blob.size(); offset += 4093) {
    std::memcpy(&blob[offset], "\x3a\xff\x26\xed", 4);
    EXPECT_FALSE(Sparse().Probe(blob, offset).has_value()) << offset;
  }
  // A valid file header followed by random chunk headers.
  const auto good = EveryChunkType().Bytes();
  std::mt19937 random(13);
  for (int round = 0; round < 100; ++round) {
    auto bad = good;
    for (int i = 0; i < 4; ++i) {
      bad[28 + random() % (bad.size() - 28)] = static_cast<std::uint8_t>(random());
      bad[28 + random() % 40] = static_cast<std::uint8_t>(random());
    }
    const auto x = ProbeAndExtract(Sparse(), bad, 0, ScratchDir());
    if (x.chunk) {
      EXPECT_LE(x.chunk->length, bad.size());
    }
  }
}

}  // namespace
}  // namespace iotmark::unpack
