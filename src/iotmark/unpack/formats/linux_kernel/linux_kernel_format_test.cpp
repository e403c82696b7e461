#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/formats/linux_kernel/kernel_banner.hpp"
#include "iotmark/unpack/formats/linux_kernel/lzop_stream.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"
#include "iotmark/unpack/unpacker.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeLinuxKernelFormat();
std::unique_ptr<const Format> MakeUimageFormat();
}  // namespace iotmark::unpack::formats

namespace iotmark::unpack {
namespace {

using Bytes = std::vector<std::uint8_t>;
using testing::ProbeAndExtract;
using testing::ScratchDir;

constexpr std::string_view kDebianBanner =
    "Linux version 5.10.0-8-amd64 (debian-kernel@lists.debian.org) (gcc-10 (Debian 10.2.1-6) "
    "10.2.1 20210110, GNU ld (GNU Binutils for Debian) 2.35.2) #1 SMP Debian 5.10.46-4 "
    "(2021-08-03)";

Bytes Random(std::size_t size, std::uint32_t seed) {
  Bytes out(size);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& b : out) {
    x = x * 1103515245u + 12345u;
    b = static_cast<std::uint8_t>(x >> 16);
  }
  return out;
}

void Append(Bytes& out, std::string_view text) { out.insert(out.end(), text.begin(), text.end()); }

void PutLe32(Bytes& out, std::size_t at, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) out[at + i] = static_cast<std::uint8_t>(value >> (8 * i));
}

class LinuxKernelFormatTest : public ::testing::Test {
 protected:
  std::unique_ptr<const Format> format_ = formats::MakeLinuxKernelFormat();
  ScratchDir scratch_;
};

