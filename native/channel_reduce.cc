// Channel reductions on CPU threads: the spatial mean per channel (Grad-CAM's alpha) and the
// five per-channel sums Grad-CAM++ and XGrad-CAM need. float64 accumulators, summed over the
// spatial positions in row-major order (the order of lib/kernels/reference.ts), rounded once.
#include <algorithm>
#include <vector>

#include "cpu_internal.h"
#include "kernels.h"
#include "thread_pool.h"

namespace gradcam {
namespace cpu {
namespace {

// Channels per task in NHWC, where one task walks all positions for a block of channels.
constexpr size_t kChannelBlock = 256;

}  // namespace

void channelMean(const float* x, const FeatureShape& s, float* out) {
  const size_t hw = s.hw(), k = s.k, rows = s.n * s.k;
  const double inv = (double)hw;
  if (s.layout == Layout::NCHW) {
    parallelFor(rows, grainFor(rows, hw), [&](size_t b, size_t e) {
      size_t r = b;
      // eight independent chains (enough to keep both FP adders busy), each in the reference order
      for (; r + 8 <= e; r += 8) {
        const float* p0 = x + r * hw;
        double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (size_t p = 0; p < hw; p++)
          for (size_t j = 0; j < 8; j++) acc[j] += p0[j * hw + p];
        for (size_t j = 0; j < 8; j++) out[r + j] = (float)(acc[j] / inv);
      }
      for (; r < e; r++) {
        const float* p0 = x + r * hw;
        double s0 = 0;
        for (size_t p = 0; p < hw; p++) s0 += p0[p];
        out[r] = (float)(s0 / inv);
      }
    });
    return;
  }
  const size_t blocks = (k + kChannelBlock - 1) / kChannelBlock;
  const size_t tasks = s.n * blocks;
  parallelFor(tasks, grainFor(tasks, hw * std::min(k, kChannelBlock)), [&](size_t b, size_t e) {
    double acc[kChannelBlock];
    for (size_t t = b; t < e; t++) {
      const size_t img = t / blocks, k0 = (t % blocks) * kChannelBlock;
      const size_t kn = std::min(kChannelBlock, k - k0);
      std::fill(acc, acc + kn, 0.0);
      const float* base = x + img * hw * k + k0;
      for (size_t p = 0; p < hw; p++) {
        const float* row = base + p * k;
        for (size_t j = 0; j < kn; j++) acc[j] += row[j];
      }
      for (size_t j = 0; j < kn; j++) out[img * k + k0 + j] = (float)(acc[j] / inv);
    }
  });
}

void channelSums(const float* g, const float* a, const FeatureShape& s, float* sg, float* sg2, float* sg3,
                 float* sa, float* sga) {
  const size_t hw = s.hw(), k = s.k, rows = s.n * s.k;
  if (s.layout == Layout::NCHW) {
    parallelFor(rows, grainFor(rows, 5 * hw), [&](size_t b, size_t e) {
      // R channels at once: 5*R independent chains, each in the reference order
      constexpr size_t R = 4;
      for (size_t r = b; r < e; r += R) {
        const size_t m = std::min(R, e - r);
        double s1[R] = {}, s2[R] = {}, s3[R] = {}, s4[R] = {}, s5[R] = {};
        for (size_t p = 0; p < hw; p++) {
          for (size_t j = 0; j < R; j++) {
            if (j >= m) break;
            const double gv = g[(r + j) * hw + p], av = a[(r + j) * hw + p];
            const double g2 = gv * gv;
            s1[j] += gv;
            s2[j] += g2;
            s3[j] += g2 * gv;
            s4[j] += av;
            s5[j] += gv * av;
          }
        }
        for (size_t j = 0; j < m; j++) {
          sg[r + j] = (float)s1[j];
          sg2[r + j] = (float)s2[j];
          sg3[r + j] = (float)s3[j];
          sa[r + j] = (float)s4[j];
          sga[r + j] = (float)s5[j];
        }
      }
    });
    return;
  }
  const size_t blocks = (k + kChannelBlock - 1) / kChannelBlock;
  const size_t tasks = s.n * blocks;
  parallelFor(tasks, grainFor(tasks, 5 * hw * std::min(k, kChannelBlock)), [&](size_t b, size_t e) {
    double a1[kChannelBlock], a2[kChannelBlock], a3[kChannelBlock], a4[kChannelBlock], a5[kChannelBlock];
    for (size_t t = b; t < e; t++) {
      const size_t img = t / blocks, k0 = (t % blocks) * kChannelBlock;
      const size_t kn = std::min(kChannelBlock, k - k0);
      std::fill(a1, a1 + kn, 0.0);
      std::fill(a2, a2 + kn, 0.0);
      std::fill(a3, a3 + kn, 0.0);
      std::fill(a4, a4 + kn, 0.0);
      std::fill(a5, a5 + kn, 0.0);
      const size_t base = img * hw * k + k0;
      for (size_t p = 0; p < hw; p++) {
        const float* gr = g + base + p * k;
        const float* ar = a + base + p * k;
        for (size_t j = 0; j < kn; j++) {
          const double gv = gr[j], av = ar[j];
          const double g2 = gv * gv;
          a1[j] += gv;
          a2[j] += g2;
          a3[j] += g2 * gv;
          a4[j] += av;
          a5[j] += gv * av;
        }
      }
      const size_t o = img * k + k0;
      for (size_t j = 0; j < kn; j++) {
        sg[o + j] = (float)a1[j];
        sg2[o + j] = (float)a2[j];
        sg3[o + j] = (float)a3[j];
        sa[o + j] = (float)a4[j];
        sga[o + j] = (float)a5[j];
      }
    }
  });
}

namespace {

// The weights of one channel from its G and A, `step` apart, p ascending (the reference's order).
inline float weightOf(const float* g, const float* a, size_t hw, size_t step, ChannelWeighting wt, double eps) {
  double sA = 0;
  for (size_t p = 0; p < hw; p++) sA += a[p * step];
  if (wt == ChannelWeighting::GradActRatio) {
    double sGA = 0;
    for (size_t p = 0; p < hw; p++) sGA += (double)g[p * step] * (double)a[p * step];
    return (float)(sGA / (sA + eps));
  }
  double num = 0, den = 0;
  for (size_t p = 0; p < hw; p++) {
    const double gv = g[p * step];
    if (gv == 0) continue;  // a_ij = 0 where G == 0
    const double g2 = gv * gv;
    const double g3 = g2 * gv;
    const double ap = g2 / (2 * g2 + sA * g3 + eps);
    num += (gv < 0 ? 0.0 : gv) * ap;
    den += ap;
  }
  return (float)(wt == ChannelWeighting::GradPPNormalized && den != 0 ? num / den : num);
}

}  // namespace

void channelWeights(const float* g, const float* a, const FeatureShape& s, ChannelWeighting wt, double eps,
                    float* out) {
  if (wt == ChannelWeighting::GradMean) {
    channelMean(g, s, out);
    return;
  }
  const size_t hw = s.hw(), k = s.k, rows = s.n * s.k;
  const bool nchw = s.layout == Layout::NCHW;
  // one channel per item; in NHWC the strided walk is cache-friendly enough at CAM sizes (h*w <= a few
  // hundred positions of k floats), and every channel keeps the reference's order
  parallelFor(rows, grainFor(rows, 4 * hw), [&](size_t b, size_t e) {
    for (size_t r = b; r < e; r++) {
      const size_t img = r / k, ch = r % k;
      const size_t o = nchw ? r * hw : img * hw * k + ch;
      out[r] = weightOf(g + o, a + o, hw, nchw ? 1 : k, wt, eps);
    }
  });
}

}  // namespace cpu
}  // namespace gradcam
