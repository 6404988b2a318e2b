// The Node binding: every kernel registered in one list (kKernels, at the bottom), each as a
// synchronous function and as `<name>Async` returning a Promise whose work runs on a libuv
// worker thread. Every function takes the device first ('cpu' | 'cuda'), then the arguments
// of lib/kernels/types.ts. Synchronous calls read and write the caller's arrays in place;
// Promise calls work on native copies of the inputs (see Job: the caller's code runs meanwhile
// and may free a buffer). Fresh outputs are Float32Arrays (Uint8Arrays for the picture kernels)
// allocated on the main thread.
#include <napi.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "check.h"
#include "kernels.h"
#include "pictures.h"

namespace gradcam {
namespace {

enum class Device { Cpu, Cuda };

// Large outputs are fresh, untouched memory: ask Linux for transparent huge pages, so the
// kernels' first writes fault 2 MiB at a time instead of 4 KiB (a large share of the time of
// the memory-bound kernels). Only advice: ignored where unsupported.
void adviseHugePages(void* data, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const uintptr_t huge = uintptr_t(2) << 20;
  if (bytes < 2 * huge) return;
  const uintptr_t b = ((uintptr_t)data + huge - 1) & ~(huge - 1);
  const uintptr_t e = ((uintptr_t)data + bytes) & ~(huge - 1);
  if (e > b) madvise((void*)b, e - b, MADV_HUGEPAGE);
#else
  (void)data;
  (void)bytes;
#endif
}

// Per environment (the main thread and each worker_thread loading the addon): the original
// Float32Array and Uint8Array constructors, taken when the addon loads.
struct AddonData {
  Napi::FunctionReference float32Array;
  Napi::FunctionReference uint8Array;
};

// The element types of the kernels' arrays: float32 (the maths) and uint8 (the pictures).
size_t elementSize(napi_typedarray_type type) { return type == napi_uint8_array ? 1 : sizeof(float); }

/** A Float32Array or Uint8Array of `length` (TypeError / RangeError with the messages of validate.ts). */
Napi::TypedArray checkTypedArray(napi_typedarray_type type, const std::string& name, Napi::Value v, size_t length) {
  if (type == napi_uint8_array) return checkUint8Array(name, v, length);
  return checkFloat32Array(name, v, length);
}

/** The first element of a typed array (after a check of its length). */
void* typedArrayData(Napi::TypedArray a) {
  napi_typedarray_type type;
  size_t length, offset;
  void* data = nullptr;
  napi_value buffer;
  NAPI_THROW_IF_FAILED(a.Env(), napi_get_typedarray_info(a.Env(), a, &type, &length, &data, &buffer, &offset), nullptr);
  return data;
}

// A fresh (zeroed) output array; large ones advised to use huge pages (see above).
// Allocated by the JavaScript constructor, not Napi::Float32Array::New: where memory runs out,
// the constructor throws a RangeError, but napi_create_arraybuffer ends the process (a V8 fatal
// "v8::ArrayBuffer::New" out-of-memory error, Node 20).
// (Uninitialized external buffers were tried: V8 frees them only after a later GC and a
// finalizer tick, so memory balloons in a synchronous loop and every call faults in fresh pages.)
Napi::TypedArray newOutput(Napi::Env env, napi_typedarray_type type, const std::string& name, size_t length) {
  AddonData* data = env.GetInstanceData<AddonData>();
  Napi::FunctionReference& ctor = type == napi_uint8_array ? data->uint8Array : data->float32Array;
  Napi::Value v;
  try {
    v = ctor.New({Napi::Number::New(env, (double)length)});
  } catch (const Napi::Error& e) {
    throw allocationError(env, name, length * elementSize(type), e.Message());
  }
  Napi::TypedArray a = checkTypedArray(type, name, v, length);
  adviseHugePages(typedArrayData(a), length * elementSize(type));
  return a;
}

// Native memory for the private copies of the Promise calls (see Job), kept for reuse: fresh
// memory for each call (malloc + free of tens of MB) faults in every page again, which made an
// async call up to 5x slower than without the copy; reused memory only costs the memcpy.
// Process-wide (every environment), at most kCacheBuffers buffers and kCacheBytes bytes kept.
class BufferCache {
 public:
  static constexpr size_t kCacheBuffers = 8;
  static constexpr size_t kCacheBytes = size_t(1) << 30;