TEST_F(LinuxKernelFormatTest, FindsTheBannerInRandomBytesAndStopsAtTheLineEnd) {
  Bytes blob = Random(5000, 1);
  const std::size_t at = blob.size();
  Append(blob, kDebianBanner);
  Append(blob, "\n");
  Append(blob, std::string_view("\0\0\0", 3));
  const Bytes tail = Random(100, 2);
  blob.insert(blob.end(), tail.begin(), tail.end());

  const auto result = ProbeAndExtract(*format_, blob, at, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_TRUE(result.chunk->transparent);
  EXPECT_EQ(result.chunk->offset, at);
  EXPECT_EQ(result.chunk->length, kDebianBanner.size());
  EXPECT_EQ(result.chunk->meta.at("kind"), "banner");
  EXPECT_EQ(result.chunk->meta.at("version"), "5.10.0-8-amd64");
  EXPECT_EQ(result.chunk->meta.at("banner"), kDebianBanner);
  EXPECT_TRUE(result.entries.empty());
}

TEST_F(LinuxKernelFormatTest, AcceptsAShortBannerEndedByNul) {
  Bytes blob;
  Append(blob, std::string_view("Linux version 2.6.36\0", 21));
  const auto chunk = format_->Probe(blob, 0);
  ASSERT_TRUE(chunk);
  EXPECT_EQ(chunk->meta.at("version"), "2.6.36");
  EXPECT_EQ(chunk->length, 20u);
}

TEST_F(LinuxKernelFormatTest, RejectsLinuxVersionWithoutANumber) {
  for (const std::string_view text :
       {"Linux version %s (%s@%s)", "Linux version unknown", "Linux version 5 (x)",
        "Linux version 5. (x)", "Linux version .4.1", "Linux version 5.4(x)", "Linux version ",
        "Linux version"}) {
    Bytes blob;
    Append(blob, text);
    EXPECT_FALSE(format_->Probe(blob, 0)) << text;
  }
}

TEST_F(LinuxKernelFormatTest, CapsTheBannerAndKeepsOnlyPrintableText) {
  Bytes blob;
  Append(blob, "Linux version 4.14.0 ");
  Append(blob, std::string(1000, 'x'));
  auto chunk = format_->Probe(blob, 0);
  ASSERT_TRUE(chunk);
  EXPECT_EQ(chunk->length, 256u);

  Bytes binary;
  Append(binary, "Linux version 4.14.0 (a");
  binary.push_back(0x01);
  Append(binary, "bc");
  chunk = format_->Probe(binary, 0);
  ASSERT_TRUE(chunk);
  EXPECT_EQ(chunk->meta.at("banner"), "Linux version 4.14.0 (a");
}

TEST_F(LinuxKernelFormatTest, DecompressesTheX86BzImageSample) {
  const auto path = testing::SharedSamplePath("linux_kernel/fact_bzImage_xz");
  if (path.empty()) GTEST_SKIP() << "shared sample linux_kernel/fact_bzImage_xz is absent";
  const Bytes image = testing::ReadFileBytes(path);
  const auto result = ProbeAndExtract(*format_, image, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  const Chunk& chunk = *result.chunk;
  EXPECT_FALSE(chunk.transparent);
  EXPECT_TRUE(chunk.issues.empty());
  EXPECT_EQ(chunk.length, image.size());
  EXPECT_EQ(chunk.meta.at("kind"), "x86_bzimage");
  EXPECT_EQ(chunk.meta.at("version"), "5.4.72");
  EXPECT_EQ(chunk.meta.at("version_string").rfind("5.4.72 (root@", 0), 0u);
  EXPECT_EQ(chunk.meta.at("boot_protocol"), "2.13");
  EXPECT_EQ(chunk.meta.at("payload_compression"), "xz");
  EXPECT_EQ(chunk.meta.at("payload_offset"), std::to_string(16896 + 105));
  EXPECT_EQ(chunk.meta.at("payload_length"), "409300");
  EXPECT_EQ(chunk.meta.at("setup_size"), "16896");

  ASSERT_TRUE(result.status) << result.status.error().ToString();
  EXPECT_TRUE(result.gaps.empty());
  ASSERT_EQ(result.entries.size(), 1u);
  const auto* vmlinux = result.Find("vmlinux");
  ASSERT_NE(vmlinux, nullptr);
  EXPECT_EQ(vmlinux->size, 1015400u);
  EXPECT_EQ(vmlinux->type, "elf");
  EXPECT_EQ(result.meta.at("version"), "5.4.72");
  EXPECT_EQ(result.meta.at("banner"),
            "Linux version 5.4.72 (root@caesurus-ubuntu20-04) (gcc version 9.3.0 (Ubuntu "
            "9.3.0-17ubuntu1~20.04)) #1 Wed Oct 21 12:51:23 EDT 2020");
  EXPECT_EQ(result.meta.at("uncompressed_size"), "1015400");
}

TEST_F(LinuxKernelFormatTest, ClipsATruncatedBzImageAndKeepsWhatDecodes) {
  const auto path = testing::SharedSamplePath("linux_kernel/fact_bzImage_xz");
  if (path.empty()) GTEST_SKIP() << "shared sample linux_kernel/fact_bzImage_xz is absent";
  Bytes image = testing::ReadFileBytes(path);
  image.resize(200000);
  const auto result = ProbeAndExtract(*format_, image, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, image.size());
  ASSERT_EQ(result.chunk->issues.size(), 1u);
  EXPECT_EQ(result.chunk->issues[0].kind, model::GapKind::kTruncated);
  ASSERT_TRUE(result.status);
  ASSERT_EQ(result.gaps.size(), 1u);
  EXPECT_EQ(result.gaps[0].kind, model::GapKind::kTruncated);
  const auto* vmlinux = result.Find("vmlinux");
  ASSERT_NE(vmlinux, nullptr);
  EXPECT_GT(vmlinux->size, 100000u);
  EXPECT_LT(vmlinux->size, 1015400u);
  // Cut inside the setup code, only the magic and the boot flag remain: not enough.
  image.resize(0x204);
  EXPECT_FALSE(format_->Probe(image, 0));
}

TEST_F(LinuxKernelFormatTest, RejectsHdrSWithoutTheBootFlagOrWithAnOddProtocol) {
  const auto path = testing::SharedSamplePath("linux_kernel/fact_bzImage_xz");
  if (path.empty()) GTEST_SKIP() << "shared sample linux_kernel/fact_bzImage_xz is absent";
  const Bytes image = testing::ReadFileBytes(path);
  Bytes no_flag = image;
  no_flag[0x1fe] = 0;
  EXPECT_FALSE(format_->Probe(no_flag, 0));
  Bytes odd_protocol = image;
  odd_protocol[0x207] = 3;
  EXPECT_FALSE(format_->Probe(odd_protocol, 0));
  // A kernel_version pointer out of range is ignored, the header is still identified.
  Bytes wild_pointer = image;
  wild_pointer[0x20e] = 0xff;
  wild_pointer[0x20f] = 0xff;
  const auto chunk = format_->Probe(wild_pointer, 0);
  ASSERT_TRUE(chunk);
  EXPECT_EQ(chunk->meta.count("version"), 0u);
}

TEST_F(LinuxKernelFormatTest, IdentifiesTheBigEndianArmZImageSample) {
  const auto path = testing::SharedSamplePath("linux_kernel/fact_zImage_be32");
  if (path.empty()) GTEST_SKIP() << "shared sample linux_kernel/fact_zImage_be32 is absent";
  const Bytes image = testing::ReadFileBytes(path);
  const auto chunk = format_->Probe(image, 0);
  ASSERT_TRUE(chunk);
  EXPECT_TRUE(chunk->transparent);
  EXPECT_EQ(chunk->meta.at("kind"), "arm_zimage");
  EXPECT_EQ(chunk->meta.at("endianness"), "big");
  // The sample is the start of a larger image: its header states 0xb64bbc bytes.
  EXPECT_EQ(chunk->meta.at("image_size"), std::to_string(0xb64bbc));
  // Only the decompressor's start is there, no payload: identified, and left to the carver.
  EXPECT_EQ(chunk->meta.at("payload"), "not found");
  EXPECT_EQ(chunk->length, image.size());
  ASSERT_EQ(chunk->issues.size(), 1u);
  EXPECT_EQ(chunk->issues[0].kind, model::GapKind::kTruncated);
}

TEST_F(LinuxKernelFormatTest, MeasuresALittleEndianZImageInsideOtherBytes) {
  Bytes zimage = Random(3000, 3);
  PutLe32(zimage, 0x24, 0x016F2818);
  PutLe32(zimage, 0x28, 0x1000);
  PutLe32(zimage, 0x2c, 0x1000 + 2000);
  Bytes blob = Random(333, 4);
  blob.insert(blob.end(), zimage.begin(), zimage.end());
  const auto chunk = format_->Probe(blob, 333);
  ASSERT_TRUE(chunk);
  EXPECT_EQ(chunk->offset, 333u);
  EXPECT_EQ(chunk->length, 2000u);
  EXPECT_EQ(chunk->meta.at("endianness"), "little");
  EXPECT_TRUE(chunk->issues.empty());

  Bytes backwards = zimage;
  PutLe32(backwards, 0x2c, 0x800);
  EXPECT_FALSE(format_->Probe(backwards, 0));
  Bytes huge = zimage;
  PutLe32(huge, 0x2c, 0xf0000000);
  EXPECT_FALSE(format_->Probe(huge, 0));
  const Bytes header_only(zimage.begin(), zimage.begin() + 0x2e);
  EXPECT_FALSE(format_->Probe(header_only, 0));
}

TEST_F(LinuxKernelFormatTest, NeverReadsPastTheEndWhenProbedAtEveryOffset) {
  Bytes blob = Random(4096, 5);
  Append(blob, "Linux version 6.1.0");
  for (std::size_t start = 0; start <= blob.size(); ++start) {
    (void)format_->Probe(blob, start);
  }
  EXPECT_TRUE(format_->Probe(blob, 4096));
}

// Finds the first node of `format` in the tree below `node`, depth first.
const model::ExtractionNode* FindNode(const model::ExtractionNode& node, std::string_view format) {
  if (node.kind == model::ExtractionNode::Kind::kChunk && node.format == format) return &node;
  for (const auto& child : node.children) {
    if (const auto* found = FindNode(child, format)) return found;
  }
  return nullptr;
}

TEST_F(LinuxKernelFormatTest, IsReportedAndTheCarverStillLooksInside) {
  // A zImage whose span holds a uImage, whose payload holds a kernel banner.
  Bytes payload = Random(2000, 6);
  Append(payload, kDebianBanner);
  payload.push_back(0);
  const Bytes more = Random(500, 7);
  payload.insert(payload.end(), more.begin(), more.end());
  Bytes uimage(64, 0);
  const auto put_be32 = [&uimage](std::size_t at, std::uint32_t value) {
    for (int i = 0; i < 4; ++i) uimage[at + i] = static_cast<std::uint8_t>(value >> (24 - 8 * i));
  };
  put_be32(0, 0x27051956);
  put_be32(12, static_cast<std::uint32_t>(payload.size()));
  put_be32(24, static_cast<std::uint32_t>(crc32_z(0, payload.data(), payload.size())));
  uimage[28] = 5;
  uimage[29] = 2;
  uimage[30] = 2;
  const std::string name = "kernel";
  std::copy(name.begin(), name.end(), uimage.begin() + 32);
  put_be32(4, static_cast<std::uint32_t>(crc32_z(0, uimage.data(), 64)));
  uimage.insert(uimage.end(), payload.begin(), payload.end());

  Bytes zimage = Random(0x100, 8);
  zimage.insert(zimage.end(), uimage.begin(), uimage.end());
  PutLe32(zimage, 0x24, 0x016F2818);
  PutLe32(zimage, 0x28, 0);
  PutLe32(zimage, 0x2c, static_cast<std::uint32_t>(zimage.size()));
  Bytes image = Random(4096, 9);
  image.insert(image.end(), zimage.begin(), zimage.end());
  const Bytes tail = Random(1000, 10);
  image.insert(image.end(), tail.begin(), tail.end());
  testing::WriteFileBytes(scratch_.path() / "image.bin", image);

  FormatList formats;
  formats.push_back(formats::MakeUimageFormat());
  formats.push_back(formats::MakeLinuxKernelFormat());
  auto unpacker = Unpacker::Create(UnpackOptions{}, &formats);
  ASSERT_TRUE(unpacker);
  auto report = unpacker->Run(scratch_.path() / "image.bin", scratch_.path() / "out");
  ASSERT_TRUE(report) << report.error().ToString();

  const auto* zimage_node = FindNode(report->tree, "linux_kernel");
  ASSERT_NE(zimage_node, nullptr);
  EXPECT_EQ(zimage_node->status, model::ChunkStatus::kIdentified);
  EXPECT_EQ(zimage_node->offset, 4096u);
  EXPECT_EQ(zimage_node->length, zimage.size());
  EXPECT_EQ(zimage_node->meta.at("kind"), "arm_zimage");

  const auto* uimage_node = FindNode(report->tree, "uimage");
  ASSERT_NE(uimage_node, nullptr);
  EXPECT_EQ(uimage_node->status, model::ChunkStatus::kExtracted);
  EXPECT_EQ(uimage_node->offset, 4096u + 0x100);
  EXPECT_EQ(uimage_node->length, uimage.size());
  const auto* banner_node = FindNode(*uimage_node, "linux_kernel");
  ASSERT_NE(banner_node, nullptr);
  EXPECT_EQ(banner_node->offset, 2000u);
  EXPECT_EQ(banner_node->meta.at("version"), "5.10.0-8-amd64");
  EXPECT_TRUE(report->gaps.empty());
}

// --- Kernels built around a payload made by the real compressors -------------------------------

namespace fs = std::filesystem;

constexpr std::string_view kArmBanner =
    "Linux version 5.10.176 (builder@buildhost) (arm-openwrt-linux-muslgnueabi-gcc (OpenWrt GCC "
    "12.3.0) 12.3.0, GNU ld (GNU Binutils) 2.40.0) #0 SMP Mon Apr 17 2023";

// A stand-in for a decompressed kernel: 1.5 MiB that compresses well, with the banner straddling
// the 1 MiB boundary where the codec layer hands output on in pieces.
Bytes FakeKernel() {
  const Bytes block = Random(4096, 21);
  Bytes kernel;
  while (kernel.size() < (std::size_t{3} << 19))
    kernel.insert(kernel.end(), block.begin(), block.end());
  const std::size_t at = (std::size_t{1} << 20) - 40;
  std::copy(kArmBanner.begin(), kArmBanner.end(), kernel.begin() + static_cast<std::ptrdiff_t>(at));
  kernel[at + kArmBanner.size()] = '\n';
  return kernel;
}

std::string Quoted(const fs::path& path) { return "'" + path.string() + "'"; }

// `data` through `command` (a compressor reading stdin), as the kernel build does, followed by
// the little-endian uncompressed size the kernel's size_append writes.
Bytes Compress(const fs::path& dir, const Bytes& data, const std::string& command) {
  testing::WriteFileBytes(dir / "in.bin", data);
  if (testing::RunCommand("cd " + Quoted(dir) + " && " + command + " < in.bin > out.bin") != 0) {
    return {};
  }
  Bytes out = testing::ReadFileBytes(dir / "out.bin");
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(data.size() >> (8 * i)));
  return out;
}

// Bytes that stand for decompressor code and never start a stream by accident.
Bytes Code(std::size_t size, std::uint32_t seed) {
  Bytes out = Random(size, seed);
  for (auto& b : out) b = static_cast<std::uint8_t>(0x30 + b % 0x40);
  return out;
}

void PutBe32(Bytes& out, std::size_t at, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) out[at + i] = static_cast<std::uint8_t>(value >> (24 - 8 * i));
}

