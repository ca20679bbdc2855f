import Foundation

/// Resampling filters of PIL's `Image.resize` (libImaging/Resample.c).
public enum ResampleFilter: Sendable {
  case bilinear, bicubic, lanczos

  /// Support radius at scale 1.
  var support: Double {
    switch self {
    case .bilinear: return 1
    case .bicubic: return 2
    case .lanczos: return 3
    }
  }

  /// Kernel value at x. Bicubic: Keys' cubic with a = -0.5; Lanczos: sinc(x) sinc(x/3), |x| < 3.
  @inline(__always) func weight(_ x0: Double) -> Double {
    switch self {
    case .bilinear:
      let x = abs(x0)
      return x < 1 ? 1 - x : 0
    case .bicubic:
      let a = -0.5
      let x = abs(x0)
      if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
      if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
      return 0
    case .lanczos:
      if -3 <= x0 && x0 < 3 { return ResampleFilter.sinc(x0) * ResampleFilter.sinc(x0 / 3) }
      return 0
    }
  }

  @inline(__always) static func sinc(_ x: Double) -> Double {
    if x == 0 { return 1 }
    let y = x * Double.pi
    return sin(y) / y
  }
}

/// Fixed-point resampling coefficients for one axis, as PIL's `precompute_coeffs`
/// followed by `normalize_coeffs_8bpc` (22 fractional bits).
struct ResampleCoefficients {
  let ksize: Int
  /// Per output sample: first input index and number of taps.
  var xmin: [Int32]
  var count: [Int32]
  /// `ksize` fixed-point weights per output sample.
  var k: [Int32]

  static let precisionBits: Int32 = 22

  /// For output samples `outStart ..< outStart + outCount` of an `outSize` resampling of
  /// input coordinates [in0, in1) of an axis of `inSize` samples.
  ///
  /// center = in0 + (i + 0.5) * scale, scale = (in1 - in0) / outSize,
  /// filterscale = max(scale, 1), support = filter.support * filterscale,
  /// taps x in [int(center - support + 0.5), int(center + support + 0.5)) clipped to the axis,
  /// w(x) = filter((x - center + 0.5) / filterscale) normalised to sum 1,
  /// then round-half-away-from-zero(w * 2^22).
  init(inSize: Int, in0: Double, in1: Double, outSize: Int, outStart: Int, outCount: Int, filter: ResampleFilter) {
    let scale = (in1 - in0) / Double(outSize)
    let filterscale = max(scale, 1.0)
    let support = filter.support * filterscale
    ksize = Int(support.rounded(.up)) * 2 + 1
    xmin = [Int32](repeating: 0, count: outCount)
    count = [Int32](repeating: 0, count: outCount)
    k = [Int32](repeating: 0, count: outCount * ksize)
    var w = [Double](repeating: 0, count: ksize)
    let ss = 1.0 / filterscale
    let one = Double(1 << ResampleCoefficients.precisionBits)
    for o in 0..<outCount {
      let xx = outStart + o
      let center = in0 + (Double(xx) + 0.5) * scale
      var lo = Int(center - support + 0.5)  // C (int) truncation
      if lo < 0 { lo = 0 }
      var hi = Int(center + support + 0.5)
      if hi > inSize { hi = inSize }
      let n = max(0, hi - lo)
      var ww = 0.0
      for x in 0..<n {
        let v = filter.weight((Double(x + lo) - center + 0.5) * ss)
        w[x] = v
        ww += v
      }
      for x in 0..<n {
        let v = ww != 0 ? w[x] / ww : w[x]
        k[o * ksize + x] = v < 0 ? Int32(-0.5 + v * one) : Int32(0.5 + v * one)
      }
      xmin[o] = Int32(lo)
      count[o] = Int32(n)
    }
  }
}

/// A rectangle in pixel coordinates.
public struct PixelRect: Sendable, Equatable {
  public var x: Int, y: Int, width: Int, height: Int
  public init(x: Int, y: Int, width: Int, height: Int) {
    self.x = x; self.y = y; self.width = width; self.height = height
  }
}

