#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "iotmark/base/sha256.hpp"
#include "iotmark/unpack/carver.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeYaffs2Format();
}  // namespace iotmark::unpack::formats

namespace iotmark::unpack {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;
using model::EntryKind;
using model::GapKind;
using testing::Extraction;
using testing::ProbeAndExtract;
using testing::ReadFileBytes;
using testing::RunCommand;
using testing::ScratchDir;

const Format& Yaffs2() {
  static const auto format = formats::MakeYaffs2Format();
  return *format;
}

Bytes Text(const std::string& text) { return Bytes(text.begin(), text.end()); }

Bytes Pattern(std::size_t size, std::uint32_t seed) {
  Bytes out(size);
  std::mt19937 random(seed);
  for (auto& byte : out) byte = static_cast<std::uint8_t>(random());
  return out;
}

// A test-only YAFFS2 image writer: object headers and data chunks as mkyaffs2image lays them out
// (header memset to 0xff, name and alias zero-filled), packed tags 2 in the spare area with their
// Hamming ECC, one sequence number per block of 64 chunks.
class ImageBuilder {
 public:
  struct Options {
    bool big_endian = false;
    std::uint32_t page = 2048;
    std::uint32_t spare = 64;  // 0: tags in band at the end of the page
    std::uint32_t tag_offset = 2;
    bool ecc = true;
    bool extra_tags = false;  // object type, parent and size kept in the header's tags
  };

  explicit ImageBuilder(Options options) : o_(options) {}

  [[nodiscard]] std::uint32_t data_size() const { return o_.spare == 0 ? o_.page - 16 : o_.page; }

  std::uint32_t Dir(std::uint32_t parent, const std::string& name, std::uint32_t mode = 040755) {
    const std::uint32_t id = next_id_++;
    Header(id, 3, parent, name, mode);
    return id;
  }

  std::uint32_t File(std::uint32_t parent, const std::string& name, const Bytes& content,
                     std::uint32_t mode = 0100644) {
    const std::uint32_t id = next_id_++;
    Header(id, 1, parent, name, mode, content.size());
    Contents(id, content);
    return id;
  }

  std::uint32_t Symlink(std::uint32_t parent, const std::string& name, const std::string& target) {
    const std::uint32_t id = next_id_++;
    Header(id, 2, parent, name, 0120777, 0, 0xffffffff, target);
    return id;
  }

  std::uint32_t Hardlink(std::uint32_t parent, const std::string& name, std::uint32_t target) {
    const std::uint32_t id = next_id_++;
    Header(id, 4, parent, name, 0100644, 0, target);
    return id;
  }

  std::uint32_t Special(std::uint32_t parent, const std::string& name, std::uint32_t mode,
                        std::uint32_t rdev) {
    const std::uint32_t id = next_id_++;
    Header(id, 5, parent, name, mode, 0, 0xffffffff, "", rdev);
    return id;
  }

  void Contents(std::uint32_t id, const Bytes& content) {
    for (std::size_t at = 0, chunk = 1; at < content.size(); at += data_size(), ++chunk) {
      const std::size_t n = std::min<std::size_t>(data_size(), content.size() - at);
      Data(id, static_cast<std::uint32_t>(chunk),
           Bytes(content.begin() + at, content.begin() + at + n));
    }
  }

  void Header(std::uint32_t id, std::uint32_t type, std::uint32_t parent, const std::string& name,
              std::uint32_t mode, std::uint64_t size = 0, std::uint32_t equiv = 0xffffffff,
              const std::string& alias = "", std::uint32_t rdev = 0,
              std::uint32_t shadows = 0xffffffff) {
    Bytes page(o_.page, 0xff);
    Put32(page, 0, type);
    Put32(page, 4, parent);
    std::fill(page.begin() + 10, page.begin() + 266, 0);
    std::memcpy(page.data() + 10, name.data(), std::min<std::size_t>(name.size(), 255));
    Put32(page, 268, mode);
    Put32(page, 272, 1000);
    Put32(page, 276, 1000);
    for (int i = 0; i < 3; ++i) Put32(page, 280 + 4 * i, 1700000000);
    Put32(page, 292, static_cast<std::uint32_t>(size));
    Put32(page, 296, equiv);
    if (type == 2) {
      std::fill(page.begin() + 300, page.begin() + 460, 0);
      std::memcpy(page.data() + 300, alias.data(), std::min<std::size_t>(alias.size(), 159));
    }
    Put32(page, 460, rdev);
    if (size >> 32 != 0) Put32(page, 496, static_cast<std::uint32_t>(size >> 32));
    Put32(page, 504, shadows);
    std::uint32_t tag_obj = id;
    std::uint32_t tag_chunk = 0;
    std::uint32_t tag_bytes = 0xffff;
    if (o_.extra_tags) {
      tag_obj |= type << 28;
      tag_chunk = 0x80000000u | parent;
      tag_bytes = type == 1 ? static_cast<std::uint32_t>(size) : type == 4 ? equiv : 0;
    }
    Emit(page, tag_obj, tag_chunk, tag_bytes);
  }