// An ARM zImage: NOPs, a branch, the magic and the start/end addresses, a decompressor, the
// payload, then the rest of the decompressor's data.
Bytes BuildZimage(const Bytes& payload, bool big_endian) {
  Bytes image = Code(0x4000, 22);
  image.insert(image.end(), payload.begin(), payload.end());
  const Bytes tail = Code(300, 23);
  image.insert(image.end(), tail.begin(), tail.end());
  const auto put = [&](std::size_t at, std::uint32_t value) {
    big_endian ? PutBe32(image, at, value) : PutLe32(image, at, value);
  };
  for (std::size_t at = 0; at < 0x20; at += 4) put(at, 0xe1a00000);
  put(0x20, 0xea000002);
  put(0x24, 0x016F2818);
  put(0x28, 0);
  put(0x2c, static_cast<std::uint32_t>(image.size()));
  return image;
}

// An x86 bzImage: boot sector and setup (setup_sects = 4), then the protected-mode part with the
// payload `gap` bytes in. Protocol 2.08 and later point at the payload; older ones do not.
Bytes BuildBzImage(const Bytes& payload, std::uint16_t protocol, std::size_t gap = 0x200) {
  const std::size_t setup = 5 * 512;
  Bytes image = Code(setup, 24);
  const Bytes head = Code(gap, 25);
  image.insert(image.end(), head.begin(), head.end());
  image.insert(image.end(), payload.begin(), payload.end());
  const Bytes tail = Code(1000, 26);
  image.insert(image.end(), tail.begin(), tail.end());
  while (image.size() % 16 != 0) image.push_back(0);
  image[0x1f1] = 4;
  PutLe32(image, 0x1f4, static_cast<std::uint32_t>((image.size() - setup) / 16));
  image[0x1fe] = 0x55;
  image[0x1ff] = 0xaa;
  std::copy_n("HdrS", 4, image.begin() + 0x202);
  image[0x206] = static_cast<std::uint8_t>(protocol);
  image[0x207] = static_cast<std::uint8_t>(protocol >> 8);
  image[0x20e] = 0;
  image[0x20f] = 0;
  if (protocol >= 0x0208) {
    PutLe32(image, 0x248, static_cast<std::uint32_t>(gap));
    PutLe32(image, 0x24c, static_cast<std::uint32_t>(payload.size()));
  }
  return image;
}