  /** A buffer of at least `length` floats (a kept one at most twice as large), or nullptr. */
  std::pair<float*, size_t> take(size_t length) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      size_t best = SIZE_MAX;
      for (size_t i = 0; i < free_.size(); i++)
        if (free_[i].second >= length && free_[i].second / 2 <= length &&
            (best == SIZE_MAX || free_[i].second < free_[best].second))
          best = i;
      if (best != SIZE_MAX) {
        auto b = free_[best];
        free_.erase(free_.begin() + best);
        bytes_ -= b.second * sizeof(float);
        return b;
      }
    }
    float* p = static_cast<float*>(std::malloc(length * sizeof(float)));
    if (p) adviseHugePages(p, length * sizeof(float));
    return {p, length};
  }
  /** Keeps the buffer (dropping the oldest ones over the limits), or frees it. */
  void give(float* p, size_t capacity) {
    std::vector<float*> drop;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (capacity * sizeof(float) > kCacheBytes) {
        drop.push_back(p);
      } else {
        free_.emplace_back(p, capacity);
        bytes_ += capacity * sizeof(float);
        while (free_.size() > kCacheBuffers || bytes_ > kCacheBytes) {
          drop.push_back(free_.front().first);
          bytes_ -= free_.front().second * sizeof(float);
          free_.erase(free_.begin());
        }
      }
    }
    for (float* d : drop) std::free(d);
  }

 private:
  std::mutex mutex_;
  std::vector<std::pair<float*, size_t>> free_;  // oldest first
  size_t bytes_ = 0;
};

BufferCache& bufferCache() {
  static BufferCache* cache = new BufferCache();  // never destroyed: Jobs may outlive static destructors
  return *cache;
}

struct BufferReturn {
  size_t capacity = 0;
  void operator()(float* p) const { bufferCache().give(p, capacity); }
};
using Buffer = std::unique_ptr<float[], BufferReturn>;

/** Native memory of `bytes` (whole floats: the cache keeps float buffers). */
Buffer allocate(Napi::Env env, const std::string& name, size_t bytes) {
  auto [p, capacity] = bufferCache().take((bytes + sizeof(float) - 1) / sizeof(float));
  if (!p) throw allocationError(env, name, bytes, "out of memory");
  return Buffer(p, BufferReturn{capacity});
}

// One typed array of a call (a Float32Array, or a Uint8Array for the picture kernels): a
// caller's input, the caller's `out`, or a fresh output.
struct ArrayArg {
  enum Kind { Input, Given, Fresh };
  Kind kind;
  napi_typedarray_type type;  // napi_float32_array or napi_uint8_array
  std::string name;
  size_t length;              // in elements
  Napi::ObjectReference ref;  // the array, alive until the call is done
  void* data = nullptr;       // what the kernel reads or writes; bound in Job::seal()
  Buffer own;                 // async: the private copy (Input) or scratch (Given) behind data
  size_t bytes() const { return length * elementSize(type); }
};

// What a kernel gets for an array argument: its memory, read only when the kernel runs (after
// Job::seal()). Converts to the T* / const T* of the kernel signatures (float, or uint8_t for
// BytePtr).
template <typename T>
class ArrayPtr {
 public:
  explicit ArrayPtr(const ArrayArg* a) : a_(a) {}
  operator T*() const { return static_cast<T*>(a_->data); }

 private:
  const ArrayArg* a_;
};
using Ptr = ArrayPtr<float>;
using BytePtr = ArrayPtr<uint8_t>;

// One kernel call, parsed and checked on the main thread, run anywhere.
//
// Memory safety (native/README.md, "The caller's buffers"): a parser checks every argument, in
// the order of lib/kernels/validate.ts, which may run the caller's code (getters, proxies on
// shape and options objects); it only registers the caller's arrays (input(), output()). Their
// memory is taken in seal(), run by callSync / callAsync after the parser, when no caller code
// can run any more before the kernel starts:
//   sync:  the caller's memory, each array checked again (a getter may have detached, resized or
//          transferred it, or made `out` overlap an input).
//   async: the kernel runs on another thread while the caller's code runs, which may detach
//          (transfer, WebAssembly.Memory.grow) or shrink (resizable ArrayBuffer) a buffer and free
//          its memory, and Node-API can neither pin a buffer nor share its ownership. So each
//          input is copied into native memory, and the caller's `out` is written through native
//          scratch memory, copied into `out` on completion (finish()) if `out` still has its
//          length (else a RangeError). Arrays on a SharedArrayBuffer, which can be neither
//          detached nor shrunk, are used in place (held by `ref`).
// A kernel's parser written with input() / output() gets all of this.
struct Job {
  std::deque<ArrayArg> arrays;  // deque: the ArrayArgs stay where Ptr points
  std::vector<std::pair<std::string, size_t>> fields;   // named outputs -> index in arrays
  std::vector<std::pair<std::string, double>> numbers;  // named numbers of the result
  size_t single = SIZE_MAX;                             // or the one output
  std::function<void()> run;
  // Checks of the inputs' values (not only their lengths), run at the end of seal() on the main
  // thread, on the memory the kernel will read (showCamOnImage: images <= 1).
  std::vector<std::function<void()>> checkValues;

