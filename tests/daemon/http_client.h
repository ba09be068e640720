// A minimal HTTP/1.1 client over a real socket (loopback, or a test's own
// network namespace), for API tests:
// one request per connection, the whole response read back.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

namespace mirage::test {

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

// With MIRAGE_HTTP_RECORD=FILE every response to an /api/ request is
// appended to FILE as one JSON line {method, path, query, status,
// content_type, body, request_body} (FILE is emptied at the first one of the
// process): tests/openapi/check.mjs then checks each against
// docs/openapi.yaml, and tests/tools/check_log_secrets.py greps the
// daemon's log of the run (FILE.log, api_fixture.h) for every password,
// token and key in them, and for those record_secret() names.
inline void record_line(const std::string& json) {
  static const char* file = std::getenv("MIRAGE_HTTP_RECORD");
  if (!file || !*file) return;
  static std::mutex mutex;
  static bool emptied = false;
  std::lock_guard<std::mutex> lock(mutex);
  FILE* out = std::fopen(file, emptied ? "a" : "w");
  if (!out) return;
  emptied = true;
  std::fprintf(out, "%s\n", json.c_str());
  std::fclose(out);
}

// A secret the test gave the daemon some other way (a Stripe key).
inline void record_secret(const std::string& secret) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("secret");
  w.String(secret.c_str(), rapidjson::SizeType(secret.size()));
  w.EndObject();
  record_line(buffer.GetString());
}

inline void record_exchange(const std::string& method, const std::string& target, const HttpResponse& r,
                            const std::string& request_body) {
  if (target.rfind("/api/", 0) != 0 || r.status == 0) return;
  const auto q = target.find('?');
  auto ct = r.headers.find("content-type");
  auto request_id = r.headers.find("x-request-id");
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  auto str = [&](const char* key, const std::string& value) {
    w.Key(key);
    w.String(value.c_str(), rapidjson::SizeType(value.size()));
  };
  w.StartObject();
  str("method", method);
  str("path", target.substr(0, q));
  str("query", q == std::string::npos ? "" : target.substr(q + 1));
  w.Key("status");
  w.Int(r.status);
  str("content_type", ct == r.headers.end() ? "" : ct->second);
  str("body", r.body);
  str("request_id", request_id == r.headers.end() ? "" : request_id->second);
  str("request_body", request_body.substr(0, 64 << 10));  // secrets sit in small bodies
  w.EndObject();
  record_line(buffer.GetString());
}

// To |host| (an IPv4 address: loopback, or a test's own network namespace).
inline HttpResponse http_at(const std::string& host, uint16_t port, const std::string& method, const std::string& path,
                            const std::string& body = "", const std::map<std::string, std::string>& headers = {}) {
  HttpResponse r;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return r;
  }
  std::string request = method + " " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n";
  for (const auto& [k, v] : headers) request += k + ": " + v + "\r\n";
  if (!body.empty() || method == "POST" || method == "PATCH") {
    if (!headers.count("Content-Type")) request += "Content-Type: application/json\r\n";
    request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  request += "\r\n" + body;
  for (size_t sent = 0; sent < request.size();) {
    ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += size_t(n);
  }
  timeval timeout{10, 0};  // a hung server fails the test instead of hanging it
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string raw;
  char buf[65536];
  for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) {
    raw.append(buf, size_t(n));
    // Stop once the whole body is in, whether or not the server closes.
    auto end = raw.find("\r\n\r\n");
    if (end == std::string::npos) continue;
    std::string head = raw.substr(0, end);
    for (char& c : head) c = char(tolower(c));
    auto cl = head.find("content-length:");
    if (cl != std::string::npos && raw.size() >= end + 4 + std::stoul(head.substr(cl + 15))) break;
  }
  close(fd);
  auto header_end = raw.find("\r\n\r\n");
  if (raw.size() < 12 || header_end == std::string::npos) return r;
  r.status = std::stoi(raw.substr(9, 3));
  size_t pos = raw.find("\r\n") + 2;
  while (pos < header_end) {
    size_t eol = raw.find("\r\n", pos);
    std::string line = raw.substr(pos, eol - pos);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      for (char& c : name) c = char(tolower(c));
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      r.headers[name] = value;
    }
    pos = eol + 2;
  }
  r.body = raw.substr(header_end + 4);
  record_exchange(method, path, r, body);
  return r;
}

inline HttpResponse http(uint16_t port, const std::string& method, const std::string& path,
                         const std::string& body = "", const std::map<std::string, std::string>& headers = {}) {
  return http_at("127.0.0.1", port, method, path, body, headers);
}

// A TCP connection to 127.0.0.1:|port| from the loopback address |from|
// (127.0.0.2, ... are loopback too: distinct clients to the server's limits);
// -1 on failure.
inline int connect_from(const std::string& from, uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  inet_pton(AF_INET, from.c_str(), &local.sin_addr);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Sends |bytes| as they are and reads until the server closes, |timeout_ms|
// passes or |limit| bytes came. What came back, possibly nothing.
inline std::string raw_exchange(int fd, const std::string& bytes, int timeout_ms = 5000, size_t limit = 1 << 20) {
  for (size_t sent = 0; sent < bytes.size();) {
    ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may close early: what it said is still readable
    sent += size_t(n);
  }
  timeval timeout{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string out;
  char buf[65536];
  for (ssize_t n; out.size() < limit && (n = recv(fd, buf, sizeof buf, 0)) > 0;) {
    out.append(buf, size_t(n));
    // One whole response is enough (the server may keep the connection).
    const auto end = out.find("\r\n\r\n");
    if (end == std::string::npos) continue;
    std::string head = out.substr(0, end);
    for (char& c : head) c = char(tolower(c));
    const auto cl = head.find("content-length:");
    if (cl != std::string::npos && out.size() >= end + 4 + std::stoul(head.substr(cl + 15))) break;
  }
  return out;
}

// The status code of a raw HTTP response, or 0.
inline int status_of(const std::string& response) {
  return response.rfind("HTTP/1.", 0) == 0 && response.size() >= 12 ? std::stoi(response.substr(9, 3)) : 0;
}

}  // namespace mirage::test
