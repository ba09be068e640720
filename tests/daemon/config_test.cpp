// miraged's settings: flags win over the environment, which wins over the
// config file; bad values are sentences naming the setting.
#include "config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace mirage {
namespace {

std::optional<std::string> load(std::vector<std::string> args, Config* config, std::vector<std::string>* rest) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return load_config(int(argv.size()), argv.data(), 0, config, rest);
}

TEST(Config, FlagsThenEnvironmentThenFile) {
  const std::string file = "/tmp/mirage-config-test.conf";
  std::ofstream(file) << "# comment\nhttp_addr = 0.0.0.0:1\nworkers = 3\nstyle_seconds=7 # trailing\n";
  setenv("MIRAGE_WORKERS", "5", 1);
  Config c;
  std::vector<std::string> rest;
  auto error = load({"--config", file, "--style-seconds=9", "positional"}, &c, &rest);
  unsetenv("MIRAGE_WORKERS");
  ASSERT_FALSE(error) << *error;
  EXPECT_EQ(c.http_addr, "0.0.0.0:1");  // file
  EXPECT_EQ(c.workers, 5);              // environment over file
  EXPECT_EQ(c.style_seconds, 9);        // flag over file
  EXPECT_EQ(rest, std::vector<std::string>{"positional"});
  std::remove(file.c_str());
}

TEST(Config, ErrorsReadLikeSentences) {
  Config c;
  std::vector<std::string> rest;
  EXPECT_EQ(*load({"--meter-seconds", "0"}, &c, &rest),
            "'meter_seconds' must be a whole number from 1 to 60, not '0'");
  EXPECT_EQ(*load({"--workers", "many"}, &c, &rest), "'workers' must be a whole number from 1 to 256, not 'many'");
  EXPECT_EQ(*load({"--no-such-thing", "1"}, &c, &rest), "unknown option '--no-such-thing' (see miraged --help)");
  EXPECT_EQ(*load({"--cookie-secure", "yes"}, &c, &rest), "'cookie_secure' must be true, false or auto, not 'yes'");
  EXPECT_EQ(*load({"--srt-passphrase", "short"}, &c, &rest), "'srt_passphrase' must be 10 to 79 characters long");
  EXPECT_EQ(*load({"--workers"}, &c, &rest), "'--workers' needs a value");
  EXPECT_EQ(*load({"--config", "/nonexistent.conf"}, &c, &rest), "cannot read the config file '/nonexistent.conf'");
  const std::string file = "/tmp/mirage-config-bad.conf";
  std::ofstream(file) << "colour = blue\n";
  EXPECT_EQ(*load({"--config", file}, &c, &rest), file + ":1: unknown setting 'colour'");
  std::remove(file.c_str());
}

// Failed on the main of issue 12: "a#b" was cut to "a", so a value with a
// '#' (a passphrase, a URL fragment) could not be set from a file.
TEST(Config, HashInsideAValueIsKept) {
  const std::string file = "/tmp/mirage-config-hash.conf";
  std::ofstream(file) << "# a comment line\n  # an indented one\nworker_name = gpu#2 # a comment after a space\n"
                         "public_url = https://example.org/#/app\t# after a tab\nstripe_webhook_secret = whsec_a#b#c\n";
  Config c;
  std::vector<std::string> rest;
  auto error = load({"--config", file}, &c, &rest);
  ASSERT_FALSE(error) << *error;
  EXPECT_EQ(c.worker_name, "gpu#2");
  EXPECT_EQ(c.public_url, "https://example.org/#/app");
  EXPECT_EQ(c.stripe_webhook_secret, "whsec_a#b#c");
  std::remove(file.c_str());
}

// Failed on the main of issue 12 (the cookie was never Secure unless set).
TEST(Config, CookieSecureUnlessPlainHttpOnLoopback) {
  std::vector<std::string> rest;
  for (const auto& [url, secure] : std::vector<std::pair<std::string, bool>>{
           {"http://127.0.0.1:3000", false}, {"http://localhost", false}, {"http://[::1]:8080/", false},
           {"https://127.0.0.1", true}, {"http://example.org", true}, {"https://mirage.example", true},
           {"http://127.0.0.1.evil.example", true}}) {
    Config c;
    ASSERT_FALSE(load({"--public-url", url}, &c, &rest));
    EXPECT_EQ(c.cookie_secure, secure) << url;
  }
  Config c;
  ASSERT_FALSE(load({"--public-url", "https://mirage.example", "--cookie-secure", "false"}, &c, &rest));
  EXPECT_FALSE(c.cookie_secure);
}

