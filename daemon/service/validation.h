// Rules for what users type, with no database or HTTP: usernames are URLs
// (/<username>), so they are short, lower-case and never a route of ours.
#pragma once

#include <optional>
#include <string>

namespace mirage::service {

// nullopt when valid, else a sentence for the API's error message.
std::optional<std::string> check_username(const std::string& username);
std::optional<std::string> check_password(const std::string& password);
// Unicode characters in |s| (valid UTF-8: the API refuses anything else).
size_t utf8_length(const std::string& s);

}  // namespace mirage::service