struct Compressor {
  std::string_view name;
  std::string command;
};

const std::vector<Compressor>& Compressors() {
  static const std::vector<Compressor> list = {
      {"gzip", "gzip -9 -n -c"},  {"xz", "xz --check=crc32 --arm --lzma2=dict=1MiB -c"},
      {"lzma", "lzma -9 -c"},     {"lzo", "lzop -9 -c"},
      {"lz4", "lz4 -l -9 -q -c"}, {"zstd", "zstd -19 -q -c"},
      {"bzip2", "bzip2 -9 -c"},
  };
  return list;
}

TEST_F(LinuxKernelFormatTest, FindsAndDecompressesTheZImagePayloadOfEveryCodecInBothByteOrders) {
  const Bytes kernel = FakeKernel();
  for (const Compressor& compressor : Compressors()) {
    const Bytes payload = Compress(scratch_.path(), kernel, compressor.command);
    ASSERT_FALSE(payload.empty()) << compressor.name;
    for (const bool big_endian : {false, true}) {
      SCOPED_TRACE(std::string(compressor.name) + (big_endian ? " big" : " little"));
      const Bytes zimage = BuildZimage(payload, big_endian);
      Bytes blob = Random(777, 27);
      blob.insert(blob.end(), zimage.begin(), zimage.end());
      ScratchDir scratch;
      const auto result = ProbeAndExtract(*format_, blob, 777, scratch);
      ASSERT_TRUE(result.chunk);
      EXPECT_FALSE(result.chunk->transparent);
      EXPECT_EQ(result.chunk->length, zimage.size());
      EXPECT_EQ(result.chunk->meta.at("kind"), "arm_zimage");
      EXPECT_EQ(result.chunk->meta.at("payload_compression"), compressor.name);
      EXPECT_EQ(result.chunk->meta.at("payload_offset"), "16384");
      ASSERT_TRUE(result.status) << result.status.error().ToString();
      EXPECT_TRUE(result.gaps.empty()) << result.gaps[0].reason;
      EXPECT_EQ(result.Read("vmlinux"), kernel);
      EXPECT_EQ(result.meta.at("version"), "5.10.176");
      EXPECT_EQ(result.meta.at("banner"), kArmBanner);
      EXPECT_EQ(result.meta.at("uncompressed_size"), std::to_string(kernel.size()));
    }
  }
}

