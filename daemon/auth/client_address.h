// Who is calling: the peer's address, or, when the peer is a reverse proxy
// we trust (--trusted-proxies), the address that proxy says it forwarded
// for. Rate limits and connection caps key on this; behind nginx every
// request would otherwise come from one address and share one limit.
//
// X-Forwarded-For is "client, proxy1, proxy2"; each proxy appends the
// address it received from. Only the entries our own trusted proxies added
// are believable, so the client is the rightmost entry that is not a
// trusted proxy (anything left of it may be forged by the client).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mirage::auth {

class TrustedProxies {
 public:
  // "10.0.0.0/8, 127.0.0.1, ::1/128" (CIDRs or plain addresses, IPv4 or
  // IPv6, comma-separated); empty trusts nobody. nullopt and |error| on a
  // malformed entry.
  static std::optional<TrustedProxies> parse(const std::string& spec, std::string* error);

  bool empty() const { return nets_.empty(); }
  bool contains(const std::string& address) const;
  // The address to treat as the client's (see above). |forwarded_for| is
  // the X-Forwarded-For header ("" when absent).
  std::string client(const std::string& peer, const std::string& forwarded_for) const;

 private:
  struct Net {
    std::array<uint8_t, 16> bytes{};  // IPv4 as ::ffff:a.b.c.d
    int prefix = 0;                   // in bits of the 128
  };
  std::vector<Net> nets_;
};

// The 16-byte form of an IPv4 or IPv6 address (IPv4 mapped into ::ffff:0:0/96);
// nullopt when |text| is neither.
std::optional<std::array<uint8_t, 16>> parse_ip(const std::string& text);

}  // namespace mirage::auth