  /** A caller's input: a Float32Array of `length` (TypeError / RangeError as validate.ts). */
  Ptr input(const char* name, Napi::Value v, size_t length) { return Ptr(addInput(napi_float32_array, name, v, length)); }
  /** A caller's input Uint8Array of `length`. */
  BytePtr byteInput(const char* name, Napi::Value v, size_t length) {
    return BytePtr(addInput(napi_uint8_array, name, v, length));
  }
  /** A fresh output array, returned alone (field null) or as result[field]. */
  Ptr output(Napi::Env env, size_t length, const char* field = nullptr) {
    return Ptr(addFresh(env, napi_float32_array, length, field));
  }
  /** A fresh output Uint8Array, returned alone. */
  BytePtr byteOutput(Napi::Env env, size_t length) { return BytePtr(addFresh(env, napi_uint8_array, length, nullptr)); }
  /**
   * The optional `out` argument: undefined -> a fresh output; else the caller's Float32Array of
   * exactly `length`, overlapping no input registered before, written in place and returned.
   */
  Ptr output(Napi::Env env, size_t length, Napi::Value given) {
    if (given.IsUndefined()) return output(env, length);
    Napi::Float32Array o = checkFloat32Array("out", given, length);
    checkOutOverlap(given, o);
    single = arrays.size();
    return Ptr(add(ArrayArg::Given, napi_float32_array, "out", o, length));
  }

  /** Binds the arrays' memory (see above); async: copies. Throws the errors of the checks. */
  void seal(Napi::Env env, bool async) {
    for (ArrayArg& a : arrays) {
      if (a.kind == ArrayArg::Fresh) continue;
      Napi::TypedArray now = checkTypedArray(a.type, a.name, a.ref.Value(), a.length);  // queried afresh
      if (a.kind == ArrayArg::Given) checkOutOverlap(a.ref.Value(), now.As<Napi::Float32Array>());
      a.data = typedArrayData(now);
      if (!async || !now.ArrayBuffer().IsArrayBuffer()) continue;  // sync, or a SharedArrayBuffer
      a.own = allocate(env, a.name, a.bytes());
      if (a.kind == ArrayArg::Input) std::memcpy(a.own.get(), a.data, a.bytes());
      a.data = a.own.get();
    }
    for (auto& check : checkValues) check();
  }
  /** On the main thread after an async run: the scratch of the caller's `out` into `out`. */
  void finish(Napi::Env env) {
    for (ArrayArg& a : arrays) {
      if (a.kind != ArrayArg::Given || !a.own) continue;
      Napi::TypedArray now = checkTypedArray(a.type, a.name, a.ref.Value(), a.length);
      std::memcpy(typedArrayData(now), a.own.get(), a.bytes());
      a.own.reset();
    }
  }
  Napi::Value result(Napi::Env env) {
    if (fields.empty() && numbers.empty()) return arrays[single].ref.Value();
    Napi::Object o = Napi::Object::New(env);
    for (auto& f : numbers) o.Set(f.first, f.second);
    for (auto& f : fields) o.Set(f.first, arrays[f.second].ref.Value());
    return o;
  }

 private:
  ArrayArg* add(ArrayArg::Kind kind, napi_typedarray_type type, const char* name, Napi::TypedArray a, size_t length) {
    arrays.push_back(ArrayArg{kind, type, name, length, Napi::Persistent(a.As<Napi::Object>())});
    return &arrays.back();
  }
  ArrayArg* addInput(napi_typedarray_type type, const std::string& name, Napi::Value v, size_t length) {
    Napi::TypedArray a = checkTypedArray(type, name, v, length);
    arrays.push_back(ArrayArg{ArrayArg::Input, type, name, length, Napi::Persistent(a.As<Napi::Object>())});
    return &arrays.back();
  }
  ArrayArg* addFresh(Napi::Env env, napi_typedarray_type type, size_t length, const char* field) {
    Napi::TypedArray a = newOutput(env, type, field ? field : "out", length);
    ArrayArg* p = add(ArrayArg::Fresh, type, field ? field : "out", a, length);
    p->data = typedArrayData(a);  // unreachable by the caller's code: bound now
    if (field)
      fields.emplace_back(field, arrays.size() - 1);
    else
      single = arrays.size() - 1;
    return p;
  }
  void checkOutOverlap(Napi::Value given, Napi::Float32Array o) {
    for (const ArrayArg& in : arrays)
      if (in.kind == ArrayArg::Input && in.type == napi_float32_array)
        checkNotOverlapping(given, o, in.name, Napi::Float32Array(given.Env(), in.ref.Value()));
  }
};

