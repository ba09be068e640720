#include "pipeline_template.h"

#include <fstream>
#include <sstream>

namespace mirage::media {

namespace {

// gst_parse reads "..." as one value; inside, \" and \\ escape.
std::string quote(const std::string& value) {
  if (value.empty()) return "\"\"";
  if (value.find_first_of(" \t\n\"'\\!,=;") == std::string::npos) return value;
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n' || c == '\r') c = ' ';
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::optional<std::string> load_template(const std::string& path, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "cannot read the pipeline template '" + path + "'";
    return std::nullopt;
  }
  std::stringstream whole;
  whole << in.rdbuf();
  return join_template_lines(whole.str());
}

std::string join_template_lines(const std::string& source) {
  std::istringstream in(source);
  std::string text, line;
  while (std::getline(in, line)) {
    auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    text += (text.empty() ? "" : " ") + line.substr(first);
  }
  return text;
}

std::optional<std::string> fill_template(const std::string& text, const std::map<std::string, std::string>& values,
                                         std::string* error) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text[i] != '{') {
      out += text[i++];
      continue;
    }
    auto close = text.find('}', i);
    if (close == std::string::npos) {
      *error = "unclosed '{' in a pipeline template";
      return std::nullopt;
    }
    const std::string name = text.substr(i + 1, close - i - 1);
    auto it = values.find(name);
    if (it == values.end()) {
      *error = "pipeline template placeholder {" + name + "} has no value";
      return std::nullopt;
    }
    out += quote(it->second);
    i = close + 1;
  }
  return out;
}

}  // namespace mirage::media
