// Pieces the CPU kernels share (not part of the kernel API): the resize column tables and
// row loop, and the normalization passes, so the fused tail can run resize + normalize per
// image while the image is still in cache.
#pragma once
#include <cstddef>
#include <vector>

#include "shape.h"

namespace gradcam {
namespace cpu {

/** Index and weight tables of the output columns, computed once per resize. */
struct ResizeColumns {
  std::vector<size_t> x0, x1;
  std::vector<double> lx, lx0;  // weight of x1, and 1 - that
  ResizeColumns(size_t w, size_t outW, bool alignCorners);
};

/** Resizes output rows [q0, q1) (q = image * outH + y) of the batch x [n,h,w] into out. */
void resizeRows(const float* x, size_t h, size_t w, size_t outH, size_t outW, bool alignCorners,
                const ResizeColumns& cols, size_t q0, size_t q1, float* out);

/** out [n,k]: the channel weights of `w` from g (and a), eps as in shape.h. */
void channelWeights(const float* g, const float* a, const FeatureShape& s, ChannelWeighting w, double eps,
                    float* out);

/** min and max of x[0..size), NaN skipped (as `v < min` / `v > max` comparisons do). */
void minMaxOf(const float* x, size_t size, float& mn, float& mx);

/** One image: y = x - min; out = y / float32(1e-7 + max(y)); x may equal out. */
void normalizeImage(const float* x, size_t size, float* out);

/** The same when min and max of x are known: max(x - min) is float32(max - min). */
void normalizeWithMinMax(const float* x, size_t size, float mn, float mx, float* out);

}  // namespace cpu
}  // namespace gradcam
