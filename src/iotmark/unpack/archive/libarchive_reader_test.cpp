#include "iotmark/unpack/archive/libarchive_reader.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "iotmark/unpack/archive/sample_tree.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::archive {
namespace {

namespace fs = std::filesystem;
using iotmark::testing::Extraction;
using iotmark::testing::ProbeAndExtract;
using iotmark::testing::ReadFileBytes;
using iotmark::testing::RunCommand;
using iotmark::testing::ScratchDir;
using iotmark::testing::WriteFileBytes;
using model::EntryKind;
using model::GapKind;
using testing::GapList;
using testing::HasGap;

// Hands the whole blob to ReadArchive, so the adapter is tested without any probe.
class WholeBlob final : public Format {
 public:
  explicit WholeBlob(ArchiveFormat format) : format_(format) {}
  std::string_view name() const override { return ToString(format_); }
  std::string_view description() const override { return "test"; }
  std::span<const Magic> magics() const override { return {}; }
  std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    Chunk chunk;
    chunk.offset = start;
    chunk.length = blob.size() - start;
    return chunk;
  }
  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    return ReadArchive(chunk, format_, ctx);
  }

 private:
  ArchiveFormat format_;
};

class LibarchiveReaderTest : public ::testing::Test {
 protected:
  // Runs a Python script that writes an archive to argv[1]; returns its bytes.
  std::vector<std::uint8_t> Craft(const std::string& code) {
    const fs::path script = scratch_.path() / "craft.py";
    const fs::path out = scratch_.path() / "crafted";
    fs::remove(out);
    WriteFileBytes(script, AsBytes(code));
    EXPECT_EQ(RunCommand("python3 " + script.string() + " " + out.string()), 0);
    return ReadFileBytes(out);
  }
  Extraction Read(ArchiveFormat format, const std::vector<std::uint8_t>& bytes,
                  const Limits& limits = {}) {
    return ProbeAndExtract(WholeBlob(format), bytes, 0, out_, limits);
  }

  ScratchDir scratch_;
  ScratchDir out_;
};

TEST_F(LibarchiveReaderTest, KeepsUtf8NamesIntactWhateverTheProcessLocale) {
  const auto zip = Craft(R"(import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("f\u00efrmware/\u00df\u00e9.bin", "utf-8 names")
)");
  const auto x = Read(ArchiveFormat::kZip, zip);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  const auto* entry = x.Find("f\xc3\xafrmware/\xc3\x9f\xc3\xa9.bin");
  ASSERT_NE(entry, nullptr) << GapList(x);
  EXPECT_EQ(entry->sha256, Sha256::Hex(AsBytes("utf-8 names")));
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
}

TEST_F(LibarchiveReaderTest, PassesRawTarNamesThroughByteForByte) {
  const auto tar = Craft(R"(import io, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.GNU_FORMAT, encoding="latin-1") as t:
    info = tarfile.TarInfo("caf\u00e9.txt")
    info.size = 4
    t.addfile(info, io.BytesIO(b"raw!"))
)");
  const auto x = Read(ArchiveFormat::kTar, tar);
  ASSERT_TRUE(x.status);
  const auto* entry = x.Find("caf\xe9.txt");
  ASSERT_NE(entry, nullptr) << GapList(x);
  EXPECT_EQ(entry->sha256, Sha256::Hex(AsBytes("raw!")));
}

TEST_F(LibarchiveReaderTest, WritesTheHolesOfSparseFilesAsZeros) {
  const fs::path file = scratch_.path() / "tree/sparse.img";
  fs::create_directories(file.parent_path());
  ASSERT_EQ(RunCommand("truncate -s 3M " + file.string() + " && printf data | dd of=" +
                       file.string() + " bs=1 seek=1048576 conv=notrunc status=none"),
            0);
  const fs::path tar = scratch_.path() / "sparse.tar";
  ASSERT_EQ(RunCommand("tar --sparse -cf " + tar.string() + " -C " + file.parent_path().string() +
                       " sparse.img"),
            0);
  const auto x = Read(ArchiveFormat::kTar, ReadFileBytes(tar));
  ASSERT_TRUE(x.status);
  const auto* entry = x.Find("sparse.img");
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->size, 3u << 20);
  EXPECT_EQ(entry->sha256, Sha256::Hex(ReadFileBytes(file)));
}