using Parser = std::unique_ptr<Job> (*)(const Napi::CallbackInfo&, Device);

#define GRADCAM_DISPATCH(dev, fn, ...) \
  ((dev) == Device::Cuda ? ::gradcam::cuda::fn(__VA_ARGS__) : ::gradcam::cpu::fn(__VA_ARGS__))

// info[0] is the device; the kernel's own arguments follow.
Device parseDevice(const Napi::CallbackInfo& info) {
  return checkOneOf("device", info[0], {"cpu", "cuda"}) == "cuda" ? Device::Cuda : Device::Cpu;
}

ElementwiseOp checkElementwiseOp(const std::string& name, Napi::Value v) {
  const std::string op = checkOneOf(name, v, {"grad-times-act", "relu-grad-times-act", "relu-of-grad-times-act"});
  return op == "grad-times-act"        ? ElementwiseOp::GradTimesAct
         : op == "relu-grad-times-act" ? ElementwiseOp::ReluGradTimesAct
                                       : ElementwiseOp::ReluOfGradTimesAct;
}

std::unique_ptr<Job> parseChannelMean(const Napi::CallbackInfo& info, Device dev) {
  auto job = std::make_unique<Job>();
  const FeatureShape s = checkFeatureShape(info[2], "x");
  Ptr x = job->input("x", info[1], s.count());
  Ptr out = job->output(info.Env(), s.n * s.k);
  job->run = [=] { GRADCAM_DISPATCH(dev, channelMean, x, s, out); };
  return job;
}

std::unique_ptr<Job> parseChannelSums(const Napi::CallbackInfo& info, Device dev) {
  auto job = std::make_unique<Job>();
  Napi::Env env = info.Env();
  const FeatureShape s = checkFeatureShape(info[3], "g");
  Ptr g = job->input("g", info[1], s.count());
  Ptr a = job->input("a", info[2], s.count());
  const size_t nk = s.n * s.k;
  Ptr sg = job->output(env, nk, "g");
  Ptr sg2 = job->output(env, nk, "g2");
  Ptr sg3 = job->output(env, nk, "g3");
  Ptr sa = job->output(env, nk, "a");
  Ptr sga = job->output(env, nk, "ga");
  job->run = [=] { GRADCAM_DISPATCH(dev, channelSums, g, a, s, sg, sg2, sg3, sa, sga); };
  return job;
}

std::unique_ptr<Job> parseWeightedChannelSum(const Napi::CallbackInfo& info, Device dev) {
  auto job = std::make_unique<Job>();
  const FeatureShape s = checkFeatureShape(info[3], "a");
  Ptr weights = job->input("weights", info[1], s.n * s.k);
  Ptr a = job->input("a", info[2], s.count());
  const bool relu = checkBoolean("relu", info[4]);
  Ptr out = job->output(info.Env(), s.n * s.hw());
  job->run = [=] { GRADCAM_DISPATCH(dev, weightedChannelSum, weights, a, s, relu, out); };
  return job;
}

std::unique_ptr<Job> parseElementwiseChannelSum(const Napi::CallbackInfo& info, Device dev) {
  auto job = std::make_unique<Job>();
  const FeatureShape s = checkFeatureShape(info[3], "g");
  Ptr g = job->input("g", info[1], s.count());
  Ptr a = job->input("a", info[2], s.count());
  const ElementwiseOp op = checkElementwiseOp("op", info[4]);
  const bool relu = checkBoolean("relu", info[5]);
  Ptr out = job->output(info.Env(), s.n * s.hw());
  job->run = [=] { GRADCAM_DISPATCH(dev, elementwiseChannelSum, g, a, s, op, relu, out); };
  return job;
}

/** options?: { alignCorners?: boolean } */
bool parseResizeOptions(Napi::Value v, const std::string& name) {
  if (v.IsUndefined()) return false;
  Napi::Object o = checkObject(name, v);
  return checkOptionalBoolean(name + ".alignCorners", o.Get("alignCorners"), false);
}

