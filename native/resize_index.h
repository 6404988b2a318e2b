// The source-index math of bilinear resizing, in one place for the C++ and the CUDA kernels
// (as in PyTorch ATen's UpSample.h). Computed in double, like lib/kernels/reference.ts.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define GRADCAM_HD __host__ __device__
#else
#define GRADCAM_HD
#endif

namespace gradcam {

struct SourceIndex {
  int64_t i0;     // first neighbour
  int64_t i1;     // second neighbour, clamped to the edge
  double lambda;  // weight of i1
};

// Half-pixel centres (OpenCV INTER_LINEAR, torch align_corners=False):
//   src = max((dst + 0.5) * in / out - 0.5, 0)
// Align corners: src = dst * (in - 1) / (out - 1), and 0 when out == 1.
GRADCAM_HD inline SourceIndex sourceIndex(int64_t dst, int64_t inSize, int64_t outSize, bool alignCorners) {
  double src;
  if (alignCorners) {
    src = outSize > 1 ? ((double)dst * (double)(inSize - 1)) / (double)(outSize - 1) : 0.0;
  } else {
    src = (((double)dst + 0.5) * (double)inSize) / (double)outSize - 0.5;
    if (src < 0) src = 0;
  }
  int64_t i0 = (int64_t)src;  // floor: src >= 0
  if (i0 > inSize - 1) i0 = inSize - 1;
  int64_t i1 = i0 + 1 < inSize - 1 ? i0 + 1 : inSize - 1;
  return SourceIndex{i0, i1, src - (double)i0};
}

}  // namespace gradcam
