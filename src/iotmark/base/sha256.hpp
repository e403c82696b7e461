// Incremental SHA-256 (OpenSSL), so files are hashed while they are written.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "iotmark/base/bytes.hpp"

namespace iotmark {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(ByteView bytes);
  // Lower-case hex digest; the object is reset afterwards.
  std::string FinishHex();

  static std::string Hex(ByteView bytes);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace iotmark
