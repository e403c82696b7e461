#include "iotmark/base/data_store.hpp"

#include <fstream>
#include <sstream>

#include "iotmark/base/sha256.hpp"

namespace iotmark {

namespace {

constexpr std::uintmax_t kMaxDataFileSize = 256ULL << 20;

bool Escapes(std::string_view relative) {
  if (relative.empty() || relative.front() == '/') return true;
  std::size_t start = 0;
  while (start <= relative.size()) {
    const auto end = std::min(relative.find('/', start), relative.size());
    if (relative.substr(start, end - start) == "..") return true;
    start = end + 1;
  }
  return false;
}

}  // namespace

Result<std::string> DataStore::Read(std::string_view relative) const {
  if (Escapes(relative)) {
    return Fail(ErrorCode::kInvalidArgument,
                "data file name must be relative and stay inside the data directory: " +
                    std::string(relative));
  }
  const auto path = root_ / std::string(relative);
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec)
    return Fail(ErrorCode::kNotFound,
                "cannot read data file " + path.string() + ": " + ec.message());
  if (size > kMaxDataFileSize) {
    return Fail(ErrorCode::kLimitExceeded,
                "data file " + path.string() + " is larger than 256 MiB");
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof())
    return Fail(ErrorCode::kIo, "cannot read data file " + path.string());
  std::string content = std::move(text).str();
  const auto digest = Sha256::Hex(AsBytes(content));
  std::lock_guard lock(mutex_);
  loaded_[std::string(relative)] = digest;
  return content;
}

Result<std::string> DataStore::LoadText(std::string_view relative) const { return Read(relative); }

Result<YAML::Node> DataStore::LoadYaml(std::string_view relative) const {
  auto text = Read(relative);
  if (!text) return tl::unexpected(text.error());
  try {
    return YAML::Load(*text);
  } catch (const YAML::Exception& e) {
    return Fail(ErrorCode::kCorruptInput, std::string(relative) + ":" +
                                              std::to_string(e.mark.line + 1) + ":" +
                                              std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
}

std::map<std::string, std::string> DataStore::Loaded() const {
  std::lock_guard lock(mutex_);
  return loaded_;
}

std::string YamlWhere(const std::string& file, const YAML::Node& node) {
  const auto mark = node.Mark();
  return file + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

}  // namespace iotmark
