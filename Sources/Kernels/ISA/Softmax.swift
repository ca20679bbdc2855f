/// In-place softmax of one row of `n` values scaled by `scale > 0`:
/// `p_i = exp(scale (x_i - max)) / sum_j exp(scale (x_j - max))` (`scale` 1: the same bits
/// as without it). (Kept out of line: inlined into the large attention loops, `vexp` itself
/// stopped being inlined and ran 4x slower.)
@inline(never)
package func softmaxRowLoop(_ x: UnsafeMutablePointer<Float>, _ n: Int, scale: Float = 1) {
  var vmx = V16(repeating: -Float.infinity)
  var k = 0
  while k + 16 <= n {
    vmx = vmax(vmx, load16(x + k))
    k += 16
  }
  var mx = hmax16(vmx)
  while k < n {
    mx = max(mx, x[k])
    k += 1
  }
  let m = V16(repeating: mx), sv = V16(repeating: scale)
  var acc = V16(repeating: 0)
  var i = 0
  while i + 16 <= n {
    let e = vexp((load16(x + i) - m) * sv)
    store16(e, x + i)
    acc += e
    i += 16
  }
  var sum = hsum16(acc)
  if i < n {
    // The tail in one vector op (setting lanes one by one cost as much as the rest of a
    // 197-wide row): when n >= 16, the last 16 values, of which lanes `16 - rest ..< 16`
    // are still inputs and the others already hold their exponentials.
    let rest = n - i
    let lane = V16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
    if n >= 16 {
      let fresh = lane .>= Float(16 - rest)
      let old = load16(x + n - 16)
      let e = V16(repeating: 0).replacing(with: vexp((old - m) * sv), where: fresh)
      sum += hsum16(e)
      store16(old.replacing(with: e, where: fresh), x + n - 16)
    } else {
      var v = V16(repeating: 0)
      withUnsafeMutableBytes(of: &v) { $0.baseAddress!.copyMemory(from: x + i, byteCount: rest * 4) }
      var e = vexp((v - m) * sv)
      e.replace(with: 0, where: lane .>= Float(rest))
      withUnsafeBytes(of: e) { UnsafeMutableRawPointer(x + i).copyMemory(from: $0.baseAddress!, byteCount: rest * 4) }
      sum += hsum16(e)
    }
  }
  let inv = 1 / sum
  i = 0
  while i + 16 <= n {
    store16(load16(x + i) * inv, x + i)
    i += 16
  }
  while i < n {
    x[i] *= inv
    i += 1
  }
}

/// `g_i <- scale * p_i * (g_i - sum_j g_j p_j)` for one row (softmax backward).
@inline(__always)
package func softmaxBackwardRowLoop(_ g: UnsafeMutablePointer<Float>, _ p: UnsafePointer<Float>, _ n: Int, _ scale: Float) {
  let nv = n / 16 * 16
  var acc = V16(repeating: 0)
  var i = 0
  while i < nv {
    acc += load16(g + i) * load16(p + i)
    i += 16
  }
  var dot = hsum16(acc)
  while i < n {
    dot += g[i] * p[i]
    i += 1
  }
  let dv = V16(repeating: dot), sv = V16(repeating: scale)
  i = 0
  while i < nv {
    store16(sv * load16(p + i) * (load16(g + i) - dv), g + i)
    i += 16
  }
  while i < n {
    g[i] = scale * p[i] * (g[i] - dot)
    i += 1
  }
}
