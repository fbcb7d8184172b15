//===- runtime/ThreadPool.h - Fixed pool for static parallel loops -*- C++ -*-===//
//
// Generated kernels run their parallel loops here, many times per training
// step, so a call must be cheap: no allocation, no queue, one shared job
// that every worker reads.  Work is split STATICALLY: [0, n) becomes
// min(n, threads) contiguous chunks whose boundaries depend only on n and the
// thread count, so a kernel that reduces per chunk gives bit-identical
// results from run to run on the same thread count.
//
// Chunks are claimed, not assigned: the caller runs chunk 0 and then, like
// every worker, takes the next unclaimed chunk until none is left, and waits
// only for chunks that others have started.  On a loaded machine a worker
// that is not scheduled costs nothing (the caller does its chunk), where a
// fixed assignment would stall every call for a time slice.  Which thread
// runs a chunk never changes the chunk's boundaries.
//
// Workers wait for a job by spinning briefly (a kernel's next loop usually
// follows within microseconds) and then sleeping on a futex (std::atomic
// wait), so an idle pool costs no CPU.
//
// With GRADC_REGION_PROFILE=1 in the environment, a pool times each
// top-level loop on the calling thread, per body function: its own chunks,
// its wait for the other threads' chunks, and the serial time since the
// previous loop ended; it prints the sums to stderr when it is destroyed
// (bench/regions.sh names the bodies of a standalone trainer).  Without
// it, a loop pays one test of a null pointer.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Abi.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace gradc::rt {

/// The half-open range [begin, end) of one chunk of a static partition.
struct ChunkRange {
  int64_t begin = 0, end = 0;
};

/// How long an idle thread spins before it sleeps, by default.  Long enough
/// to bridge the gaps between the parallel loops of a training step (the
/// serial ops between them, and between two steps, take up to a few hundred
/// microseconds on the benchmark MLPs, where a futex wake-up costs tens of
/// microseconds on a VM and a late worker leaves its chunk to the caller),
/// short enough that an idle pool goes quiet at once to a human observer.
inline constexpr std::chrono::microseconds kDefaultSpin{2000};

/// The stack a thread that runs kernels should have: a product may keep a
/// packed copy of an operand of up to 1 MiB on it (codegen/MatMul.cpp,
/// kMaxPackedABytes), and glibc's default for new threads, like the main
/// thread's growth, follows `ulimit -s`.
inline constexpr size_t kKernelStackBytes = size_t(8) << 20;

/// Raises the soft stack limit (as far as the hard limit allows) and
/// glibc's default stack size for new threads to kKernelStackBytes where
/// they are smaller, so that a low `ulimit -s` cannot make a product
/// overflow the main thread's stack or a pool thread's.  Called by gradc's
/// and the standalone trainers' main(), before any pool starts; a program
/// that calls kernels through the C API sees to its threads' stacks itself
/// (runtime/CApi.h).
void reserveKernelStacks();

class ThreadPool {
public:
  /// A pool of `threads` threads in all, counting the caller: it starts
  /// threads - 1 workers.  threads <= 0 means std::thread::hardware_concurrency().
  /// `spin` is how long idle threads busy-wait before sleeping (0: sleep at once).
  /// Throws std::runtime_error, saying how many threads, when the system
  /// cannot start them all.
  explicit ThreadPool(int threads = 0, std::chrono::nanoseconds spin = kDefaultSpin);
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  /// The thread count the partition is based on (workers + the caller).
  int threads() const { return threadCount_; }

  /// Runs body(closure, begin, end) over the static partition of [0, n)
  /// into chunkCount(n, threads()) chunks; the calling thread runs chunk 0
  /// (and any chunk no worker has claimed yet) and returns when every chunk
  /// is done.  Called from inside a body (on
  /// any pool), it runs the whole range serially on the calling thread, so
  /// nesting never deadlocks.  Calls from several outside threads are
  /// serialised.  An exception thrown by a body is rethrown here after all
  /// chunks have finished.
  void parallelFor(int64_t n, gradc_loop_body body, void *closure);

  /// The same for any callable fn(int64_t begin, int64_t end); no allocation.
  template <typename Fn> void parallelFor(int64_t n, Fn &&fn) {
    using Callable = std::remove_reference_t<Fn>;
    parallelFor(
        n,
        [](void *closure, int64_t begin, int64_t end) {
          (*static_cast<Callable *>(closure))(begin, end);
        },
        const_cast<void *>(static_cast<const void *>(std::addressof(fn))));
  }

  /// min(n, threads), at least 1 when n > 0; 0 when n <= 0.
  static int chunkCount(int64_t n, int threads);
  /// Chunk `index` of the partition of [0, n) into `chunks` chunks: the
  /// first n % chunks chunks have one element more than the others.
  static ChunkRange chunk(int64_t n, int chunks, int index);

  /// True while the calling thread runs a loop body (then parallelFor is serial).
  static bool insideParallelRegion();

private:
  struct RegionProfile;

  void workerLoop();
  /// Tells the workers to end and joins them.
  void stopWorkers();
  uint32_t waitForNewJob(uint32_t seen, std::chrono::nanoseconds spin);
  /// The next unclaimed chunk of job `generation`, or -1 when there is none
  /// (all claimed, or that job is over).
  int claimChunk(uint32_t generation);
  void waitForChunks(uint32_t chunks);
  void runChunk(int index) noexcept;

  // Read-only once the workers run.
  int threadCount_;
  std::chrono::nanoseconds spin_;
  std::vector<std::thread> workers_;

  // The caller's own line: locking must not steal a line a worker reads.
  alignas(64) std::mutex callMutex_; ///< one outside caller at a time
  std::mutex errorMutex_;
  std::exception_ptr error_; ///< the first exception a body threw in this call
  /// Null unless GRADC_REGION_PROFILE asks for it (see the file comment).
  std::unique_ptr<RegionProfile> profile_;

  // One cache line carries the whole protocol: the caller writes it to
  // publish a job, workers write it to claim and finish chunks.  Measured
  // on a 2-vCPU VM, a round trip on one line costs half as much as on two
  // (a line that migrates from core to core needs no separate invalidation
  // before the next write).
  struct alignas(64) JobLine {
    std::atomic<uint32_t> generation{0}; ///< bumped once per job; workers wait on it
    /// generation << 32 | chunks << 16 | next unclaimed chunk: a claim is a
    /// compare-and-swap that fails once the job it names is over.
    std::atomic<uint64_t> claims{0};
    std::atomic<uint32_t> finished{0}; ///< chunks of the current job run to the end
    /// Workers asleep in generation.wait(): the caller notifies only if > 0.
    std::atomic<uint32_t> sleepingWorkers{0};
    std::atomic<bool> callerSleeping{false}; ///< the caller sleeps in finished.wait()
    std::atomic<bool> stop{false};
    // The job itself: written before generation is bumped, read only by a
    // thread holding a claimed, unfinished chunk, so left alone until every
    // chunk is finished.
    int chunks = 0;
    gradc_loop_body body = nullptr;
    void *closure = nullptr;
    int64_t n = 0;
  };
  JobLine job_;
};

} // namespace gradc::rt
