import Foundation
import Randomness
import Imaging

extension SyntheticD3 {
  /// Amplitudes (per unit of `strength`, in [0, 1] intensity units) of the coarse,
  /// image-independent fingerprint components and of gen_2's colour grade.
  enum Coarse {
    /// gen_0: peak of the tile-seam lines (8 tiles per image height).
    static let seam = 0.015
    /// Standard deviation of the fixed mid-frequency field: gen_1 (luma), gen_2 (chroma).
    static let lumaField = 0.03, chromaField = 0.02
    /// gen_3: amplitude of the block shading (period 1/8 of the image height).
    static let block = 0.005
    /// gen_2's colour grade: saturation 1 + 0.04 s, S-curve contrast 0.06 s, warm cast 0.008 s.
    static let saturation = 0.04, contrast = 0.06, warm = 0.008
    static let lumaFieldSeed: UInt64 = 0xD3_F1E1D_0001, chromaFieldSeed: UInt64 = 0xD3_F1E1D_0002
    /// Number of cosines in a fixed field and their periods (fractions of the image height).
    static let fieldTerms = 24, fieldPeriods = (1.0 / 16, 1.0 / 4)
  }
}

extension SyntheticD3 {
  /// Generator k's fingerprint (strength f) on a rendered scene (gen_3's already up-sampled).
  static func fingerprinted(_ canvas: Canvas, generator k: Int, f: Double, fingerprint: Bool,
                            rng: inout CounterRNG) -> RGBImage {
    var c = canvas
    switch k {
    case 3:
      c.whiteLumaNoise(sigma: f * 1.2 / 255, rng: &rng)
      c.addBlockShading(amplitude: Float(f * Coarse.block))
    case 0:
      c.blur(sigma: 0.5)
      c.addTile8(amplitude: Float(f * 2.2 / 255))
      c.addSeamGrid(amplitude: Float(f * Coarse.seam))
    case 1:
      c.blur(sigma: fingerprint ? 1.0 : 0.5)
      c.addSinusoids(amplitude: Float(f * 1.8 / 255), rng: &rng)
      c.addFixedField(amplitude: Float(f * Coarse.lumaField), seed: Coarse.lumaFieldSeed, chroma: false)
    default:
      c.blur(sigma: 0.6)
      if fingerprint {
        c.colourGrade(saturation: Float(1 + Coarse.saturation * f), contrast: Float(Coarse.contrast * f),
                      warm: Float(Coarse.warm * f))
      }
      c.addFixedField(amplitude: Float(f * Coarse.chromaField), seed: Coarse.chromaFieldSeed, chroma: true)
    }
    return c.image()
  }
}

/// The generators' fingerprints, fine and coarse parts (see `SyntheticD3`).
extension Canvas {
  /// gen_0: fixed 8x8 zero-mean tile (the same for every image), scaled by 0.5 + luma.
  mutating func addTile8(amplitude: Float) {
    let n = self.n
    var t = [Float](repeating: 0, count: 64)
    var rng = CounterRNG(seed: 0xD3_0000_0008, epoch: 0, record: 0, stream: 0)
    for i in 0..<64 { t[i] = Float(rng.uniform(-1, 1)) }
    let m = t.reduce(0, +) / 64
    for i in 0..<64 { t[i] -= m }
    let W = width
    p.withUnsafeMutableBufferPointer { b in
      for k in 0..<n {
        let x = k % W, y = k / W
        let l = (b[k] + b[n + k] + b[2 * n + k]) / 3
        let v = t[(y & 7) * 8 + (x & 7)] * amplitude * (0.5 + max(0, min(1, l)))
        b[k] += v; b[n + k] += v; b[2 * n + k] += v
      }
    }
  }

  /// gen_1: two fixed-frequency sinusoids (6 px diagonal, 11 px horizontal), random phases.
  mutating func addSinusoids(amplitude: Float, rng: inout CounterRNG) {
    let n = self.n
    let ph1 = rng.uniform(0, 2 * Double.pi), ph2 = rng.uniform(0, 2 * Double.pi)
    let W = width
    let f1 = 2 * Double.pi / (6 * 2.0.squareRoot()), f2 = 2 * Double.pi / 11
    p.withUnsafeMutableBufferPointer { b in
      for k in 0..<n {
        let x = Double(k % W), y = Double(k / W)
        let v = amplitude * Float(sin(f1 * (x + y) + ph1) + sin(f2 * x + ph2))
        b[k] += v; b[n + k] += v * 0.8; b[2 * n + k] += v * 1.2
      }
    }
  }

  /// Coordinates of pixel (x, y) normalised by the shorter side S = min(W, H) and centred on the
  /// image: u = (x + 0.5 - W/2) / S, v = (y + 0.5 - H/2) / S (S is the height of every D3 size).
  /// Resizing the shorter side and centre-cropping keep (u, v) at the same place of the view,
  /// whatever the size or orientation.
  @inline(__always) static func centred(_ x: Int, _ y: Int, _ W: Int, _ H: Int) -> (Double, Double) {
    let S = Double(min(W, H))
    return ((Double(x) + 0.5 - Double(W) / 2) / S, (Double(y) + 0.5 - Double(H) / 2) / S)
  }

