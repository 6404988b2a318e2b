// Standalone test of the native kernels without Node: every CUDA kernel against the CPU kernel
// on seeded random shapes (1x1 maps, non-square maps, K = 1 .. 2048, both layouts, resize up
// and down, both corner conventions). Where no CUDA device is usable it prints
// "skipped: no CUDA device (<reason>)" and exits 0 (ctest reports it as skipped).
//   gradcam_kernels_test           the parity test
//   gradcam_kernels_test --bench   also one JSON line per kernel and device with timings
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels.h"
#include "pictures.h"

using namespace gradcam;

namespace {

int failures = 0;
int checks = 0;

// |a-b| <= atol + rtol*|b|, NaN only where both are NaN
void expectClose(const char* what, const std::string& ctx, const std::vector<float>& got,
                 const std::vector<float>& want, double rtol = 1e-5, double atol = 1e-6) {
  checks++;
  if (got.size() != want.size()) {
    std::printf("FAIL %s %s: length %zu vs %zu\n", what, ctx.c_str(), got.size(), want.size());
    failures++;
    return;
  }
  for (size_t i = 0; i < got.size(); i++) {
    const double a = got[i], b = want[i];
    if (std::isnan(a) && std::isnan(b)) continue;
    if (!(std::fabs(a - b) <= atol + rtol * std::fabs(b))) {
      std::printf("FAIL %s %s: [%zu] cuda %.9g cpu %.9g\n", what, ctx.c_str(), i, a, b);
      failures++;
      return;
    }
  }
}

std::vector<float> randomArray(std::mt19937& rng, size_t n, float lo = -1, float hi = 1) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

size_t pick(std::mt19937& rng, std::initializer_list<size_t> options) {
  std::uniform_int_distribution<size_t> d(0, options.size() - 1);
  return *(options.begin() + d(rng));
}

std::string shapeText(const FeatureShape& s) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "n=%zu k=%zu h=%zu w=%zu %s", s.n, s.k, s.h, s.w,
                s.layout == Layout::NCHW ? "nchw" : "nhwc");
  return buf;
}

