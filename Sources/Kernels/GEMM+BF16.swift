import CDNNL
import CSupport
import Foundation

/// The precision of the step's GEMMs (`optim.precision`).
///
/// `fp32`: every GEMM in single precision. `bf16`: mixed precision, the GEMMs of the Linear
/// layers and the patch embedding (forward, input gradient, weight gradient) and the attention
/// products (`Q K^T`, `P V` and their four backward products, Attention+BF16.swift) multiply
/// bfloat16 copies of their operands, rounded to nearest even, and accumulate in fp32 into fp32
/// outputs; the master weights, the gradients, AdamW's moments and every other kernel (softmax,
/// the last block's class-token attention, LayerNorm, GELU, the loss) stay fp32.
public enum GEMMPrecision: String, CaseIterable, Codable, Sendable {
  case fp32, bf16
}

/// bfloat16: the top 16 bits of an IEEE binary32 (sign, 8 exponent bits, 7 mantissa bits).
public enum BF16 {
  /// `x` rounded to the nearest bfloat16, ties to even; NaN stays a (quiet) NaN, and a
  /// subnormal `x` becomes a zero of its sign, as the instruction that does the rounding in bulk
  /// (VCVTNEPS2BF16, CSupport/bf16.c) treats it. Round to nearest even on the bits:
  /// `(u + 0x7fff + (u >> 16 & 1)) >> 16`.
  @inline(__always) public static func round(_ x: Float) -> UInt16 {
    let u = x.bitPattern
    if u & 0x7fff_ffff > 0x7f80_0000 { return UInt16(truncatingIfNeeded: u >> 16) | 0x40 }
    if u & 0x7f80_0000 == 0 { return UInt16(truncatingIfNeeded: u >> 16) & 0x8000 }
    return UInt16(truncatingIfNeeded: (u &+ 0x7fff &+ ((u >> 16) & 1)) >> 16)
  }

  /// The float whose bits are `h` followed by 16 zero bits (exact).
  @inline(__always) public static func float(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

  /// `dst[r * cols + c] = round(src[r * ld + c])` for `r < rows`, `c < cols` (packed `dst`),
  /// rows split over the workers.
  public static func convert(_ src: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int,
                             into dst: UnsafeMutablePointer<UInt16>) {
    if rows == 0 || cols == 0 { return }
    if ld == cols {
      let n = rows * cols
      parallelChunks(n, align: 16, minChunk: 1 << 16) { s, e in convertRun(src + s, count: e - s, into: dst + s) }
      return
    }
    parallelChunks(rows, minChunk: max(1, (1 << 16) / cols)) { s, e in
      for r in s..<e { convertRun(src + r * ld, count: cols, into: dst + r * cols) }
    }
  }

  @inline(__always) static func convertRun(_ src: UnsafePointer<Float>, count: Int, into dst: UnsafeMutablePointer<UInt16>) {
    cde_bf16_convert(src, dst, count)  // CSupport/bf16.c: AVX512_BF16 where the CPU has it
  }
}

extension GEMMBackend {
  /// The precision of the step's GEMMs (Linear layers and attention); set before a step runs
  /// (`Trainer`, `cde bench`).
  nonisolated(unsafe) public static var precision: GEMMPrecision = .fp32

  /// Why this process cannot run `bf16`, or nil when it can: the CPU must have `avx512_bf16`
  /// or `amx_bf16` (cpuid, see `BLASRuntime.cpuFlags`), and oneDNN must dispatch to an
  /// instruction set that has them (`ONEDNN_MAX_CPU_ISA` may hold it lower).
  public static var bf16Unavailable: String? {
    let flags = BLASRuntime.cpuFlags()
    if !flags.contains("avx512_bf16") && !flags.contains("amx_bf16") {
      return "this CPU has neither avx512_bf16 nor amx_bf16"
    }
    let isa = dnnl_get_effective_cpu_isa()
    if isa != dnnl_cpu_isa_avx512_core_bf16 && isa != dnnl_cpu_isa_avx512_core_amx {
      return "oneDNN dispatches to \(onednnISA), which has no bf16 instructions (ONEDNN_MAX_CPU_ISA?)"
    }
    return nil
  }

  /// Output rows per call of a bf16 weight gradient (`A` transposed): the rows are cut into
  /// blocks of this many, one call each, whatever the thread count. 192 divides ViT-Tiny's
  /// output widths (192, 576, 768) and measured fastest of 64, 96, 128, 192 and 768 on a Zen 4
  /// (`cde bench --profile --precision bf16`: 172 against 144 GFLOP/s for 64).
  public static let bf16RowBlock = 192