  void Data(std::uint32_t id, std::uint32_t chunk, const Bytes& bytes) {
    Bytes page(o_.page, 0xff);
    std::copy(bytes.begin(), bytes.end(), page.begin());
    Emit(page, id, chunk, static_cast<std::uint32_t>(bytes.size()));
  }

  // Pads the current block with erased chunks and starts the next one.
  void EndBlock() {
    while (in_block_ != 0) Erased(1);
  }
  void Erased(std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
      image_.insert(image_.end(), o_.page + o_.spare, 0xff);
      Advance();
    }
  }
  void set_seq(std::uint32_t seq) { seq_ = seq; }
  [[nodiscard]] std::uint32_t seq() const { return seq_; }
  [[nodiscard]] const Bytes& image() const { return image_; }
  [[nodiscard]] std::size_t stride() const { return o_.page + o_.spare; }

 private:
  void Put32(Bytes& out, std::size_t at, std::uint32_t value) const {
    for (int i = 0; i < 4; ++i) {
      const int shift = o_.big_endian ? 24 - 8 * i : 8 * i;
      out[at + i] = static_cast<std::uint8_t>(value >> shift);
    }
  }

  // The YAFFS "other" ECC over the 16 tag bytes, computed bit by bit.
  void PutEcc(Bytes& out, std::size_t at, const Bytes& tags) const {
    std::uint32_t line = 0;
    std::uint32_t line_prime = 0;
    std::uint32_t column = 0;
    for (std::uint32_t i = 0; i < tags.size(); ++i) {
      const unsigned b = tags[i];
      const auto parity = [b](unsigned mask) { return __builtin_popcount(b & mask) & 1u; };
      column ^= parity(0x55) << 0 | parity(0xaa) << 1 | parity(0x33) << 2 | parity(0xcc) << 3 |
                parity(0x0f) << 4 | parity(0xf0) << 5;
      if (parity(0xff) != 0) {
        line ^= i;
        line_prime ^= ~i;
      }
    }
    out[at] = static_cast<std::uint8_t>(column);
    Put32(out, at + 4, line);
    Put32(out, at + 8, line_prime);
  }

  void Emit(Bytes page, std::uint32_t obj, std::uint32_t chunk, std::uint32_t n_bytes) {
    Bytes tags(16);
    Put32(tags, 0, seq_);
    Put32(tags, 4, obj);
    Put32(tags, 8, chunk);
    Put32(tags, 12, n_bytes);
    if (o_.spare == 0) {
      std::copy(tags.begin(), tags.end(), page.end() - 16);
      image_.insert(image_.end(), page.begin(), page.end());
    } else {
      Bytes spare(o_.spare, 0xff);
      std::copy(tags.begin(), tags.end(), spare.begin() + o_.tag_offset);
      if (o_.ecc && o_.tag_offset + 28 <= o_.spare) PutEcc(spare, o_.tag_offset + 16, tags);
      image_.insert(image_.end(), page.begin(), page.end());
      image_.insert(image_.end(), spare.begin(), spare.end());
    }
    Advance();
  }

  void Advance() {
    if (++in_block_ == 64) {
      in_block_ = 0;
      ++seq_;
    }
  }

  Options o_;
  Bytes image_;
  std::uint32_t next_id_ = 257;
  std::uint32_t seq_ = 0x1000;
  std::uint32_t in_block_ = 0;
};

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

