import Foundation
import Kernels
import Randomness
import XCTest

/// The attention core under `optim.precision: bf16` (Attention+BF16.swift) against the same
/// formulas evaluated in Double on the operands rounded to bf16 where the kernel rounds them,
/// on both the tiled (head width 64, padded `probs` rows) and the plain layout (width 32);
/// its bits equal on 1 and 2 threads.
final class AttentionBF16Tests: XCTestCase {
  override func setUpWithError() throws {
    if let why = GEMMBackend.bf16Unavailable { throw XCTSkip("no bf16 GEMMs here: \(why)") }
    GEMMBackend.precision = .bf16
  }

  override func tearDown() {
    GEMMBackend.precision = .fp32
    Threads.configure(1)
  }

  /// `Double(bf16(x))`.
  static func r(_ x: Double) -> Double { Double(BF16.float(BF16.round(Float(x)))) }

  struct Result {
    var out, probs, dqkv: [Float]
    /// The bits of every value (the padding columns of `probs` stay the NaN they started as).
    var bits: [UInt32] { (out + probs + dqkv).map(\.bitPattern) }
  }

  static func run(n: Int, t: Int, h: Int, hd: Int, threads: Int, qkv: [Float], dOut: [Float]) -> Result {
    Threads.configure(threads)
    let d = h * hd
    var out = [Float](repeating: .nan, count: n * t * d)
    var probs = [Float](repeating: .nan, count: Attention.probsCount(n: n, t: t, heads: h, headDim: hd))
    var dqkv = [Float](repeating: .nan, count: qkv.count)
    var scratch = [Float](repeating: .nan, count: threads * Attention.scratchCount(t: t, heads: h, headDim: hd))
    Attention.forward(out: &out, probs: &probs, qkv: qkv, n: n, t: t, heads: h, headDim: hd, scratch: &scratch)
    Attention.backward(dqkv: &dqkv, dOut: dOut, probs: probs, qkv: qkv, scratch: &scratch, n: n, t: t, heads: h,
                       headDim: hd)
    return Result(out: out, probs: probs, dqkv: dqkv)
  }

  /// Relative Frobenius distance of `a` from `b` (Double).
  static func rel(_ a: [Double], _ b: [Double]) -> Double {
    var num = 0.0, den = 0.0
    for (x, y) in zip(a, b) {
      num += (x - y) * (x - y)
      den += y * y
    }
    return (num / den).squareRoot()
  }

