// Every image is untrusted: crafted inputs against the whole unpacker. Nothing may be written
// outside the output directory, limits must hold, damage must become gaps, and the rest of the
// image must still be unpacked.
#include <gtest/gtest.h>
#include <zlib.h>

#include <chrono>
#include <fstream>
#include <vector>

#include "scenario_support.hpp"

namespace iotmark::scenario {
namespace {

namespace fs = std::filesystem;
using model::GapKind;

class HostileInput : public ::testing::Test {
 protected:
  fs::path In(const std::string& name) { return scratch_.path() / "in" / name; }
  fs::path Out() { return scratch_.path() / "out"; }
  int Sh(const std::string& script) {
    return testing::RunCommand("set -e; cd '" + (scratch_.path() / "in").string() + "'; " + script);
  }
  void SetUp() override {
    fs::create_directories(scratch_.path() / "in");
    fs::create_directories(scratch_.path() / "victim");
  }
  // The directory an escaping entry would aim at must stay empty.
  bool VictimUntouched() { return fs::is_empty(scratch_.path() / "victim"); }
  // Wraps `payload` between pseudo-random bytes, as a container inside a firmware image.
  fs::path Embed(const fs::path& payload, const std::string& name) {
    EXPECT_EQ(Sh("head -c 4099 /dev/urandom > " + name + " && cat '" + payload.string() + "' >> " +
                 name + " && head -c 777 /dev/urandom >> " + name),
              0);
    return In(name);
  }

  testing::ScratchDir scratch_;
};

TEST_F(HostileInput, ZipSlipEntriesStayInsideTheTree) {
  ASSERT_EQ(Sh("python3 - <<'PY'\n"
               "import zipfile\n"
               "with zipfile.ZipFile('slip.zip', 'w') as z:\n"
               "    z.writestr('good.txt', 'fine')\n"
               "    z.writestr('../../victim/evil.txt', 'escaped')\n"
               "    z.writestr('../victim/evil2.txt', 'escaped')\n"
               "    z.writestr('/tmp/iotmark-zip-slip-absolute.txt', 'absolute')\n"
               "PY"),
            0);
  auto report = Unpack(Embed(In("slip.zip"), "fw.bin"), Out());
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_TRUE(VictimUntouched());
  EXPECT_FALSE(fs::exists("/tmp/iotmark-zip-slip-absolute.txt"));
  EXPECT_TRUE(HasGap(*report, GapKind::kUnsafeEntry));
  bool good = false;
  for (const auto& entry : report->inventory) good |= entry.path.ends_with("/good.txt");
  EXPECT_TRUE(good) << "the safe entry is still extracted";
}

TEST_F(HostileInput, TarEscapesAreRefusedAndLinksNeverFollowed) {
  ASSERT_EQ(Sh("python3 - <<'PY'\n"
               "import io, tarfile\n"
               "def add(t, name, data=b'x', kind=tarfile.REGTYPE, link=''):\n"
               "    i = tarfile.TarInfo(name); i.type = kind; i.linkname = link\n"
               "    i.size = len(data) if kind == tarfile.REGTYPE else 0\n"
               "    t.addfile(i, io.BytesIO(data) if kind == tarfile.REGTYPE else None)\n"
               "with tarfile.open('escape.tar', 'w', format=tarfile.GNU_FORMAT) as t:\n"
               "    add(t, 'ok/readme.txt', b'hello')\n"
               "    add(t, '/etc/iotmark-absolute-test', b'abs')\n"
               "    add(t, '../../victim/dotdot', b'up')\n"
               "    add(t, 'ok/../../victim/dotdot2', b'up')\n"
               "    add(t, 'escape', kind=tarfile.SYMTYPE, link='../../victim')\n"
               "    add(t, 'escape/through-link', b'through')\n"
               "    add(t, 'abs_link', kind=tarfile.SYMTYPE, link='/tmp')\n"
               "    add(t, 'abs_link/iotmark-through-abs-link', b'through')\n"
               "    add(t, 'hard', kind=tarfile.LNKTYPE, link='/etc/passwd')\n"
               "PY"),
            0);
  auto report = Unpack(Embed(In("escape.tar"), "fw.bin"), Out());
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_TRUE(VictimUntouched());
  EXPECT_FALSE(fs::exists("/etc/iotmark-absolute-test"));
  EXPECT_FALSE(fs::exists("/tmp/iotmark-through-abs-link"));
  EXPECT_TRUE(HasGap(*report, GapKind::kUnsafeEntry));
  bool readme = false;
  bool escape_link = false;
  for (const auto& entry : report->inventory) {
    readme |= entry.path.ends_with("/ok/readme.txt");
    if (entry.path.ends_with("/escape")) {
      escape_link = entry.kind == model::EntryKind::kSymlink && entry.link_target == "../../victim";
    }
    // The absolute entry lands inside the tree.
    if (entry.path.ends_with("/etc/iotmark-absolute-test")) {
      EXPECT_TRUE(fs::exists(Out() / entry.path));
    }
  }
  EXPECT_TRUE(readme);
  EXPECT_TRUE(escape_link) << "the link is recorded as it was stated";
}

TEST_F(HostileInput, GzipBombStopsAtTheRatioLimit) {
  // 1 GiB of zeros, deflated: about 1 MiB of input that would expand a thousandfold.
  {
    std::ofstream out(In("bomb.gz"), std::ios::binary);
    z_stream z{};
    ASSERT_EQ(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY), Z_OK);
    std::vector<unsigned char> zeros(1 << 20, 0);
    std::vector<unsigned char> buffer(1 << 20);
    for (int i = 0; i < 1024; ++i) {
      z.next_in = zeros.data();
      z.avail_in = static_cast<uInt>(zeros.size());
      const int flush = i == 1023 ? Z_FINISH : Z_NO_FLUSH;
      do {
        z.next_out = buffer.data();
        z.avail_out = static_cast<uInt>(buffer.size());
        deflate(&z, flush);
        out.write(reinterpret_cast<const char*>(buffer.data()),
                  static_cast<std::streamsize>(buffer.size() - z.avail_out));
      } while (z.avail_out == 0);
    }
    deflateEnd(&z);
  }
  const auto start = std::chrono::steady_clock::now();
  auto report = Unpack(In("bomb.gz"), Out());
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_TRUE(HasGap(*report, GapKind::kLimit));
  const Limits defaults;
  EXPECT_LT(report->stats.bytes_written, std::uint64_t{300} << 20) << "stopped near 250:1";
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60));
}