void ExpectFile(const Extraction& x, const std::string& path, const Bytes& content,
                std::uint32_t mode) {
  SCOPED_TRACE(path);
  const auto* entry = x.Find(path);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->kind, EntryKind::kFile);
  EXPECT_EQ(entry->size, content.size());
  EXPECT_EQ(entry->sha256, Sha256::Hex(content));
  EXPECT_EQ(entry->mode, mode);
  EXPECT_EQ(x.Read(path), content);
}

// The tree most tests build: real binaries in nested directories, a symlink, a hard link, a
// setuid file, an empty file, devices and a FIFO.
struct Tree {
  Bytes busybox = ReadFileBytes("/bin/busybox");
  Bytes passwd = Text("root:x:0:0:root:/root:/bin/sh\n");
  Bytes tool = Text("#!/bin/sh\necho su\n");
  Bytes deep = Pattern(5000, 3);

  void Build(ImageBuilder& b) const {
    const std::uint32_t bin = b.Dir(1, "bin");
    const std::uint32_t etc = b.Dir(1, "etc", 040700);
    const std::uint32_t a = b.Dir(1, "a");
    const std::uint32_t ab = b.Dir(a, "b");
    const std::uint32_t abc = b.Dir(ab, "c");
    const std::uint32_t dev = b.Dir(1, "dev");
    const std::uint32_t bb = b.File(bin, "busybox", busybox, 0100755);
    b.Symlink(bin, "sh", "busybox");
    b.Hardlink(bin, "busybox-hard", bb);
    b.File(bin, "su-tool", tool, 0104755);
    b.File(etc, "passwd", passwd);
    b.File(etc, "empty", {});
    b.File(abc, "deep.bin", deep, 0100600);
    b.Special(dev, "console", 0020600, 0x0501);
    b.Special(dev, "sda", 0060660, 0x0800);
    b.Special(dev, "fifo", 0010644, 0);
  }

  void Check(const Extraction& x) const {
    ASSERT_FALSE(busybox.empty());
    EXPECT_EQ(x.entries.size(), 16u) << GapList(x);
    for (const char* dir : {"bin", "etc", "a", "a/b", "a/b/c", "dev"}) {
      const auto* entry = x.Find(dir);
      ASSERT_NE(entry, nullptr) << dir;
      EXPECT_EQ(entry->kind, EntryKind::kDirectory) << dir;
    }
    EXPECT_EQ(x.Find("etc")->mode, 0700u);
    ExpectFile(x, "bin/busybox", busybox, 0755);
    EXPECT_EQ(x.Find("bin/busybox")->type, "elf");
    ExpectFile(x, "bin/su-tool", tool, 04755);
    ExpectFile(x, "etc/passwd", passwd, 0644);
    ExpectFile(x, "etc/empty", {}, 0644);
    ExpectFile(x, "a/b/c/deep.bin", deep, 0600);
    const auto* sh = x.Find("bin/sh");
    ASSERT_NE(sh, nullptr);
    EXPECT_EQ(sh->kind, EntryKind::kSymlink);
    EXPECT_EQ(sh->link_target, "busybox");
    const auto* hard = x.Find("bin/busybox-hard");
    ASSERT_NE(hard, nullptr);
    EXPECT_EQ(hard->kind, EntryKind::kHardlink);
    EXPECT_EQ(hard->link_target, "bin/busybox");
    EXPECT_EQ(x.Read("bin/busybox-hard"), busybox);
    const std::map<std::string, EntryKind> specials = {{"dev/console", EntryKind::kCharDevice},
                                                       {"dev/sda", EntryKind::kBlockDevice},
                                                       {"dev/fifo", EntryKind::kFifo}};
    for (const auto& [path, kind] : specials) {
      const auto* entry = x.Find(path);
      ASSERT_NE(entry, nullptr) << path;
      EXPECT_EQ(entry->kind, kind) << path;
      EXPECT_FALSE(entry->materialized) << path;
    }
  }
};

struct Layout {
  const char* name;
  ImageBuilder::Options options;
};

class Yaffs2Layouts : public ::testing::TestWithParam<Layout> {};