  /// Forward: `P = softmax(scale Q_b K_b^T)` (subscript b: rounded to bf16) within 1e-6 of the
  /// kernel's fp32 `P`, and `O = bf16(P) V_b`. Backward on the kernel's `P`: `dP = dO_b V_b^T`,
  /// `dV = bf16(P)^T dO_b`, `dS = scale P * (dP - rowsum(dP * P))`, `dQ = bf16(dS) K_b`,
  /// `dK = bf16(dS)^T Q_b`. Each output within 1e-6 (relative Frobenius; fp32 sums, and the odd
  /// `dS` that fp32 and Double round to neighbouring bf16 values; measured 2-4e-8), and at least
  /// 1e-3 away from the unrounded Double evaluation (measured 3e-3), which is what shows the
  /// products ran in bf16.
  func testMatchesDoubleOnBF16Operands() throws {
    for (t, h, hd) in [(37, 3, 64), (29, 2, 32)] {
      let n = 3, d = h * hd
      var rng = SplitMix64(seed: UInt64(t * 1000 + hd))
      let qkv = (0..<(n * t * 3 * d)).map { _ in Float.random(in: -1.5...1.5, using: &rng) }
      let dOut = (0..<(n * t * d)).map { _ in Float.random(in: -1...1, using: &rng) }
      let one = Self.run(n: n, t: t, h: h, hd: hd, threads: 1, qkv: qkv, dOut: dOut)
      let two = Self.run(n: n, t: t, h: h, hd: hd, threads: 2, qkv: qkv, dOut: dOut)
      XCTAssertTrue(one.bits == two.bits, "1 and 2 threads give the same bits, t \(t) hd \(hd)")
      let ld = Attention.probsStride(t: t, headDim: hd)
      let scale = 1 / Double(hd).squareRoot()
      // [rounded reference, exact reference, kernel] per output: out, dq, dk, dv.
      var refs = [[Double]](repeating: [], count: 4), exact = refs, got = refs
      var worstP = 0.0
      for img in 0..<n {
        for head in 0..<h {
          func x(_ i: Int, _ part: Int, _ c: Int) -> Double { Double(qkv[(img * t + i) * 3 * d + part * d + head * hd + c]) }
          func g(_ i: Int, _ c: Int) -> Double { Double(dOut[(img * t + i) * d + head * hd + c]) }
          func pk(_ i: Int, _ j: Int) -> Double { Double(one.probs[((img * h + head) * t + i) * ld + j]) }
          for rounded in [true, false] {
            let f: (Double) -> Double = rounded ? Self.r : { $0 }
            var p = [[Double]](repeating: [], count: t), ds = p
            for i in 0..<t {
              let s = (0..<t).map { j in scale * (0..<hd).reduce(0.0) { $0 + f(x(i, 0, $1)) * f(x(j, 1, $1)) } }
              let e = s.map { Foundation.exp($0 - s.max()!) }
              let z = e.reduce(0, +)
              p[i] = e.map { $0 / z }
              if rounded { for j in 0..<t { worstP = max(worstP, abs(pk(i, j) - p[i][j])) } }
            }
            // The backward of the rounded reference starts from the kernel's P (an fp32 P that
            // rounds to another bf16 than Double's would otherwise count as an error).
            let pb: (Int, Int) -> Double = rounded ? { Self.r(pk($0, $1)) } : { p[$0][$1] }
            let pf: (Int, Int) -> Double = rounded ? pk : { p[$0][$1] }
            for i in 0..<t {
              let dp = (0..<t).map { j in (0..<hd).reduce(0.0) { $0 + f(g(i, $1)) * f(x(j, 2, $1)) } }
              let dot = (0..<t).reduce(0.0) { $0 + dp[$1] * pf(i, $1) }
              ds[i] = (0..<t).map { j in f(scale * pf(i, j) * (dp[j] - dot)) }
            }
            var o: [Double] = [], dq: [Double] = [], dk: [Double] = [], dv: [Double] = []
            for i in 0..<t {
              for c in 0..<hd {
                o.append((0..<t).reduce(0.0) { $0 + pb(i, $1) * f(x($1, 2, c)) })
                dq.append((0..<t).reduce(0.0) { $0 + ds[i][$1] * f(x($1, 1, c)) })
                dk.append((0..<t).reduce(0.0) { $0 + ds[$1][i] * f(x($1, 0, c)) })
                dv.append((0..<t).reduce(0.0) { $0 + pb($1, i) * f(g($1, c)) })
              }
            }
            for (k, v) in [o, dq, dk, dv].enumerated() {
              if rounded { refs[k] += v } else { exact[k] += v }
            }
          }
          for i in 0..<t {
            for c in 0..<hd {
              let row = (img * t + i) * 3 * d + head * hd + c
              got[0].append(Double(one.out[(img * t + i) * d + head * hd + c]))
              got[1].append(Double(one.dqkv[row]))
              got[2].append(Double(one.dqkv[row + d]))
              got[3].append(Double(one.dqkv[row + 2 * d]))
            }
          }
        }
      }
      XCTAssertLessThan(worstP, 1e-6, "P, t \(t) hd \(hd)")
      for (k, name) in ["out", "dq", "dk", "dv"].enumerated() {
        let toRounded = Self.rel(got[k], refs[k]), toExact = Self.rel(got[k], exact[k])
        print("bf16 attention \(name), t \(t) hd \(hd): \(toRounded) from the bf16-operand reference, \(toExact) from the exact one")
        XCTAssertLessThan(toRounded, 1e-6, "\(name) against the bf16-operand reference, t \(t) hd \(hd)")
        XCTAssertGreaterThan(toExact, 1e-3, "\(name) differs from the unrounded reference, t \(t) hd \(hd)")
      }
    }
  }
}