extension RGBImage {
  /// `PIL.Image.crop(source).resize((outWidth, outHeight), filter)`, of which only the
  /// pixels inside `window` (in output coordinates; default the whole output) are
  /// computed and returned. Bit-exact with Pillow's 8-bit two-pass resampler:
  /// horizontal pass to 8 bits, then vertical pass, each
  /// out = clip8((2^21 + sum in * k) >> 22). An axis whose size does not change is
  /// not resampled (as Pillow). `source` must lie inside the image.
  public func resampled(width outWidth: Int, height outHeight: Int, filter: ResampleFilter = .bicubic,
                        source: PixelRect? = nil, window: PixelRect? = nil) -> RGBImage {
    let src = source ?? PixelRect(x: 0, y: 0, width: width, height: height)
    let win = window ?? PixelRect(x: 0, y: 0, width: outWidth, height: outHeight)
    precondition(src.x >= 0 && src.y >= 0 && src.width > 0 && src.height > 0
                 && src.x + src.width <= width && src.y + src.height <= height, "resampled: bad source rect")
    precondition(outWidth > 0 && outHeight > 0 && win.x >= 0 && win.y >= 0 && win.width > 0 && win.height > 0
                 && win.x + win.width <= outWidth && win.y + win.height <= outHeight, "resampled: bad window")
    let needH = outWidth != src.width
    let needV = outHeight != src.height
    let ow = win.width, oh = win.height
    let W = width

    // Rows of the source (relative to src.y) feeding the window, and vertical coefficients.
    var vco: ResampleCoefficients? = nil
    var rowFirst = win.y, rowEnd = win.y + oh
    if needV {
      let c = ResampleCoefficients(inSize: src.height, in0: 0, in1: Double(src.height), outSize: outHeight,
                                   outStart: win.y, outCount: oh, filter: filter)
      rowFirst = Int(c.xmin.min()!)
      rowEnd = zip(c.xmin, c.count).map { Int($0 + $1) }.max()!
      vco = c
    }
    let rows = rowEnd - rowFirst

    // Horizontal pass (or column copy) into `mid`: rows x ow x 3.
    var mid = [UInt8](repeating: 0, count: rows * ow * 3)
    pixels.withUnsafeBufferPointer { inBuf in
      mid.withUnsafeMutableBufferPointer { midBuf in
        let inp = inBuf.baseAddress!, mp = midBuf.baseAddress!
        if needH {
          let hc = ResampleCoefficients(inSize: src.width, in0: 0, in1: Double(src.width), outSize: outWidth,
                                        outStart: win.x, outCount: ow, filter: filter)
          let ks = hc.ksize
          hc.k.withUnsafeBufferPointer { kb in
            let kp = kb.baseAddress!
            for r in 0..<rows {
              let row = inp + ((src.y + rowFirst + r) * W + src.x) * 3
              let orow = mp + r * ow * 3
              for xx in 0..<ow {
                let x0 = Int(hc.xmin[xx]), n = Int(hc.count[xx])
                let k = kp + xx * ks
                var s0: Int32 = 1 << 21, s1: Int32 = 1 << 21, s2: Int32 = 1 << 21
                var p = row + x0 * 3
                for t in 0..<n {
                  let kt = k[t]
                  s0 &+= Int32(p[0]) &* kt
                  s1 &+= Int32(p[1]) &* kt
                  s2 &+= Int32(p[2]) &* kt
                  p += 3
                }
                orow[xx * 3] = clip8(s0)
                orow[xx * 3 + 1] = clip8(s1)
                orow[xx * 3 + 2] = clip8(s2)
              }
            }
          }
        } else {
          for r in 0..<rows {
            let row = inp + ((src.y + rowFirst + r) * W + src.x + win.x) * 3
            (mp + r * ow * 3).update(from: row, count: ow * 3)
          }
        }
      }
    }
    guard let vc = vco else { return RGBImage(width: ow, height: oh, pixels: mid) }

    // Vertical pass: accumulate whole rows (vectorisable).
    var out = [UInt8](repeating: 0, count: ow * oh * 3)
    let n3 = ow * 3
    var acc = [Int32](repeating: 0, count: n3)
    mid.withUnsafeBufferPointer { mb in
      out.withUnsafeMutableBufferPointer { ob in
        acc.withUnsafeMutableBufferPointer { ab in
          let mp = mb.baseAddress!, op = ob.baseAddress!, ap = ab.baseAddress!
          for yy in 0..<oh {
            for i in 0..<n3 { ap[i] = 1 << 21 }
            let y0 = Int(vc.xmin[yy]) - rowFirst, n = Int(vc.count[yy])
            for t in 0..<n {
              let kt = vc.k[yy * vc.ksize + t]
              let row = mp + (y0 + t) * n3
              for i in 0..<n3 { ap[i] &+= Int32(row[i]) &* kt }
            }
            let orow = op + yy * n3
            for i in 0..<n3 { orow[i] = clip8(ap[i]) }
          }
        }
      }
    }
    return RGBImage(width: ow, height: oh, pixels: out)
  }