void parity(int rounds) {
  std::mt19937 rng(20241126);
  for (int r = 0; r < rounds; r++) {
    FeatureShape s;
    s.n = pick(rng, {1, 2, 3, 5});
    s.k = pick(rng, {1, 2, 3, 16, 64, 512, 2048});
    s.h = pick(rng, {1, 2, 5, 7, 14});
    s.w = pick(rng, {1, 3, 7, 9, 14});
    s.layout = (r & 1) ? Layout::NHWC : Layout::NCHW;
    const std::string ctx = shapeText(s);
    const size_t nk = s.n * s.k, nhw = s.n * s.hw();
    auto a = randomArray(rng, s.count(), 0, 2);
    auto g = randomArray(rng, s.count(), -1, 1);

    std::vector<float> c1(nk), c2(nk);
    cpu::channelMean(g.data(), s, c1.data());
    cuda::channelMean(g.data(), s, c2.data());
    expectClose("channelMean", ctx, c2, c1);

    std::vector<std::vector<float>> p(5, std::vector<float>(nk)), q(5, std::vector<float>(nk));
    cpu::channelSums(g.data(), a.data(), s, p[0].data(), p[1].data(), p[2].data(), p[3].data(), p[4].data());
    cuda::channelSums(g.data(), a.data(), s, q[0].data(), q[1].data(), q[2].data(), q[3].data(), q[4].data());
    for (int i = 0; i < 5; i++) expectClose("channelSums", ctx, q[i], p[i]);

    const bool relu = (r % 3) == 0;
    std::vector<float> m1(nhw), m2(nhw);
    cpu::weightedChannelSum(c1.data(), a.data(), s, relu, m1.data());
    cuda::weightedChannelSum(c1.data(), a.data(), s, relu, m2.data());
    expectClose("weightedChannelSum", ctx, m2, m1);

    for (ElementwiseOp op : {ElementwiseOp::GradTimesAct, ElementwiseOp::ReluGradTimesAct, ElementwiseOp::ReluOfGradTimesAct}) {
      cpu::elementwiseChannelSum(g.data(), a.data(), s, op, relu, m1.data());
      cuda::elementwiseChannelSum(g.data(), a.data(), s, op, relu, m2.data());
      expectClose("elementwiseChannelSum", ctx, m2, m1);
    }

    const size_t outH = pick(rng, {1, 2, 5, 13, 224}), outW = pick(rng, {1, 3, 7, 30, 224});
    const bool ac = (r % 4) >= 2;
    std::vector<float> x = randomArray(rng, nhw), r1(s.n * outH * outW), r2(s.n * outH * outW);
    cpu::resizeBilinear(x.data(), s.n, s.h, s.w, outH, outW, ac, r1.data());
    cuda::resizeBilinear(x.data(), s.n, s.h, s.w, outH, outW, ac, r2.data());
    expectClose("resizeBilinear", ctx + " out " + std::to_string(outH) + "x" + std::to_string(outW), r2, r1);

    cpu::minMaxNormalize(r1.data(), s.n, outH * outW, r2.data());
    std::vector<float> r3(r1.size());
    cuda::minMaxNormalize(r1.data(), s.n, outH * outW, r3.data());
    expectClose("minMaxNormalize", ctx, r3, r2);

    const size_t c = pick(rng, {1, 3, 4});
    auto guided = randomArray(rng, s.n * c * outH * outW);
    std::vector<float> g1(guided.size()), g2(guided.size());
    cpu::guidedProduct(guided.data(), r2.data(), s.n, c, outH, outW, s.layout, g1.data());
    cuda::guidedProduct(guided.data(), r2.data(), s.n, c, outH, outW, s.layout, g2.data());
    expectClose("guidedProduct", ctx, g2, g1);

    TailOptions o{outH, outW, (r % 5) != 0, ac};
    std::vector<float> w1(nk), w2(nk), raw1(nhw), raw2(nhw), low1(nhw), low2(nhw), map1(r1.size()), map2(r1.size());
    cpu::gradcamTail(a.data(), g.data(), s, o, TailOutputs{w1.data(), raw1.data(), low1.data(), map1.data()});
    cuda::gradcamTail(a.data(), g.data(), s, o, TailOutputs{w2.data(), raw2.data(), low2.data(), map2.data()});
    expectClose("gradcamTail.weights", ctx, w2, w1);
    expectClose("gradcamTail.lowresRaw", ctx, raw2, raw1);
    expectClose("gradcamTail.lowres", ctx, low2, low1, 1e-5, 1e-5);
    expectClose("gradcamTail.map", ctx, map2, map1, 1e-5, 1e-5);

    // camTail: R = 1..3 rounds, every combine kind, with the fused guided product
    const size_t R = 1 + (size_t)r % 3;
    std::vector<std::vector<float>> gr, given, ig;
    std::vector<const float*> gp, givp, igp;
    for (size_t q = 0; q < R; q++) {
      gr.push_back(randomArray(rng, s.count(), -1, 1));
      given.push_back(randomArray(rng, std::max(nk, nhw), -1, 1));
      ig.push_back(randomArray(rng, s.n * c * outH * outW));
    }
    for (size_t q = 0; q < R; q++) {
      gp.push_back(gr[q].data());
      givp.push_back(given[q].data());
      igp.push_back(ig[q].data());
    }
    const CombineKind kinds[] = {CombineKind::Weights, CombineKind::GivenWeights, CombineKind::Elementwise,
                                 CombineKind::GivenLowres};
    const ChannelWeighting weightings[] = {ChannelWeighting::GradMean, ChannelWeighting::GradPP,
                                           ChannelWeighting::GradPPNormalized, ChannelWeighting::GradActRatio};
    const ElementwiseOp ops[] = {ElementwiseOp::GradTimesAct, ElementwiseOp::ReluGradTimesAct,
                                 ElementwiseOp::ReluOfGradTimesAct};
    for (int kind = 0; kind < 4; kind++) {
      const CamCombine cc{kinds[kind], weightings[r % 4], 1e-7, ops[r % 3]};
      const bool usesGrads = kind == 0 || kind == 2;
      const CamRounds rd{R, usesGrads ? gp.data() : nullptr, usesGrads ? nullptr : givp.data(), igp.data(), c, s.layout};
      const bool hasW = kind <= 1;
      std::vector<float> cw1(hasW ? R * nk : 0), cw2(cw1.size()), craw1(R * nhw), craw2(R * nhw), clow1(R * nhw),
          clow2(R * nhw), cmap1(R * r1.size()), cmap2(R * r1.size()), cg1(R * guided.size()), cg2(R * guided.size());
      cpu::camTail(a.data(), s, cc, rd, o,
                   CamTailOutputs{hasW ? cw1.data() : nullptr, craw1.data(), clow1.data(), cmap1.data(), cg1.data()});
      cuda::camTail(a.data(), s, cc, rd, o,
                    CamTailOutputs{hasW ? cw2.data() : nullptr, craw2.data(), clow2.data(), cmap2.data(), cg2.data()});
      const std::string cctx = ctx + " camTail kind " + std::to_string(kind) + " R=" + std::to_string(R);
      if (hasW) expectClose("camTail.weights", cctx, cw2, cw1);
      expectClose("camTail.lowresRaw", cctx, craw2, craw1);
      expectClose("camTail.lowres", cctx, clow2, clow1, 1e-5, 1e-5);
      expectClose("camTail.map", cctx, cmap2, cmap1, 1e-5, 1e-5);
      expectClose("camTail.guided", cctx, cg2, cg1, 1e-5, 1e-5);
    }
  }
}

