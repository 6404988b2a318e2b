#include "thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace gradcam {
namespace {

thread_local bool insideTask = false;

// One parallel-for. Workers hold a shared_ptr, so a worker that wakes late finds no chunk
// left in the old job and never touches the caller's (by then destroyed) function.
struct Job {
  const std::function<void(size_t, size_t)>* fn;
  size_t count, grain, chunks;
  std::atomic<size_t> next{0};
  std::atomic<size_t> done{0};
  std::mutex errorMutex;
  std::exception_ptr error;
};

class ThreadPool {
 public:
  ThreadPool() {
    unsigned n = std::thread::hardware_concurrency();
    if (const char* env = std::getenv("GRADCAM_THREADS")) {
      long v = std::strtol(env, nullptr, 10);
      if (v > 0 && v <= 1024) n = (unsigned)v;
    }
    threads_ = n == 0 ? 1 : n;
    for (unsigned i = 1; i < threads_; i++) std::thread([this] { workerLoop(); }).detach();
  }

  unsigned threads() const { return threads_; }

  // Several callers (libuv threads running async kernels, the main thread) may run jobs at
  // once: each works on its own job, the pool's threads help the oldest job in the queue.
  void run(size_t count, size_t grain, const std::function<void(size_t, size_t)>& fn) {
    if (count == 0) return;
    if (grain == 0) grain = 1;
    size_t chunks = (count + grain - 1) / grain;
    if (chunks == 1 || threads_ == 1 || insideTask) {
      fn(0, count);
      return;
    }
    auto job = std::make_shared<Job>();
    job->fn = &fn;
    job->count = count;
    job->grain = grain;
    job->chunks = chunks;
    {
      std::lock_guard<std::mutex> lk(m_);
      queue_.push_back(job);
    }
    wake_.notify_all();
    work(*job);
    std::unique_lock<std::mutex> lk(m_);
    done_.wait(lk, [&] { return job->done.load() == job->chunks; });
    auto it = std::find(queue_.begin(), queue_.end(), job);
    if (it != queue_.end()) queue_.erase(it);
    lk.unlock();
    if (job->error) std::rethrow_exception(job->error);
  }

 private:
  void work(Job& job) {
    bool was = insideTask;
    insideTask = true;
    size_t c;
    while ((c = job.next.fetch_add(1)) < job.chunks) {
      size_t b = c * job.grain, e = std::min(job.count, b + job.grain);
      try {
        (*job.fn)(b, e);
      } catch (...) {
        std::lock_guard<std::mutex> lk(job.errorMutex);
        if (!job.error) job.error = std::current_exception();
      }
      if (job.done.fetch_add(1) + 1 == job.chunks) {
        std::lock_guard<std::mutex> lk(m_);
        done_.notify_all();
      }
    }
    insideTask = was;
  }

  void workerLoop() {
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lk(m_);
        wake_.wait(lk, [&] { return !queue_.empty(); });
        job = queue_.front();
      }
      work(*job);  // returns once every chunk of the job is taken
      std::lock_guard<std::mutex> lk(m_);
      if (!queue_.empty() && queue_.front() == job) queue_.pop_front();
    }
  }

  unsigned threads_;
  std::mutex m_;
  std::condition_variable wake_, done_;
  std::deque<std::shared_ptr<Job>> queue_;  // jobs that may still have chunks to take
};

// Never destroyed: detached workers may still wait on it while the process exits.
ThreadPool& pool() {
  static ThreadPool* p = new ThreadPool();
  return *p;
}

}  // namespace

void parallelFor(size_t count, size_t grain, const std::function<void(size_t, size_t)>& fn) {
  pool().run(count, grain, fn);
}

size_t grainFor(size_t count, size_t costPerItem) {
  // aim at >= ~64k operations per chunk and ~4 chunks per thread
  const size_t minWork = 1 << 16;
  size_t g = (minWork + costPerItem - 1) / (costPerItem ? costPerItem : 1);
  size_t perThread = (count + 4 * pool().threads() - 1) / (4 * pool().threads());
  g = std::max(g, perThread);
  return std::max<size_t>(1, std::min(g, count));
}

unsigned poolThreads() { return pool().threads(); }

}  // namespace gradcam

#include "kernels.h"

namespace gradcam {
namespace cpu {
unsigned threadCount() { return poolThreads(); }
}  // namespace cpu
}  // namespace gradcam
