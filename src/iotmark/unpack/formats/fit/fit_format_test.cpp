#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "iotmark/base/bytes.hpp"
#include "iotmark/base/sha256.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"
#include "iotmark/unpack/unpacker.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeFitFormat();
std::unique_ptr<const Format> MakeGzipFormat();
std::unique_ptr<const Format> MakeCpioFormat();
std::unique_ptr<const Format> MakeLinuxKernelFormat();
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

const Format& Fit() {
  static const auto format = formats::MakeFitFormat();
  return *format;
}

std::string Quoted(const fs::path& path) { return "'" + path.string() + "'"; }

Bytes Pattern(std::size_t size, std::uint32_t seed) {
  Bytes out(size);
  std::mt19937 random(seed);
  for (auto& b : out) b = static_cast<std::uint8_t>(random());
  return out;
}

// Random bytes that never contain the FDT magic's first byte, so only planted trees are found.
Bytes Filler(std::size_t size, std::uint32_t seed) {
  Bytes out = Pattern(size, seed);
  for (auto& b : out) b = static_cast<std::uint8_t>(b % 200);
  return out;
}

Bytes Embed(const Bytes& inner, std::size_t before, std::size_t after) {
  Bytes out = Filler(before, 11);
  out.insert(out.end(), inner.begin(), inner.end());
  const Bytes tail = Filler(after, 12);
  out.insert(out.end(), tail.begin(), tail.end());
  return out;
}

bool HasGap(const Extraction& result, GapKind kind, std::string_view text = "") {
  return std::any_of(result.gaps.begin(), result.gaps.end(), [&](const model::Gap& gap) {
    return gap.kind == kind && gap.reason.find(text) != std::string::npos;
  });
}

std::size_t Find(const Bytes& haystack, const Bytes& needle) {
  const auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end());
  return it == haystack.end() ? std::string::npos : static_cast<std::size_t>(it - haystack.begin());
}

constexpr std::string_view kBoardDts = R"(/dts-v1/;
/ {
  model = "Acme Router 9000";
  compatible = "acme,router-9000", "acme,router";
  #address-cells = <1>;
  #size-cells = <1>;
  memory@80000000 { device_type = "memory"; reg = <0x80000000 0x4000000>; };
  chosen { bootargs = "console=ttyS0,115200"; };
};
)";

// The payloads every FIT here carries: a gzip'ed "kernel", a cpio ramdisk and a board DTB built
// by dtc, written into `dir` by the real tools.
struct Payloads {
  Bytes kernel, ramdisk, fdt;
};

Payloads BuildPayloads(const fs::path& dir, std::size_t kernel_size = 60000) {
  fs::create_directories(dir / "rd" / "etc");
  testing::WriteFileBytes(dir / "kernel.bin", Pattern(kernel_size, 1));
  std::ofstream(dir / "rd" / "etc" / "hostname") << "acme\n";
  std::ofstream(dir / "board.dts") << kBoardDts;
  const int rc = RunCommand("set -e; cd " + Quoted(dir) +
                            "; gzip -9 -n -c kernel.bin > kernel.gz"
                            "; (cd rd && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "
                            "ramdisk.cpio; dtc -q -I dts -O dtb -o board.dtb board.dts");
  EXPECT_EQ(rc, 0);
  return {ReadFileBytes(dir / "kernel.gz"), ReadFileBytes(dir / "ramdisk.cpio"),
          ReadFileBytes(dir / "board.dtb")};
}