void expectBytes(const char* what, const std::string& ctx, const std::vector<uint8_t>& got, const std::vector<uint8_t>& want) {
  checks++;
  for (size_t i = 0; i < want.size(); i++) {
    if (got[i] != want[i]) {
      std::printf("FAIL %s %s: byte %zu cuda %d cpu %d\n", what, ctx.c_str(), i, got[i], want[i]);
      failures++;
      return;
    }
  }
}

// The picture kernels: CUDA writes the CPU kernels' bytes (n = 1..4, odd sizes, one over numpy's
// 8192-value block, both layouts, three colormaps, RGB and RGBA).
void pictureParity(int rounds) {
  std::mt19937 rng(20261202);
  for (int r = 0; r < rounds; r++) {
    const size_t n = pick(rng, {1, 2, 3, 4}), H = pick(rng, {1, 3, 7, 17, 61}), W = pick(rng, {1, 5, 9, 47, 224});
    const size_t hw = H * W, c = pick(rng, {1, 3});
    const Colormap cm = (Colormap)(r % 3);
    const Layout layout = r % 2 ? Layout::NCHW : Layout::NHWC;
    char ctx[96];
    std::snprintf(ctx, sizeof ctx, "n=%zu H=%zu W=%zu c=%zu colormap=%d %s", n, H, W, c, r % 3, r % 2 ? "nchw" : "nhwc");
    std::vector<float> maps = randomArray(rng, n * hw, -0.1f, 1.1f), images = randomArray(rng, n * hw * 3, 0, 1);
    std::vector<float> guided = randomArray(rng, n * c * hw, -0.01f, 0.02f);
    std::vector<uint8_t> grey(n * hw);
    for (size_t i = 0; i < grey.size(); i++) grey[i] = (uint8_t)(rng() & 255);
    std::vector<uint8_t> a1(n * hw * 3), a2(n * hw * 3);
    cpu::applyColormap(maps.data(), n, H, W, cm, a1.data());
    cuda::applyColormap(maps.data(), n, H, W, cm, a2.data());
    expectBytes("applyColormap", ctx, a2, a1);
    const OverlayOptions o{cm, r % 4 == 3 ? 1.0 : 0.3 + 0.1 * (r % 4), r % 2 ? 4u : 3u};
    std::vector<uint8_t> s1(n * hw * o.channels), s2(n * hw * o.channels);
    cpu::showCamOnImage(images.data(), maps.data(), n, H, W, o, s1.data());
    cuda::showCamOnImage(images.data(), maps.data(), n, H, W, o, s2.data());
    expectBytes("showCamOnImage", ctx, s2, s1);
    std::vector<uint8_t> d1(n * c * hw), d2(n * c * hw);
    cpu::deprocessImage(guided.data(), n, c, H, W, layout, d1.data());
    cuda::deprocessImage(guided.data(), n, c, H, W, layout, d2.data());
    expectBytes("deprocessImage", ctx, d2, d1);
    cpu::greyToRgb(grey.data(), n, H, W, a1.data());
    cuda::greyToRgb(grey.data(), n, H, W, a2.data());
    expectBytes("greyToRgb", ctx, a2, a1);
  }
}