  /// `C[m,n] (=|+=) op(A)[m,k] op(B)[k,n]` with bf16 `A` and `B` (stored as for `sgemm`:
  /// `A` `[m, lda]` or `[k, lda]` when `transA`, `B` `[k, ldb]` or `[n, ldb]` when `transB`) and
  /// fp32 `C` `[m, ldc]`, products exact in fp32 and sums in fp32 (oneDNN matmul; `+=` when
  /// `accumulate`).
  ///
  /// Every output row's bits are fixed by its own inputs, never by the batch around it or by
  /// the thread count: with `A` not transposed each call is one image of `rowBlock` rows
  /// (when `rowBlock` divides `m`), else one row; with `A` transposed (a weight gradient,
  /// reduced over `k`) each call is a fixed block of `bf16RowBlock` output rows.
  public static func bf16gemm(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<UInt16>, lda: Int,
    b: UnsafePointer<UInt16>, ldb: Int, accumulate: Bool, c: UnsafeMutablePointer<Float>, ldc: Int, rowBlock: Int = 0
  ) {
    if m == 0 || n == 0 { return }
    let rows = transA ? bf16RowBlock : (rowBlock > 0 && m % rowBlock == 0 ? rowBlock : 1)
    let calls = (m + rows - 1) / rows
    let full = BF16Matmul.primitive(m: min(rows, m), n: n, k: k, transA: transA, transB: transB, lda: lda, ldb: ldb,
                                    ldc: ldc, accumulate: accumulate)
    let tail = m % rows == 0 || m < rows
      ? full
      : BF16Matmul.primitive(m: m % rows, n: n, k: k, transA: transA, transB: transB, lda: lda, ldb: ldb, ldc: ldc,
                             accumulate: accumulate)
    // Per worker: a scratchpad (oneDNN's own is shared by all primitives: see cde_matmul_bf16_create)
    // and a stream, made on this thread before the workers start and then kept.
    let workers = BF16Scratch.prepare(workers: min(Threads.count, calls), bytes: max(full.scratchBytes, tail.scratchBytes))
    parallelWorkers(calls) { w, s, e in
      ompSetNumThreads?(1)
      let stream = workers.streams[w]!, scratch = workers.pads[w]
      for i in s..<e {
        let r0 = i * rows
        let p = r0 + rows <= m ? full : tail
        let ap = a + (transA ? r0 : r0 * lda)
        p.run(stream, a: ap, b: b, c: c + r0 * ldc, scratch: scratch)
      }
    }
  }
}

/// One oneDNN matmul primitive with bf16 operands and an f32 result, and its memory
/// descriptors (`cde_matmul_bf16_create`). Made once per shape and kept for the process
/// (a step has a few dozen shapes); looked up only on the thread that runs the step.
final class BF16Matmul: @unchecked Sendable {
  struct Key: Hashable {
    var m, n, k, lda, ldb, ldc: Int
    var transA, transB, accumulate: Bool
    /// Products per call and the elements between consecutive ones' `A`, `B` and `C` (1: one
    /// two-dimensional product, strides unused).
    var batch = 1, strideA = 0, strideB = 0, strideC = 0
  }

  let primitive: dnnl_primitive_t
  /// The memory descriptors of `A`, `B`, `C` and the scratchpad (allocated once, read by every
  /// thread that runs the primitive).
  let descriptors: UnsafeMutablePointer<dnnl_memory_desc_t>
  /// Bytes of scratchpad a call needs (the caller's, one per thread).
  let scratchBytes: Int

  nonisolated(unsafe) static var cache: [Key: BF16Matmul] = [:]

  /// The CPU engine every primitive runs on.
  static let engine: dnnl_engine_t = {
    var e: dnnl_engine_t?
    let st = dnnl_engine_create(&e, dnnl_cpu, 0)
    precondition(st == dnnl_success && e != nil, "oneDNN: no CPU engine (status \(st.rawValue))")
    return e!
  }()

  /// A new stream on `engine` (kept by `BF16Scratch.prepare` for one worker).
  static func stream() -> dnnl_stream_t {
    var s: dnnl_stream_t?
    let st = dnnl_stream_create(&s, engine, dnnl_stream_default_flags.rawValue)
    precondition(st == dnnl_success && s != nil, "oneDNN: no stream (status \(st.rawValue))")
    return s!
  }