TEST_P(Yaffs2Layouts, ExtractsEveryKindOfObjectFromAnImageInsideOtherBytes) {
  const ImageBuilder::Options options = GetParam().options;
  ImageBuilder builder(options);
  const Tree tree;
  tree.Build(builder);
  builder.Erased(3);  // erased chunks after the file system are not part of it
  const Bytes& image = builder.image();
  const std::size_t fs_size = image.size() - 3 * builder.stride();
  Bytes blob = Pattern(4099, 1);
  blob.insert(blob.end(), image.begin(), image.end());
  const Bytes tail = Pattern(777, 2);
  blob.insert(blob.end(), tail.begin(), tail.end());

  ScratchDir scratch;
  const auto x = ProbeAndExtract(Yaffs2(), blob, 4099, scratch);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->offset, 4099u);
  EXPECT_EQ(x.chunk->length, fs_size);
  EXPECT_TRUE(x.chunk->issues.empty());
  EXPECT_EQ(x.chunk->meta.at("page_size"), std::to_string(options.page));
  EXPECT_EQ(x.chunk->meta.at("spare_size"), std::to_string(options.spare));
  EXPECT_EQ(x.chunk->meta.at("byte_order"), options.big_endian ? "big" : "little");
  if (options.spare != 0) {
    EXPECT_EQ(x.chunk->meta.at("tag_offset"), std::to_string(options.tag_offset));
  }
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  tree.Check(x);
}

INSTANTIATE_TEST_SUITE_P(
    Yaffs2, Yaffs2Layouts,
    ::testing::Values(Layout{"LittleEndian2k", {false, 2048, 64, 2, true, false}},
                      Layout{"BigEndian2k", {true, 2048, 64, 2, true, false}},
                      Layout{"LittleEndianTagsFirst", {false, 2048, 64, 0, false, false}},
                      Layout{"BigEndianTagsFirstWithEcc", {true, 2048, 64, 0, true, false}},
                      Layout{"ExtraTagsInHeaders", {false, 2048, 64, 2, true, true}},
                      Layout{"SmallPages", {false, 512, 16, 0, false, false}},
                      Layout{"LargePages", {true, 4096, 128, 2, true, false}},
                      Layout{"InbandTags", {false, 2048, 0, 0, false, false}}),
    [](const ::testing::TestParamInfo<Layout>& param_info) {
      return std::string(param_info.param.name);
    });

TEST(Yaffs2Format, AgreesWithUnyaffsOnABuiltImage) {
  if (RunCommand("command -v unyaffs >/dev/null") != 0) GTEST_SKIP() << "unyaffs is absent";
  ImageBuilder builder({});
  const Bytes busybox = ReadFileBytes("/bin/busybox");
  const std::uint32_t etc = builder.Dir(1, "etc");
  builder.File(1, "busybox", busybox, 0100755);
  builder.File(etc, "hosts", Text("127.0.0.1 localhost\n"));
  builder.Symlink(etc, "link", "../busybox");
  ScratchDir scratch;
  const fs::path image = scratch.path() / "image.yaffs2";
  testing::WriteFileBytes(image, builder.image());
  const fs::path out = scratch.path() / "unyaffs";
  fs::create_directories(out);
  ASSERT_EQ(RunCommand("unyaffs '" + image.string() + "' '" + out.string() + "' >/dev/null 2>&1"),
            0);

  const auto x = ProbeAndExtract(Yaffs2(), builder.image(), 0, scratch);
  ASSERT_TRUE(x.chunk);
  ASSERT_TRUE(x.status);
  std::size_t compared = 0;
  for (const auto& entry : fs::recursive_directory_iterator(out)) {
    const std::string rel = entry.path().lexically_relative(out).string();
    SCOPED_TRACE(rel);
    const auto* ours = x.Find(rel);
    ASSERT_NE(ours, nullptr);
    if (entry.is_symlink()) {
      EXPECT_EQ(ours->link_target, fs::read_symlink(entry.path()).string());
    } else if (entry.is_regular_file()) {
      EXPECT_EQ(x.Read(rel), ReadFileBytes(entry.path()));
    }
    ++compared;
  }
  EXPECT_EQ(compared, 4u);
  EXPECT_EQ(x.entries.size(), 4u);
}

