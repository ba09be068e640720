// Parsing JSON that comes from outside (request bodies, Stripe's webhooks
// and replies). RapidJSON's default parser recurses once per nesting level:
// ~200 KB of '[' overflowed a request thread's stack and took the whole
// daemon down. Here the parser is iterative (its stack is on the heap), the
// nesting is capped, the text must be valid UTF-8 and no string or key may
// hold U+0000 (PostgreSQL text cannot, and it would cut C strings short).
#pragma once

#include <rapidjson/document.h>

#include <optional>
#include <string>
#include <string_view>

namespace mirage {

// API bodies are flat objects; Stripe's events nest about ten levels.
constexpr int kMaxBodyDepth = 32;
constexpr int kMaxStripeDepth = 64;

// Fills |doc| from |text|. Returns nullopt, or a sentence saying what is
// wrong ("nests deeper than 32 levels", "is not valid UTF-8", ...) about
// "the body" or whatever |what| names.
std::optional<std::string> parse_untrusted_json(std::string_view text, rapidjson::Document* doc, int max_depth,
                                                const char* what = "the body");

}  // namespace mirage