  private init(_ key: Key) {
    let mds = UnsafeMutablePointer<dnnl_memory_desc_t>.allocate(capacity: 4)
    mds.initialize(repeating: dnnl_memory_desc_t(), count: 4)
    var p: dnnl_primitive_t?
    var bytes = 0
    let st = cde_matmul_bf16_create(BF16Matmul.engine, Int64(key.batch), Int64(key.m), Int64(key.n), Int64(key.k),
                                    key.transA ? 1 : 0, key.transB ? 1 : 0, Int64(key.lda), Int64(key.ldb),
                                    Int64(key.ldc), Int64(key.strideA), Int64(key.strideB), Int64(key.strideC),
                                    key.accumulate ? 1 : 0, mds, &bytes, &p)
    precondition(st == dnnl_success && p != nil,
                 "oneDNN: no bf16 matmul for \(key.batch)x\(key.m)x\(key.n)x\(key.k) (status \(st.rawValue))")
    primitive = p!
    descriptors = mds
    scratchBytes = bytes
  }

  /// The primitive of this shape, made on first use.
  static func primitive(m: Int, n: Int, k: Int, transA: Bool, transB: Bool, lda: Int, ldb: Int, ldc: Int,
                        accumulate: Bool) -> BF16Matmul {
    primitive(Key(m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc, transA: transA, transB: transB, accumulate: accumulate))
  }

  /// The primitive of `key`, made on first use (the step's thread only).
  static func primitive(_ key: Key) -> BF16Matmul {
    if let p = cache[key] { return p }
    let p = BF16Matmul(key)
    cache[key] = p
    return p
  }

  /// Runs the primitive on `a`, `b`, `c` on `stream` with `scratch` (`scratchBytes`, this
  /// thread's own); any thread, the primitive is shared read-only.
  @inline(__always) func run(_ stream: dnnl_stream_t, a: UnsafePointer<UInt16>, b: UnsafePointer<UInt16>,
                             c: UnsafeMutablePointer<Float>, scratch: UnsafeMutableRawPointer?) {
    let st = cde_matmul_execute(primitive, BF16Matmul.engine, stream, descriptors, a, b, c, scratchBytes > 0 ? scratch : nil)
    precondition(st == dnnl_success, "oneDNN bf16 matmul failed (status \(st.rawValue))")
  }
}

/// Scratch for the bf16 copies of GEMM operands: one buffer per slot, grown to the largest
/// request and then kept, so a step allocates nothing after its first call. Slots 0-2: the
/// Linear layers' operands; 3: the attention workers' (Attention+BF16.swift).
enum BF16Scratch {
  nonisolated(unsafe) static var buffers: [UnsafeMutablePointer<UInt16>?] = [nil, nil, nil, nil]
  nonisolated(unsafe) static var sizes: [Int] = [0, 0, 0, 0]

  /// Slot `slot`'s buffer with room for at least `count` values (the step's thread only).
  static func buffer(_ slot: Int, _ count: Int) -> UnsafeMutablePointer<UInt16> {
    if sizes[slot] < count {
      buffers[slot]?.deallocate()
      buffers[slot] = UnsafeMutablePointer<UInt16>.allocate(capacity: count)
      sizes[slot] = count
    }
    return buffers[slot]!
  }

  /// Per worker `w`: `pads[w]` (`padBytes` of scratchpad) and `streams[w]`.
  nonisolated(unsafe) static var pads = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: 0)
  nonisolated(unsafe) static var streams = UnsafeMutablePointer<dnnl_stream_t?>.allocate(capacity: 0)
  nonisolated(unsafe) static var workerCount = 0
  nonisolated(unsafe) static var padBytes = 0

  /// Scratchpads of at least `bytes` and streams for `workers` workers, grown on the step's
  /// thread before the workers start and then kept (nothing is allocated once they suffice).
  static func prepare(workers: Int, bytes: Int)
    -> (pads: UnsafeMutablePointer<UnsafeMutableRawPointer?>, streams: UnsafeMutablePointer<dnnl_stream_t?>)
  {
    let n = max(workers, 1)
    if workerCount < n || padBytes < bytes {
      let grown = max(n, workerCount), bigger = max(bytes, padBytes, 64)
      let newPads = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: grown)
      let newStreams = UnsafeMutablePointer<dnnl_stream_t?>.allocate(capacity: grown)
      for w in 0..<grown {
        if w < workerCount { pads[w]?.deallocate() }
        newPads[w] = UnsafeMutableRawPointer.allocate(byteCount: bigger, alignment: 64)
        newStreams[w] = w < workerCount ? streams[w] : BF16Matmul.stream()
      }
      pads.deallocate()
      streams.deallocate()
      pads = newPads
      streams = newStreams
      workerCount = grown
      padBytes = bigger
    }
    return (pads, streams)
  }
}
