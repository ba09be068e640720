// Writes the sample models. Together with model_runner.cpp, the only
// translation units that include libtorch.
#include "sample_models.h"

#include <torch/csrc/jit/frontend/resolver.h>
#include <torch/script.h>

#include <cmath>
#include <regex>
#include <sstream>

#include "model_runner.h"

namespace mirage::models {

namespace {

// TorchScript compiled from C++ only knows `torch.*`. Teach it our own op
// namespace (mirage.delay) and the exceptions a script may raise.
struct Resolver : torch::jit::NativeResolver {
  std::shared_ptr<torch::jit::SugaredValue> resolveValue(const std::string& name,
                                                         torch::jit::GraphFunction& fn,
                                                         const torch::jit::SourceRange& loc) override {
    if (name == "mirage") return std::make_shared<torch::jit::BuiltinModule>("mirage");
    if (name == "RuntimeError" || name == "ValueError" || name == "Exception")
      return std::make_shared<torch::jit::ExceptionValue>(name);
    return NativeResolver::resolveValue(name, fn, loc);
  }
};

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
    s.replace(pos, from.size(), to);
  return s;
}

std::string styles_source() {
  std::ostringstream list;
  list << "[";
  for (size_t i = 0; i < style_names().size(); ++i)
    list << (i ? ", " : "") << '"' << style_names()[i] << '"';
  list << "]";
  return R"(
def styles(self) -> List[str]:
    return )" + list.str() + "\n";
}

template <typename Fn>
Status guarded(const std::string& path, Fn fn) {
  try {
    fn();
    return Status::Ok();
  } catch (const std::exception& e) {
    std::string what = e.what();
    what = what.substr(0, what.find("\nException raised from"));  // drop the C++ backtrace
    return Status::Error("writing '" + path + "' failed: " + what);
  }
}

// Loads the file back through the element's own loader: what we write must
// meet the contract.
Status verify(const std::string& path) {
  std::string error;
  ModelOptions options;
  options.path = path;
  options.device = "cpu";
  InferenceParams warmup;
  if (!ModelRunner::load(options, warmup, &error)) return Status::Error(error);
  return Status::Ok();
}

at::Tensor kaiming(std::vector<int64_t> shape, double gain = 1.0) {
  int64_t fan_in = 1;
  for (size_t i = 1; i < shape.size(); ++i) fan_in *= shape[i];
  return torch::randn(shape) * (gain * std::sqrt(2.0 / double(fan_in)));
}

const char* kStylesSource = R"(
def luma(self, x: Tensor) -> Tensor:
    return x[:, 0:1] * 0.299 + x[:, 1:2] * 0.587 + x[:, 2:3] * 0.114

def edges(self, x: Tensor) -> Tensor:
    y = torch.replication_pad2d(self.luma(x), [1, 1, 1, 1])
    gx = torch.conv2d(y, self.sobel_x)
    gy = torch.conv2d(y, self.sobel_y)
    return torch.sqrt(gx * gx + gy * gy + 1e-12)