// The samples: two tiny images made by the same tool in either byte order, and one with the tags
// first in the spare area and no ECC; contents as unyaffs extracts them.
TEST(Yaffs2Format, ReadsTheLittleAndBigEndianSamples) {
  for (const std::string name : {"fact_yaffs2_le.img", "fact_yaffs2_be.img"}) {
    SCOPED_TRACE(name);
    const auto path = testing::SharedSamplePath("yaffs2/" + name);
    if (path.empty() || !fs::exists(path)) GTEST_SKIP() << "shared sample yaffs2/" << name;
    const Bytes image = ReadFileBytes(path);
    ScratchDir scratch;
    const auto x = ProbeAndExtract(Yaffs2(), image, 0, scratch);
    ASSERT_TRUE(x.chunk);
    EXPECT_EQ(x.chunk->length, image.size());
    EXPECT_EQ(x.chunk->meta.at("page_size"), "2048");
    EXPECT_EQ(x.chunk->meta.at("spare_size"), "64");
    EXPECT_EQ(x.chunk->meta.at("tag_offset"), "2");
    EXPECT_EQ(x.chunk->meta.at("tags_ecc"), "yes");
    EXPECT_EQ(x.chunk->meta.at("byte_order"),
              name.find("_be") != std::string::npos ? "big" : "little");
    ASSERT_TRUE(x.status);
    EXPECT_TRUE(x.gaps.empty()) << GapList(x);
    ASSERT_EQ(x.entries.size(), 4u);
    ExpectFile(x, "testfile1",
               Text("test file:\ncontent: MyTestRule 1.2.3\nVersion: Program 0.0.0.0\n"), 0644);
    ExpectFile(x, "testfile2", Text("This is the second test file"), 0644);
    ExpectFile(x, "generic folder/test file 3_.txt", Text("The third test file!"), 0644);
    EXPECT_EQ(x.Find("generic folder")->kind, EntryKind::kDirectory);
    EXPECT_EQ(x.Find("generic folder")->mode, 0755u);
  }
}

TEST(Yaffs2Format, ReadsTheBinwalkSampleWithTagsFirstInTheSpare) {
  const auto path = testing::SharedSamplePath("yaffs2/binwalk_yaffs2.bin");
  if (path.empty() || !fs::exists(path)) GTEST_SKIP() << "shared sample yaffs2/binwalk_yaffs2.bin";
  const Bytes image = ReadFileBytes(path);
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Yaffs2(), image, 0, scratch);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->meta.at("tag_offset"), "0");
  EXPECT_EQ(x.chunk->meta.at("tags_ecc"), "no");
  EXPECT_EQ(x.chunk->meta.at("byte_order"), "little");
  ASSERT_TRUE(x.status);
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  // SHA-256 of the files as unyaffs extracts them.
  const std::map<std::string, std::pair<std::uint64_t, std::string>> expected = {
      {"mkyaffs2image.c",
       {15107, "bbb126ff5a49762055a6310186c9c5dd22534198fbd8ed77f6d768983af491a3"}},
      {"mkyaffsimage.c",
       {13967, "458a399ed17e23c2d16364efe8184a05ba7a2cdb0132ffaccc106ccc889be53b"}},
      {"yaffs_ecc.c", {7143, "6ccece2209c40c37fa28059f028a6b281cea356ba469d0269f454514231b62a5"}},
      {"yaffs_ecc.h", {1440, "b9edc75b3458e8f66d99090c045bfe05ba6a0fe0ff3fb1c81c78e8d6b8aebb66"}},
      {"yaffs_guts.h", {27266, "4e2568ade2817ec84dfbfa6ff199093c5f72569d0cad8d66dedcdd59091d08d6"}},
      {"yaffs_hweight.c",
       {1689, "c3f4ad3231fee2c3068a637d570b3bd0047892abafa23e592e9858238e91106c"}},
      {"yaffs_hweight.h",
       {656, "cfdb4a66b0eace2574beb10b45992863d6d85898237054abac3c3ecc8840d138"}},
      {"yaffs_list.h", {3086, "1361569577d3d861d032df44d50634041268bb5eb5832ddb8eb7b0f3a48031b0"}},
      {"yaffs_packedtags2.c",
       {5169, "5aa74e1a24241df858704c3baba1bb281f026d42fa64dbb79803071edb5786f6"}},
      {"yaffs_packedtags2.h",
       {1447, "0375517fd4e0eec0254322751138c13472226a5f5c93dfcada6da1bc26c63708"}},
      {"yaffs_trace.h", {1769, "6fcbe6ee192dc9516cc39f974af3f3c538dcb8833f87d946253fe72652328e2d"}},
      {"yportenv.h", {4903, "cf9b21c9374b765524ac9c3f84f7a29690676cccf4d2138c2bcce66135f6b084"}},
      {"yutilsenv.h", {844, "d17b77b186792ba473247dce5f2de9916b70f79667a4b77ded186a4425296b52"}},
  };
  ASSERT_EQ(x.entries.size(), expected.size());
  for (const auto& [name, facts] : expected) {
    const auto* entry = x.Find(name);
    ASSERT_NE(entry, nullptr) << name;
    EXPECT_EQ(entry->size, facts.first) << name;
    EXPECT_EQ(entry->sha256, facts.second) << name;
    EXPECT_EQ(entry->mode, 0664u) << name;
  }
  // The image's chunks end before its erased tail.
  EXPECT_LE(x.chunk->length, image.size());
  EXPECT_EQ(x.chunk->length % 2112, 0u);
}