TEST_F(LibarchiveReaderTest, FailsOnBytesThatAreNotTheArchiveFormat) {
  const auto noise = testing::Embed({}, 4096, 0);
  for (const auto format :
       {ArchiveFormat::kTar, ArchiveFormat::kCpio, ArchiveFormat::kZip, ArchiveFormat::kSevenZip,
        ArchiveFormat::kAr, ArchiveFormat::kIso9660}) {
    SCOPED_TRACE(ToString(format));
    ScratchDir out;
    const auto x = ProbeAndExtract(WholeBlob(format), noise, 0, out);
    ASSERT_FALSE(x.status);
    EXPECT_EQ(x.status.error().code, ErrorCode::kCorruptInput);
    EXPECT_TRUE(x.entries.empty());
  }
}

TEST_F(LibarchiveReaderTest, StopsAtTheFileSizeLimit) {
  const auto tar = Craft(R"(import io, sys, tarfile
with tarfile.open(sys.argv[1], "w") as t:
    for name in ("big.bin", "after.bin"):
        info = tarfile.TarInfo(name)
        info.size = 100000
        t.addfile(info, io.BytesIO(b"A" * 100000))
)");
  Limits limits;
  limits.max_file_bytes = 50000;
  const auto x = Read(ArchiveFormat::kTar, tar, limits);
  ASSERT_FALSE(x.status);
  EXPECT_EQ(x.status.error().code, ErrorCode::kLimitExceeded);
  EXPECT_EQ(x.Find("after.bin"), nullptr);  // stopped, not skipped
}

TEST_F(LibarchiveReaderTest, AHardLinkToNothingIsAGapAndReadingGoesOn) {
  const auto tar = Craft(R"(import io, sys, tarfile
with tarfile.open(sys.argv[1], "w") as t:
    link = tarfile.TarInfo("bin/sh")
    link.type = tarfile.LNKTYPE
    link.linkname = "bin/missing"
    t.addfile(link)
    up = tarfile.TarInfo("bin/passwd")
    up.type = tarfile.LNKTYPE
    up.linkname = "../../etc/shadow"
    t.addfile(up)
    info = tarfile.TarInfo("etc/motd")
    info.size = 2
    t.addfile(info, io.BytesIO(b"hi"))
)");
  const auto x = Read(ArchiveFormat::kTar, tar);
  ASSERT_TRUE(x.status);
  EXPECT_EQ(x.Find("bin/sh"), nullptr);
  EXPECT_EQ(x.Find("bin/passwd"), nullptr);
  EXPECT_TRUE(HasGap(x, GapKind::kUnsafeEntry, "bin/sh")) << GapList(x);
  EXPECT_TRUE(HasGap(x, GapKind::kUnsafeEntry, "../../etc/shadow")) << GapList(x);
  ASSERT_NE(x.Find("etc/motd"), nullptr);
}

TEST_F(LibarchiveReaderTest, LinksAnEmptyFileWhoseLinksAllCarryNoData) {
  // newc: an empty file with two names; neither link has data, so the file is made at the end.
  const fs::path tree = scratch_.path() / "tree";
  fs::create_directories(tree);
  ASSERT_EQ(RunCommand("cd " + tree.string() +
                       " && : > empty && ln empty again && printf 'empty\\nagain\\n' | cpio "
                       "--quiet -o -H newc > ../links.cpio"),
            0);
  const auto x = Read(ArchiveFormat::kCpio, ReadFileBytes(scratch_.path() / "links.cpio"));
  ASSERT_TRUE(x.status);
  const auto* empty = x.Find("empty");
  const auto* again = x.Find("again");
  ASSERT_NE(empty, nullptr);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(empty->kind, EntryKind::kFile);
  EXPECT_EQ(again->kind, EntryKind::kHardlink);
  EXPECT_EQ(fs::hard_link_count(x.root / "empty"), 2u);
}

TEST_F(LibarchiveReaderTest, ReportsTheVariantLibarchiveRead) {
  const auto tar = Craft(R"(import io, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    info = tarfile.TarInfo("d/" * 80 + "file")  # too long for ustar: a pax header holds it
    t.addfile(info, io.BytesIO(b""))
)");
  const auto x = Read(ArchiveFormat::kTar, tar);
  ASSERT_TRUE(x.status);
  ASSERT_EQ(x.meta.count("variant"), 1u);
  EXPECT_NE(x.meta.at("variant").find("pax"), std::string::npos);
}

}  // namespace
}  // namespace iotmark::unpack::archive