  /// `PIL.Image.resize((w, h), filter)`.
  public func resized(width w: Int, height h: Int, filter: ResampleFilter = .bicubic) -> RGBImage {
    resampled(width: w, height: h, filter: filter)
  }

  /// `PIL.Image.crop((x, y, x + w, y + h))` for a rectangle inside the image.
  public func cropped(_ r: PixelRect) -> RGBImage {
    precondition(r.x >= 0 && r.y >= 0 && r.x + r.width <= width && r.y + r.height <= height, "cropped: outside image")
    var out = [UInt8](repeating: 0, count: r.width * r.height * 3)
    pixels.withUnsafeBufferPointer { ib in
      out.withUnsafeMutableBufferPointer { ob in
        for y in 0..<r.height {
          (ob.baseAddress! + y * r.width * 3).update(from: ib.baseAddress! + ((r.y + y) * width + r.x) * 3,
                                                     count: r.width * 3)
        }
      }
    }
    return RGBImage(width: r.width, height: r.height, pixels: out)
  }

  /// `PIL.Image.crop(box)` with a box that may extend outside the image: outside
  /// pixels are black (as Pillow).
  public func croppedPadding(x: Int, y: Int, width w: Int, height h: Int) -> RGBImage {
    var out = RGBImage(width: w, height: h)
    let x0 = max(x, 0), y0 = max(y, 0), x1 = min(x + w, width), y1 = min(y + h, height)
    if x1 <= x0 || y1 <= y0 { return out }
    pixels.withUnsafeBufferPointer { ib in
      out.pixels.withUnsafeMutableBufferPointer { ob in
        for yy in y0..<y1 {
          (ob.baseAddress! + ((yy - y) * w + (x0 - x)) * 3).update(from: ib.baseAddress! + (yy * width + x0) * 3,
                                                                   count: (x1 - x0) * 3)
        }
      }
    }
    return out
  }
}

/// Pillow's clip8 for resampling sums: clamp(v >> 22, 0, 255) (arithmetic shift).
@inline(__always) func clip8(_ v: Int32) -> UInt8 {
  let s = v >> 22
  return s < 0 ? 0 : (s > 255 ? 255 : UInt8(truncatingIfNeeded: s))
}

extension RGBImage {
  /// torchvision Resize(shorter) (bicubic) then CenterCrop(crop); only the cropped
  /// window is computed.
  public func resizedCenterCropped(shorter: Int, crop: Int) -> RGBImage {
    let (rw, rh) = torchvisionResizeSize(width: width, height: height, shorter: shorter)
    if rw < crop || rh < crop {
      // Cannot happen for shorter >= crop; torchvision would pad. Keep it total.
      let r = resized(width: rw, height: rh)
      return r.croppedPadding(x: -((crop - rw) / 2), y: -((crop - rh) / 2), width: crop, height: crop)
    }
    let win = PixelRect(x: torchvisionCenterOffset(rw, crop), y: torchvisionCenterOffset(rh, crop), width: crop, height: crop)
    return resampled(width: rw, height: rh, filter: .bicubic, window: win)
  }
}

/// torchvision `Resize(size)` output for an int size: the shorter side becomes `size`,
/// the longer int(size * long / short).
public func torchvisionResizeSize(width w: Int, height h: Int, shorter size: Int) -> (Int, Int) {
  if w <= h {
    return (size, Int(Double(size) * Double(h) / Double(w)))
  } else {
    return (Int(Double(size) * Double(w) / Double(h)), size)
  }
}

/// torchvision `CenterCrop` offset: int(round((in - out) / 2.0)) with Python's
/// round-half-to-even.
public func torchvisionCenterOffset(_ inSize: Int, _ outSize: Int) -> Int {
  Int((Double(inSize - outSize) / 2.0).rounded(.toNearestOrEven))
}