TEST(Yaffs2Format, KeepsErasedChunksInsideTheImageAndStopsAtTheLastWrittenOne) {
  ImageBuilder builder({});
  builder.File(1, "one", Pattern(3000, 1));
  builder.EndBlock();  // the rest of the block stays erased
  builder.File(1, "two", Pattern(100, 2));
  const std::size_t written = builder.image().size();
  builder.Erased(10);
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Yaffs2(), builder.image(), 0, scratch);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, written);
  ASSERT_TRUE(x.status);
  ExpectFile(x, "one", Pattern(3000, 1), 0644);
  ExpectFile(x, "two", Pattern(100, 2), 0644);
}

TEST(Yaffs2Format, TakesTheChunkWithTheNewestSequenceNumberWhereverItLies) {
  ImageBuilder builder({});
  const Bytes old_data = Pattern(2048 * 2, 1);
  Bytes new_data = old_data;
  std::fill(new_data.begin() + 2048, new_data.end(), 0x42);
  // The block with the rewritten second chunk comes first in the dump but carries a later
  // sequence number; a renamed header likewise.
  builder.set_seq(0x1010);
  builder.Header(300, 1, 1, "renamed", 0100600, new_data.size());
  builder.Data(300, 2, Bytes(new_data.begin() + 2048, new_data.end()));
  builder.EndBlock();
  builder.set_seq(0x1001);
  builder.Header(300, 1, 1, "original", 0100644, old_data.size());
  builder.Contents(300, old_data);
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Yaffs2(), builder.image(), 0, scratch);
  ASSERT_TRUE(x.chunk);
  ASSERT_TRUE(x.status);
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  ASSERT_EQ(x.entries.size(), 1u);
  ExpectFile(x, "renamed", new_data, 0600);
}

TEST(Yaffs2Format, SkipsUnlinkedDeletedAndShadowedObjects) {
  ImageBuilder builder({});
  const std::uint32_t gone = builder.File(1, "gone", Pattern(100, 1));
  const std::uint32_t unlinked = builder.File(1, "unlinked", Pattern(100, 2));
  const std::uint32_t replaced = builder.File(1, "config", Text("old\n"));
  builder.File(1, "kept", Text("kept\n"));
  builder.Header(gone, 1, 4, "gone", 0100644, 100);
  builder.Header(unlinked, 1, 3, "unlinked", 0100644, 100);
  // "config.new" renamed over "config": its header shadows the old object.
  const std::uint32_t fresh = 400;
  builder.Header(fresh, 1, 1, "config", 0100644, 4, 0xffffffff, "", 0, replaced);
  builder.Contents(fresh, Text("new\n"));
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Yaffs2(), builder.image(), 0, scratch);
  ASSERT_TRUE(x.chunk);
  ASSERT_TRUE(x.status);
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  ASSERT_EQ(x.entries.size(), 2u);
  ExpectFile(x, "kept", Text("kept\n"), 0644);
  ExpectFile(x, "config", Text("new\n"), 0644);
  EXPECT_EQ(x.meta.at("deleted_objects"), "3");
}

