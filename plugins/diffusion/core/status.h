// Status: the result of a core operation that can fail with a human-readable
// reason. The core never throws across its API: libtorch's exceptions are
// caught at the boundary and turned into a Status.
#pragma once

#include <string>
#include <utility>

namespace mirage {

class Status {
 public:
  static Status Ok() { return Status(); }
  static Status Error(std::string message) { return Status(std::move(message)); }

  bool ok() const { return ok_; }
  const std::string& message() const { return message_; }

 private:
  Status() = default;
  explicit Status(std::string message) : ok_(false), message_(std::move(message)) {}

  bool ok_ = true;
  std::string message_;
};

}  // namespace mirage
