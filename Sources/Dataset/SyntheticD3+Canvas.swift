import Foundation
import Randomness
import Imaging

/// Planar float image in [0, 1], [3, H, W].
struct Canvas {
  let width: Int, height: Int
  var p: [Float]

  init(width: Int, height: Int) {
    self.width = max(1, width); self.height = max(1, height)
    p = [Float](repeating: 0, count: 3 * self.width * self.height)
  }

  var n: Int { width * height }

  /// Scene rendering. `spectrumExponent` e: the value-noise octave of cell c px has
  /// amplitude proportional to c^(e - 1), i.e. an amplitude spectrum ~ f^-e. `scale` < 1 renders a
  /// down-scaled version of the same layout (for gen_3).
  mutating func render(theme: Theme, spectrumExponent e: Double, scale: Double = 1, rng: inout CounterRNG) {
    let n = self.n
    let W = width, H = height
    let pal = theme.palette
    // Background.
    let horizon = Float(rng.uniform(0.35, 0.7)) * Float(H)
    let c0 = pal[rng.int(below: 5)], c1 = pal[rng.int(below: 5)], c2 = pal[rng.int(below: 5)]
    p.withUnsafeMutableBufferPointer { b in
      for y in 0..<H {
        let t = Float(y) / Float(max(H - 1, 1))
        var col: (Float, Float, Float)
        if theme.scene == 0 {
          if Float(y) < horizon {
            let u = Float(y) / max(horizon, 1)
            col = (c0.0 * (1 - u) + c1.0 * u, c0.1 * (1 - u) + c1.1 * u, c0.2 * (1 - u) + c1.2 * u)
          } else {
            col = (c2.0 * (0.8 + 0.2 * t), c2.1 * (0.8 + 0.2 * t), c2.2 * (0.8 + 0.2 * t))
          }
        } else {
          col = (c0.0 * (0.9 + 0.2 * t), c0.1 * (0.9 + 0.2 * t), c0.2 * (0.9 + 0.2 * t))
        }
        for x in 0..<W {
          b[y * W + x] = col.0; b[n + y * W + x] = col.1; b[2 * n + y * W + x] = col.2
        }
      }
    }
    // 1/f^e value noise: luma and weaker chroma, octaves from 2 px (times scale) up.
    let maxSide = Double(max(W, H))
    var cell = 2.0
    var amp = [Double]()
    var cells = [Double]()
    // An amplitude spectrum ~ f^-e puts RMS ~ cell^(e - 1) in each octave band
    // (equal contrast per octave for e = 1, as in natural images).
    while cell < maxSide * 1.5 { cells.append(cell); amp.append(pow(cell, e - 1)); cell *= 2 }
    let norm = 0.16 / amp.map { $0 * $0 }.reduce(0, +).squareRoot()
    for (o, c) in cells.enumerated() {
      let a = Float(amp[o] * norm * (theme.scene == 2 ? 1.6 : 1.0))
      addValueNoise(cell: max(1.0, c * scale * 2) , amplitude: a, chroma: 0.35, rng: &rng)
    }
    // Shapes.
    let count = 3 + rng.int(below: 6)
    for _ in 0..<count {
      let col = pal[rng.int(below: 5)]
      let cx = rng.uniform(0.1, 0.9) * Double(W), cy = rng.uniform(0.2, 0.95) * Double(H)
      let r = rng.uniform(0.06, theme.scene == 1 ? 0.45 : 0.25) * Double(min(W, H))
      let aspect = rng.uniform(0.5, 2.0)
      let rect = rng.uniform() < 0.4
      let gratingPeriod = rng.uniform(3, 24) * scale
      let gratingAmp = rng.uniform() < 0.5 ? Float(rng.uniform(0.02, 0.12)) : 0
      let theta = rng.uniform(0, Double.pi)
      addShape(cx: cx, cy: cy, rx: r * aspect.squareRoot(), ry: r / aspect.squareRoot(), rect: rect, colour: col,
               gratingPeriod: max(2, gratingPeriod), gratingAmp: gratingAmp, theta: theta)
    }
    // Illumination: a smooth linear shading.
    let gx = Float(rng.uniform(-0.15, 0.15)), gy = Float(rng.uniform(-0.15, 0.15))
    p.withUnsafeMutableBufferPointer { b in
      for y in 0..<H {
        for x in 0..<W {
          let s = 1 + gx * (Float(x) / Float(W) - 0.5) + gy * (Float(y) / Float(H) - 0.5)
          b[y * W + x] *= s; b[n + y * W + x] *= s; b[2 * n + y * W + x] *= s
        }
      }
    }
  }