TEST(Yaffs2Format, ReportsOrphansAndParentLoopsAsGapsAndExtractsTheRest) {
  ImageBuilder builder({});
  builder.File(1, "fine", Text("fine\n"));
  builder.File(999, "orphan", Text("lost\n"));
  builder.Header(500, 3, 501, "loop-a", 040755);
  builder.Header(501, 3, 500, "loop-b", 040755);
  builder.Header(502, 1, 500, "inside-loop", 0100644, 0);
  builder.Header(503, 1, 257, "under-a-file", 0100644, 0);
  builder.File(2, "found", Text("found\n"));  // in lost+found, which has no header
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Yaffs2(), builder.image(), 0, scratch);
  ASSERT_TRUE(x.chunk);
  ASSERT_TRUE(x.status);
  ExpectFile(x, "fine", Text("fine\n"), 0644);
  ExpectFile(x, "lost+found/found", Text("found\n"), 0644);
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "'orphan'")) << GapList(x);
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "(object 999) is missing")) << GapList(x);
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "form a loop")) << GapList(x);
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "is not a directory")) << GapList(x);
  EXPECT_EQ(x.Find("orphan"), nullptr);
  EXPECT_EQ(x.entries.size(), 3u);
}

TEST(Yaffs2Format, RepairsASingleFlippedBitInTheTagsWithTheirEcc) {
  ImageBuilder builder({});
  builder.File(1, "file", Pattern(5000, 4));
  Bytes image = builder.image();
  // The object id of the second data chunk (third chunk in the image), one bit flipped.
  image[2 * builder.stride() + 2048 + 2 + 4] ^= 0x10;
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Yaffs2(), image, 0, scratch);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, image.size());
  ASSERT_TRUE(x.status);
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  ExpectFile(x, "file", Pattern(5000, 4), 0644);
}

TEST(Yaffs2Format, ReportsADamagedChunkAndReadsOnAfterIt) {
  ImageBuilder builder({});
  builder.File(1, "file", Pattern(5000, 4));
  builder.File(1, "after", Text("after\n"));
  Bytes image = builder.image();
  for (int i = 0; i < 16; ++i) image[2 * builder.stride() + 2048 + 2 + i] ^= 0x5a;
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Yaffs2(), image, 0, scratch);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, image.size());
  EXPECT_TRUE(x.chunk->issues.empty());
  EXPECT_EQ(x.chunk->meta.at("damaged_chunks"), "1");
  ASSERT_TRUE(x.status);
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "1 chunk(s) at 0x1080 do not parse")) << GapList(x);
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "1 of 3 data chunks are absent")) << GapList(x);
  Bytes expected = Pattern(5000, 4);
  std::fill(expected.begin() + 2048, expected.begin() + 4096, 0);
  ExpectFile(x, "file", expected, 0644);
  ExpectFile(x, "after", Text("after\n"), 0644);
}

TEST(Yaffs2Format, SurvivesEveryTruncationOfAnImage) {
  ImageBuilder builder({});
  builder.File(1, "a", Pattern(5000, 1));
  const std::uint32_t dir = builder.Dir(1, "d");
  builder.File(dir, "b", Pattern(3000, 2));
  const Bytes& full = builder.image();
  for (std::size_t size = 0; size <= full.size(); size += 1001) {
    const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(size));
    ScratchDir scratch;
    const auto x = ProbeAndExtract(Yaffs2(), cut, 0, scratch);
    if (size < builder.stride()) {
      EXPECT_FALSE(x.chunk) << size;
      continue;
    }
    ASSERT_TRUE(x.chunk) << size;
    EXPECT_LE(x.chunk->length, size);
    EXPECT_TRUE(x.status) << size;
    if (size % builder.stride() != 0 && size < full.size()) {
      ASSERT_EQ(x.chunk->issues.size(), 1u) << size;
      EXPECT_EQ(x.chunk->issues[0].kind, GapKind::kTruncated);
      EXPECT_EQ(x.chunk->length, size);
    }
  }
}

TEST(Yaffs2Format, SurvivesRandomDamage) {
  ImageBuilder builder({true});
  Tree tree;
  tree.busybox.resize(20000);
  tree.Build(builder);
  const Bytes& seed = builder.image();
  std::mt19937 random(99);
  for (int round = 0; round < 150; ++round) {
    Bytes image = seed;
    const int flips = 1 + static_cast<int>(random() % 40);
    for (int i = 0; i < flips; ++i) {
      // Aim at headers and spare areas, where the structure lives.
      const std::size_t slot = random() % (image.size() / builder.stride());
      const std::size_t at =
          slot * builder.stride() + (random() % 2 == 0 ? random() % 512 : 2048 + random() % 64);
      image[at] = static_cast<std::uint8_t>(random());
    }
    ScratchDir scratch;
    const auto x = ProbeAndExtract(Yaffs2(), image, 0, scratch);
    if (!x.chunk) continue;
    EXPECT_LE(x.chunk->length, image.size());
  }
}