TEST_F(LinuxKernelFormatTest, DecompressesTheBzImagePayloadOfEveryCodec) {
  const Bytes kernel = FakeKernel();
  for (const Compressor& compressor : Compressors()) {
    SCOPED_TRACE(compressor.name);
    const Bytes payload = Compress(scratch_.path(), kernel, compressor.command);
    ASSERT_FALSE(payload.empty());
    const Bytes image = BuildBzImage(payload, 0x020f);
    ScratchDir scratch;
    const auto result = ProbeAndExtract(*format_, image, 0, scratch);
    ASSERT_TRUE(result.chunk);
    EXPECT_FALSE(result.chunk->transparent);
    EXPECT_EQ(result.chunk->length, image.size());
    EXPECT_EQ(result.chunk->meta.at("payload_compression"), compressor.name);
    EXPECT_EQ(result.chunk->meta.at("payload_offset"), std::to_string(5 * 512 + 0x200));
    ASSERT_TRUE(result.status);
    EXPECT_TRUE(result.gaps.empty()) << result.gaps[0].reason;
    EXPECT_EQ(result.Read("vmlinux"), kernel);
    EXPECT_EQ(result.meta.at("version"), "5.10.176");
  }
}

TEST_F(LinuxKernelFormatTest, SearchesOldBzImagesWithoutAPayloadPointer) {
  const Bytes kernel = FakeKernel();
  const Bytes payload = Compress(scratch_.path(), kernel, "gzip -9 -n -c");
  const Bytes image = BuildBzImage(payload, 0x0206, 0x1234);
  const auto result = ProbeAndExtract(*format_, image, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->meta.at("boot_protocol"), "2.6");
  EXPECT_EQ(result.chunk->meta.at("payload_offset"), std::to_string(5 * 512 + 0x1234));
  ASSERT_TRUE(result.status);
  EXPECT_EQ(result.Read("vmlinux"), kernel);
}

