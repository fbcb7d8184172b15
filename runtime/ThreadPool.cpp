//===- runtime/ThreadPool.cpp - Fixed pool for static parallel loops ------===//
//
// One job at a time, broadcast through a generation counter:
//   caller: write the job, set the claim word to (generation, chunks, 1),
//           ++generation, wake sleepers, run chunk 0, claim and run chunks
//           until none is left, wait until finished == chunks;
//   worker: wait until generation changes, claim and run chunks of that
//           generation until none is left, ++finished after each, wake the
//           caller if it sleeps.
// A claim names its generation, so a worker that wakes late claims nothing
// of a job that is over, and reads the job's fields only while it holds an
// unfinished chunk (so the caller cannot be rewriting them).
//
// Waiting is spin-then-sleep on both sides.  The sleep is std::atomic::wait
// (a futex on Linux); a sleeper first announces itself in a counter, and
// the waker only pays for notify when that counter is non-zero.  Both sides
// use sequentially consistent accesses for the announce/check pairs (the
// Dekker pattern), so a wake-up is never lost.
//
//===----------------------------------------------------------------------===//
#include "runtime/ThreadPool.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <pthread.h>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/resource.h>
#include <system_error>
#include <utility>

namespace gradc::rt {

namespace {

/// True on a thread while it runs a loop body: nested loops run serially.
thread_local bool tlInsideParallelRegion = false;

/// Busy-wait iterations between two clock reads; reading the clock on every
/// iteration would cost more than the pause itself.
constexpr int kSpinIterationsPerClockRead = 64;

/// Tells the CPU we are spinning (frees pipeline resources for the sibling
/// hyperthread and saves power).
inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/// Spins until `done()` or until `budget` has passed; returns done().  The
/// clock is first read after one round of spinning, so a wait that ends at
/// once (the common case between back-to-back loops) never pays for it.
template <typename Pred> bool spinUntil(Pred done, std::chrono::nanoseconds budget) {
  if (budget.count() <= 0)
    return done();
  std::chrono::steady_clock::time_point deadline{};
  for (bool first = true;; first = false) {
    for (int i = 0; i < kSpinIterationsPerClockRead; ++i) {
      if (done())
        return true;
      cpuRelax();
    }
    auto now = std::chrono::steady_clock::now();
    if (first)
      deadline = now + budget;
    else if (now >= deadline)
      return done();
    // With more threads than cores, let the thread we wait for run.
    std::this_thread::yield();
  }
}

/// Sets the nesting flag for the current scope, restoring the old value.
class ParallelRegionScope {
public:
  ParallelRegionScope() : previous_(tlInsideParallelRegion) { tlInsideParallelRegion = true; }
  ~ParallelRegionScope() { tlInsideParallelRegion = previous_; }

private:
  bool previous_;
};

} // namespace

/// The calling thread's time per loop body, summed (GRADC_REGION_PROFILE).
struct ThreadPool::RegionProfile {
  using Clock = std::chrono::steady_clock;
  struct Region {
    gradc_loop_body body;
    uint64_t calls = 0;
    Clock::duration own{};       ///< running the caller's chunks
    Clock::duration wait{};      ///< then waiting for the other threads'
    Clock::duration gapBefore{}; ///< since the previous loop ended: serial code
  };
  std::mutex mutex;            ///< serial loops run outside callMutex_
  std::vector<Region> regions; ///< in the order of their first call
  Clock::time_point lastEnd{};

  void add(gradc_loop_body body, Clock::time_point start, Clock::time_point ownDone,
           Clock::time_point end) {
    std::lock_guard<std::mutex> lock(mutex);
    auto region = std::find_if(regions.begin(), regions.end(),
                               [&](const Region &r) { return r.body == body; });
    if (region == regions.end())
      region = regions.insert(regions.end(), Region{body});
    ++region->calls;
    region->own += ownDone - start;
    region->wait += end - ownDone;
    if (lastEnd != Clock::time_point{})
      region->gapBefore += start - lastEnd;
    lastEnd = end;
  }