  /// Bilinearly interpolated (smoothstep) random grid with the given cell size.
  mutating func addValueNoise(cell: Double, amplitude: Float, chroma: Float, rng: inout CounterRNG) {
    let n = self.n
    let W = width, H = height
    let gw = Int(Double(W) / cell) + 2, gh = Int(Double(H) / cell) + 2
    var g = [Float](repeating: 0, count: gw * gh * 3)
    for i in 0..<g.count { g[i] = Float(rng.uniform(-1, 1)) }
    var xi = [Int](repeating: 0, count: W), xf = [Float](repeating: 0, count: W)
    for x in 0..<W {
      let gxv = Double(x) / cell
      xi[x] = Int(gxv); let f = Float(gxv - Double(xi[x])); xf[x] = f * f * (3 - 2 * f)
    }
    let ca = amplitude * chroma
    p.withUnsafeMutableBufferPointer { b in
      g.withUnsafeBufferPointer { gp in
        for y in 0..<H {
          let gyv = Double(y) / cell
          let yi = Int(gyv); var fy = Float(gyv - Double(yi)); fy = fy * fy * (3 - 2 * fy)
          for x in 0..<W {
            let i0 = (yi * gw + xi[x]) * 3, i1 = ((yi + 1) * gw + xi[x]) * 3
            let fx = xf[x]
            var v = (0 as Float, 0 as Float, 0 as Float)
            for c in 0..<3 {
              let top = gp[i0 + c] + (gp[i0 + 3 + c] - gp[i0 + c]) * fx
              let bot = gp[i1 + c] + (gp[i1 + 3 + c] - gp[i1 + c]) * fx
              let val = top + (bot - top) * fy
              if c == 0 { v.0 = val } else if c == 1 { v.1 = val } else { v.2 = val }
            }
            let l = v.0 * amplitude
            let k = y * W + x
            b[k] += l + v.1 * ca
            b[n + k] += l - (v.1 + v.2) * ca * 0.5
            b[2 * n + k] += l + v.2 * ca
          }
        }
      }
    }
  }

  mutating func addShape(cx: Double, cy: Double, rx: Double, ry: Double, rect: Bool, colour: (Float, Float, Float),
                         gratingPeriod: Double, gratingAmp: Float, theta: Double) {
    let n = self.n
    let W = width, H = height
    let x0 = max(0, Int(cx - rx - 2)), x1 = min(W - 1, Int(cx + rx + 2))
    let y0 = max(0, Int(cy - ry - 2)), y1 = min(H - 1, Int(cy + ry + 2))
    if x1 < x0 || y1 < y0 { return }
    let ct = cos(theta), st = sin(theta)
    let edge = min(rx, ry)
    p.withUnsafeMutableBufferPointer { b in
      for y in y0...y1 {
        for x in x0...x1 {
          let u = (Double(x) - cx) / rx, v = (Double(y) - cy) / ry
          let d = rect ? max(abs(u), abs(v)) : (u * u + v * v).squareRoot()
          let cov = Float(min(1, max(0, (1 - d) * edge + 0.5)))
          if cov <= 0 { continue }
          let g = 1 + gratingAmp * Float(sin(2 * Double.pi * (Double(x) * ct + Double(y) * st) / gratingPeriod))
          let k = y * W + x
          b[k] = b[k] * (1 - cov) + (colour.0 * g + (b[k] - 0.5) * 0.5) * cov
          b[n + k] = b[n + k] * (1 - cov) + (colour.1 * g + (b[n + k] - 0.5) * 0.5) * cov
          b[2 * n + k] = b[2 * n + k] * (1 - cov) + (colour.2 * g + (b[2 * n + k] - 0.5) * 0.5) * cov
        }
      }
    }
  }

  /// Separable Gaussian blur (radius 3 sigma, clamped edges).
  mutating func blur(sigma: Double) {
    let n = self.n
    let r = max(1, Int((3 * sigma).rounded(.up)))
    var k = (0...(2 * r)).map { i -> Float in Float(exp(-Double((i - r) * (i - r)) / (2 * sigma * sigma))) }
    let s = k.reduce(0, +); k = k.map { $0 / s }
    let W = width, H = height
    var tmp = [Float](repeating: 0, count: max(W, H))
    p.withUnsafeMutableBufferPointer { b in
      for c in 0..<3 {
        let base = b.baseAddress! + c * n
        for y in 0..<H {
          let row = base + y * W
          for x in 0..<W {
            var acc: Float = 0
            for t in 0...(2 * r) { acc += k[t] * row[min(W - 1, max(0, x + t - r))] }
            tmp[x] = acc
          }
          for x in 0..<W { row[x] = tmp[x] }
        }
        for x in 0..<W {
          for y in 0..<H {
            var acc: Float = 0
            for t in 0...(2 * r) { acc += k[t] * base[min(H - 1, max(0, y + t - r)) * W + x] }
            tmp[y] = acc
          }
          for y in 0..<H { base[y * W + x] = tmp[y] }
        }
      }
    }
  }

  mutating func vignette(strength: Double) {
    let n = self.n
    let W = width, H = height
    p.withUnsafeMutableBufferPointer { b in
      for y in 0..<H {
        for x in 0..<W {
          let u = Double(x) / Double(W) - 0.5, v = Double(y) / Double(H) - 0.5
          let s = Float(1 - strength * (u * u + v * v) * 2)
          let k = y * W + x
          b[k] *= s; b[n + k] *= s; b[2 * n + k] *= s
        }
      }
    }
  }

