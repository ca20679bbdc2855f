import Foundation

// Pillow / AugLy / torchvision image operations over 8-bit RGB, written to give
// the same pixels as the Python references (tolerances in Tests/ImagingTests).

extension RGBImage {
  // MARK: Point operations

  /// ITU-R 601-2 luma as Pillow's RGB->L: L = (19595 R + 38470 G + 7471 B + 2^15) >> 16.
  @inline(__always) static func luma(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> UInt8 {
    UInt8(truncatingIfNeeded: (Int(r) * 19595 + Int(g) * 38470 + Int(b) * 7471 + 0x8000) >> 16)
  }

  /// The luma plane (W*H bytes).
  func lumaPlane() -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count)
    pixels.withUnsafeBufferPointer { p in
      out.withUnsafeMutableBufferPointer { o in
        for i in 0..<count { o[i] = RGBImage.luma(p[3 * i], p[3 * i + 1], p[3 * i + 2]) }
      }
    }
    return out
  }

  /// `image.convert("L").convert("RGB")` (AugLy grayscale, mode "luminosity").
  public func grayscale() -> RGBImage {
    var out = self
    out.pixels.withUnsafeMutableBufferPointer { p in
      for i in 0..<count {
        let l = RGBImage.luma(p[3 * i], p[3 * i + 1], p[3 * i + 2])
        p[3 * i] = l; p[3 * i + 1] = l; p[3 * i + 2] = l
      }
    }
    return out
  }

  /// `Image.blend(degenerate, self, factor)`, per byte, alpha = Float(factor):
  /// v = d + alpha * (s - d) in float; 0 <= alpha <= 1: truncated; otherwise clipped to
  /// [0, 255] then truncated (libImaging/Blend.c). `degenerate(i)` gives byte i of the
  /// degenerate image.
  @inline(__always) func blended(factor: Double, degenerate: (Int) -> UInt8) -> RGBImage {
    let alpha = Float(factor)
    if alpha == 1 { return self }
    var out = self
    let n = pixels.count
    out.pixels.withUnsafeMutableBufferPointer { o in
      pixels.withUnsafeBufferPointer { s in
        if alpha == 0 {
          for i in 0..<n { o[i] = degenerate(i) }
        } else if alpha >= 0 && alpha <= 1 {
          for i in 0..<n {
            let d = Int32(degenerate(i))
            o[i] = UInt8(truncatingIfNeeded: Int32(Float(d) + alpha * Float(Int32(s[i]) - d)))
          }
        } else {
          for i in 0..<n {
            let d = Int32(degenerate(i))
            let t = Float(d) + alpha * Float(Int32(s[i]) - d)
            o[i] = t <= 0 ? 0 : (t >= 255 ? 255 : UInt8(t))
          }
        }
      }
    }
    return out
  }

  /// `ImageEnhance.Brightness(im).enhance(f)`: blend with black.
  public func brightness(_ f: Double) -> RGBImage { blended(factor: f) { _ in 0 } }

  /// `ImageEnhance.Contrast(im).enhance(f)`: blend with the uniform grey
  /// int(mean(L) + 0.5), L the luma plane.
  public func contrast(_ f: Double) -> RGBImage {
    var hist = [Int](repeating: 0, count: 256)
    for l in lumaPlane() { hist[Int(l)] += 1 }
    var sum = 0.0
    for i in 0..<256 { sum += Double(i) * Double(hist[i]) }
    let mean = UInt8(Int(sum / Double(max(count, 1)) + 0.5))
    return blended(factor: f) { _ in mean }
  }

  /// `ImageEnhance.Color(im).enhance(f)`: blend with the grey (luma) version.
  public func saturation(_ f: Double) -> RGBImage {
    let l = lumaPlane()
    return l.withUnsafeBufferPointer { lp in blended(factor: f) { lp[$0 / 3] } }
  }

  /// Pillow's `filter(ImageFilter.SMOOTH)`: 3x3 kernel (1 1 1 / 1 5 1 / 1 1 1) / 13 in
  /// float, + 0.5, clipped and truncated; the one-pixel border is copied.
  func smoothed() -> RGBImage {
    var out = self
    if width < 3 || height < 3 { return out }
    let k1: Float = 1.0 / 13.0, k5: Float = 5.0 / 13.0
    let w3 = width * 3
    pixels.withUnsafeBufferPointer { sp in
      out.pixels.withUnsafeMutableBufferPointer { op in
        for y in 1..<(height - 1) {
          let up = sp.baseAddress! + (y - 1) * w3, mid = sp.baseAddress! + y * w3, dn = sp.baseAddress! + (y + 1) * w3
          for x in 1..<(width - 1) {
            for c in 0..<3 {
              let i = x * 3 + c
              var ss: Float = 0.5
              ss += (Float(dn[i - 3]) * k1 + Float(dn[i]) * k1) + Float(dn[i + 3]) * k1
              ss += (Float(mid[i - 3]) * k1 + Float(mid[i]) * k5) + Float(mid[i + 3]) * k1
              ss += (Float(up[i - 3]) * k1 + Float(up[i]) * k1) + Float(up[i + 3]) * k1
              op[y * w3 + i] = ss <= 0 ? 0 : (ss >= 255 ? 255 : UInt8(ss))
            }
          }
        }
      }
    }
    return out
  }

  /// `ImageEnhance.Sharpness(im).enhance(f)`: blend with the SMOOTH-filtered image.
  public func sharpness(_ f: Double) -> RGBImage {
    let d = smoothed()
    return d.pixels.withUnsafeBufferPointer { dp in blended(factor: f) { dp[$0] } }
  }

  // MARK: Geometry

  /// `transpose(FLIP_LEFT_RIGHT)`.
  public func hflip() -> RGBImage {
    var out = self
    pixels.withUnsafeBufferPointer { s in
      out.pixels.withUnsafeMutableBufferPointer { o in
        for y in 0..<height {
          let row = y * width * 3
          for x in 0..<width {
            let a = row + x * 3, b = row + (width - 1 - x) * 3
            o[a] = s[b]; o[a + 1] = s[b + 1]; o[a + 2] = s[b + 2]
          }
        }
      }
    }
    return out
  }

  /// `self` pasted at (left, top) on a black canvas of size (w, h) (parts outside are cut).
  public func placed(onCanvasWidth w: Int, height h: Int, left: Int, top: Int,
                     fill: (UInt8, UInt8, UInt8) = (0, 0, 0)) -> RGBImage {
    var out = RGBImage(width: w, height: h, fill: fill)
    let x0 = max(0, left), y0 = max(0, top)
    let x1 = min(w, left + width), y1 = min(h, top + height)
    if x1 <= x0 || y1 <= y0 { return out }
    pixels.withUnsafeBufferPointer { s in
      out.pixels.withUnsafeMutableBufferPointer { o in
        for y in y0..<y1 {
          (o.baseAddress! + (y * w + x0) * 3).update(from: s.baseAddress! + ((y - top) * width + (x0 - left)) * 3,
                                                      count: (x1 - x0) * 3)
        }
      }
    }
    return out
  }

  /// Pillow `Image.transform(size, AFFINE, (a, b, c, d, e, f), NEAREST)` with black fill:
  /// output pixel (x, y) reads input (floor(a(x+.5) + b(y+.5) + c), floor(d(x+.5) + e(y+.5) + f))
  /// computed in 16.16 fixed point as libImaging's `affine_fixed`.
  func affineNearest(width ow: Int, height oh: Int, _ m: [Double]) -> RGBImage {
    func fix(_ v: Double) -> Int32 { Int32(truncatingIfNeeded: Int(floor(v * 65536.0 + 0.5))) }
    let a0 = fix(m[0]), a1 = fix(m[1]), a3 = fix(m[3]), a4 = fix(m[4])
    var a2 = fix(m[2] + m[0] * 0.5 + m[1] * 0.5)
    var a5 = fix(m[5] + m[3] * 0.5 + m[4] * 0.5)
    var out = RGBImage(width: ow, height: oh)
    pixels.withUnsafeBufferPointer { s in
      out.pixels.withUnsafeMutableBufferPointer { o in
        for y in 0..<oh {
          var xx = a2, yy = a5
          for x in 0..<ow {
            let xin = Int(xx >> 16)
            if xin >= 0 && xin < width {
              let yin = Int(yy >> 16)
              if yin >= 0 && yin < height {
                let si = (yin * width + xin) * 3, di = (y * ow + x) * 3
                o[di] = s[si]; o[di + 1] = s[si + 1]; o[di + 2] = s[si + 2]
              }
            }
            xx &+= a0; yy &+= a3
          }
          a2 &+= a1; a5 &+= a4
        }
      }
    }
    return out
  }

  /// Pillow `Image.transform(size, AFFINE, m, BILINEAR)` with black fill
  /// (libImaging `bilinear_filter32RGB`): (xin, yin) = affine(x + .5, y + .5); outside
  /// [0, W) x [0, H) -> black; else bilinear at (xin - .5, yin - .5) with clamped
  /// neighbours, in double, truncated to 8 bits.
  func affineBilinear(width ow: Int, height oh: Int, _ m: [Double]) -> RGBImage {
    var out = RGBImage(width: ow, height: oh)
    let W = width, H = height
    pixels.withUnsafeBufferPointer { s in
      out.pixels.withUnsafeMutableBufferPointer { o in
        for y in 0..<oh {
          for x in 0..<ow {
            let xi = Double(x) + 0.5, yi = Double(y) + 0.5
            var xin = m[0] * xi + m[1] * yi + m[2]
            var yin = m[3] * xi + m[4] * yi + m[5]
            if xin < 0 || xin >= Double(W) || yin < 0 || yin >= Double(H) { continue }
            xin -= 0.5; yin -= 0.5
            let fx = xin < 0 ? Int(floor(xin)) : Int(xin)
            let fy = yin < 0 ? Int(floor(yin)) : Int(yin)
            let dx = xin - Double(fx), dy = yin - Double(fy)
            let x0 = min(max(fx, 0), W - 1), x1 = min(max(fx + 1, 0), W - 1)
            let yc = min(max(fy, 0), H - 1)
            let hasNext = fy + 1 >= 0 && fy + 1 < H
            for c in 0..<3 {
              let r0 = yc * W
              let a = Double(s[(r0 + x0) * 3 + c]), b = Double(s[(r0 + x1) * 3 + c])
              var v1 = a + (b - a) * dx
              var v2 = v1
              if hasNext {
                let r1 = (fy + 1) * W
                let a2 = Double(s[(r1 + x0) * 3 + c]), b2 = Double(s[(r1 + x1) * 3 + c])
                v2 = a2 + (b2 - a2) * dx
              }
              v1 = v1 + (v2 - v1) * dy
              o[(y * ow + x) * 3 + c] = UInt8(v1)
            }
          }
        }
      }
    }
    return out
  }

  /// `Image.rotate(degrees, NEAREST, expand=True)` (counter-clockwise), black fill.
  public func rotatedExpand(degrees: Double) -> RGBImage {
    let angle = degrees.truncatingRemainder(dividingBy: 360.0) + (degrees < 0 ? 360 : 0)
    if angle == 0 { return self }
    if angle == 180 { return hflip().vflip() }
    if angle == 90 { return transposed().vflip() }
    if angle == 270 { return transposed().hflip() }
    let w = Double(width), h = Double(height)
    let cx = w / 2, cy = h / 2
    let r = -angle * Double.pi / 180
    var m = [pyRound15(cos(r)), pyRound15(sin(r)), 0.0, pyRound15(-sin(r)), pyRound15(cos(r)), 0.0]
    func tr(_ x: Double, _ y: Double) -> (Double, Double) { (m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5]) }
    (m[2], m[5]) = tr(-cx, -cy)
    m[2] += cx
    m[5] += cy
    var xs = [Double](), ys = [Double]()
    for (x, y) in [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)] {
      let t = tr(x, y); xs.append(t.0); ys.append(t.1)
    }
    let nw = Int(xs.max()!.rounded(.up)) - Int(xs.min()!.rounded(.down))
    let nh = Int(ys.max()!.rounded(.up)) - Int(ys.min()!.rounded(.down))
    (m[2], m[5]) = tr(-Double(nw - width) / 2.0, -Double(nh - height) / 2.0)
    return affineNearest(width: nw, height: nh, m)
  }

  /// `transpose(FLIP_TOP_BOTTOM)`.
  public func vflip() -> RGBImage {
    var out = self
    let w3 = width * 3
    pixels.withUnsafeBufferPointer { s in
      out.pixels.withUnsafeMutableBufferPointer { o in
        for y in 0..<height {
          (o.baseAddress! + y * w3).update(from: s.baseAddress! + (height - 1 - y) * w3, count: w3)
        }
      }
    }
    return out
  }

  /// `transpose(TRANSPOSE)`: out(x, y) = in(y, x).
  func transposed() -> RGBImage {
    var out = RGBImage(width: height, height: width)
    pixels.withUnsafeBufferPointer { s in
      out.pixels.withUnsafeMutableBufferPointer { o in
        for y in 0..<height {
          for x in 0..<width {
            let si = (y * width + x) * 3, di = (x * height + y) * 3
            o[di] = s[si]; o[di + 1] = s[si + 1]; o[di + 2] = s[si + 2]
          }
        }
      }
    }
    return out
  }

  // MARK: Gaussian blur (Pillow's extended box blur, 3 passes)

  /// `filter(ImageFilter.GaussianBlur(radius))`: three passes of an extended box blur
  /// of radius r' (Gwosdek et al. 2011) horizontally, then three vertically; edge
  /// pixels are extended. r' from sigma^2 = radius^2 / 3 in float as
  /// libImaging `_gaussian_blur_radius`.
  public func gaussianBlur(radius: Double) -> RGBImage {
    if radius == 0 { return self }
    let r = RGBImage.boxRadius(Float(radius), passes: 3)
    if r == 0 { return self }
    var out = self
    // Horizontal: rows are contiguous lines of W pixels (stride 3, 3 channels).
    var line = [UInt8](repeating: 0, count: max(width, height) * 3)
    out.pixels.withUnsafeMutableBufferPointer { p in
      line.withUnsafeMutableBufferPointer { lb in
        for y in 0..<height {
          let row = p.baseAddress! + y * width * 3
          for _ in 0..<3 { RGBImage.boxBlurLine(row, stride: 3, count: width, radius: r, tmp: lb.baseAddress!) }
        }
        for x in 0..<width {
          let col = p.baseAddress! + x * 3
          for _ in 0..<3 { RGBImage.boxBlurLine(col, stride: width * 3, count: height, radius: r, tmp: lb.baseAddress!) }
        }
      }
    }
    return out
  }

  static func boxRadius(_ radius: Float, passes: Int) -> Float {
    let sigma2: Float = radius * radius / Float(passes)
    let L = Float((12.0 * Double(sigma2) + 1.0).squareRoot())
    let l = Float(floor((Double(L) - 1.0) / 2.0))
    var a: Float = (2 * l + 1) * (l * (l + 1) - 3 * sigma2)
    a /= 6 * (sigma2 - (l + 1) * (l + 1))
    return l + a
  }

  /// One pass of libImaging `ImagingLineBoxBlur` on the 3 channels of a line of `count`
  /// pixels spaced `stride` bytes apart, in place (through `tmp`, 3 * count bytes).
  static func boxBlurLine(_ line: UnsafeMutablePointer<UInt8>, stride: Int, count n: Int, radius floatRadius: Float,
                          tmp: UnsafeMutablePointer<UInt8>) {
    let radius = Int(floatRadius)
    let ww = UInt32(Float(UInt32(1 << 24)) / (floatRadius * 2 + 1))
    let fw = (UInt32(1 << 24) &- UInt32(radius * 2 + 1) &* ww) / 2
    let lastx = n - 1
    let edgeA = min(radius + 1, n), edgeB = max(n - radius - 1, 0)
    for c in 0..<3 {
      @inline(__always) func px(_ i: Int) -> UInt32 { UInt32(line[i * stride + c]) }
      var acc: UInt32 = px(0) &* UInt32(radius + 1)
      var x = 0
      while x < edgeA - 1 { acc &+= px(x); x += 1 }
      acc &+= px(lastx) &* UInt32(radius - edgeA + 1)
      @inline(__always) func move(_ sub: Int, _ add: Int) { acc = acc &+ px(add) &- px(sub) }
      @inline(__always) func save(_ x: Int, _ left: Int, _ right: Int) {
        let bulk = acc &* ww &+ (px(left) &+ px(right)) &* fw
        tmp[x * 3 + c] = UInt8(truncatingIfNeeded: (bulk &+ (1 << 23)) >> 24)
      }
      if edgeA <= edgeB {
        for x in 0..<edgeA { move(0, x + radius); save(x, 0, x + radius + 1) }
        for x in edgeA..<edgeB { move(x - radius - 1, x + radius); save(x, x - radius - 1, x + radius + 1) }
        for x in edgeB...lastx { move(x - radius - 1, lastx); save(x, x - radius - 1, lastx) }
      } else {
        for x in 0..<edgeB { move(0, x + radius); save(x, 0, x + radius + 1) }
        for x in edgeB..<edgeA { move(0, lastx); save(x, 0, lastx) }
        for x in edgeA..<(lastx + 1) { move(x - radius - 1, lastx); save(x, x - radius - 1, lastx) }
      }
    }
    for i in 0..<n {
      line[i * stride] = tmp[i * 3]; line[i * stride + 1] = tmp[i * 3 + 1]; line[i * stride + 2] = tmp[i * 3 + 2]
    }
  }
}

/// Python's `round(x, 15)` (correctly rounded through decimal text).
func pyRound15(_ x: Double) -> Double {
  Double(String(format: "%.15f", x)) ?? x
}