double medianMs(const std::function<void()>& fn, int reps) {
  fn();  // warm-up
  std::vector<double> t;
  for (int i = 0; i < reps; i++) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// One JSON line per kernel and device, at pipeline sizes (CUDA timings include the host<->device
// copies of every call; outputs are preallocated, so no page faults are timed).
void bench(bool withCuda) {
  std::mt19937 rng(7);
  const size_t H = 224, W = 224;
  for (size_t n : {1, 32})
    for (size_t k : {512, 1280, 2048})
      for (size_t hw : {7, 14, 28}) {
        FeatureShape s{n, k, hw, hw, Layout::NCHW};
        auto a = randomArray(rng, s.count(), 0, 2), g = randomArray(rng, s.count());
        std::vector<float> wts(n * k), raw(n * hw * hw), low(n * hw * hw), map(n * H * W);
        auto guided = randomArray(rng, n * 3 * H * W);
        std::vector<float> prod(guided.size());
        TailOptions o{H, W, true, false};
        for (int dev = 0; dev < (withCuda ? 2 : 1); dev++) {
          const char* name = dev ? "cuda" : "cpu";
          auto tail = [&] {
            TailOutputs out{wts.data(), raw.data(), low.data(), map.data()};
            dev ? cuda::gradcamTail(a.data(), g.data(), s, o, out) : cpu::gradcamTail(a.data(), g.data(), s, o, out);
          };
          auto resizeGuided = [&] {
            if (dev) {
              cuda::resizeBilinear(low.data(), n, hw, hw, H, W, false, map.data());
              cuda::guidedProduct(guided.data(), map.data(), n, 3, H, W, Layout::NCHW, prod.data());
            } else {
              cpu::resizeBilinear(low.data(), n, hw, hw, H, W, false, map.data());
              cpu::guidedProduct(guided.data(), map.data(), n, 3, H, W, Layout::NCHW, prod.data());
            }
          };
          auto mean = [&] { dev ? cuda::channelMean(g.data(), s, wts.data()) : cpu::channelMean(g.data(), s, wts.data()); };
          auto wsum = [&] {
            dev ? cuda::weightedChannelSum(wts.data(), a.data(), s, true, raw.data())
                : cpu::weightedChannelSum(wts.data(), a.data(), s, true, raw.data());
          };
          std::vector<float> sums(5 * n * k);
          auto csums = [&] {
            float* o = sums.data();
            const size_t nk = n * k;
            dev ? cuda::channelSums(g.data(), a.data(), s, o, o + nk, o + 2 * nk, o + 3 * nk, o + 4 * nk)
                : cpu::channelSums(g.data(), a.data(), s, o, o + nk, o + 2 * nk, o + 3 * nk, o + 4 * nk);
          };
          auto ewsum = [&] {
            dev ? cuda::elementwiseChannelSum(g.data(), a.data(), s, ElementwiseOp::ReluGradTimesAct, true, raw.data())
                : cpu::elementwiseChannelSum(g.data(), a.data(), s, ElementwiseOp::ReluGradTimesAct, true, raw.data());
          };
          auto resize = [&] {
            dev ? cuda::resizeBilinear(low.data(), n, hw, hw, H, W, false, map.data())
                : cpu::resizeBilinear(low.data(), n, hw, hw, H, W, false, map.data());
          };
          auto normalize = [&] {
            dev ? cuda::minMaxNormalize(map.data(), n, H * W, map.data()) : cpu::minMaxNormalize(map.data(), n, H * W, map.data());
          };
          auto guidedOnly = [&] {
            dev ? cuda::guidedProduct(guided.data(), map.data(), n, 3, H, W, Layout::NCHW, prod.data())
                : cpu::guidedProduct(guided.data(), map.data(), n, 3, H, W, Layout::NCHW, prod.data());
          };
          const int reps = n == 1 ? 21 : 7;
          struct { const char* kernel; std::function<void()> fn; } list[] = {
              {"gradcamTail", tail}, {"resizeBilinear+guidedProduct", resizeGuided},
              {"channelMean", mean}, {"channelSums", csums}, {"weightedChannelSum", wsum},
              {"elementwiseChannelSum", ewsum}, {"resizeBilinear", resize}, {"minMaxNormalize", normalize},
              {"guidedProduct", guidedOnly}};
          for (auto& e : list) {
            const double ms = medianMs(e.fn, reps);
            std::printf("{\"kernel\":\"%s\",\"backend\":\"native-%s\",\"n\":%zu,\"k\":%zu,\"h\":%zu,\"w\":%zu,"
                        "\"H\":%zu,\"W\":%zu,\"ms\":%.4f,\"opsPerSec\":%.2f}\n",
                        e.kernel, name, n, k, hw, hw, H, W, ms, 1000.0 / ms);
          }
        }
      }
}

}  // namespace

int main(int argc, char** argv) {
  const bool doBench = argc > 1 && std::strcmp(argv[1], "--bench") == 0;
  const cuda::Info& info = cuda::info();
  std::printf("cpu threads: %u; cuda compiled: %s; %s\n", cpu::threadCount(), cuda::compiled() ? "yes" : "no",
              info.reason.c_str());
  if (!info.available) {
    std::printf("skipped: no CUDA device (%s)\n", info.reason.c_str());
    if (doBench) bench(false);
    return 0;
  }
  try {
    parity(300);
    pictureParity(60);
  } catch (const std::exception& e) {
    std::printf("FAIL: %s\n", e.what());
    return 1;
  }
  std::printf("%d comparisons, %d failures\n", checks, failures);
  if (doBench) bench(true);
  return failures ? 1 : 0;
}