  /// Poisson-Gaussian noise, sigma^2 = a x + b, with chroma noise averaged over 2x1 pixels.
  mutating func sensorNoise(a: Double, b bias: Double, rng: inout CounterRNG) {
    let n = self.n
    let W = width
    var prev: Float = 0
    p.withUnsafeMutableBufferPointer { b in
      for k in 0..<n {
        let l = max(0, (b[k] + b[n + k] + b[2 * n + k]) / 3)
        let sd = Float((a * Double(l) + bias).squareRoot())
        let (z1, z2) = Canvas.fastNormals(&rng)
        let shared = z1 * sd
        let chroma = z2 * sd * 0.6
        let ch = (chroma + (k % W == 0 ? chroma : prev)) * 0.5
        prev = chroma
        b[k] += shared + ch
        b[n + k] += shared
        b[2 * n + k] += shared - ch
      }
    }
  }

  /// A pixel cascade on a full-size rendering: the 4x4 box average up-sampled x4 (the coarse
  /// stage), plus `detail` times the fine detail that it lost (what the super-resolution stage
  /// restores). The size is rounded down to a multiple of 4.
  func cascade4(detail: Float) -> Canvas {
    var out = downsampled4().upsampled4()
    for c in 0..<3 {
      for y in 0..<out.height {
        let src = c * n + y * width, dst = c * out.n + y * out.width
        for x in 0..<out.width { out.p[dst + x] += detail * (p[src + x] - out.p[dst + x]) }
      }
    }
    return out
  }

  /// 4x4 box average (the size rounded down to a multiple of 4).
  func downsampled4() -> Canvas {
    var out = Canvas(width: max(1, width / 4), height: max(1, height / 4))
    let W = width, OW = out.width, ON = out.n
    p.withUnsafeBufferPointer { s in
      out.p.withUnsafeMutableBufferPointer { o in
        for c in 0..<3 {
          for y in 0..<out.height {
            for x in 0..<OW {
              var acc: Float = 0
              for dy in 0..<4 { for dx in 0..<4 { acc += s[c * n + (4 * y + dy) * W + 4 * x + dx] } }
              o[c * ON + y * OW + x] = acc / 16
            }
          }
        }
      }
    }
    return out
  }

  /// gen_3: x4 bilinear up-sampling (align-corners false).
  func upsampled4() -> Canvas {
    var out = Canvas(width: width * 4, height: height * 4)
    let W = width, H = height, OW = out.width, ON = out.n
    p.withUnsafeBufferPointer { s in
      out.p.withUnsafeMutableBufferPointer { o in
        for y in 0..<out.height {
          let sy = (Double(y) + 0.5) / 4 - 0.5
          let y0 = max(0, min(H - 1, Int(floor(sy)))), y1 = min(H - 1, y0 + 1)
          let fy = Float(max(0, min(1, sy - floor(sy))))
          for x in 0..<OW {
            let sx = (Double(x) + 0.5) / 4 - 0.5
            let x0 = max(0, min(W - 1, Int(floor(sx)))), x1 = min(W - 1, x0 + 1)
            let fx = Float(max(0, min(1, sx - floor(sx))))
            for c in 0..<3 {
              let b = s.baseAddress! + c * n
              let top = b[y0 * W + x0] + (b[y0 * W + x1] - b[y0 * W + x0]) * fx
              let bot = b[y1 * W + x0] + (b[y1 * W + x1] - b[y1 * W + x0]) * fx
              o[c * ON + y * OW + x] = top + (bot - top) * fy
            }
          }
        }
      }
    }
    return out
  }

  /// Two approximately standard normal deviates from one 64-bit draw: each is the
  /// centred sum of two 16-bit uniforms scaled to unit variance (triangular; cheap and
  /// bounded, which is all sensor-noise texture needs).
  @inline(__always) static func fastNormals(_ rng: inout CounterRNG) -> (Float, Float) {
    let u = rng.nextUInt64()
    let a = Float(u & 0xFFFF) + Float((u >> 16) & 0xFFFF) - 65535
    let b = Float((u >> 32) & 0xFFFF) + Float(u >> 48) - 65535
    let scale: Float = 1 / (65536 * (1.0 / 6.0).squareRoot())
    return (a * scale, b * scale)
  }

  mutating func whiteLumaNoise(sigma: Double, rng: inout CounterRNG) {
    let n = self.n
    p.withUnsafeMutableBufferPointer { b in
      for k in 0..<n {
        let v = Canvas.fastNormals(&rng).0 * Float(sigma)
        b[k] += v; b[n + k] += v; b[2 * n + k] += v
      }
    }
  }

  /// 8-bit RGB, round-to-nearest, clamped.
  func image() -> RGBImage {
    var out = RGBImage(width: width, height: height)
    p.withUnsafeBufferPointer { s in
      out.pixels.withUnsafeMutableBufferPointer { o in
        for k in 0..<n {
          for c in 0..<3 {
            let v = s[c * n + k] * 255 + 0.5
            o[3 * k + c] = v <= 0 ? 0 : (v >= 255 ? 255 : UInt8(v))
          }
        }
      }
    }
    return out
  }
}
