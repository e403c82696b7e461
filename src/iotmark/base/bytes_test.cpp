#include "iotmark/base/bytes.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace iotmark {
namespace {

TEST(Bytes, LoadsRefuseToReadPastTheEnd) {
  const std::vector<std::uint8_t> data = {1, 2, 3};
  EXPECT_EQ(LoadLe<std::uint16_t>(data, 1), 0x0302);
  EXPECT_EQ(LoadBe<std::uint16_t>(data, 1), 0x0203);
  EXPECT_FALSE(LoadLe<std::uint32_t>(data, 0).has_value());
  EXPECT_FALSE(LoadBe<std::uint16_t>(data, 2).has_value());
  EXPECT_FALSE(LoadBe<std::uint16_t>(data, 99).has_value());
}

TEST(Bytes, ReaderFailsStickily) {
  const std::vector<std::uint8_t> data = {0x12, 0x34, 0x56};
  ByteReader reader(data, ByteReader::Order::kBig);
  EXPECT_EQ(reader.Read<std::uint16_t>(), 0x1234);
  EXPECT_TRUE(reader.ok());
  EXPECT_EQ(reader.Read<std::uint16_t>(), 0);
  EXPECT_FALSE(reader.ok());
  EXPECT_EQ(reader.Read<std::uint8_t>(), 0);
  EXPECT_FALSE(reader.ok());
}

TEST(Bytes, EntropyOfUniformAndConstantData) {
  std::vector<std::uint8_t> all(256 * 16);
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint8_t>(i);
  EXPECT_DOUBLE_EQ(Entropy(all), 8.0);
  EXPECT_DOUBLE_EQ(Entropy(std::vector<std::uint8_t>(100, 7)), 0.0);
}

TEST(Bytes, PaddingAndOffsetsRender) {
  EXPECT_TRUE(IsFilledWith(std::vector<std::uint8_t>(64, 0xff), 0xff));
  EXPECT_FALSE(IsFilledWith(std::vector<std::uint8_t>{0xff, 0xfe}, 0xff));
  EXPECT_EQ(HexOffset(0), "0x0");
  EXPECT_EQ(HexOffset(0x10000), "0x10000");
}

}  // namespace
}  // namespace iotmark
