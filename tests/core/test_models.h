// Helpers shared by the test suites.
#pragma once

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace mirage::test {

// The contract's forward() signature, for models written by tests.
inline const char* kForward =
    "def forward(self, image: Tensor, style: str, strength: float, seed: int) -> Tensor:\n";

// Red when the model sees more red than blue, green otherwise: a wrong
// channel order on the way in gives green, on the way out blue.
inline const char* kRedDetector = R"(
def forward(self, image: Tensor, style: str, strength: float, seed: int) -> Tensor:
    ones = torch.ones_like(image[:, 0:1])
    zeros = torch.zeros_like(ones)
    if bool(image[:, 0].mean() > image[:, 2].mean() + 0.3):
        return torch.cat([ones, zeros, zeros], 1)
    return torch.cat([zeros, ones, zeros], 1)
)";

// A private temporary directory, removed with its contents at scope exit.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/mirage-test-XXXXXX";
    if (!mkdtemp(pattern)) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace mirage::test
