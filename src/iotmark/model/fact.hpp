// Fact: a named, typed observation an analyzer declares and emits ("services.telnet_enabled",
// "elf.without_nx_count"). Catalogs refer to facts by name; the value is plain JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "iotmark/model/evidence.hpp"

namespace iotmark::model {

enum class FactType { kBoolean, kInteger, kNumber, kString, kList, kObject };

std::string_view ToString(FactType type);

// What an analyzer promises to emit: the name, its type and what it means.
struct FactSpec {
  std::string_view name;
  FactType type = FactType::kBoolean;
  std::string_view description;
};

struct Fact {
  std::string name;
  nlohmann::json value;
  std::vector<Evidence> evidence;  // where the value comes from (may be empty for "none found")
};

// True when `value` has the JSON shape `type` asks for.
bool Conforms(const nlohmann::json& value, FactType type);

}  // namespace iotmark::model
