/// Vectorised transcendental functions used by the element-wise kernels.
///
/// The files of this folder (`Sources/Kernels/ISA`) are compiled twice: into `Kernels` with
/// the build's `-march`, and into `KernelsAVX512` for x86-64-v4 (Package.swift); `KernelISA`
/// chooses the copy at run time. So they depend on nothing outside the standard library and
/// are called from `Kernels` through `KernelISA` (docs/architecture.md).
///
/// They work on `SIMD16<Float>` (one AVX-512 register, or two AVX2 ones) with
/// no branches, so the loops that call them vectorise.
public typealias V16 = SIMD16<Float>

/// `exp(x)` with about 1 ulp of error on [-87.3, 88.7] (inputs are clamped to
/// that range).
///
/// `x = n ln2 + r` with `n = round(x / ln2)` and `|r| <= ln2/2` (Cody-Waite
/// split of ln2), `exp(r)` by its degree-7 Taylor polynomial (truncation error
/// below 2e-9 relative, Horner steps as fused multiply-adds), then scaled by `2^n`
/// through the exponent bits.
@inline(__always)
public func vexp(_ x0: V16) -> V16 {
  var x = x0
  x.replace(with: -87.3, where: x0 .< -87.3)
  x.replace(with: 88.7, where: x0 .> 88.7)
  // Round x/ln2 to the nearest integer by adding 1.5 * 2^23 (|x/ln2| <= 128).
  let shifted = x * 1.442_695_040_888_963_4 + 12_582_912.0
  let n = shifted - 12_582_912.0
  var r = x.addingProduct(n, V16(repeating: -0.693_145_751_953_125))  // ln2 high part (exact in float)
  r = r.addingProduct(n, V16(repeating: -1.428_606_820_309_417_2e-06))  // ln2 low part
  var p = V16(repeating: 1.0 / 5040)
  p = V16(repeating: 1.0 / 720).addingProduct(p, r)
  p = V16(repeating: 1.0 / 120).addingProduct(p, r)
  p = V16(repeating: 1.0 / 24).addingProduct(p, r)
  p = V16(repeating: 1.0 / 6).addingProduct(p, r)
  p = V16(repeating: 0.5).addingProduct(p, r)
  p = V16(repeating: 1).addingProduct(p, r)
  p = V16(repeating: 1).addingProduct(p, r)
  // The integer n sits in the low mantissa bits of `shifted`.
  let ni = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- 0x4B40_0000
  let bits = (ni &+ 127) &<< 23
  return p * unsafeBitCast(bits, to: V16.self)
}

/// `erfc(|u|)` with fractional error below 1.2e-7 for every u (the Chebyshev
/// fit of Numerical Recipes §6.2: `t = 1/(1 + |u|/2)`,
/// `erfc = t exp(-u^2 + P(t))` with a degree-9 polynomial P).
@inline(__always)
public func verfcAbs(_ u: V16) -> V16 {
  var z = u
  z.replace(with: -u, where: u .< 0)
  let t = 1 / (1 + 0.5 * z)
  return t * vexp(-z * z + erfcPolynomial(t))
}

/// The polynomial of `verfcAbs` in `t = 1 / (1 + |u| / 2)` (Horner, highest coefficient first).
@inline(__always)
public func erfcPolynomial(_ t: V16) -> V16 {
  var p = V16(repeating: 0.170_872_77)
  p = V16(repeating: -0.822_152_23).addingProduct(p, t)
  p = V16(repeating: 1.488_515_87).addingProduct(p, t)
  p = V16(repeating: -1.135_203_98).addingProduct(p, t)
  p = V16(repeating: 0.278_868_07).addingProduct(p, t)
  p = V16(repeating: -0.186_288_06).addingProduct(p, t)
  p = V16(repeating: 0.096_784_18).addingProduct(p, t)
  p = V16(repeating: 0.374_091_96).addingProduct(p, t)
  p = V16(repeating: 1.000_023_68).addingProduct(p, t)
  p = V16(repeating: -1.265_512_23).addingProduct(p, t)
  return p
}

/// The standard normal CDF `Phi(x) = (1 + erf(x/sqrt2))/2`, computed from
/// `erfc(|x|/sqrt2)` so that it keeps relative accuracy in both tails.
@inline(__always)
public func vnormalCDF(_ x: V16) -> V16 {
  let half = 0.5 * verfcAbs(x * 0.707_106_781_186_547_5)
  var r = 1 - half
  r.replace(with: half, where: x .< 0)
  return r
}

@inline(__always) func load16(_ p: UnsafePointer<Float>) -> V16 {
  UnsafeRawPointer(p).loadUnaligned(as: V16.self)
}

@inline(__always) func store16(_ v: V16, _ p: UnsafeMutablePointer<Float>) {
  UnsafeMutableRawPointer(p).storeBytes(of: v, as: V16.self)
}

/// One AVX2 register of floats (the attention tiles of AVX2 builds).
typealias V8 = SIMD8<Float>

@inline(__always) func load8(_ p: UnsafePointer<Float>) -> V8 {
  UnsafeRawPointer(p).loadUnaligned(as: V8.self)
}

@inline(__always) func store8(_ v: V8, _ p: UnsafeMutablePointer<Float>) {
  UnsafeMutableRawPointer(p).storeBytes(of: v, as: V8.self)
}

/// Scalar `exp` through the vector path (same numbers as `vexp`).
@inline(__always) public func scalarExp(_ x: Float) -> Float { vexp(V16(repeating: x))[0] }

/// Horizontal sum of 16 lanes by halving (8 + 8, 4 + 4, 2 + 2, 1 + 1): a fixed
/// order, a few shuffles instead of 15 dependent scalar adds.
@inline(__always) public func hsum16(_ v: V16) -> Float {
  let a = v.lowHalf + v.highHalf
  let b = a.lowHalf + a.highHalf
  let c = b.lowHalf + b.highHalf
  return c[0] + c[1]
}

/// Lane-wise maximum as compare + blend (the standard library's `pointwiseMax`
/// goes lane by lane for its NaN rules; inputs here are never NaN).
@inline(__always) public func vmax(_ a: V16, _ b: V16) -> V16 { a.replacing(with: b, where: b .> a) }

/// Horizontal maximum of 16 lanes by halving.
@inline(__always) public func hmax16(_ v: V16) -> Float {
  let a = v.lowHalf.replacing(with: v.highHalf, where: v.highHalf .> v.lowHalf)
  let b = a.lowHalf.replacing(with: a.highHalf, where: a.highHalf .> a.lowHalf)
  let c = b.lowHalf.replacing(with: b.highHalf, where: b.highHalf .> b.lowHalf)
  return c[1] > c[0] ? c[1] : c[0]
}
