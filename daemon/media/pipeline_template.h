// pipelines/*.pipeline: gst-launch descriptions with '#' comment lines and
// {name} placeholders. No GStreamer here: the text is checked and filled in
// before any pipeline is parsed.
#pragma once

#include <map>
#include <optional>
#include <string>

namespace mirage::media {

// Reads |path|, drops comments and joins the lines. nullopt and |error| if
// the file cannot be read.
std::optional<std::string> load_template(const std::string& path, std::string* error);
// The same for a template's text: comment lines dropped, lines joined.
std::string join_template_lines(const std::string& text);

// Fills every {name} from |values|. A placeholder without a value is an
// error (nullopt, |error| names it). Values are quoted for gst_parse when
// they contain spaces or quotes, so a path or style cannot inject elements.
std::optional<std::string> fill_template(const std::string& text, const std::map<std::string, std::string>& values,
                                         std::string* error);

}  // namespace mirage::media