TEST(Yaffs2Format, RejectsMagicsThatAreNotFollowedByAFileSystem) {
  ImageBuilder builder({});
  builder.File(1, "file", Pattern(100, 1));
  const Bytes good = builder.image();
  ASSERT_TRUE(Yaffs2().Probe(good, 0));

  Bytes no_tags = good;
  std::fill(no_tags.begin() + 2048, no_tags.end(), 0xff);  // spare erased
  no_tags.resize(2112);
  EXPECT_FALSE(Yaffs2().Probe(no_tags, 0));

  Bytes junk = Pattern(64 * 1024, 5);
  std::memcpy(junk.data(), "\x01\x00\x00\x00\x01\x00\x00\x00\xff\xff", 10);
  EXPECT_FALSE(Yaffs2().Probe(junk, 0));

  Bytes bad_name = good;
  bad_name[12] = '\n';
  EXPECT_FALSE(Yaffs2().Probe(bad_name, 0));

  Bytes bad_mode = good;
  bad_mode[268 + 1] = 0x41;  // 040644: a directory mode on a file
  EXPECT_FALSE(Yaffs2().Probe(bad_mode, 0));

  Bytes bad_seq = good;
  // Too many flipped bits for the ECC, and a sequence number no block can have.
  bad_seq[2048 + 2 + 1] = 0;
  bad_seq[2048 + 2 + 3] = 0xf0;
  EXPECT_FALSE(Yaffs2().Probe(bad_seq, 0));

  EXPECT_FALSE(Yaffs2().Probe(good, good.size()));
  EXPECT_FALSE(Yaffs2().Probe(Bytes(good.begin(), good.begin() + 2000), 0));
}

TEST(Yaffs2Format, RefusesAFileLargerThanTheLimit) {
  ImageBuilder builder({});
  builder.File(1, "big", Pattern(9000, 1));
  builder.File(1, "small", Text("small\n"));
  Limits limits;
  limits.max_file_bytes = 4096;
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Yaffs2(), builder.image(), 0, scratch, limits);
  ASSERT_TRUE(x.chunk);
  ASSERT_TRUE(x.status);
  EXPECT_TRUE(HasGap(x, GapKind::kLimit, "'big'")) << GapList(x);
  EXPECT_EQ(x.Find("big"), nullptr);
  ExpectFile(x, "small", Text("small\n"), 0644);
}

TEST(Yaffs2Format, CutsAFileWhoseSizeIsFarBeyondItsData) {
  ImageBuilder builder({});
  builder.Header(300, 1, 1, "huge", 0100644, std::uint64_t{3} << 30);
  builder.Contents(300, Pattern(100, 1));
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Yaffs2(), builder.image(), 0, scratch);
  ASSERT_TRUE(x.chunk);
  ASSERT_TRUE(x.status);
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "claims 3221225472 bytes")) << GapList(x);
  const auto* entry = x.Find("huge");
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->size, 2048u);
}

TEST(Yaffs2Format, CutsAFileThatIsMostlyHoles) {
  ImageBuilder builder({});
  builder.Header(300, 1, 1, "sparse", 0100644, std::uint64_t{100000} * 2048);
  builder.Data(300, 100000, Pattern(2048, 1));
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Yaffs2(), builder.image(), 0, scratch);
  ASSERT_TRUE(x.chunk);
  ASSERT_TRUE(x.status);
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "mostly absent chunks; cut at byte 67108864"))
      << GapList(x);
  const auto* entry = x.Find("sparse");
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->size, std::uint64_t{64} << 20);
}

TEST(Yaffs2Format, ReplaysItsFuzzCorpusWithoutCrashing) {
  const fs::path corpus = fs::path(IOTMARK_SOURCE_DIR) / "fuzz" / "corpus" / "yaffs2";
  if (!fs::exists(corpus)) GTEST_SKIP() << "no corpus at " << corpus;
  FormatList formats;
  formats.push_back(formats::MakeYaffs2Format());
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
      const auto x = ProbeAndExtract(Yaffs2(), blob, start, scratch);
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
