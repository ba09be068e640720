// miraged's settings: flags win over the environment, which wins over the
// config file; bad values are sentences naming the setting.
#include "config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

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

TEST(Config, HelpListsEverySettingWithItsVariable) {
  const std::string help = config_help();
  for (const char* s : {"--database-url (MIRAGE_DATABASE_URL)", "--http-addr (MIRAGE_HTTP_ADDR)",
                        "--meter-seconds (MIRAGE_METER_SECONDS)", "--config FILE (MIRAGE_CONFIG)"})
    EXPECT_NE(help.find(s), std::string::npos) << s;
}

}  // namespace
}  // namespace mirage