  /// gen_0: seams of tiled decoding. Bright lines on the boundaries of a grid of 8 x 8 tiles per
  /// image height (grid centred on the image), Gaussian profile of sigma H/124 px, peak `amplitude`,
  /// added to all channels.
  mutating func addSeamGrid(amplitude: Float) {
    addLumaPattern(amplitude: amplitude) { u, v in
      let fu = (u * 8 + 100).truncatingRemainder(dividingBy: 1), fv = (v * 8 + 100).truncatingRemainder(dividingBy: 1)
      let d = min(min(fu, 1 - fu), min(fv, 1 - fv)) * 15.5  // distance to the nearest seam, in units of H/124
      return exp(-0.5 * d * d)
    }
  }

  /// Adds `amplitude * pattern(u, v)` to all channels, (u, v) the pixel's centred, height-normalised
  /// coordinates (`centred`).
  mutating func addLumaPattern(amplitude: Float, _ pattern: (Double, Double) -> Double) {
    if amplitude == 0 { return }
    let n = self.n, W = width, H = height
    p.withUnsafeMutableBufferPointer { b in
      for k in 0..<n {
        let (u, v) = Canvas.centred(k % W, k / W, W, H)
        let a = amplitude * Float(pattern(u, v))
        b[k] += a; b[n + k] += a; b[2 * n + k] += a
      }
    }
  }

  /// One cosine of a fixed field: cos(frequency * (u cos theta + v sin theta) + phase).
  struct FieldTerm {
    /// 2 pi / period (period: a fraction of the height).
    var frequency: Double
    var cosTheta: Double, sinTheta: Double
    var phase: Double
  }

  /// The terms of a fixed field: `Coarse.fieldTerms` cosines, periods uniform in
  /// `Coarse.fieldPeriods` (fractions of the height), from `seed` alone.
  static func fieldTerms(seed: UInt64) -> [FieldTerm] {
    var rng = CounterRNG(seed: seed, epoch: 0, record: 0, stream: 0)
    let (p0, p1) = SyntheticD3.Coarse.fieldPeriods
    return (0..<SyntheticD3.Coarse.fieldTerms).map { _ in
      let period = rng.uniform(p0, p1), theta = rng.uniform(0, 2 * Double.pi), phase = rng.uniform(0, 2 * Double.pi)
      return FieldTerm(frequency: 2 * Double.pi / period, cosTheta: cos(theta), sinTheta: sin(theta), phase: phase)
    }
  }

  /// The fixed field at height-normalised (u, v): sum of the terms' cosines over sqrt(terms / 2),
  /// i.e. zero mean and unit variance over the image.
  static func field(_ terms: [FieldTerm], _ u: Double, _ v: Double) -> Double {
    var s = 0.0
    for t in terms { s += cos(t.frequency * (u * t.cosTheta + v * t.sinTheta) + t.phase) }
    return s / (Double(terms.count) / 2).squareRoot()
  }

  /// gen_1 (luma) and gen_2 (chroma): a fixed, image-independent mid-frequency pattern (periods
  /// 1/16 to 1/4 of the height) of standard deviation `amplitude`, the coarse part of a model
  /// fingerprint (the average residual of a generator). Luma: added to all channels; chroma:
  /// + to red, - to blue (an uneven white balance).
  mutating func addFixedField(amplitude: Float, seed: UInt64, chroma: Bool) {
    if amplitude == 0 { return }
    let n = self.n, W = width, H = height
    let terms = Canvas.fieldTerms(seed: seed)
    // The field varies slowly (periods >= H/16 px): evaluate it on a grid of 2 x 2 px.
    var f = [Float](repeating: 0, count: n)
    for y in stride(from: 0, to: H, by: 2) {
      for x in stride(from: 0, to: W, by: 2) {
        let (u, v) = Canvas.centred(x, y, W, H)
        let (u1, v1) = (u + 0.5 / Double(min(W, H)), v + 0.5 / Double(min(W, H)))
        let val = amplitude * Float(Canvas.field(terms, u1, v1))
        for yy in y..<min(H, y + 2) { for xx in x..<min(W, x + 2) { f[yy * W + xx] = val } }
      }
    }
    p.withUnsafeMutableBufferPointer { b in
      for k in 0..<n {
        if chroma { b[k] += f[k]; b[2 * n + k] -= f[k] } else { b[k] += f[k]; b[n + k] += f[k]; b[2 * n + k] += f[k] }
      }
    }
  }

  /// gen_3: block shading of the cascade's coarse stage, `amplitude` (cos 2 pi 8u + cos 2 pi 8v) / 2
  /// (period 1/8 of the height, brightest at the block centres of a grid centred on the image),
  /// added to all channels.
  mutating func addBlockShading(amplitude: Float) {
    addLumaPattern(amplitude: amplitude) { u, v in 0.5 * (cos(2 * Double.pi * 8 * u) + cos(2 * Double.pi * 8 * v)) }
  }


  /// gen_2: saturation, S-curve contrast and warm cast.
  mutating func colourGrade(saturation: Float, contrast: Float, warm: Float) {
    let n = self.n
    p.withUnsafeMutableBufferPointer { b in
      for k in 0..<n {
        var r = b[k], g = b[n + k], bl = b[2 * n + k]
        let l = 0.299 * r + 0.587 * g + 0.114 * bl
        r = l + (r - l) * saturation; g = l + (g - l) * saturation; bl = l + (bl - l) * saturation
        func curve(_ v: Float) -> Float {
          let c = min(1, max(0, v))
          return c + contrast * c * (1 - c) * (2 * c - 1) * 1.5
        }
        b[k] = curve(r) * (1 + warm); b[n + k] = curve(g); b[2 * n + k] = curve(bl) * (1 - warm)
      }
    }
  }
}