std::unique_ptr<Job> parseResizeBilinear(const Napi::CallbackInfo& info, Device dev) {
  auto job = std::make_unique<Job>();
  Napi::Env env = info.Env();
  const double dn = checkPositiveInteger("n", info[2]);
  const double dh = checkPositiveInteger("h", info[3]);
  const double dw = checkPositiveInteger("w", info[4]);
  const double dH = checkPositiveInteger("outH", info[5]);
  const double dW = checkPositiveInteger("outW", info[6]);
  const size_t len = checkCount(env, "x", {dn, dh, dw});
  const size_t outLen = checkCount(env, "out", {dn, dH, dW});
  const size_t n = (size_t)dn, h = (size_t)dh, w = (size_t)dw, outH = (size_t)dH, outW = (size_t)dW;
  Ptr x = job->input("x", info[1], len);
  const bool ac = parseResizeOptions(info[7], "options");
  Ptr out = job->output(env, outLen, info[8]);
  job->run = [=] { GRADCAM_DISPATCH(dev, resizeBilinear, x, n, h, w, outH, outW, ac, out); };
  return job;
}

std::unique_ptr<Job> parseMinMaxNormalize(const Napi::CallbackInfo& info, Device dev) {
  auto job = std::make_unique<Job>();
  Napi::Env env = info.Env();
  const double dn = checkPositiveInteger("n", info[2]);
  const double dsize = checkPositiveInteger("size", info[3]);
  const size_t len = checkCount(env, "x", {dn, dsize});
  const size_t n = (size_t)dn, size = (size_t)dsize;
  Ptr x = job->input("x", info[1], len);
  Ptr out = job->output(env, len);
  job->run = [=] { GRADCAM_DISPATCH(dev, minMaxNormalize, x, n, size, out); };
  return job;
}

std::unique_ptr<Job> parseGuidedProduct(const Napi::CallbackInfo& info, Device dev) {
  auto job = std::make_unique<Job>();
  Napi::Env env = info.Env();
  const double dn = checkPositiveInteger("n", info[3]);
  const double dc = checkPositiveInteger("c", info[4]);
  const double dH = checkPositiveInteger("H", info[5]);
  const double dW = checkPositiveInteger("W", info[6]);
  const Layout layout = checkLayout("layout", info[7]);
  const size_t len = checkCount(env, "guided", {dn, dc, dH, dW});
  const size_t n = (size_t)dn, c = (size_t)dc, H = (size_t)dH, W = (size_t)dW;
  Ptr guided = job->input("guided", info[1], len);
  Ptr cam = job->input("cam", info[2], n * H * W);
  Ptr out = job->output(env, len, info[8]);
  job->run = [=] { GRADCAM_DISPATCH(dev, guidedProduct, guided, cam, n, c, H, W, layout, out); };
  return job;
}

std::unique_ptr<Job> parseGradcamTail(const Napi::CallbackInfo& info, Device dev) {
  auto job = std::make_unique<Job>();
  Napi::Env env = info.Env();
  const FeatureShape s = checkFeatureShape(info[3], "a");
  Napi::Object o = checkObject("options", info[4]);
  const double dH = checkPositiveInteger("options.outH", o.Get("outH"));
  const double dW = checkPositiveInteger("options.outW", o.Get("outW"));
  const size_t mapLen = checkCount(env, "map", {(double)s.n, dH, dW});
  Ptr a = job->input("a", info[1], s.count());
  Ptr g = job->input("g", info[2], s.count());
  TailOptions opt;
  opt.outH = (size_t)dH;
  opt.outW = (size_t)dW;
  opt.relu = checkOptionalBoolean("options.relu", o.Get("relu"), true);
  opt.alignCorners = checkOptionalBoolean("options.alignCorners", o.Get("alignCorners"), false);
  Ptr weights = job->output(env, s.n * s.k, "weights");
  Ptr lowresRaw = job->output(env, s.n * s.hw(), "lowresRaw");
  Ptr lowres = job->output(env, s.n * s.hw(), "lowres");
  Ptr map = job->output(env, mapLen, "map");
  job->run = [=] {
    const TailOutputs out{weights, lowresRaw, lowres, map};
    GRADCAM_DISPATCH(dev, gradcamTail, a, g, s, opt, out);
  };
  return job;
}

// The picture kernels: Float32Array or Uint8Array inputs, a fresh Uint8Array output.