TEST_F(LinuxKernelFormatTest, CopiesAnUncompressedBzImagePayload) {
  const Bytes elf = testing::ReadFileBytes("/bin/busybox");
  ASSERT_GT(elf.size(), 100000u);
  const Bytes payload(elf.begin(), elf.begin() + 100000);
  const Bytes image = BuildBzImage(payload, 0x020f);
  const auto result = ProbeAndExtract(*format_, image, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->meta.at("payload_compression"), "none");
  ASSERT_TRUE(result.status);
  EXPECT_EQ(result.Read("vmlinux"), payload);
}

TEST_F(LinuxKernelFormatTest, SkipsAMagicThatDoesNotStartAStream) {
  const Bytes kernel = FakeKernel();
  Bytes payload = {0x1f, 0x8b, 0x08, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x03, 0xff, 0xff};
  const Bytes real = Compress(scratch_.path(), kernel, "gzip -9 -n -c");
  payload.insert(payload.end(), real.begin(), real.end());
  const auto result = ProbeAndExtract(*format_, BuildZimage(payload, false), 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->meta.at("payload_offset"), std::to_string(0x4000 + 12));
  ASSERT_TRUE(result.status);
  EXPECT_EQ(result.Read("vmlinux"), kernel);
}

TEST_F(LinuxKernelFormatTest, KeepsTheDecodedPartOfATruncatedZImage) {
  const Bytes kernel = FakeKernel();
  const Bytes payload = Compress(scratch_.path(), kernel, "xz --check=crc32 -c");
  const Bytes zimage = BuildZimage(payload, false);
  const Bytes cut(zimage.begin(),
                  zimage.begin() + 0x4000 + static_cast<std::ptrdiff_t>(payload.size() / 2));
  const auto result = ProbeAndExtract(*format_, cut, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, cut.size());
  ASSERT_EQ(result.chunk->issues.size(), 1u);
  EXPECT_EQ(result.chunk->issues[0].kind, model::GapKind::kTruncated);
  ASSERT_TRUE(result.status);
  ASSERT_EQ(result.gaps.size(), 1u);
  EXPECT_EQ(result.gaps[0].kind, model::GapKind::kTruncated);
  const Bytes part = result.Read("vmlinux");
  ASSERT_FALSE(part.empty());
  EXPECT_LT(part.size(), kernel.size());
  EXPECT_TRUE(std::equal(part.begin(), part.end(), kernel.begin()));
}

