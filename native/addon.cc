// The Node binding: every kernel registered in one list (kKernels, at the bottom), each as a
// synchronous function and as `<name>Async` returning a Promise whose work runs on a libuv
// worker thread. Every function takes the device first ('cpu' | 'cuda'), then the arguments
// of lib/kernels/types.ts. Synchronous calls read and write the caller's arrays in place;
// Promise calls work on native copies of the inputs (see Job: the caller's code runs meanwhile
// and may free a buffer). Fresh outputs are Float32Arrays allocated on the main thread.
#include <napi.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "check.h"
#include "kernels.h"

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
// Float32Array constructor, taken when the addon loads.
struct AddonData {
  Napi::FunctionReference float32Array;
};

// A fresh (zeroed) output array; large ones advised to use huge pages (see above).
// Allocated by the JavaScript constructor, not Napi::Float32Array::New: where memory runs out,
// the constructor throws a RangeError, but napi_create_arraybuffer ends the process (a V8 fatal
// "v8::ArrayBuffer::New" out-of-memory error, Node 20).
// (Uninitialized external buffers were tried: V8 frees them only after a later GC and a
// finalizer tick, so memory balloons in a synchronous loop and every call faults in fresh pages.)
Napi::Float32Array newOutput(Napi::Env env, const std::string& name, size_t length) {
  Napi::Value v;
  try {
    v = env.GetInstanceData<AddonData>()->float32Array.New({Napi::Number::New(env, (double)length)});
  } catch (const Napi::Error& e) {
    throw allocationError(env, name, length * sizeof(float), e.Message());
  }
  Napi::Float32Array a = checkFloat32Array(name, v, length);
  adviseHugePages(a.Data(), length * sizeof(float));
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

Buffer allocate(Napi::Env env, const std::string& name, size_t length) {
  auto [p, capacity] = bufferCache().take(length);
  if (!p) throw allocationError(env, name, length * sizeof(float), "out of memory");
  return Buffer(p, BufferReturn{capacity});
}

// One Float32Array of a call: a caller's input, the caller's `out`, or a fresh output.
struct ArrayArg {
  enum Kind { Input, Given, Fresh };
  Kind kind;
  std::string name;
  size_t length;
  Napi::ObjectReference ref;  // the array, alive until the call is done
  float* data = nullptr;      // what the kernel reads or writes; bound in Job::seal()
  Buffer own;                 // async: the private copy (Input) or scratch (Given) behind data
};

// What a kernel gets for an array argument: its memory, read only when the kernel runs (after
// Job::seal()). Converts to the float* / const float* of the kernel signatures.
class Ptr {
 public:
  explicit Ptr(const ArrayArg* a) : a_(a) {}
  operator float*() const { return a_->data; }

 private:
  const ArrayArg* a_;
};

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
  std::vector<std::pair<std::string, size_t>> fields;  // named outputs -> index in arrays
  size_t single = SIZE_MAX;                             // or the one output
  std::function<void()> run;

  /** A caller's input: a Float32Array of `length` (TypeError / RangeError as validate.ts). */
  Ptr input(const char* name, Napi::Value v, size_t length) {
    Napi::Float32Array a = checkFloat32Array(name, v, length);
    return add(ArrayArg::Input, name, a, length);
  }
  /** A fresh output array, returned alone (field null) or as result[field]. */
  Ptr output(Napi::Env env, size_t length, const char* field = nullptr) {
    Napi::Float32Array a = newOutput(env, field ? field : "out", length);
    Ptr p = add(ArrayArg::Fresh, field ? field : "out", a, length);
    arrays.back().data = a.Data();  // unreachable by the caller's code: bound now
    if (field)
      fields.emplace_back(field, arrays.size() - 1);
    else
      single = arrays.size() - 1;
    return p;
  }
  /**
   * The optional `out` argument: undefined -> a fresh output; else the caller's Float32Array of
   * exactly `length`, overlapping no input registered before, written in place and returned.
   */
  Ptr output(Napi::Env env, size_t length, Napi::Value given) {
    if (given.IsUndefined()) return output(env, length);
    Napi::Float32Array o = checkFloat32Array("out", given, length);
    checkOutOverlap(given, o);
    single = arrays.size();
    return add(ArrayArg::Given, "out", o, length);
  }

  /** Binds the arrays' memory (see above); async: copies. Throws the errors of the checks. */
  void seal(Napi::Env env, bool async) {
    for (ArrayArg& a : arrays) {
      if (a.kind == ArrayArg::Fresh) continue;
      Napi::Float32Array now = checkFloat32Array(a.name, a.ref.Value(), a.length);  // queried afresh
      if (a.kind == ArrayArg::Given) checkOutOverlap(a.ref.Value(), now);
      a.data = now.Data();
      if (!async || !now.ArrayBuffer().IsArrayBuffer()) continue;  // sync, or a SharedArrayBuffer
      a.own = allocate(env, a.name, a.length);
      if (a.kind == ArrayArg::Input) std::memcpy(a.own.get(), a.data, a.length * sizeof(float));
      a.data = a.own.get();
    }
  }
  /** On the main thread after an async run: the scratch of the caller's `out` into `out`. */
  void finish(Napi::Env env) {
    for (ArrayArg& a : arrays) {
      if (a.kind != ArrayArg::Given || !a.own) continue;
      Napi::Float32Array now = checkFloat32Array(a.name, a.ref.Value(), a.length);
      std::memcpy(now.Data(), a.own.get(), a.length * sizeof(float));
      a.own.reset();
    }
  }
  Napi::Value result(Napi::Env env) {
    if (fields.empty()) return arrays[single].ref.Value();
    Napi::Object o = Napi::Object::New(env);
    for (auto& f : fields) o.Set(f.first, arrays[f.second].ref.Value());
    return o;
  }

 private:
  Ptr add(ArrayArg::Kind kind, const char* name, Napi::Float32Array a, size_t length) {
    arrays.push_back(ArrayArg{kind, name, length, Napi::Persistent(a.As<Napi::Object>())});
    return Ptr(&arrays.back());
  }
  void checkOutOverlap(Napi::Value given, Napi::Float32Array o) {
    for (const ArrayArg& in : arrays)
      if (in.kind == ArrayArg::Input) checkNotOverlapping(given, o, in.name, Napi::Float32Array(given.Env(), in.ref.Value()));
  }
};

using Parser = std::unique_ptr<Job> (*)(const Napi::CallbackInfo&, Device);

#define GRADCAM_DISPATCH(dev, fn, ...) \
  ((dev) == Device::Cuda ? ::gradcam::cuda::fn(__VA_ARGS__) : ::gradcam::cpu::fn(__VA_ARGS__))

// info[0] is the device; the kernel's own arguments follow.
Device parseDevice(const Napi::CallbackInfo& info) {
  return checkOneOf("device", info[0], {"cpu", "cuda"}) == "cuda" ? Device::Cuda : Device::Cpu;
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
  const ElementwiseOp op = checkOneOf("op", info[4], {"grad-times-act", "relu-grad-times-act"}) == "grad-times-act"
                               ? ElementwiseOp::GradTimesAct
                               : ElementwiseOp::ReluGradTimesAct;
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
};

Napi::Object init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  data->float32Array = Napi::Persistent(env.Global().Get("Float32Array").As<Napi::Function>());
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
