#include "json_input.h"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/encodedstream.h>
#include <rapidjson/reader.h>

#include <cstring>

namespace mirage {

namespace {

// A RapidJSON handler between the reader and the document: counts nesting
// and looks into every string, then hands each event on.
class Checked {
 public:
  Checked(rapidjson::Document& doc, int max_depth) : doc_(doc), max_depth_(max_depth) {}
  bool Null() { return doc_.Null(); }
  bool Bool(bool b) { return doc_.Bool(b); }
  bool Int(int i) { return doc_.Int(i); }
  bool Uint(unsigned u) { return doc_.Uint(u); }
  bool Int64(int64_t i) { return doc_.Int64(i); }
  bool Uint64(uint64_t u) { return doc_.Uint64(u); }
  bool Double(double d) { return doc_.Double(d); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool copy) { return doc_.RawNumber(s, n, copy); }
  bool String(const char* s, rapidjson::SizeType n, bool copy) { return text_ok(s, n) && doc_.String(s, n, copy); }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) { return text_ok(s, n) && doc_.Key(s, n, copy); }
  bool StartObject() { return deeper() && doc_.StartObject(); }
  bool EndObject(rapidjson::SizeType n) {
    --depth_;
    return doc_.EndObject(n);
  }
  bool StartArray() { return deeper() && doc_.StartArray(); }
  bool EndArray(rapidjson::SizeType n) {
    --depth_;
    return doc_.EndArray(n);
  }

  bool too_deep = false, has_nul = false;

 private:
  bool deeper() {
    if (++depth_ <= max_depth_) return true;
    too_deep = true;
    return false;
  }
  bool text_ok(const char* s, rapidjson::SizeType n) {
    if (std::memchr(s, '\0', n) == nullptr) return true;
    has_nul = true;
    return false;
  }
  rapidjson::Document& doc_;
  const int max_depth_;
  int depth_ = 0;
};

}  // namespace

std::optional<std::string> parse_untrusted_json(std::string_view text, rapidjson::Document* doc, int max_depth,
                                                const char* what) {
  constexpr unsigned kFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;
  rapidjson::ParseResult result;
  bool too_deep = false, has_nul = false;
  // Populate() runs the reader with the document's own stack, then takes
  // the root value off it: the document is built only from what passed.
  struct Generator {
    std::string_view text;
    int max_depth;
    rapidjson::ParseResult* result;
    bool *too_deep, *has_nul;
    bool operator()(rapidjson::Document& d) {
      Checked handler(d, max_depth);
      rapidjson::MemoryStream memory(text.data(), text.size());
      rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> in(memory);
      rapidjson::Reader reader;
      *result = reader.Parse<kFlags>(in, handler);
      *too_deep = handler.too_deep;
      *has_nul = handler.has_nul;
      return !result->IsError();
    }
  } generator{text, max_depth, &result, &too_deep, &has_nul};
  doc->Populate(generator);
  if (!result.IsError()) return std::nullopt;
  doc->SetNull();
  const std::string subject = what;
  if (too_deep) return subject + " nests deeper than " + std::to_string(max_depth) + " levels";
  if (has_nul) return subject + " holds a string with U+0000, which is not allowed";
  if (result.Code() == rapidjson::kParseErrorStringInvalidEncoding) return subject + " is not valid UTF-8";
  return subject + " is not valid JSON (" + rapidjson::GetParseError_En(result.Code()) + " at byte " +
         std::to_string(result.Offset()) + ")";
}

}  // namespace mirage