TEST_F(LinuxKernelFormatTest, TurnsADamagedPayloadIntoACorruptGap) {
  const Bytes kernel = FakeKernel();
  Bytes payload = Compress(scratch_.path(), kernel, "gzip -9 -n -c");
  for (std::size_t i = payload.size() / 2; i < payload.size() / 2 + 64; ++i) payload[i] ^= 0x5a;
  const auto result = ProbeAndExtract(*format_, BuildZimage(payload, false), 0, scratch_);
  ASSERT_TRUE(result.chunk);
  ASSERT_TRUE(result.status);
  ASSERT_EQ(result.gaps.size(), 1u);
  EXPECT_EQ(result.gaps[0].kind, model::GapKind::kCorrupt);
  EXPECT_NE(result.gaps[0].reason.find("gzip kernel payload"), std::string::npos);
  EXPECT_NE(result.Find("vmlinux"), nullptr);
}

TEST_F(LinuxKernelFormatTest, ReadsADebianKernelIfTheMachineHasOne) {
  std::vector<fs::path> kernels;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/boot", ec)) {
    if (entry.path().filename().string().rfind("vmlinuz-", 0) == 0) kernels.push_back(entry.path());
  }
  if (kernels.empty()) GTEST_SKIP() << "no /boot/vmlinuz-* on this machine";
  const Bytes image = testing::ReadFileBytes(kernels.front());
  const auto result = ProbeAndExtract(*format_, image, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->meta.at("kind"), "x86_bzimage");
  ASSERT_TRUE(result.status);
  EXPECT_TRUE(result.gaps.empty());
  EXPECT_EQ(result.Find("vmlinux")->type, "elf");
  EXPECT_EQ(result.meta.at("version"), result.chunk->meta.at("version"));
}

TEST_F(LinuxKernelFormatTest, SurvivesRandomBytesAroundPlantedMagics) {
  Bytes noise = Random(1 << 17, 28);
  for (std::size_t at = 0; at + 0x300 < noise.size(); at += 4099) {
    switch ((at / 4099) % 3) {
      case 0:
        PutLe32(noise, at + 0x24, 0x016F2818);
        PutLe32(noise, at + 0x28, 0);
        PutLe32(noise, at + 0x2c, 0x3000);
        break;
      case 1:
        std::copy_n("HdrS", 4, noise.begin() + static_cast<std::ptrdiff_t>(at + 0x202));
        noise[at + 0x1fe] = 0x55;
        noise[at + 0x1ff] = 0xaa;
        noise[at + 0x206] = 0x0f;
        noise[at + 0x207] = 0x02;
        break;
      default:
        std::copy_n("\x1f\x8b\x08\x00", 4, noise.begin() + static_cast<std::ptrdiff_t>(at + 0x100));
        std::copy_n(
            "\xfd"
            "7zXZ",
            5, noise.begin() + static_cast<std::ptrdiff_t>(at + 0x200));
        break;
    }
  }
  for (std::size_t start = 0; start < noise.size(); start += 4099) {
    ScratchDir scratch;
    const auto result = ProbeAndExtract(*format_, noise, start, scratch);
    if (result.chunk && !result.chunk->transparent) {
      EXPECT_LE(result.chunk->offset + result.chunk->length, noise.size());
    }
  }
}

TEST(KernelBanner, FindsABannerSplitAcrossPiecesOfAnySize) {
  const Bytes kernel = FakeKernel();
  for (const std::size_t piece : {std::size_t{1}, std::size_t{7}, std::size_t{255},
                                  std::size_t{256}, std::size_t{4096}, kernel.size()}) {
    formats::linux_kernel::BannerScanner scanner;
    for (std::size_t at = 0; at < kernel.size(); at += piece) {
      scanner.Feed(ByteView(kernel).subspan(at, std::min(piece, kernel.size() - at)));
    }
    scanner.Finish();
    ASSERT_TRUE(scanner.banner()) << piece;
    EXPECT_EQ(scanner.banner()->line, kArmBanner) << piece;
  }
  // A banner at the very end of the stream, cut by it, is still the banner as far as it goes.
  formats::linux_kernel::BannerScanner tail;
  Bytes text = Random(1000, 29);
  Append(text, "Linux version 4.4.0 (x)");
  tail.Feed(text);
  tail.Finish();
  ASSERT_TRUE(tail.banner());
  EXPECT_EQ(tail.banner()->version, "4.4.0");
}

