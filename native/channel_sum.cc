// Sums over channels on CPU threads: cam[n,i,j] = sum_k f[n,k,i,j] with f = w[n,k]*A
// (weightedChannelSum) or f = g*A / max(g,0)*A (elementwiseChannelSum). One float64
// accumulator per output value, channels k ascending (the reference order), rounded once.
#include <algorithm>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "kernels.h"
#include "thread_pool.h"

namespace gradcam {
namespace cpu {
namespace {

constexpr size_t kPositionBlock = 1024;

// max(g, 0) as the reference's `g < 0 ? 0 : g` (NaN passes through), branch-free: with
// gradients of random sign a branch mispredicts half the time (40x slower here).
inline float reluOf(float g) {
#if defined(__SSE2__)
  return _mm_cvtss_f32(_mm_max_ss(_mm_setzero_ps(), _mm_set_ss(g)));  // a > b ? a : b, else b
#else
  return g < 0 ? 0.0f : g;
#endif
}

// max(f, 0) of a float64 term as the reference's `f < 0 ? 0 : f` (NaN and -0 pass through), branch-free
inline double reluOf(double f) {
#if defined(__SSE2__)
  return _mm_cvtsd_f64(_mm_max_sd(_mm_setzero_pd(), _mm_set_sd(f)));  // 0 > f ? 0 : f
#else
  return f < 0 ? 0.0 : f;
#endif
}

inline float finish(double v, bool relu) {
  const float f = (float)v;
  return relu && f < 0 ? 0.0f : f;
}

// term(img, ch, idx) gives f at flat index idx of channel ch of image img, as a double.
template <typename Term>
void channelSum(const FeatureShape& s, bool relu, float* out, const Term& term) {
  const size_t hw = s.hw(), k = s.k;
  if (s.layout == Layout::NCHW) {
    // per task: one image, a block of positions; walk the channels, each a contiguous run
    const size_t blocks = (hw + kPositionBlock - 1) / kPositionBlock;
    const size_t tasks = s.n * blocks;
    parallelFor(tasks, grainFor(tasks, k * std::min(hw, kPositionBlock)), [&](size_t b, size_t e) {
      double acc[kPositionBlock];
      for (size_t t = b; t < e; t++) {
        const size_t img = t / blocks, p0 = (t % blocks) * kPositionBlock;
        const size_t pn = std::min(kPositionBlock, hw - p0);
        std::fill(acc, acc + pn, 0.0);
        for (size_t ch = 0; ch < k; ch++) {
          const size_t o = (img * k + ch) * hw + p0;
          for (size_t j = 0; j < pn; j++) acc[j] += term(img, ch, o + j);
        }
        float* dst = out + img * hw + p0;
        for (size_t j = 0; j < pn; j++) dst[j] = finish(acc[j], relu);
      }
    });
    return;
  }
  // NHWC: one dot product over k per position; four positions interleaved for ILP
  const size_t total = s.n * hw;
  parallelFor(total, grainFor(total, k), [&](size_t b, size_t e) {
    for (size_t q = b; q < e;) {
      const size_t img = q / hw;
      const size_t o = q * k;
      if (q + 4 <= e && (q + 3) / hw == img) {
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (size_t ch = 0; ch < k; ch++) {
          s0 += term(img, ch, o + ch);
          s1 += term(img, ch, o + k + ch);
          s2 += term(img, ch, o + 2 * k + ch);
          s3 += term(img, ch, o + 3 * k + ch);
        }
        out[q] = finish(s0, relu);
        out[q + 1] = finish(s1, relu);
        out[q + 2] = finish(s2, relu);
        out[q + 3] = finish(s3, relu);
        q += 4;
      } else {
        double s0 = 0;
        for (size_t ch = 0; ch < k; ch++) s0 += term(img, ch, o + ch);
        out[q] = finish(s0, relu);
        q += 1;
      }
    }
  });
}

}  // namespace

void weightedChannelSum(const float* weights, const float* a, const FeatureShape& s, bool relu, float* out) {
  const size_t k = s.k;
  channelSum(s, relu, out, [=](size_t img, size_t ch, size_t idx) {
    return (double)weights[img * k + ch] * (double)a[idx];
  });
}

void elementwiseChannelSum(const float* g, const float* a, const FeatureShape& s, ElementwiseOp op, bool relu,
                           float* out) {
  if (op == ElementwiseOp::GradTimesAct) {
    channelSum(s, relu, out, [=](size_t, size_t, size_t idx) { return (double)g[idx] * (double)a[idx]; });
  } else if (op == ElementwiseOp::ReluGradTimesAct) {
    channelSum(s, relu, out, [=](size_t, size_t, size_t idx) {
      return (double)reluOf(g[idx]) * (double)a[idx];
    });
  } else {
    channelSum(s, relu, out, [=](size_t, size_t, size_t idx) {
      return reluOf((double)g[idx] * (double)a[idx]);
    });
  }
}

}  // namespace cpu
}  // namespace gradcam