def stylize(self, x: Tensor, style: str) -> Tensor:
    if style == "toon":
        flat = torch.round(x * 4.0) / 4.0
        line = (self.edges(x) > 0.15).float()
        return flat * (1.0 - line)
    if style == "sketch":
        paper = 1.0 - (self.edges(x) * 3.0).clamp(0.0, 1.0)
        return torch.cat([paper * 0.98, paper * 0.96, paper * 0.90], 1)
    if style == "sepia":
        r = x[:, 0:1]
        g = x[:, 1:2]
        b = x[:, 2:3]
        return torch.cat([r * 0.393 + g * 0.769 + b * 0.189,
                          r * 0.349 + g * 0.686 + b * 0.168,
                          r * 0.272 + g * 0.534 + b * 0.131], 1).clamp(0.0, 1.0)
    if style == "pixel":
        h = x.size(2)
        w = x.size(3)
        block = max(4, max(h, w) // 32)
        small = torch.adaptive_avg_pool2d(x, [max(1, h // block), max(1, w // block)])
        small = torch.round(small * 4.0) / 4.0
        return torch.upsample_nearest2d(small, [h, w])
    if style == "thermal":
        l = self.luma(x)
        r = (l * 3.0 - 1.0).clamp(0.0, 1.0)
        g = (l * 3.0 - 2.0).clamp(0.0, 1.0)
        b = ((1.0 - (l * 3.0 - 1.0).abs()).clamp(0.0, 1.0) + g).clamp(0.0, 1.0)
        return torch.cat([r, g, b], 1)
    if style == "neon":
        glow = (self.edges(x) * 4.0).clamp(0.0, 1.0)
        vivid = x / (torch.amax(x, [1], True) + 1e-3)
        return (vivid * glow * 1.2 + x * 0.08).clamp(0.0, 1.0)
    if style == "invert":
        return 1.0 - x
    return x

def forward(self, image: Tensor, style: str, strength: float, seed: int) -> Tensor:
    s = max(0.0, min(1.0, strength))
    return (image + (self.stylize(image, style) - image) * s).clamp(0.0, 1.0)

def forward_batch(self, images: Tensor, styles: List[str], strengths: List[float], seeds: List[int]) -> Tensor:
    # Each style is a different computation: items run one by one (the
    # batch saves the per-call overhead only).
    outs: List[Tensor] = []
    for i in range(images.size(0)):
        outs.append(self.forward(images[i:i + 1], styles[i], strengths[i], seeds[i]))
    return torch.cat(outs, 0)
)";

const char* kTinyDiffusionSource = R"(
def default_size(self) -> Tuple[int, int]:
    return (@SIZE@, @SIZE@)

def time_embedding(self, t: int, like: Tensor) -> Tensor:
    freqs = torch.exp(torch.arange(8).float() * -1.1512925464970227)
    args = freqs * float(t)
    return torch.cat([torch.sin(args), torch.cos(args)]).to(like.device)

def unet(self, x: Tensor, ts: List[int], style_indices: List[int]) -> Tensor:
    # One conditioning vector per item: its own timestep and style.
    conds: List[Tensor] = []
    for i in range(len(ts)):
        c = torch.silu(torch.matmul(self.temb_w, self.time_embedding(ts[i], x)) + self.temb_b)
        conds.append(c + self.style_emb[style_indices[i]])
    cond = torch.stack(conds)
    h1 = torch.silu(torch.conv2d(x, self.in_w, self.in_b, [1, 1], [1, 1]))
    h2 = torch.silu(torch.conv2d(h1, self.down_w, self.down_b, [2, 2], [1, 1]))
    h2 = h2 + cond.view([x.size(0), -1, 1, 1])
    h2 = torch.silu(torch.conv2d(h2, self.mid_w, self.mid_b, [1, 1], [1, 1]))
    up = torch.upsample_nearest2d(h2, [h1.size(2), h1.size(3)])
    h3 = torch.silu(torch.conv2d(torch.cat([up, h1], 1), self.up_w, self.up_b, [1, 1], [1, 1]))
    return torch.conv2d(h3, self.out_w, self.out_b, [1, 1], [1, 1])

def hash_uniform(self, i: Tensor, base: int) -> Tensor:
    h = (i * 747796405 + base) & 4294967295
    h = (((h >> ((h >> 28) + 4)) ^ h) * 277803737) & 4294967295
    h = (h >> 22) ^ h
    return (h.float() + 0.5) / 4294967296.0

def noise(self, like: Tensor, seed: int) -> Tensor:
    i = torch.ones_like(like).long().flatten().cumsum(0) - 1
    base = (seed % 1000003) * 2654435761 + 2891336453
    u1 = self.hash_uniform(i * 2, base)
    u2 = self.hash_uniform(i * 2 + 1, base)
    z = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(u2 * 6.283185307179586)
    return z.view(like.size())

def alphas(self, ts: List[int], like: Tensor) -> Tensor:
    return self.alphas_cumprod[torch.tensor(ts, device=like.device)].view([len(ts), 1, 1, 1])

# The batch: every item its own style, strength (so its own timesteps) and
# seed; the UNet runs once per step for all of them.
def forward_batch(self, images: Tensor, styles: List[str], strengths: List[float], seeds: List[int]) -> Tensor:
    n = images.size(0)
    names = self.styles()
    style_indices: List[int] = []
    t_starts: List[int] = []
    keep: List[float] = []
    for i in range(n):
        style_index = 0
        for k in range(len(names)):
            if names[k] == styles[i]:
                style_index = k
        style_indices.append(style_index)
        t_starts.append(int(max(0.0, min(strengths[i], 1.0)) * 999.0))
        keep.append(1.0 if strengths[i] <= 0.0 else 0.0)
    steps = @STEPS@
    x0 = images * 2.0 - 1.0
    noises: List[Tensor] = []
    for i in range(n):
        noises.append(self.noise(x0[i:i + 1], seeds[i]))
    a = self.alphas(t_starts, x0)
    x = torch.sqrt(a) * x0 + torch.sqrt(1.0 - a) * torch.cat(noises, 0)
    x0_pred = x0
    for k in range(steps):
        ts = [t - (t * k) // steps for t in t_starts]
        a_t = self.alphas(ts, x0)
        eps = self.unet(x, ts, style_indices)
        x0_pred = ((x - torch.sqrt(1.0 - a_t) * eps) / torch.sqrt(a_t)).clamp(-1.0, 1.0)
        if k + 1 < steps:
            a_next = self.alphas([t - (t * (k + 1)) // steps for t in t_starts], x0)
            x = torch.sqrt(a_next) * x0_pred + torch.sqrt(1.0 - a_next) * eps
    # strength 0 keeps the input exactly
    kept = torch.tensor(keep, device=images.device).view([n, 1, 1, 1])
    return ((x0_pred + 1.0) * 0.5) * (1.0 - kept) + images * kept

def forward(self, image: Tensor, style: str, strength: float, seed: int) -> Tensor:
    return self.forward_batch(image, [style], [strength], [seed])
)";

}  // namespace

const std::vector<std::string>& style_names() {
  static const std::vector<std::string> names{"toon",    "sketch", "sepia", "pixel",
                                              "thermal", "neon",   "invert"};
  return names;
}

Status write_styles(const std::string& path) {
  Status written = guarded(path, [&] {
    torch::jit::Module m("MirageStyles");
    // Sobel kernels, scaled so that a full black-to-white step reads 1.
    at::Tensor sx = torch::tensor({-1.f, 0.f, 1.f, -2.f, 0.f, 2.f, -1.f, 0.f, 1.f}).view({1, 1, 3, 3}) / 4;
    m.register_buffer("sobel_x", sx);
    m.register_buffer("sobel_y", sx.transpose(2, 3).contiguous());
    m.define(std::string(kStylesSource) + styles_source(), std::make_shared<Resolver>());
    m.save(path);
  });
  return written.ok() ? verify(path) : written;
}

Status write_tiny_diffusion(const std::string& path, const TinyDiffusionConfig& c) {
  if (c.channels < 1 || c.steps < 1 || c.steps > 50 || c.size < 8)
    return Status::Error("tiny-diffusion: channels >= 1, 1 <= steps <= 50 and size >= 8 are required");
  Status written = guarded(path, [&] {
    torch::manual_seed(c.seed);  // deterministic "random" weights
    const int64_t ch = c.channels, ch2 = 2 * c.channels;
    const int64_t n_styles = int64_t(style_names().size());
    torch::jit::Module m("MirageTinyDiffusion");
    m.register_buffer("in_w", kaiming({ch, 3, 3, 3}));
    m.register_buffer("in_b", torch::zeros({ch}));
    m.register_buffer("down_w", kaiming({ch2, ch, 3, 3}));
    m.register_buffer("down_b", torch::zeros({ch2}));
    m.register_buffer("mid_w", kaiming({ch2, ch2, 3, 3}));
    m.register_buffer("mid_b", torch::zeros({ch2}));
    m.register_buffer("up_w", kaiming({ch, 3 * ch, 3, 3}));
    m.register_buffer("up_b", torch::zeros({ch}));
    m.register_buffer("out_w", kaiming({3, ch, 3, 3}, 0.1));
    m.register_buffer("out_b", torch::zeros({3}));
    m.register_buffer("temb_w", kaiming({ch2, 16}));
    m.register_buffer("temb_b", torch::zeros({ch2}));
    m.register_buffer("style_emb", torch::randn({n_styles, ch2}) * 0.5);
    // Stable Diffusion's "scaled linear" schedule over 1000 timesteps.
    at::Tensor betas = torch::linspace(std::sqrt(0.00085), std::sqrt(0.012), 1000).pow(2);
    m.register_buffer("alphas_cumprod", torch::cumprod(1 - betas, 0).to(torch::kFloat));
    std::string source = replace_all(kTinyDiffusionSource, "@STEPS@", std::to_string(c.steps));
    source = replace_all(source, "@SIZE@", std::to_string(c.size));
    m.define(source + styles_source(), std::make_shared<Resolver>());
    m.save(path);
  });
  return written.ok() ? verify(path) : written;
}

Status write_delay(const std::string& path, int ms) {
  if (ms < 0) return Status::Error("delay: milliseconds must not be negative");
  // A fixed cost per call, whatever the batch: how a GPU behaves at small
  // batches, for the scheduling tests and benchmarks.
  std::string body = ms == 0 ? "    return image\n"
                             : "    return mirage.delay(image, " + std::to_string(ms) + ")\n";
  Status written = write_script(
      path, "def forward(self, image: Tensor, style: str, strength: float, seed: int) -> Tensor:\n" + body +
                "\ndef forward_batch(self, images: Tensor, styles: List[str], strengths: List[float], "
                "seeds: List[int]) -> Tensor:\n" +
                std::regex_replace(body, std::regex("image"), "images"));
  return written.ok() ? verify(path) : written;
}

Status write_script(const std::string& path, const std::string& source) {
  return guarded(path, [&] {
    torch::jit::Module m("MirageScript");
    m.define(source, std::make_shared<Resolver>());
    m.save(path);
  });
}

}  // namespace mirage::models