std::unique_ptr<Job> parseApplyColormap(const Napi::CallbackInfo& info, Device dev) {
  auto job = std::make_unique<Job>();
  size_t n, H, W;
  checkPictureSize(info.Env(), info[2], info[3], info[4], "out", 3, n, H, W);
  Ptr maps = job->input("maps", info[1], n * H * W);
  const Colormap cm = checkColormap("colormap", info[5]);
  BytePtr out = job->byteOutput(info.Env(), n * H * W * 3);
  job->run = [=] { GRADCAM_DISPATCH(dev, applyColormap, maps, n, H, W, cm, out); };
  return job;
}

std::unique_ptr<Job> parseShowCamOnImage(const Napi::CallbackInfo& info, Device dev) {
  auto job = std::make_unique<Job>();
  size_t n, H, W;
  checkPictureSize(info.Env(), info[3], info[4], info[5], "out", 4, n, H, W);
  Ptr images = job->input("images", info[1], n * H * W * 3);
  Ptr maps = job->input("maps", info[2], n * H * W);
  const OverlayOptions o = checkOverlayOptions("options", info[6]);
  // show_cam_on_image raises on an image above 1 (NaN passes, as np.max(img) > 1 does): read in
  // seal(), from the memory the kernel will read (the copy of a Promise call)
  Napi::Value imagesValue = info[1];
  const size_t len = n * H * W * 3;
  job->checkValues.push_back([images, imagesValue, len] {
    const float* p = images;
    for (size_t i = 0; i < len; i++)
      if (p[i] > 1.0f) GRADCAM_THROW_RANGE("images", "float RGB values in [0, 1]", imagesValue);
  });
  BytePtr out = job->byteOutput(info.Env(), n * H * W * o.channels);
  job->run = [=] { GRADCAM_DISPATCH(dev, showCamOnImage, images, maps, n, H, W, o, out); };
  return job;
}

std::unique_ptr<Job> parseDeprocessImage(const Napi::CallbackInfo& info, Device dev) {
  auto job = std::make_unique<Job>();
  Napi::Env env = info.Env();
  const double dn = checkPositiveInteger("n", info[2]);
  const double dc = checkPositiveInteger("c", info[3]);
  const double dH = checkPositiveInteger("H", info[4]);
  const double dW = checkPositiveInteger("W", info[5]);
  const Layout layout = checkLayout("layout", info[6]);
  const size_t len = checkCount(env, "data", {dn, dc, dH, dW});
  const size_t n = (size_t)dn, c = (size_t)dc, H = (size_t)dH, W = (size_t)dW;
  Ptr data = job->input("data", info[1], len);
  BytePtr out = job->byteOutput(env, len);
  job->run = [=] { GRADCAM_DISPATCH(dev, deprocessImage, data, n, c, H, W, layout, out); };
  return job;
}

std::unique_ptr<Job> parseGreyToRgb(const Napi::CallbackInfo& info, Device dev) {
  auto job = std::make_unique<Job>();
  size_t n, H, W;
  checkPictureSize(info.Env(), info[2], info[3], info[4], "out", 3, n, H, W);
  BytePtr grey = job->byteInput("grey", info[1], n * H * W);
  BytePtr out = job->byteOutput(info.Env(), n * H * W * 3);
  job->run = [=] { GRADCAM_DISPATCH(dev, greyToRgb, grey, n, H, W, out); };
  return job;
}

