// A local fake of Stripe's REST API for the payment tests: it speaks the
// wire format of POST /v1/checkout/sessions (form-encoded in, JSON out,
// Stripe's error shape), records every request, and can fail on purpose.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace mirage::test {

class FakeStripe {
 public:
  enum class Mode { kOk, kCardError, kServerErrorOnce, kHang };

  struct Request {
    std::string method, path;
    std::map<std::string, std::string> headers;  // lower-case names
    std::map<std::string, std::string> form;     // decoded
  };

  FakeStripe() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(listen_fd_, 16);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeStripe() {
    stopping_ = true;
    shutdown(listen_fd_, SHUT_RDWR);
    close(listen_fd_);
    thread_.join();
  }

  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void set_mode(Mode mode) {
    mode_ = mode;
    in_mode_ = 0;
  }
  // The session was paid (complete): Stripe no longer expires it.
  void mark_complete(const std::string& session_id) {
    std::lock_guard<std::mutex> lock(mutex_);
    complete_.push_back(session_id);
  }
  std::vector<Request> requests() {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }

 private:
  static std::string decode(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '+') out += ' ';
      else if (s[i] == '%' && i + 2 < s.size()) {
        out += char(std::stoi(s.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else out += s[i];
    }
    return out;
  }

  void serve() {
    while (!stopping_) {
      int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      handle(fd);
      close(fd);
    }
  }

  void handle(int fd) {
    std::string raw;
    char buf[8192];
    size_t header_end = std::string::npos, length = 0;
    for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) {
      raw.append(buf, size_t(n));
      if (header_end == std::string::npos && (header_end = raw.find("\r\n\r\n")) != std::string::npos) {
        std::string head = raw.substr(0, header_end);
        for (char& c : head) c = char(tolower(c));
        auto cl = head.find("content-length:");
        if (cl != std::string::npos) length = std::stoul(head.substr(cl + 15));
      }
      if (header_end != std::string::npos && raw.size() >= header_end + 4 + length) break;
    }
    if (header_end == std::string::npos) return;
    Request r;
    std::string first = raw.substr(0, raw.find("\r\n"));
    r.method = first.substr(0, first.find(' '));
    r.path = first.substr(first.find(' ') + 1, first.rfind(' ') - first.find(' ') - 1);
    for (size_t pos = raw.find("\r\n") + 2; pos < header_end;) {
      size_t eol = raw.find("\r\n", pos);
      std::string line = raw.substr(pos, eol - pos);
      auto colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& c : name) c = char(tolower(c));
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      r.headers[name] = value;
      pos = eol + 2;
    }
    std::string body = raw.substr(header_end + 4);
    for (size_t start = 0; start < body.size();) {
      size_t amp = body.find('&', start);
      std::string pair = body.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
      auto eq = pair.find('=');
      r.form[decode(pair.substr(0, eq))] = decode(pair.substr(eq + 1));
      if (amp == std::string::npos) break;
      start = amp + 1;
    }
    int count;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      requests_.push_back(r);
      count = int(requests_.size());
    }
    int status = 200;
    std::string json;
    const Mode mode = mode_;
    const int nth_in_mode = ++in_mode_;
    if (r.headers["authorization"] != "Bearer sk_test_mirage") {
      status = 401;
      json = R"({"error":{"type":"invalid_request_error","message":"Invalid API Key provided"}})";
    } else if (mode == Mode::kHang) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // past the client's timeout
      return;
    } else if (mode == Mode::kCardError) {
      status = 400;
      json = R"({"error":{"type":"invalid_request_error","message":"Invalid currency: xyz"}})";
    } else if (mode == Mode::kServerErrorOnce && nth_in_mode == 1) {
      status = 500;
      json = R"({"error":{"type":"api_error","message":"Something went wrong on Stripe's end."}})";
    } else if (r.path.size() > 7 && r.path.compare(r.path.size() - 7, 7, "/expire") == 0) {
      // POST /v1/checkout/sessions/{id}/expire, answered as Stripe does.
      const std::string id = r.path.substr(22, r.path.size() - 7 - 22);
      bool complete;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        complete = std::find(complete_.begin(), complete_.end(), id) != complete_.end();
      }
      if (complete) {
        status = 400;
        json = R"({"error":{"type":"invalid_request_error","message":"Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout Session has a status of \"complete\"."}})";
      } else {
        json = R"({"id":")" + id + R"(","object":"checkout.session","status":"expired","payment_status":"unpaid","url":null})";
      }
    } else {
      const std::string id = "cs_test_" + std::to_string(count) + "_" + r.form["metadata[payment_id]"];
      json = R"({"id":")" + id + R"(","object":"checkout.session","url":"https://checkout.stripe.com/c/pay/)" + id +
             R"(","payment_status":"unpaid","mode":"payment"})";
    }
    std::string response = "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\n"
                           "Content-Length: " + std::to_string(json.size()) + "\r\nConnection: close\r\n\r\n" + json;
    send(fd, response.data(), response.size(), MSG_NOSIGNAL);
  }

  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<Mode> mode_{Mode::kOk};
  std::atomic<int> in_mode_{0};  // requests since the last set_mode()
  std::mutex mutex_;  // guards requests_ and complete_
  std::vector<Request> requests_;
  std::vector<std::string> complete_;
  std::thread thread_;
};

}  // namespace mirage::test