// An .its with hash nodes of every algorithm U-Boot offers, and optionally a signature node.
std::string Its(bool with_signature) {
  std::string its = R"(/dts-v1/;
/ {
  description = "Acme firmware 1.2.3";
  #address-cells = <1>;
  images {
    kernel-1 {
      description = "Linux kernel";
      data = /incbin/("kernel.gz");
      type = "kernel"; arch = "arm"; os = "linux"; compression = "gzip";
      load = <0x80008000>; entry = <0x80008000>;
      hash-1 { algo = "crc32"; };
      hash-2 { algo = "sha1"; };
      hash-3 { algo = "sha256"; };
    };
    ramdisk-1 {
      description = "initramfs";
      data = /incbin/("ramdisk.cpio");
      type = "ramdisk"; arch = "arm"; os = "linux"; compression = "none";
      hash-1 { algo = "md5"; };
    };
    fdt-1 {
      description = "board";
      data = /incbin/("board.dtb");
      type = "flat_dt"; arch = "arm"; compression = "none";
      hash-1 { algo = "sha256"; };
    };
  };
  configurations {
    default = "conf-1";
    conf-1 {
      description = "boot";
      kernel = "kernel-1"; ramdisk = "ramdisk-1"; fdt = "fdt-1";
)";
  if (with_signature) {
    its += R"(      signature-1 {
        algo = "sha256,rsa2048"; key-name-hint = "dev";
        sign-images = "fdt", "kernel", "ramdisk";
      };
)";
  }
  its += "    };\n  };\n};\n";
  return its;
}

// Builds `name`.itb in `dir` with mkimage and `options` ("-E", "-E -p 0x1000", "-k keys -r").
Bytes BuildFit(const fs::path& dir, const std::string& name, const std::string& options,
               bool with_signature = false) {
  std::ofstream(dir / (name + ".its")) << Its(with_signature);
  const int rc = RunCommand("cd " + Quoted(dir) + " && mkimage -q " + options + " -f " + name +
                            ".its " + name + ".itb > /dev/null 2>&1");
  if (rc != 0) return {};
  return ReadFileBytes(dir / (name + ".itb"));
}

void ExpectPayloads(const Extraction& result, const Payloads& payloads) {
  ASSERT_EQ(result.entries.size(), 3u);
  EXPECT_EQ(result.Read("kernel-1"), payloads.kernel);
  EXPECT_EQ(result.Read("ramdisk-1"), payloads.ramdisk);
  EXPECT_EQ(result.Read("fdt-1"), payloads.fdt);
  EXPECT_EQ(result.Find("kernel-1")->sha256, Sha256::Hex(payloads.kernel));
}

class FitFormatTest : public ::testing::Test {
 protected:
  ScratchDir scratch_;
  fs::path work_ = scratch_.path() / "work";
  Payloads payloads_ = BuildPayloads(work_);
};

