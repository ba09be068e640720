// mirage-model: writes the sample TorchScript models (no Python, no weights).
//
//   mirage-model styles OUT.pt
//   mirage-model tiny-diffusion [--steps N] [--channels N] [--size N] OUT.pt
//   mirage-model delay --ms N OUT.pt
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "sample_models.h"

namespace {

int usage(FILE* out) {
  std::fputs(
      "usage: mirage-model styles OUT.pt\n"
      "       mirage-model tiny-diffusion [--steps N] [--channels N] [--size N] OUT.pt\n"
      "       mirage-model delay --ms N OUT.pt\n"
      "\n"
      "styles          hand-written (non-learned) stylization: toon, sketch, sepia, pixel,\n"
      "                thermal, neon, invert\n"
      "tiny-diffusion  small conv UNet (random weights) in a DDIM img2img loop\n"
      "delay           identity that takes N milliseconds per frame (tests, benchmarks)\n",
      out);
  return out == stdout ? 0 : 2;
}

bool parse_int(const char* text, int* value) {
  char* end = nullptr;
  long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || v < 0 || v > 1000000) return false;
  *value = int(v);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage(stderr);
  std::string kind = argv[1];
  if (kind == "-h" || kind == "--help") return usage(stdout);

  mirage::models::TinyDiffusionConfig tiny;
  int ms = -1;
  std::vector<std::string> positional;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](int* out) {
      if (i + 1 >= argc || !parse_int(argv[i + 1], out)) {
        std::fprintf(stderr, "mirage-model: %s needs a non-negative integer\n", arg.c_str());
        std::exit(2);
      }
      ++i;
    };
    if (arg == "--ms") value(&ms);
    else if (arg == "--steps") value(&tiny.steps);
    else if (arg == "--channels") value(&tiny.channels);
    else if (arg == "--size") value(&tiny.size);
    else if (arg.rfind("--", 0) == 0) {
      std::fprintf(stderr, "mirage-model: unknown option %s\n", arg.c_str());
      return 2;
    } else positional.push_back(arg);
  }
  if (positional.size() != 1) return usage(stderr);
  const std::string& out = positional[0];

  mirage::Status status = mirage::Status::Error("unknown model kind '" + kind + "'");
  if (kind == "styles") {
    status = mirage::models::write_styles(out);
  } else if (kind == "tiny-diffusion") {
    status = mirage::models::write_tiny_diffusion(out, tiny);
  } else if (kind == "delay") {
    if (ms < 0) {
      std::fputs("mirage-model: delay needs --ms N\n", stderr);
      return 2;
    }
    status = mirage::models::write_delay(out, ms);
  }
  if (!status.ok()) {
    std::fprintf(stderr, "mirage-model: %s\n", status.message().c_str());
    return 1;
  }
  std::printf("wrote %s (%s)\n", out.c_str(), kind.c_str());
  return 0;
}
