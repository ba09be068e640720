// The config-file parser (daemon/config.cpp): any text, no crash; what it
// accepts applies to a Config or is refused with a sentence.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::map<std::string, std::string> values;
  if (auto error = mirage::parse_config_text(text, "fuzz.conf", &values)) {
    if (error->rfind("fuzz.conf:", 0) != 0) std::abort();  // errors name the file and line
    return 0;
  }
  mirage::Config config;
  (void)mirage::apply_config_values(values, &config);
  return 0;
}
