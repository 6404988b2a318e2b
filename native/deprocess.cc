// deprocess_image on CPU threads: per image, mean and std with numpy's float32 pairwise sums
// (blocks of 8192 summed in parallel, then added in order, as np.sum adds them), then the bytes.
// Numbers: lib/kernels/pictures.ts.
#include <vector>

#include "pictures.h"
#include "thread_pool.h"

namespace gradcam {
namespace cpu {
namespace {

struct Values {
  const float* x;
  float operator()(size_t i) const { return x[i]; }
};

struct SquaredDeviations {
  const float* x;
  float mean;
  float operator()(size_t i) const {
    const float d = x[i] - mean;
    return d * d;
  }
};

}  // namespace

void deprocessImage(const float* data, size_t n, size_t c, size_t H, size_t W, Layout layout, uint8_t* out) {
  const size_t hw = H * W, size = c * hw;
  const size_t blocks = (size + kNumpyBlock - 1) / kNumpyBlock;
  const size_t tasks = n * blocks;
  std::vector<float> partial(tasks), mean(n), denom(n);
  auto blockRange = [&](size_t t, size_t& start, size_t& len) {
    const size_t k = t % blocks;
    start = (t / blocks) * size + k * kNumpyBlock;
    len = k + 1 < blocks ? kNumpyBlock : size - k * kNumpyBlock;
  };
  // np.sum accumulates the block sums from 0, in order
  auto total = [&](size_t img) {
    float s = 0.0f;
    for (size_t k = 0; k < blocks; k++) s = s + partial[img * blocks + k];
    return s;
  };
  parallelFor(tasks, 1, [&](size_t b, size_t e) {
    for (size_t t = b; t < e; t++) {
      size_t start, len;
      blockRange(t, start, len);
      partial[t] = pairwiseSum(Values{data}, start, len);
    }
  });
  for (size_t img = 0; img < n; img++) mean[img] = meanOf(total(img), size);
  parallelFor(tasks, 1, [&](size_t b, size_t e) {
    for (size_t t = b; t < e; t++) {
      size_t start, len;
      blockRange(t, start, len);
      partial[t] = pairwiseSum(SquaredDeviations{data, mean[t / blocks]}, start, len);
    }
  });
  for (size_t img = 0; img < n; img++) denom[img] = deprocessDenominator(total(img), size);
  // the bytes: nhwc in place; nchw [c,H,W] written interleaved [H,W,c]
  parallelFor(tasks, 1, [&](size_t b, size_t e) {
    for (size_t t = b; t < e; t++) {
      size_t start, len;
      blockRange(t, start, len);
      const size_t img = t / blocks, base = img * size;
      const float mn = mean[img], d = denom[img];
      if (layout == Layout::NHWC || c == 1) {
        for (size_t i = start; i < start + len; i++) out[i] = deprocessByte(data[i], mn, d);
      } else {
        for (size_t i = start; i < start + len; i++) {
          const size_t j = i - base;
          out[base + (j % hw) * c + j / hw] = deprocessByte(data[i], mn, d);
        }
      }
    }
  });
}

}  // namespace cpu
}  // namespace gradcam
