// Bilinear resize on CPU threads (ATen's approach): index and weight tables per output column
// (once per call) and per output row, source index math shared with CUDA (resize_index.h).
// Each source row is interpolated horizontally once into a float64 row and cached, so an output
// row is one contiguous blend of two cached rows: (1-ly)*top + ly*bottom, as in the reference.
#include <vector>

#include "cpu_internal.h"
#include "kernels.h"
#include "resize_index.h"
#include "simd.h"
#include "thread_pool.h"

namespace gradcam {
namespace cpu {

ResizeColumns::ResizeColumns(size_t w, size_t outW, bool alignCorners) : x0(outW), x1(outW), lx(outW), lx0(outW) {
  for (size_t c = 0; c < outW; c++) {
    const SourceIndex si = sourceIndex((int64_t)c, (int64_t)w, (int64_t)outW, alignCorners);
    x0[c] = (size_t)si.i0;
    x1[c] = (size_t)si.i1;
    lx[c] = si.lambda;
    lx0[c] = 1 - si.lambda;
  }
}

GRADCAM_VECTOR_CLONES
void resizeRows(const float* x, size_t h, size_t w, size_t outH, size_t outW, bool alignCorners,
                const ResizeColumns& cols, size_t q0, size_t q1, float* out) {
  // two cached horizontally interpolated source rows, keyed by (image, source row)
  std::vector<double> buf[2] = {std::vector<double>(outW), std::vector<double>(outW)};
  size_t key[2] = {SIZE_MAX, SIZE_MAX};
  const size_t* X0 = cols.x0.data();
  const size_t* X1 = cols.x1.data();
  const double* LX = cols.lx.data();
  const double* LX0 = cols.lx0.data();
  auto row = [&](size_t img, size_t sy, size_t avoid) -> const double* {
    const size_t kk = img * h + sy;
    if (key[0] == kk) return buf[0].data();
    if (key[1] == kk) return buf[1].data();
    const int slot = key[0] == avoid ? 1 : 0;
    key[slot] = kk;
    double* d = buf[slot].data();
    const float* r = x + kk * w;
    for (size_t c = 0; c < outW; c++) d[c] = LX0[c] * (double)r[X0[c]] + LX[c] * (double)r[X1[c]];
    return d;
  };
  for (size_t q = q0; q < q1; q++) {
    const size_t img = q / outH, y = q % outH;
    const SourceIndex si = sourceIndex((int64_t)y, (int64_t)h, (int64_t)outH, alignCorners);
    const double* top = row(img, (size_t)si.i0, SIZE_MAX);
    const double* bottom = row(img, (size_t)si.i1, img * h + (size_t)si.i0);
    const double wy = si.lambda, wy0 = 1 - si.lambda;
    float* dst = out + q * outW;
    for (size_t c = 0; c < outW; c++) dst[c] = (float)(wy0 * top[c] + wy * bottom[c]);
  }
}

void resizeBilinear(const float* x, size_t n, size_t h, size_t w, size_t outH, size_t outW, bool alignCorners,
                    float* out) {
  const ResizeColumns cols(w, outW, alignCorners);
  const size_t rows = n * outH;
  parallelFor(rows, grainFor(rows, 4 * outW), [&](size_t b, size_t e) {
    resizeRows(x, h, w, outH, outW, alignCorners, cols, b, e, out);
  });
}

}  // namespace cpu
}  // namespace gradcam