  /// One line per body; `anchor` is gradc_parallel_for's address, so that a
  /// script can find each body in an executable's symbol table.
  void print() const {
    auto ns = [](Clock::duration d) {
      return static_cast<long long>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
    };
    for (const Region &r : regions)
      std::fprintf(stderr,
                   "gradc region: body=%p anchor=%p calls=%llu own_ns=%lld wait_ns=%lld "
                   "gap_ns=%lld\n",
                   reinterpret_cast<void *>(r.body), reinterpret_cast<void *>(&gradc_parallel_for),
                   static_cast<unsigned long long>(r.calls), ns(r.own), ns(r.wait),
                   ns(r.gapBefore));
  }
};

void reserveKernelStacks() {
  struct rlimit limit;
  if (getrlimit(RLIMIT_STACK, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY &&
      limit.rlim_cur < kKernelStackBytes) {
    limit.rlim_cur = limit.rlim_max == RLIM_INFINITY
                         ? kKernelStackBytes
                         : std::min<rlim_t>(kKernelStackBytes, limit.rlim_max);
    setrlimit(RLIMIT_STACK, &limit);
  }
#if defined(__GLIBC__)
  pthread_attr_t attr;
  if (pthread_getattr_default_np(&attr) != 0)
    return;
  size_t size = 0;
  if (pthread_attr_getstacksize(&attr, &size) == 0 && size < kKernelStackBytes &&
      pthread_attr_setstacksize(&attr, kKernelStackBytes) == 0)
    pthread_setattr_default_np(&attr);
  pthread_attr_destroy(&attr);
#endif
}

ThreadPool::ThreadPool(int threads, std::chrono::nanoseconds spin) : spin_(spin) {
  if (const char *profile = std::getenv("GRADC_REGION_PROFILE");
      profile && *profile && std::string_view(profile) != "0")
    profile_ = std::make_unique<RegionProfile>();
  if (threads <= 0)
    threads = static_cast<int>(std::thread::hardware_concurrency());
  // Chunk counts live in 16 bits of the claim word.
  threadCount_ = std::clamp(threads, 1, 0xffff);
  workers_.reserve(threadCount_ - 1);
  try {
    for (int i = 0; i + 1 < threadCount_; ++i)
      workers_.emplace_back([this] { workerLoop(); });
  } catch (const std::system_error &e) {
    // The system's thread limit (e.g. --threads=100000): the workers that
    // did start are stopped and joined, and the caller gets an error to
    // report instead of std::terminate.
    const size_t started = workers_.size();
    stopWorkers();
    throw std::runtime_error("cannot start " + std::to_string(threads) +
                             " threads (the system refused thread " + std::to_string(started + 2) +
                             ": " + e.what() + ")");
  }
}

ThreadPool::~ThreadPool() {
  stopWorkers();
  if (profile_)
    profile_->print();
}

void ThreadPool::stopWorkers() {
  std::lock_guard<std::mutex> lock(callMutex_);
  job_.stop.store(true, std::memory_order_relaxed);
  job_.generation.fetch_add(1, std::memory_order_seq_cst);
  job_.generation.notify_all();
  for (std::thread &worker : workers_)
    worker.join();
  workers_.clear();
}

int ThreadPool::chunkCount(int64_t n, int threads) {
  if (n <= 0)
    return 0;
  return static_cast<int>(std::min<int64_t>(n, std::max(threads, 1)));
}

ChunkRange ThreadPool::chunk(int64_t n, int chunks, int index) {
  int64_t base = n / chunks, extra = n % chunks;
  int64_t begin = index * base + std::min<int64_t>(index, extra);
  return {begin, begin + base + (index < extra ? 1 : 0)};
}

bool ThreadPool::insideParallelRegion() { return tlInsideParallelRegion; }

void ThreadPool::runChunk(int index) noexcept {
  ChunkRange range = chunk(job_.n, job_.chunks, index);
  try {
    job_.body(job_.closure, range.begin, range.end);
  } catch (...) {
    std::lock_guard<std::mutex> lock(errorMutex_);
    if (!error_)
      error_ = std::current_exception();
  }
}

void ThreadPool::parallelFor(int64_t n, gradc_loop_body body, void *closure) {
  if (n <= 0)
    return;
  int chunks = chunkCount(n, threadCount_);
  // Only top-level loops are profiled: a nested one is part of its parent.
  RegionProfile *profile = tlInsideParallelRegion ? nullptr : profile_.get();
  const auto start = profile ? RegionProfile::Clock::now() : RegionProfile::Clock::time_point{};
  if (chunks == 1 || tlInsideParallelRegion) {
    {
      ParallelRegionScope scope;
      body(closure, 0, n);
    }
    if (profile) {
      const auto end = RegionProfile::Clock::now();
      profile->add(body, start, end, end);
    }
    return;
  }

  std::lock_guard<std::mutex> lock(callMutex_);
  job_.body = body;
  job_.closure = closure;
  job_.n = n;
  job_.chunks = chunks;
  job_.finished.store(0, std::memory_order_relaxed);
  uint32_t generation = job_.generation.load(std::memory_order_relaxed) + 1;
  // Chunk 0 is the caller's: claims start at 1.
  job_.claims.store(uint64_t(generation) << 32 | uint64_t(chunks) << 16 | 1,
                    std::memory_order_relaxed);
  // Publishes the job (release) and, with the load below, pairs with a
  // worker's "announce sleep, re-check generation" in waitForNewJob.
  job_.generation.store(generation, std::memory_order_seq_cst);
  if (job_.sleepingWorkers.load(std::memory_order_seq_cst) != 0)
    job_.generation.notify_all();

  {
    ParallelRegionScope scope;
    runChunk(0);
    uint32_t mine = 1;
    for (int index; (index = claimChunk(generation)) >= 0; ++mine)
      runChunk(index);
    job_.finished.fetch_add(mine, std::memory_order_acq_rel);
  }
  const auto ownDone = profile ? RegionProfile::Clock::now() : RegionProfile::Clock::time_point{};
  waitForChunks(static_cast<uint32_t>(chunks));
  if (profile)
    profile->add(body, start, ownDone, RegionProfile::Clock::now());

  if (error_) {
    std::exception_ptr error = std::exchange(error_, nullptr);
    std::rethrow_exception(error);
  }
}

int ThreadPool::claimChunk(uint32_t generation) {
  uint64_t word = job_.claims.load(std::memory_order_acquire);
  for (;;) {
    uint32_t next = word & 0xffff, chunks = (word >> 16) & 0xffff;
    if (uint32_t(word >> 32) != generation || next >= chunks)
      return -1;
    if (job_.claims.compare_exchange_weak(word, word + 1, std::memory_order_acq_rel,
                                          std::memory_order_acquire))
      return static_cast<int>(next);
  }
}

void ThreadPool::waitForChunks(uint32_t target) {
  auto allDone = [&] { return job_.finished.load(std::memory_order_acquire) == target; };
  if (spinUntil(allDone, spin_))
    return;
  job_.callerSleeping.store(true, std::memory_order_seq_cst);
  for (uint32_t done; (done = job_.finished.load(std::memory_order_seq_cst)) != target;)
    job_.finished.wait(done, std::memory_order_seq_cst);
  job_.callerSleeping.store(false, std::memory_order_relaxed);
}

uint32_t ThreadPool::waitForNewJob(uint32_t seen, std::chrono::nanoseconds spin) {
  uint32_t generation = seen;
  auto newJob = [&] {
    generation = job_.generation.load(std::memory_order_acquire);
    return generation != seen;
  };
  if (spinUntil(newJob, spin))
    return generation;
  job_.sleepingWorkers.fetch_add(1, std::memory_order_seq_cst);
  while ((generation = job_.generation.load(std::memory_order_seq_cst)) == seen)
    job_.generation.wait(seen, std::memory_order_seq_cst);
  job_.sleepingWorkers.fetch_sub(1, std::memory_order_relaxed);
  return generation;
}

void ThreadPool::workerLoop() {
  // A worker only ever runs loop bodies, so any loop it starts is nested.
  tlInsideParallelRegion = true;
  const std::chrono::nanoseconds spin = spin_;
  uint32_t seen = 0;
  for (;;) {
    seen = waitForNewJob(seen, spin);
    if (job_.stop.load(std::memory_order_relaxed))
      return;
    for (int index; (index = claimChunk(seen)) >= 0;) {
      // Read before finishing: once every chunk is finished the caller may
      // write the next job.
      uint32_t chunks = static_cast<uint32_t>(job_.chunks);
      runChunk(index);
      // Release: the chunk's writes happen before the caller returns.
      uint32_t finished = job_.finished.fetch_add(1, std::memory_order_seq_cst) + 1;
      if (finished == chunks && job_.callerSleeping.load(std::memory_order_seq_cst))
        job_.finished.notify_one();
    }
  }
}

} // namespace gradc::rt

extern "C" void gradc_parallel_for(void *pool, int64_t n, gradc_loop_body body, void *closure) {
  if (n <= 0)
    return;
  if (pool == nullptr) {
    body(closure, 0, n);
    return;
  }
  static_cast<gradc::rt::ThreadPool *>(pool)->parallelFor(n, body, closure);
}
