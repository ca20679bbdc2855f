import CBLAS
import Dispatch

/// Threading policy for every kernel in this module.
///
/// OpenBLAS is always run single-threaded; the kernels split their work
/// themselves (GEMMs along output rows, element-wise ops along rows) over
/// `Threads.count` workers with `DispatchQueue.concurrentPerform`. Splitting
/// along output rows keeps each output element's summation order fixed, and
/// reductions over rows use fixed-size blocks, so results do not depend on the
/// number of threads.
public enum Threads {
  nonisolated(unsafe) public private(set) static var count: Int = 1

  /// Sets the worker count (at least 1) and pins OpenBLAS to one thread.
  public static func configure(_ n: Int) {
    count = max(1, n)
    openblas_set_num_threads(1)
  }
}

/// Runs `body(chunkStart, chunkEnd)` over `0..<n` split into at most
/// `Threads.count` contiguous chunks whose boundaries are multiples of `align`.
@inline(__always)
public func parallelChunks(_ n: Int, align: Int = 1, minChunk: Int = 1, _ body: (Int, Int) -> Void) {
  let t = Threads.count
  if t <= 1 || n <= minChunk {
    body(0, n)
    return
  }
  let units = (n + align - 1) / align
  let workers = min(t, max(1, n / max(minChunk, 1)), units)
  if workers <= 1 {
    body(0, n)
    return
  }
  let per = (units + workers - 1) / workers
  DispatchQueue.concurrentPerform(iterations: workers) { w in
    let s = w * per * align
    let e = min(n, (w + 1) * per * align)
    if s < e { body(s, e) }
  }
}

/// Runs `body(i)` for each i in 0..<n across the workers (dynamic assignment).
@inline(__always)
public func parallelFor(_ n: Int, _ body: (Int) -> Void) {
  if Threads.count <= 1 || n <= 1 {
    for i in 0..<n { body(i) }
    return
  }
  DispatchQueue.concurrentPerform(iterations: n, execute: body)
}

/// Splits `0..<n` into `Threads.count` contiguous chunks and runs
/// `body(worker, start, end)`; `worker` indexes per-worker scratch space.
@inline(__always)
public func parallelWorkers(_ n: Int, _ body: (Int, Int, Int) -> Void) {
  let t = min(Threads.count, n)
  if t <= 1 {
    body(0, 0, n)
    return
  }
  let per = (n + t - 1) / t
  DispatchQueue.concurrentPerform(iterations: t) { w in
    let s = w * per
    let e = min(n, s + per)
    if s < e { body(w, s, e) }
  }
}