TEST_F(FitFormatTest, ExtractsEveryEmbeddedImageAndVerifiesItsHashes) {
  const Bytes itb = BuildFit(work_, "embedded", "");
  ASSERT_FALSE(itb.empty());
  const auto result = ProbeAndExtract(Fit(), itb, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_FALSE(result.chunk->transparent);
  EXPECT_EQ(result.chunk->length, itb.size());
  EXPECT_TRUE(result.chunk->issues.empty());
  ASSERT_TRUE(result.status) << result.status.error().ToString();
  EXPECT_TRUE(result.gaps.empty());
  ExpectPayloads(result, payloads_);

  const auto& meta = result.chunk->meta;
  EXPECT_EQ(meta.at("kind"), "fit");
  EXPECT_EQ(meta.at("description"), "Acme firmware 1.2.3");
  EXPECT_EQ(meta.at("images"), "kernel-1,ramdisk-1,fdt-1");
  EXPECT_EQ(meta.at("image_count"), "3");
  EXPECT_EQ(meta.at("image.kernel-1.type"), "kernel");
  EXPECT_EQ(meta.at("image.kernel-1.arch"), "arm");
  EXPECT_EQ(meta.at("image.kernel-1.os"), "linux");
  EXPECT_EQ(meta.at("image.kernel-1.compression"), "gzip");
  EXPECT_EQ(meta.at("image.kernel-1.load"), "0x80008000");
  EXPECT_EQ(meta.at("image.kernel-1.entry"), "0x80008000");
  EXPECT_EQ(meta.at("image.kernel-1.description"), "Linux kernel");
  EXPECT_EQ(meta.at("image.kernel-1.hash_algos"), "crc32,sha1,sha256");
  EXPECT_EQ(meta.at("image.kernel-1.data"), "embedded");
  EXPECT_EQ(meta.at("image.kernel-1.size"), std::to_string(payloads_.kernel.size()));
  EXPECT_EQ(meta.at("image.fdt-1.type"), "flat_dt");
  EXPECT_EQ(meta.count("image.ramdisk-1.load"), 0u);
  EXPECT_EQ(meta.at("default_configuration"), "conf-1");
  EXPECT_EQ(meta.at("configurations"), "conf-1");
  EXPECT_EQ(meta.at("configuration.conf-1.kernel"), "kernel-1");
  EXPECT_EQ(meta.at("configuration.conf-1.ramdisk"), "ramdisk-1");
  EXPECT_EQ(meta.at("configuration.conf-1.fdt"), "fdt-1");
  EXPECT_EQ(meta.at("signature"), "none");
  EXPECT_TRUE(meta.count("timestamp"));

  EXPECT_EQ(result.meta.at("image.kernel-1.hash"), "ok");
  EXPECT_EQ(result.meta.at("image.ramdisk-1.hash"), "ok");
  EXPECT_EQ(result.meta.at("image.fdt-1.hash"), "ok");
  EXPECT_EQ(result.meta.at("hashes"), "ok");
  EXPECT_EQ(result.meta.at("image.kernel-1.file"), "kernel-1");
}

TEST_F(FitFormatTest, FollowsExternalDataAfterTheTreeInsideALargerBlob) {
  const Bytes itb = BuildFit(work_, "external", "-E");
  ASSERT_FALSE(itb.empty());
  const Bytes blob = Embed(itb, 4097, 3000);
  const auto result = ProbeAndExtract(Fit(), blob, 4097, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->offset, 4097u);
  // The tree alone is small; the chunk runs to the end of the last payload after it.
  EXPECT_EQ(result.chunk->length, itb.size());
  EXPECT_TRUE(result.chunk->issues.empty());
  EXPECT_EQ(result.chunk->meta.at("image.kernel-1.data"), "external");
  ASSERT_TRUE(result.status);
  EXPECT_TRUE(result.gaps.empty());
  ExpectPayloads(result, payloads_);
  EXPECT_EQ(result.meta.at("hashes"), "ok");
}

TEST_F(FitFormatTest, FollowsAbsoluteDataPositions) {
  const Bytes itb = BuildFit(work_, "position", "-E -p 0x1000");
  ASSERT_FALSE(itb.empty());
  const auto result = ProbeAndExtract(Fit(), itb, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, itb.size());
  ASSERT_TRUE(result.status);
  EXPECT_TRUE(result.gaps.empty());
  ExpectPayloads(result, payloads_);
  // mkimage -p puts the first payload at the stated position, after padding.
  EXPECT_EQ(Find(itb, payloads_.kernel), 0x1000u);
}

TEST_F(FitFormatTest, ReportsASignedConfigurationAndTheKeyInTheControlTree) {
  const int keys =
      RunCommand("set -e; cd " + Quoted(work_) +
                 "; mkdir -p keys; openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 "
                 "-out keys/dev.key 2>/dev/null; openssl req -batch -new -x509 -key keys/dev.key "
                 "-out keys/dev.crt -subj /CN=dev 2>/dev/null; cp board.dtb control.dtb");
  if (keys != 0) GTEST_SKIP() << "openssl could not make a signing key";
  const Bytes itb = BuildFit(work_, "signed", "-k keys -K control.dtb -r", true);
  if (itb.empty()) GTEST_SKIP() << "this mkimage cannot sign FIT images";

  const auto result = ProbeAndExtract(Fit(), itb, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  const auto& meta = result.chunk->meta;
  EXPECT_EQ(meta.at("signature"), "configurations");
  EXPECT_EQ(meta.at("signature_algos"), "sha256,rsa2048");
  EXPECT_EQ(meta.at("configuration.conf-1.signature"), "sha256,rsa2048");
  EXPECT_EQ(meta.at("configuration.conf-1.key_name_hint"), "dev");
  EXPECT_EQ(meta.at("configuration.conf-1.signed"), "yes");
  EXPECT_EQ(meta.at("configuration.conf-1.signed_images"), "fdt,kernel,ramdisk");
  EXPECT_EQ(meta.count("unsigned_signature_nodes"), 0u);
  ASSERT_TRUE(result.status);
  ExpectPayloads(result, payloads_);

  // U-Boot's control tree now carries the public key that enforces signed configurations.
  const Bytes control = ReadFileBytes(work_ / "control.dtb");
  const Bytes blob = Embed(control, 64, 64);
  ScratchDir other;
  const auto tree = ProbeAndExtract(Fit(), blob, 64, other);
  ASSERT_TRUE(tree.chunk);
  EXPECT_EQ(tree.chunk->meta.at("kind"), "dtb");
  EXPECT_EQ(tree.chunk->meta.at("verification_keys"), "key-dev:sha256,rsa2048:required=conf");
}

TEST_F(FitFormatTest, CountsASignatureNodeThatWasNeverSignedAsUnsigned) {
  const Bytes itb = BuildFit(work_, "template", "", true);
  ASSERT_FALSE(itb.empty());
  const auto chunk = Fit().Probe(itb, 0);
  ASSERT_TRUE(chunk);
  EXPECT_EQ(chunk->meta.at("signature"), "none");
  EXPECT_EQ(chunk->meta.at("configuration.conf-1.signed"), "no");
  EXPECT_EQ(chunk->meta.at("unsigned_signature_nodes"), "1");
}

TEST_F(FitFormatTest, TurnsAWrongHashIntoACorruptGapAndStillExtracts) {
  Bytes itb = BuildFit(work_, "embedded", "");
  ASSERT_FALSE(itb.empty());
  const std::size_t at = Find(itb, payloads_.ramdisk);
  ASSERT_NE(at, std::string::npos);
  itb[at + 200] ^= 0x40;
  const auto result = ProbeAndExtract(Fit(), itb, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  ASSERT_TRUE(result.status);
  EXPECT_TRUE(HasGap(result, GapKind::kCorrupt, "'ramdisk-1': md5 mismatch"));
  EXPECT_EQ(result.meta.at("image.ramdisk-1.hash"), "mismatch");
  EXPECT_EQ(result.meta.at("image.kernel-1.hash"), "ok");
  EXPECT_EQ(result.meta.at("hashes"), "mismatch");
  EXPECT_EQ(result.entries.size(), 3u);
  EXPECT_EQ(result.gaps.size(), 1u);
}

TEST_F(FitFormatTest, KeepsWhatIsThereWhenExternalDataIsCutShort) {
  const Bytes itb = BuildFit(work_, "external", "-E");
  ASSERT_FALSE(itb.empty());
  const std::size_t ramdisk_at = Find(itb, payloads_.ramdisk);
  ASSERT_NE(ramdisk_at, std::string::npos);
  const Bytes cut(itb.begin(), itb.begin() + static_cast<std::ptrdiff_t>(ramdisk_at + 100));
  const auto result = ProbeAndExtract(Fit(), cut, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, cut.size());
  ASSERT_EQ(result.chunk->issues.size(), 1u);
  EXPECT_EQ(result.chunk->issues[0].kind, GapKind::kTruncated);
  ASSERT_TRUE(result.status);
  EXPECT_EQ(result.Read("kernel-1"), payloads_.kernel);
  EXPECT_EQ(result.Find("ramdisk-1")->size, 100u);
  EXPECT_TRUE(HasGap(result, GapKind::kTruncated, "'ramdisk-1' is cut short"));
  EXPECT_TRUE(HasGap(result, GapKind::kTruncated, "'fdt-1'"));
  EXPECT_EQ(result.meta.at("image.kernel-1.hash"), "ok");
  EXPECT_EQ(result.meta.at("image.ramdisk-1.hash"), "unchecked");
  EXPECT_EQ(result.meta.at("hashes"), "unchecked");
}

TEST_F(FitFormatTest, WritesATruncatedTreeAsItIsSoTheCarverCanLookInside) {
  const Bytes itb = BuildFit(work_, "embedded", "");
  ASSERT_FALSE(itb.empty());
  const Bytes cut(itb.begin(), itb.begin() + static_cast<std::ptrdiff_t>(itb.size() / 2));
  const Bytes blob = Embed(cut, 100, 0);
  const auto result = ProbeAndExtract(Fit(), blob, 100, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_FALSE(result.chunk->transparent);
  EXPECT_EQ(result.chunk->length, cut.size());
  ASSERT_EQ(result.chunk->issues.size(), 1u);
  EXPECT_EQ(result.chunk->issues[0].kind, GapKind::kTruncated);
  EXPECT_EQ(result.chunk->meta.at("state"), "truncated");
  ASSERT_TRUE(result.status);
  EXPECT_EQ(result.Read("device_tree.dtb"), cut);

  // The written file, carved in its turn, is the whole blob: identified, not written again.
  const auto again = Fit().Probe(cut, 0);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->transparent);
}

TEST_F(FitFormatTest, WritesAPlainDeviceTreeAppendedToAKernel) {
  const Bytes kernel = Filler(20000, 5);
  Bytes blob = kernel;
  blob.insert(blob.end(), payloads_.fdt.begin(), payloads_.fdt.end());
  const auto result = ProbeAndExtract(Fit(), blob, kernel.size(), scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_FALSE(result.chunk->transparent);
  EXPECT_EQ(result.chunk->length, payloads_.fdt.size());
  EXPECT_EQ(result.chunk->meta.at("kind"), "dtb");
  EXPECT_EQ(result.chunk->meta.at("model"), "Acme Router 9000");
  EXPECT_EQ(result.chunk->meta.at("compatible"), "acme,router-9000,acme,router");
  EXPECT_EQ(result.chunk->meta.count("verification_keys"), 0u);
  ASSERT_TRUE(result.status);
  ASSERT_EQ(result.entries.size(), 1u);
  EXPECT_EQ(result.Read("device_tree.dtb"), payloads_.fdt);

  const auto alone = Fit().Probe(payloads_.fdt, 0);
  ASSERT_TRUE(alone);
  EXPECT_TRUE(alone->transparent);
  EXPECT_EQ(alone->meta.at("kind"), "dtb");
}

TEST_F(FitFormatTest, ReportsADamagedStructureAndWritesTheTreeAsItIs) {
  Bytes dtb = payloads_.fdt;
  // The first tag of the structure block is FDT_BEGIN_NODE (1); make it nonsense.
  const std::uint32_t off_struct =
      static_cast<std::uint32_t>(dtb[8]) << 24 | dtb[9] << 16 | dtb[10] << 8 | dtb[11];
  dtb[off_struct + 3] = 0x77;
  const Bytes blob = Embed(dtb, 8, 8);
  const auto result = ProbeAndExtract(Fit(), blob, 8, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->meta.at("state"), "damaged");
  ASSERT_EQ(result.chunk->issues.size(), 1u);
  EXPECT_EQ(result.chunk->issues[0].kind, GapKind::kCorrupt);
  ASSERT_TRUE(result.status);
  EXPECT_EQ(result.Read("device_tree.dtb"), dtb);
}

TEST_F(FitFormatTest, GivesOddAndDuplicateNodeNamesSafeDistinctFileNames) {
  Bytes itb = BuildFit(work_, "embedded", "");
  ASSERT_FALSE(itb.empty());
  // Node names live in the structure block; same-length renames keep the tree valid.
  const auto rename = [&itb](std::string_view from, std::string_view to) {
    const Bytes needle(from.begin(), from.end());
    const std::size_t at = Find(itb, needle);
    ASSERT_NE(at, std::string::npos);
    std::copy(to.begin(), to.end(), itb.begin() + static_cast<std::ptrdiff_t>(at));
  };
  rename(std::string_view("kernel-1\0", 9), std::string_view("../../..\0", 9));
  rename(std::string_view("fdt-1\0", 6), std::string_view("a/b/c\0", 6));
  const auto result = ProbeAndExtract(Fit(), itb, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  ASSERT_TRUE(result.status);
  ASSERT_EQ(result.entries.size(), 3u);
  EXPECT_EQ(result.Read(".._.._.."), payloads_.kernel);
  EXPECT_EQ(result.Read("a_b_c"), payloads_.fdt);
  EXPECT_TRUE(fs::exists(result.root / "ramdisk-1"));

  // "ramdisk-1" becomes a second "kernel-1": both names pad to 12 bytes, so the tree holds.
  Bytes twins = BuildFit(work_, "embedded", "");
  const Bytes ramdisk_name = {'r', 'a', 'm', 'd', 'i', 's', 'k', '-', '1', 0};
  const std::size_t at = Find(twins, ramdisk_name);
  ASSERT_NE(at, std::string::npos);
  const Bytes renamed = {'k', 'e', 'r', 'n', 'e', 'l', '-', '1', 0, 0};
  std::copy(renamed.begin(), renamed.end(), twins.begin() + static_cast<std::ptrdiff_t>(at));
  ScratchDir other;
  const auto doubled = ProbeAndExtract(Fit(), twins, 0, other);
  ASSERT_TRUE(doubled.chunk);
  ASSERT_TRUE(doubled.status);
  ASSERT_EQ(doubled.entries.size(), 3u);
  EXPECT_EQ(doubled.Read("kernel-1"), payloads_.kernel);
  EXPECT_EQ(doubled.Read("kernel-1_2"), payloads_.ramdisk);
}

TEST_F(FitFormatTest, ReadsTheSharedSample) {
  const auto path = testing::SharedSamplePath("uimage_fit/fact_fit.itb");
  if (path.empty()) GTEST_SKIP() << "shared sample uimage_fit/fact_fit.itb is absent";
  const Bytes image = ReadFileBytes(path);
  const auto result = ProbeAndExtract(Fit(), image, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, image.size());
  EXPECT_TRUE(result.chunk->issues.empty());
  const auto& meta = result.chunk->meta;
  EXPECT_EQ(meta.at("kind"), "fit");
  EXPECT_EQ(meta.at("description"), "FACT Test FIT Image");
  EXPECT_EQ(meta.at("images"), "kernel,fdt,rootfs");
  EXPECT_EQ(meta.at("image.kernel.arch"), "arm64");
  EXPECT_EQ(meta.at("image.kernel.load"), "0x80000000");
  EXPECT_EQ(meta.at("image.rootfs.type"), "ramdisk");
  EXPECT_EQ(meta.at("signature"), "none");
  ASSERT_TRUE(result.status);
  EXPECT_TRUE(result.gaps.empty());
  ASSERT_EQ(result.entries.size(), 3u);
  EXPECT_EQ(result.Find("kernel")->size, 1048765u);
  EXPECT_EQ(result.Find("fdt")->size, 155u);
  EXPECT_EQ(result.Find("rootfs")->size, 1049072u);
  const Bytes kernel = result.Read("kernel");
  EXPECT_EQ(kernel[0], 0x1f);
  EXPECT_EQ(kernel[1], 0x8b);
  const Bytes fdt = result.Read("fdt");
  EXPECT_EQ(fdt[0], 0xd0);
  EXPECT_EQ(result.meta.at("hashes"), "none");
}

TEST_F(FitFormatTest, RejectsHeadersThatDoNotHoldTogether) {
  const Bytes good = payloads_.fdt;
  ASSERT_TRUE(Fit().Probe(good, 0));
  const auto with = [&good](std::size_t at, std::uint32_t value) {
    Bytes out = good;
    for (int i = 0; i < 4; ++i) out[at + i] = static_cast<std::uint8_t>(value >> (24 - 8 * i));
    return out;
  };
  EXPECT_FALSE(Fit().Probe(with(4, 20), 0));           // totalsize below the header
  EXPECT_FALSE(Fit().Probe(with(4, 0x7fffffff), 0));   // beyond any tree we read
  EXPECT_FALSE(Fit().Probe(with(8, 0xffff0000), 0));   // structure outside the tree
  EXPECT_FALSE(Fit().Probe(with(8, 0x39), 0));         // misaligned structure
  EXPECT_FALSE(Fit().Probe(with(12, 0xffff0000), 0));  // strings outside the tree
  EXPECT_FALSE(Fit().Probe(with(16, 0x2c), 0));        // misaligned reservation map
  EXPECT_FALSE(Fit().Probe(with(20, 1), 0));           // an ancient version
  EXPECT_FALSE(Fit().Probe(with(20, 18), 0));          // a future version
  EXPECT_FALSE(Fit().Probe(with(24, 17), 0));          // incompatible with 16
  EXPECT_FALSE(Fit().Probe(with(32, 0xffff0000), 0));  // strings size
  EXPECT_FALSE(Fit().Probe(with(36, 0xffff0000), 0));  // structure size
  const Bytes magic_only(good.begin(), good.begin() + 20);
  EXPECT_FALSE(Fit().Probe(magic_only, 0));
  EXPECT_FALSE(Fit().Probe(good, good.size()));
}

TEST_F(FitFormatTest, SurvivesRandomBytesAndRandomDamage) {
  Bytes noise = Pattern(1 << 16, 3);
  const Bytes magic = {0xd0, 0x0d, 0xfe, 0xed};
  for (std::size_t at = 0; at + 4 < noise.size(); at += 997) {
    std::copy(magic.begin(), magic.end(), noise.begin() + static_cast<std::ptrdiff_t>(at));
  }
  for (std::size_t start = 0; start < noise.size(); start += 997) {
    ScratchDir scratch;
    const auto result = ProbeAndExtract(Fit(), noise, start, scratch);
    EXPECT_FALSE(result.chunk) << start;
  }

  std::ofstream(work_ / "small.its") << R"(/dts-v1/;
/ { description = "s"; images {
  k { data = [01 02 03 04 05 06 07 08]; type = "kernel"; hash-1 { algo = "crc32"; }; };
  r { data = [11 12 13]; type = "ramdisk"; hash-1 { algo = "sha1"; }; }; };
  configurations { default = "c"; c { kernel = "k"; }; }; };
)";
  ASSERT_EQ(RunCommand("cd " + Quoted(work_) + " && mkimage -q -E -f small.its small.itb"), 0);
  const Bytes seed = ReadFileBytes(work_ / "small.itb");
  std::mt19937 random(99);
  for (int round = 0; round < 400; ++round) {
    Bytes image = seed;
    const int flips = 1 + static_cast<int>(random() % 4);
    for (int i = 0; i < flips; ++i) {
      image[4 + random() % (image.size() - 4)] ^= static_cast<std::uint8_t>(1 + random() % 255);
    }
    if (round % 5 == 0) image.resize(random() % image.size());
    ScratchDir scratch;
    const auto result = ProbeAndExtract(Fit(), image, 0, scratch);
    if (!result.chunk) continue;
    EXPECT_LE(result.chunk->length, image.size());
    for (const auto& entry : result.entries) EXPECT_EQ(entry.path.find('/'), std::string::npos);
  }
}

TEST(FitFormat, ReplaysItsFuzzCorpus) {
  const fs::path corpus = fs::path(IOTMARK_SOURCE_DIR) / "fuzz" / "corpus" / "fit";
  if (!fs::exists(corpus)) GTEST_SKIP() << "no fuzz corpus at " << corpus;
  std::size_t seeds = 0;
  std::size_t verified = 0;
  for (const auto& file : fs::directory_iterator(corpus)) {
    const Bytes blob = ReadFileBytes(file.path());
    for (std::size_t start = 0; start + 4 <= blob.size(); ++start) {
      if (blob[start] != 0xd0 || blob[start + 1] != 0x0d) continue;
      ScratchDir scratch;
      const auto result = ProbeAndExtract(Fit(), blob, start, scratch);
      if (result.meta.count("hashes") != 0 && result.meta.at("hashes") == "ok") ++verified;
    }
    ++seeds;
  }
  EXPECT_GE(seeds, 2u);
  // embedded.itb, external.itb and signed_external.itb hold intact, hashed images.
  EXPECT_EQ(verified, 3u);
}

TEST_F(FitFormatTest, UnpacksAFitInsideAnImageDownToTheRamdiskFiles) {
  const Bytes itb = BuildFit(work_, "external", "-E");
  ASSERT_FALSE(itb.empty());
  testing::WriteFileBytes(scratch_.path() / "image.bin", Embed(itb, 8192, 5000));
  FormatList formats;
  formats.push_back(formats::MakeFitFormat());
  formats.push_back(formats::MakeCpioFormat());
  formats.push_back(formats::MakeGzipFormat());
  auto unpacker = Unpacker::Create(UnpackOptions{}, &formats);
  ASSERT_TRUE(unpacker);
  auto report = unpacker->Run(scratch_.path() / "image.bin", scratch_.path() / "out");
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_TRUE(report->gaps.empty());
  bool hostname = false;
  bool kernel = false;
  for (const auto& entry : report->inventory) {
    if (entry.path.ends_with("etc/hostname")) hostname = true;
    if (entry.path.ends_with("kernel-1_extract/0x0.gzip/kernel") ||
        entry.sha256 == Sha256::Hex(Pattern(60000, 1))) {
      kernel = true;
    }
  }
  EXPECT_TRUE(hostname);
  EXPECT_TRUE(kernel);
}

// Finds the first chunk node of `format` in the tree below `node`, depth first.
const model::ExtractionNode* FindNode(const model::ExtractionNode& node, std::string_view format) {
  if (node.kind == model::ExtractionNode::Kind::kChunk && node.format == format) return &node;
  for (const auto& child : node.children) {
    if (const auto* found = FindNode(child, format)) return found;
  }
  return nullptr;
}

TEST_F(FitFormatTest, FindsADeviceTreeAppendedToAZImage) {
  // A little-endian ARM zImage around a gzip'ed kernel, and the board's DTB right after its end
  // (CONFIG_ARM_APPENDED_DTB): the kernel chunk ends where the header says, the DTB follows.
  Bytes kernel = Pattern(50000, 31);
  const std::string_view banner = "Linux version 6.1.0 (b@h) #1";
  std::copy(banner.begin(), banner.end(), kernel.begin() + 1000);
  kernel[1000 + banner.size()] = 0;
  testing::WriteFileBytes(work_ / "Image", kernel);
  ASSERT_EQ(RunCommand("cd " + Quoted(work_) + " && gzip -9 -n -c Image > Image.gz"), 0);
  const Bytes payload = ReadFileBytes(work_ / "Image.gz");
  Bytes zimage = Filler(0x2000, 32);
  zimage.insert(zimage.end(), payload.begin(), payload.end());
  const auto put_le = [&zimage](std::size_t at, std::uint32_t value) {
    for (int i = 0; i < 4; ++i) zimage[at + i] = static_cast<std::uint8_t>(value >> (8 * i));
  };
  put_le(0x24, 0x016F2818);
  put_le(0x28, 0);
  put_le(0x2c, static_cast<std::uint32_t>(zimage.size()));
  Bytes image = zimage;
  image.insert(image.end(), payloads_.fdt.begin(), payloads_.fdt.end());
  const Bytes tail = Filler(3000, 33);
  image.insert(image.end(), tail.begin(), tail.end());
  testing::WriteFileBytes(scratch_.path() / "image.bin", image);

  FormatList formats;
  formats.push_back(formats::MakeFitFormat());
  formats.push_back(formats::MakeLinuxKernelFormat());
  auto unpacker = Unpacker::Create(UnpackOptions{}, &formats);
  ASSERT_TRUE(unpacker);
  auto report = unpacker->Run(scratch_.path() / "image.bin", scratch_.path() / "out");
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_TRUE(report->gaps.empty());
  const auto* zimage_node = FindNode(report->tree, "linux_kernel");
  ASSERT_NE(zimage_node, nullptr);
  EXPECT_EQ(zimage_node->status, model::ChunkStatus::kExtracted);
  EXPECT_EQ(zimage_node->length, zimage.size());
  EXPECT_EQ(zimage_node->meta.at("version"), "6.1.0");
  const auto* dtb_node = FindNode(report->tree, "fit");
  ASSERT_NE(dtb_node, nullptr);
  EXPECT_EQ(dtb_node->offset, zimage.size());
  EXPECT_EQ(dtb_node->length, payloads_.fdt.size());
  EXPECT_EQ(dtb_node->meta.at("kind"), "dtb");
  EXPECT_EQ(dtb_node->meta.at("model"), "Acme Router 9000");
  bool vmlinux = false;
  bool dtb = false;
  for (const auto& entry : report->inventory) {
    if (entry.path.ends_with("/vmlinux")) vmlinux = entry.sha256 == Sha256::Hex(kernel);
    if (entry.path.ends_with("/device_tree.dtb")) dtb = entry.sha256 == Sha256::Hex(payloads_.fdt);
  }
  EXPECT_TRUE(vmlinux);
  EXPECT_TRUE(dtb);
}

}  // namespace
}  // namespace iotmark::unpack