TEST_F(HostileInput, TotalSizeLimitHoldsAcrossNestedLayers) {
  ASSERT_EQ(Sh("head -c 8388608 /dev/zero > zeros && gzip -c zeros > a.gz && tar -cf t.tar a.gz "
               "&& gzip -c t.tar > t.tar.gz"),
            0);
  Limits limits;
  limits.max_total_bytes = 1 << 20;
  auto report = Unpack(In("t.tar.gz"), Out(), limits);
  ASSERT_TRUE(report);
  EXPECT_TRUE(HasGap(*report, GapKind::kLimit));
  EXPECT_LE(report->stats.bytes_written, (std::uint64_t{1} << 20) + (1 << 20));
}

TEST_F(HostileInput, SixtyLevelsOfNestingEndAtTheDepthLimit) {
  ASSERT_EQ(Sh("echo 'the innermost file' > level0 && for i in $(seq 1 60); do "
               "gzip -n -c level$((i-1)) > level$i; done"),
            0);
  auto report = Unpack(In("level60"), Out());
  ASSERT_TRUE(report) << report.error().ToString();
  const Limits defaults;
  EXPECT_EQ(report->stats.max_depth_reached, static_cast<std::uint64_t>(defaults.max_depth));
  ASSERT_TRUE(HasGap(*report, GapKind::kLimit));
  bool depth_gap = false;
  for (const auto& gap : report->gaps)
    depth_gap |= gap.reason.find("nesting deeper") != std::string::npos;
  EXPECT_TRUE(depth_gap);
}

TEST_F(HostileInput, TruncatedSquashfsIsAGapAndTheRestIsStillUnpacked) {
  ASSERT_EQ(Sh("mkdir -p root/bin && cp /bin/busybox root/bin/ && cp /usr/sbin/dropbear root/ && "
               "for i in $(seq 1 40); do head -c 20000 /dev/urandom > root/f$i; done && "
               "mksquashfs root full.sqfs -comp gzip -noappend -no-progress >/dev/null && "
               "head -c $(( $(stat -c %s full.sqfs) / 2 )) full.sqfs > half.sqfs && "
               "echo 'after the squashfs' > tail.txt && gzip -n -c tail.txt > tail.gz && "
               "cat tail.gz half.sqfs > fw.bin"),
            0);
  auto report = Unpack(In("fw.bin"), Out());
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_TRUE(HasGap(*report, GapKind::kTruncated));
  ASSERT_NE(FindChunk(report->tree, "squashfs"), nullptr);
  EXPECT_NE(FindChunk(report->tree, "squashfs")->status, model::ChunkStatus::kExtracted);
  // The gzip member beside the damaged filesystem is found and unpacked all the same.
  EXPECT_NE(FindChunk(report->tree, "gzip"), nullptr);
}

TEST_F(HostileInput, RandomBytesNeitherCrashNorHang) {
  ASSERT_EQ(Sh("( openssl enc -aes-256-ctr -nosalt -pass pass:iotmark-random "
               "-pbkdf2 -iter 1 </dev/zero 2>/dev/null | head -c 16777216 > random.bin )"),
            0);
  const auto start = std::chrono::steady_clock::now();
  auto report = Unpack(In("random.bin"), Out());
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60));
  EXPECT_GE(report->stats.unknown_chunks, 1u);
  EXPECT_FALSE(HasGap(*report, GapKind::kIo));
  double entropy = 0;
  for (const auto& node : report->tree.children) {
    if (node.entropy) entropy = std::max(entropy, *node.entropy);
  }
  EXPECT_GT(entropy, 7.9) << "unknown data is reported with its entropy";
}

TEST_F(HostileInput, RefusesANonEmptyOutputDirectory) {
  ASSERT_EQ(Sh("echo hello | gzip > a.gz"), 0);
  fs::create_directories(Out());
  std::ofstream(Out() / "precious.txt") << "keep me";
  auto report = Unpack(In("a.gz"), Out());
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().code, ErrorCode::kConflict);
  EXPECT_TRUE(fs::exists(Out() / "precious.txt"));
}

}  // namespace
}  // namespace iotmark::scenario
