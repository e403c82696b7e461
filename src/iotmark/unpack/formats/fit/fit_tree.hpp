// What a U-Boot FIT image says about itself: the images under /images (where their data lies,
// their hash and signature nodes), the configurations under /configurations, and the facts worth
// reporting about both. Read from an FdtBlob; no bytes outside the tree are touched here.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "iotmark/base/bytes.hpp"
#include "iotmark/unpack/formats/fit/fdt_blob.hpp"

namespace iotmark::unpack::formats::fit {

// Real FIT images carry a kernel, a ramdisk and up to a few hundred device trees; more than this
// many nodes is not worth a line each in the report.
inline constexpr std::size_t kMaxImages = 512;
inline constexpr std::size_t kMaxConfigurations = 512;
// hash-1, hash-2 ... and signature-1 ...; U-Boot itself never writes more than a handful.
inline constexpr std::size_t kMaxChecks = 16;

struct FitHash {
  std::string algo;
  std::vector<std::uint8_t> value;
};

struct FitSignature {
  std::string algo;           // "sha256,rsa2048"
  std::string key_name_hint;  // which key signed it
  std::string signed_images;  // configurations: "fdt,kernel,ramdisk"
  bool has_value = false;     // declared in the .its but never signed when false
};

struct FitImage {
  std::string node;  // the node's own name, as printable text
  std::string description, type, arch, os, compression;
  std::optional<std::uint64_t> load, entry;
  // Where the data lies, counted from the start of the FIT (embedded data lies inside the tree).
  bool has_data = false;
  bool external = false;
  std::uint64_t data_offset = 0;
  std::uint64_t data_size = 0;
  std::vector<FitHash> hashes;
  std::vector<FitSignature> signatures;
  std::string cipher;        // an encrypted image names its cipher ("aes256")
  bool more_checks = false;  // more hash/signature nodes than kMaxChecks
};

struct FitConfiguration {
  std::string node;
  std::string description, kernel, fdt, ramdisk, loadables, firmware;
  std::vector<FitSignature> signatures;
};

struct FitTree {
  bool is_fit = false;  // has /images; otherwise a plain device tree
  std::string description;
  std::optional<std::uint64_t> timestamp;
  std::vector<FitImage> images;
  bool more_images = false;
  std::string default_configuration;
  std::vector<FitConfiguration> configurations;
  bool more_configurations = false;
  // A plain tree: what board it describes, and U-Boot's verification keys if it is U-Boot's
  // control tree (/signature/key-*), which decide whether signed FIT images are enforced.
  std::string model, compatible;
  std::vector<std::string> verification_keys;
  // Where the tree's external data ends (the tree itself if all data is embedded).
  std::uint64_t extent = 0;
};

// Reads the FIT structure (or the identity of a plain tree) from `fdt`.
FitTree ReadFitTree(const FdtBlob& fdt);

// The facts the report shows for `tree`, as flat keys: "kind", "image.<node>.type",
// "configuration.<node>.kernel", "signature", ...
std::map<std::string, std::string> DescribeFitTree(const FitTree& tree);

}  // namespace iotmark::unpack::formats::fit
