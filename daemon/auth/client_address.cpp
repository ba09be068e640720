#include "client_address.h"

#include <arpa/inet.h>

#include <cstring>
#include <sstream>

namespace mirage::auth {

namespace {

std::string trim(std::string s) {
  s.erase(0, s.find_first_not_of(" \t"));
  s.erase(s.find_last_not_of(" \t") + 1);
  return s;
}

}  // namespace

std::optional<std::array<uint8_t, 16>> parse_ip(const std::string& raw) {
  std::string text = raw;
  // "[::1]" as some proxies write IPv6.
  if (text.size() > 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  std::array<uint8_t, 16> out{};
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    out[10] = out[11] = 0xFF;
    std::memcpy(out.data() + 12, &v4, 4);
    return out;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    std::memcpy(out.data(), &v6, 16);
    return out;
  }
  return std::nullopt;
}

std::optional<TrustedProxies> TrustedProxies::parse(const std::string& spec, std::string* error) {
  TrustedProxies proxies;
  std::stringstream in(spec);
  for (std::string item; std::getline(in, item, ',');) {
    item = trim(item);
    if (item.empty()) continue;
    const auto slash = item.find('/');
    const std::string address = item.substr(0, slash);
    auto ip = parse_ip(address);
    if (!ip) {
      *error = "'trusted_proxies' entry '" + item + "' is not an IP address or CIDR";
      return std::nullopt;
    }
    const bool v4 = address.find(':') == std::string::npos;
    Net net;
    net.bytes = *ip;
    net.prefix = 128;
    if (slash != std::string::npos) {
      const std::string bits = item.substr(slash + 1);
      char* end = nullptr;
      const long n = std::strtol(bits.c_str(), &end, 10);
      const long max = v4 ? 32 : 128;
      if (bits.empty() || *end != '\0' || n < 0 || n > max) {
        *error = "'trusted_proxies' entry '" + item + "' has a prefix length that is not 0 to " + std::to_string(max);
        return std::nullopt;
      }
      net.prefix = int(v4 ? n + 96 : n);
    }
    proxies.nets_.push_back(net);
  }
  return proxies;
}

bool TrustedProxies::contains(const std::string& address) const {
  auto ip = parse_ip(address);
  if (!ip) return false;
  for (const Net& net : nets_) {
    int bits = net.prefix;
    bool match = true;
    for (int i = 0; i < 16 && bits > 0 && match; ++i, bits -= 8) {
      const uint8_t mask = bits >= 8 ? 0xFF : uint8_t(0xFF << (8 - bits));
      match = ((*ip)[size_t(i)] & mask) == (net.bytes[size_t(i)] & mask);
    }
    if (match) return true;
  }
  return false;
}

std::string TrustedProxies::client(const std::string& peer, const std::string& forwarded_for) const {
  if (forwarded_for.empty() || !contains(peer)) return peer;
  std::vector<std::string> hops;
  std::stringstream in(forwarded_for);
  for (std::string item; std::getline(in, item, ',');) hops.push_back(trim(item));
  std::string client = peer;
  for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
    if (!parse_ip(*it)) break;  // garbage: trust nothing further left
    client = *it;
    if (!contains(*it)) break;
  }
  return client;
}

}  // namespace mirage::auth