// A typo or a word left out names the key meant; a word that is nothing
// like a key names none.
TEST(Config, UnknownKeysNameTheClosestKnownOne) {
  Config c;
  std::vector<std::string> rest;
  EXPECT_EQ(*load({"--meter-second", "5"}, &c, &rest),
            "unknown option '--meter-second'; did you mean '--meter-seconds'? (see miraged --help)");
  EXPECT_EQ(*load({"--htpp-addr", "x"}, &c, &rest),
            "unknown option '--htpp-addr'; did you mean '--http-addr'? (see miraged --help)");
  EXPECT_EQ(*load({"--Database-URL", "x"}, &c, &rest),
            "unknown option '--Database-URL'; did you mean '--database-url'? (see miraged --help)");
  EXPECT_EQ(*load({"--timeout", "x"}, &c, &rest), "unknown option '--timeout' (see miraged --help)");
  EXPECT_EQ(*load({"--", "x"}, &c, &rest), "unknown option '--' (see miraged --help)");
  const std::string file = "/tmp/mirage-config-typo.conf";
  for (auto [line, error] : std::vector<std::pair<std::string, std::string>>{
           {"http_adr = 127.0.0.1:1", ":2: unknown setting 'http_adr'; did you mean 'http_addr'?"},
           {"worker-timeout-seconds = 3", ":2: unknown setting 'worker-timeout-seconds'; did you mean 'worker_timeout_seconds'?"},
           {"stripe_secret = sk", ":2: unknown setting 'stripe_secret'; did you mean 'stripe_secret_key'?"},
           {"xyzzy = 1", ":2: unknown setting 'xyzzy'"}}) {
    std::ofstream(file) << "# first line\n" << line << "\n";
    EXPECT_EQ(*load({"--config", file}, &c, &rest), file + error) << line;
  }
  std::remove(file.c_str());
}

// deploy/mirage.conf.example names every setting: each line not commented
// out holds the built-in default (so it cannot drift from the code), and the
// settings without a fixed default appear as commented-out `# key = ...`.
TEST(Config, TheExampleFileNamesEverySettingWithItsDefault) {
  const std::string path = std::string(MIRAGE_SOURCE_DIR) + "/deploy/mirage.conf.example";
  std::ifstream in(path);
  ASSERT_TRUE(in) << path;
  std::stringstream text;
  text << in.rdbuf();
  std::map<std::string, std::string> values;
  auto error = parse_config_text(text.str(), path, &values);
  ASSERT_FALSE(error) << *error;
  Config parsed;
  error = apply_config_values(values, &parsed);
  ASSERT_FALSE(error) << *error;

  std::set<std::string> commented;
  const std::regex commented_key(R"(^#\s*([a-z0-9_]+) =)");
  std::istringstream lines(text.str());
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_search(line, m, commented_key)) commented.insert(m[1]);
  }
  const auto defaults = config_values(Config{});
  const auto loaded = config_values(parsed);
  for (const auto& [key, value] : defaults) {
    if (values.count(key)) {
      EXPECT_EQ(loaded.at(key), value) << key << ": the example says something else than the default";
      EXPECT_FALSE(commented.count(key)) << key << " is both set and commented out";
    } else {
      EXPECT_TRUE(commented.count(key)) << key << " is missing from " << path;
    }
  }
  for (const auto& key : commented) EXPECT_TRUE(defaults.count(key)) << "the example names an unknown key " << key;
}

TEST(Config, HelpListsEverySettingWithItsVariable) {
  const std::string help = config_help();
  for (const char* s : {"--database-url (MIRAGE_DATABASE_URL)", "--http-addr (MIRAGE_HTTP_ADDR)",
                        "--meter-seconds (MIRAGE_METER_SECONDS)", "--config FILE (MIRAGE_CONFIG)"})
    EXPECT_NE(help.find(s), std::string::npos) << s;
}

}  // namespace
}  // namespace mirage