// camTail(a, grads, shape, combine, options, guide?): the checks in the order of validate.ts.
std::unique_ptr<Job> parseCamTail(const Napi::CallbackInfo& info, Device dev) {
  auto job = std::make_unique<Job>();
  Napi::Env env = info.Env();
  const FeatureShape s = checkFeatureShape(info[3], "a");
  Napi::Object co = checkObject("combine", info[4]);
  const std::string kind = checkOneOf("combine.kind", co.Get("kind"), {"weights", "given-weights", "elementwise", "given-lowres"});
  CamCombine c{CombineKind::Weights, ChannelWeighting::GradMean, 1e-7, ElementwiseOp::GradTimesAct};
  Napi::Array given;
  bool hasGiven = false;
  if (kind == "weights") {
    const std::string wt = checkOneOf("combine.weighting", co.Get("weighting"),
                                      {"grad-mean", "grad-pp", "grad-pp-normalized", "grad-act-ratio"});
    c.weighting = wt == "grad-mean"   ? ChannelWeighting::GradMean
                  : wt == "grad-pp"   ? ChannelWeighting::GradPP
                  : wt == "grad-pp-normalized" ? ChannelWeighting::GradPPNormalized
                                      : ChannelWeighting::GradActRatio;
    Napi::Value eps = co.Get("eps");
    if (!eps.IsUndefined()) c.eps = checkNonNegativeFinite("combine.eps", eps);
  } else if (kind == "elementwise") {
    c.kind = CombineKind::Elementwise;
    c.op = checkElementwiseOp("combine.op", co.Get("op"));
  } else if (kind == "given-weights") {
    c.kind = CombineKind::GivenWeights;
    given = checkRoundArray("combine.weights", co.Get("weights"));
    hasGiven = true;
  } else {
    c.kind = CombineKind::GivenLowres;
    given = checkRoundArray("combine.lowres", co.Get("lowres"));
    hasGiven = true;
  }
  Napi::Object o = checkObject("options", info[5]);
  const double dH = checkPositiveInteger("options.outH", o.Get("outH"));
  const double dW = checkPositiveInteger("options.outW", o.Get("outW"));
  double dc = 0;
  Layout guideLayout = Layout::NCHW;
  Napi::Array inputGrads;
  const bool hasGuide = !info[6].IsUndefined();
  if (hasGuide) {
    Napi::Object gd = checkObject("guide", info[6]);
    dc = checkPositiveInteger("guide.c", gd.Get("c"));
    guideLayout = checkLayout("guide.layout", gd.Get("layout"));
    Napi::Value ig = gd.Get("inputGrads");
    if (!ig.IsArray()) GRADCAM_THROW_TYPE("guide.inputGrads", "array of Float32Array", ig);
    inputGrads = ig.As<Napi::Array>();
  }
  Napi::Array grads;
  if (hasGiven) {
    if (!info[2].IsNull()) GRADCAM_THROW_TYPE("grads", "null (combine.kind '" + kind + "' reads no gradients)", info[2]);
  } else {
    grads = checkRoundArray("grads", info[2]);
  }
  const size_t R = hasGiven ? given.Length() : grads.Length();
  if (hasGuide) checkRoundCount("guide.inputGrads", inputGrads, R);
  const double dR = (double)R, dn = (double)s.n;
  checkCount(env, "lowres", {dR, dn, (double)s.h, (double)s.w});
  const size_t mapLen = checkCount(env, "map", {dR, dn, dH, dW});
  const size_t guidedLen = hasGuide ? checkCount(env, "guided", {dR, dn, dc, dH, dW}) : 0;
  Ptr a = job->input("a", info[1], s.count());
  // one input per round (each copied by a Promise call like any input), named as validate.ts
  auto rounds = [&](const std::string& name, Napi::Array v, size_t length) {
    std::vector<Ptr> ptrs;
    for (uint32_t r = 0; r < v.Length(); r++)
      ptrs.push_back(job->input((name + "[" + std::to_string(r) + "]").c_str(), v.Get(r), length));
    return ptrs;
  };
  std::vector<Ptr> gradPtrs, givenPtrs, inputPtrs;
  if (!hasGiven) gradPtrs = rounds("grads", grads, s.count());
  if (c.kind == CombineKind::GivenWeights) givenPtrs = rounds("combine.weights", given, s.n * s.k);
  if (c.kind == CombineKind::GivenLowres) givenPtrs = rounds("combine.lowres", given, s.n * s.hw());
  if (hasGuide) inputPtrs = rounds("guide.inputGrads", inputGrads, guidedLen / R);
  TailOptions opt;
  opt.outH = (size_t)dH;
  opt.outW = (size_t)dW;
  opt.relu = checkOptionalBoolean("options.relu", o.Get("relu"), true);
  opt.alignCorners = checkOptionalBoolean("options.alignCorners", o.Get("alignCorners"), false);
  job->numbers.emplace_back("rounds", dR);
  std::optional<Ptr> weights, guided;
  if (c.kind == CombineKind::Weights || c.kind == CombineKind::GivenWeights)
    weights = job->output(env, R * s.n * s.k, "weights");
  Ptr lowresRaw = job->output(env, R * s.n * s.hw(), "lowresRaw");
  Ptr lowres = job->output(env, R * s.n * s.hw(), "lowres");
  Ptr map = job->output(env, mapLen, "map");
  if (hasGuide) guided = job->output(env, guidedLen, "guided");
  const size_t guideC = (size_t)dc;
  job->run = [=] {
    // the pointers exist only now, after seal()
    auto bind = [](const std::vector<Ptr>& ptrs) {
      std::vector<const float*> p(ptrs.begin(), ptrs.end());
      return p;
    };
    const std::vector<const float*> gp = bind(gradPtrs), vp = bind(givenPtrs), ip = bind(inputPtrs);
    const CamRounds rd{R, gp.empty() ? nullptr : gp.data(), vp.empty() ? nullptr : vp.data(),
                       ip.empty() ? nullptr : ip.data(), guideC, guideLayout};
    const CamTailOutputs out{weights ? (float*)*weights : nullptr, lowresRaw, lowres, map,
                             guided ? (float*)*guided : nullptr};
    GRADCAM_DISPATCH(dev, camTail, a, s, c, rd, opt, out);
  };
  return job;
}

