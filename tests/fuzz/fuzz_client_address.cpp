// --trusted-proxies and X-Forwarded-For (daemon/auth/client_address.cpp):
// the first line is the proxy list, the second the header. The client
// found is always the peer or one of the header's addresses.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "auth/client_address.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const size_t nl = text.find('\n');
  const std::string spec = text.substr(0, nl), header = nl == std::string::npos ? "" : text.substr(nl + 1);
  std::string error;
  auto proxies = mirage::auth::TrustedProxies::parse(spec, &error);
  if (!proxies) return 0;
  const std::string peer = "10.1.2.3";
  const std::string client = proxies->client(peer, header);
  if (client != peer && header.find(client) == std::string::npos) std::abort();
  return 0;
}