TEST(LzopStream, DecodesWhatLzopWritesAndNoticesDamage) {
  ScratchDir scratch;
  const Bytes data = FakeKernel();
  testing::WriteFileBytes(scratch.path() / "in.bin", data);
  ASSERT_EQ(testing::RunCommand("cd " + Quoted(scratch.path()) +
                                " && lzop -9 -c in.bin > file.lzo && lzop -1 --crc32 -c < "
                                "in.bin > stdin.lzo"),
            0);
  for (const char* name : {"file.lzo", "stdin.lzo"}) {
    Bytes stream = testing::ReadFileBytes(scratch.path() / name);
    Bytes out;
    const codec::Output collect = [&out](ByteView bytes) {
      out.insert(out.end(), bytes.begin(), bytes.end());
      return Ok();
    };
    auto result = formats::linux_kernel::DecodeLzop(stream, collect);
    EXPECT_TRUE(result.complete) << name << ": " << result.problem;
    EXPECT_EQ(result.consumed, stream.size());
    EXPECT_EQ(out, data);

    stream[stream.size() / 2] ^= 0x01;
    out.clear();
    result = formats::linux_kernel::DecodeLzop(stream, collect);
    EXPECT_FALSE(result.complete) << name;
    EXPECT_EQ(result.stop, codec::Stop::kCorrupt) << name;

    const Bytes cut(stream.begin(), stream.begin() + 40);
    result = formats::linux_kernel::DecodeLzop(cut, collect);
    EXPECT_EQ(result.stop, codec::Stop::kTruncated) << name;
  }
}

TEST(LinuxKernelFormat, ReplaysItsFuzzCorpus) {
  const auto format = formats::MakeLinuxKernelFormat();
  const fs::path corpus = fs::path(IOTMARK_SOURCE_DIR) / "fuzz" / "corpus" / "linux_kernel";
  std::size_t seeds = 0;
  std::size_t kernels = 0;
  for (const auto& file : fs::directory_iterator(corpus)) {
    const Bytes blob = testing::ReadFileBytes(file.path());
    for (std::size_t start = 0; start < blob.size(); start += 1) {
      const auto chunk = format->Probe(blob, start);
      if (!chunk || chunk->transparent) continue;
      ScratchDir scratch;
      const auto result = ProbeAndExtract(*format, blob, start, scratch);
      if (result.meta.count("version") != 0 && result.meta.at("version") == "4.14.221") ++kernels;
    }
    ++seeds;
  }
  EXPECT_GE(seeds, 6u);
  // zimage_gzip.bin and bzimage_lzop.bin carry a whole (small) kernel.
  EXPECT_EQ(kernels, 2u);
}

TEST(LinuxKernelFormat, SurvivesRandomDamageToKernelsWithPayloads) {
  const auto format = formats::MakeLinuxKernelFormat();
  const fs::path corpus = fs::path(IOTMARK_SOURCE_DIR) / "fuzz" / "corpus" / "linux_kernel";
  std::uint32_t x = 4242;
  const auto next = [&x] {
    x = x * 1103515245u + 12345u;
    return x >> 8;
  };
  for (const char* name : {"zimage_gzip.bin", "bzimage_lzop.bin"}) {
    const Bytes seed = testing::ReadFileBytes(corpus / name);
    ASSERT_FALSE(seed.empty()) << name;
    for (int round = 0; round < 300; ++round) {
      Bytes image = seed;
      const int flips = 1 + static_cast<int>(next() % 6);
      for (int i = 0; i < flips; ++i) {
        // Half the damage lands in the headers, half anywhere.
        const std::size_t at = (i % 2 == 0) ? next() % 0x800 : next() % image.size();
        image[at] ^= static_cast<std::uint8_t>(1 + next() % 255);
      }
      if (round % 7 == 0) image.resize(next() % image.size());
      ScratchDir scratch;
      const auto result = ProbeAndExtract(*format, image, 0, scratch);
      if (!result.chunk) continue;
      EXPECT_LE(result.chunk->length, image.size());
      for (const auto& entry : result.entries) EXPECT_EQ(entry.path, "vmlinux");
    }
  }
}

}  // namespace
}  // namespace iotmark::unpack