template <Parser P>
Napi::Value callSync(const Napi::CallbackInfo& info) {
  std::unique_ptr<Job> job = P(info, parseDevice(info));
  job->seal(info.Env(), false);
  try {
    job->run();
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
  return job->result(info.Env());
}

class KernelWorker : public Napi::AsyncWorker {
 public:
  KernelWorker(Napi::Env env, std::unique_ptr<Job> job)
      : Napi::AsyncWorker(env, "gradcam:kernel"), job_(std::move(job)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      job_->run();
    } catch (const std::exception& e) {
      SetError(e.what());
    } catch (...) {
      SetError("unknown native error");
    }
  }
  void OnOK() override {
    try {
      job_->finish(Env());
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
      return;
    }
    deferred_.Resolve(job_->result(Env()));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::unique_ptr<Job> job_;
  Napi::Promise::Deferred deferred_;
};

// Argument errors reject the Promise, as an async function would.
template <Parser P>
Napi::Value callAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::unique_ptr<Job> job;
  try {
    job = P(info, parseDevice(info));
    job->seal(env, true);
  } catch (const Napi::Error& e) {
    Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
    d.Reject(e.Value());
    return d.Promise();
  }
  auto* worker = new KernelWorker(env, std::move(job));
  Napi::Promise p = worker->promise();
  worker->Queue();  // deletes itself when done
  return p;
}

Napi::Value cudaInfo(const Napi::CallbackInfo& info) {
  const cuda::Info& ci = cuda::info();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("available", ci.available);
  o.Set("reason", ci.reason);
  if (!ci.deviceName.empty()) o.Set("deviceName", ci.deviceName);
  o.Set("compiled", cuda::compiled());
  return o;
}

Napi::Value cpuThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), cpu::threadCount()); }

struct Entry {
  const char* name;
  Napi::Value (*sync)(const Napi::CallbackInfo&);
  Napi::Value (*async)(const Napi::CallbackInfo&);
};

// THE list of kernels (the names of lib/kernels/types.ts); each also exported as `<name>Async`.
#define GRADCAM_KERNEL(name, parser) Entry{#name, callSync<parser>, callAsync<parser>}
const Entry kKernels[] = {
    GRADCAM_KERNEL(channelMean, parseChannelMean),
    GRADCAM_KERNEL(channelSums, parseChannelSums),
    GRADCAM_KERNEL(weightedChannelSum, parseWeightedChannelSum),
    GRADCAM_KERNEL(elementwiseChannelSum, parseElementwiseChannelSum),
    GRADCAM_KERNEL(resizeBilinear, parseResizeBilinear),
    GRADCAM_KERNEL(minMaxNormalize, parseMinMaxNormalize),
    GRADCAM_KERNEL(guidedProduct, parseGuidedProduct),
    GRADCAM_KERNEL(gradcamTail, parseGradcamTail),
    GRADCAM_KERNEL(applyColormap, parseApplyColormap),
    GRADCAM_KERNEL(showCamOnImage, parseShowCamOnImage),
    GRADCAM_KERNEL(deprocessImage, parseDeprocessImage),
    GRADCAM_KERNEL(greyToRgb, parseGreyToRgb),
    GRADCAM_KERNEL(camTail, parseCamTail),
};

Napi::Object init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  data->float32Array = Napi::Persistent(env.Global().Get("Float32Array").As<Napi::Function>());
  data->uint8Array = Napi::Persistent(env.Global().Get("Uint8Array").As<Napi::Function>());
  env.SetInstanceData(data);
  for (const Entry& e : kKernels) {
    exports.Set(e.name, Napi::Function::New(env, e.sync, e.name));
    const std::string asyncName = std::string(e.name) + "Async";
    exports.Set(asyncName, Napi::Function::New(env, e.async, asyncName));
  }
  exports.Set("cudaInfo", Napi::Function::New(env, cudaInfo, "cudaInfo"));
  exports.Set("cpuThreads", Napi::Function::New(env, cpuThreads, "cpuThreads"));
  return exports;
}

}  // namespace
}  // namespace gradcam

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return gradcam::init(env, exports); }

NODE_API_MODULE(gradcam_native, Init)
