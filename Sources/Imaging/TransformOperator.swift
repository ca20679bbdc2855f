import Foundation
import Randomness

/// The nineteen operations of the transform operator T, in list order (the order
/// they are applied in when several are drawn). Semantics follow the AugLy /
/// torchvision calls of the CoDE training code (`MassiveTransform`), reproduced
/// over 8-bit RGB:
///
/// | op | reference call | value |
/// |---|---|---|
/// | blur | `ImageFilter.GaussianBlur(r)` (3-pass extended box blur) | r ~ U[0.1, 2) |
/// | brightness | `ImageEnhance.Brightness.enhance(f)` | f ~ U[0.5, 2) |
/// | aspectRatio | `resize((int(sqrt(r*A)), int(A/w)), BICUBIC)`, A = W*H | r ~ U[0.75, 2) |
/// | pixelization | bicubic down to (int(W r), int(H r)) and back | r ~ U[0.3, 1) |
/// | rotation | `rotate(d, NEAREST, expand=True)` then largest inner rectangle | d ~ U[90, 270) |
/// | contrast | `ImageEnhance.Contrast.enhance(f)` | grid 0.5 ... 1.5 |
/// | saturation | `ImageEnhance.Color.enhance(f)` | grid 0.5 ... 1.5 |
/// | jpeg | JPEG encode at quality q (4:2:0), decode | q = int(grid 40 ... 100) |
/// | grayscale | `convert("L").convert("RGB")` | - |
/// | hflip | `FLIP_LEFT_RIGHT` | - |
/// | opacity | alpha = uint8(255 l) over white, alpha dropped | grid 0.2 ... 1.0 |
/// | overlayStripes | white horizontal stripes, density 0.5 | width grid 0.05 ... 0.35 |
/// | pad | black border int(f W) left/right, int(f H) top/bottom | grid 0.01 ... 0.25 |
/// | resize | `resize((s, s), BICUBIC)` | s = int(grid 64 ... 512) |
/// | randomCrop | torchvision `RandomCrop(s, pad_if_needed=True)` | s = int(grid 64 ... 512) |
/// | scale | `resize((int(W f), int(H f)))`, LANCZOS if f < 1 else BILINEAR | grid 0.5 ... 1.5 |
/// | sharpen | `ImageEnhance.Sharpness.enhance(f)` | grid 1.2 ... 2.0 |
/// | shufflePixels | int(f N) random pixels permuted among themselves | grid 0 ... 0.35 |
/// | skew | `transform(AFFINE, (1, k, -k H/2, 0, 1, 0), BILINEAR)` | grid -1 ... 1 |
///
/// "U[a, b)" ops are AugLy's `Random*` transforms (continuous value, a + (b - a) u);
/// "grid" ops pick one of `torch.linspace(a, b, 5)` (float32) uniformly.
///
/// Deviations (documented): opacity returns RGB (AugLy returns RGBA whose colour
/// channels are already composited over white; `.convert("RGB")` drops alpha, which
/// is what we keep); shufflePixels and randomCrop draw from the view's counter RNG
/// instead of numpy/torch global generators (AugLy's ShufflePixels reseeds numpy with
/// a fixed seed, so every image of a size got the same permutation); sizes that
/// would reach 0 are clamped to 1 where Pillow would raise.
public enum TransformOp: Int, CaseIterable, Sendable {
  case blur, brightness, aspectRatio, pixelization, rotation, contrast, saturation, jpeg, grayscale,
       hflip, opacity, overlayStripes, pad, resize, randomCrop, scale, sharpen, shufflePixels, skew

  /// Continuous range (AugLy Random* transforms) or grid end points; nil for value-less ops.
  public var range: (Double, Double)? {
    switch self {
    case .blur: return (0.1, 2.0)
    case .brightness: return (0.5, 2.0)
    case .aspectRatio: return (0.75, 2.0)
    case .pixelization: return (0.3, 1.0)
    case .rotation: return (90, 270)
    case .contrast, .saturation, .scale: return (0.5, 1.5)
    case .jpeg: return (40, 100)
    case .grayscale, .hflip: return nil
    case .opacity: return (0.2, 1.0)
    case .overlayStripes: return (0.05, 0.35)
    case .pad: return (0.01, 0.25)
    case .resize, .randomCrop: return (64, 512)
    case .sharpen: return (1.2, 2.0)
    case .shufflePixels: return (0.0, 0.35)
    case .skew: return (-1.0, 1.0)
    }
  }

  /// True for the AugLy `Random*` ops whose value is continuous.
  public var isContinuous: Bool { rawValue <= TransformOp.rotation.rawValue }

  /// Number of grid values.
  public static let gridSteps = 5

  /// `torch.linspace(a, b, 5)` in float32 (ATen: start + step * i for i < steps / 2,
  /// end - step * (steps - 1 - i) otherwise), as doubles.
  public static func grid(_ a: Double, _ b: Double, steps: Int = gridSteps) -> [Double] {
    let s = Float(a), e = Float(b)
    let step = (e - s) / Float(steps - 1)
    return (0..<steps).map { i in
      Double(i < steps / 2 ? s + step * Float(i) : e - step * Float(steps - i - 1))
    }
  }

  /// Draws this op's value: continuous a + (b - a) u, or a uniformly chosen grid value
  /// (int-truncated for jpeg / resize / randomCrop). 0 for value-less ops.
  public func drawValue(_ rng: inout CounterRNG) -> Double {
    guard let (a, b) = range else { return 0 }
    if isContinuous { return rng.uniform() * (b - a) + a }
    let v = TransformOp.grid(a, b)[rng.int(below: TransformOp.gridSteps)]
    switch self {
    case .jpeg, .resize, .randomCrop: return Double(Int(v))
    default: return v
    }
  }

  /// Applies the op with value `v`; `rng` supplies op-internal randomness (crop
  /// position, shuffled pixels).
  public func apply(_ img: RGBImage, value v: Double, rng: inout CounterRNG) -> RGBImage {
    switch self {
    case .blur: return img.gaussianBlur(radius: v)
    case .brightness: return img.brightness(v)
    case .aspectRatio: return img.changeAspectRatio(v)
    case .pixelization: return img.pixelization(v)
    case .rotation: return img.augLyRotate(degrees: v)
    case .contrast: return img.contrast(v)
    case .saturation: return img.saturation(v)
    case .jpeg: return img.jpegReencoded(quality: Int(v))
    case .grayscale: return img.grayscale()
    case .hflip: return img.hflip()
    case .opacity: return img.opacity(v)
    case .overlayStripes: return img.overlayStripes(lineWidth: v)
    case .pad: return img.augLyPad(v)
    case .resize: return img.resized(width: Int(v), height: Int(v), filter: .bicubic)
    case .randomCrop:
      let s = Int(v)
      let (pw, ph) = RGBImage.randomCropPaddedSize(width: img.width, height: img.height, size: s)
      var i = 0, j = 0
      if !(pw == s && ph == s) {
        i = rng.int(below: ph - s + 1)
        j = rng.int(below: pw - s + 1)
      }
      return img.randomCrop(size: s, top: i, left: j)
    case .scale: return img.augLyScale(v)
    case .sharpen: return img.sharpness(v)
    case .shufflePixels: return img.shufflePixels(fraction: v, rng: &rng)
    case .skew: return img.skew(v)
    }
  }
}

/// One application of T: the drawn ops (list order) and their values.
public struct TransformDraw: Sendable, Equatable {
  public var ops: [TransformOp]
  public var values: [Double]
}

/// The transform operator T: n ~ U{0, ..., numTransform}, n distinct ops drawn
/// uniformly, applied in list order with their drawn values.
public struct TransformOperator: Sendable {
  public var numTransform: Int
  public init(numTransform: Int = 2) {
    precondition(numTransform >= 0 && numTransform <= TransformOp.allCases.count, "numTransform out of range")
    self.numTransform = numTransform
  }

  /// Applies T to `img`, drawing everything from `rng`. Returns the image and what was drawn.
  public func apply(_ img: RGBImage, rng: inout CounterRNG) -> (RGBImage, TransformDraw) {
    let n = rng.int(below: numTransform + 1)
    // n distinct indices by a partial Fisher-Yates shuffle, then sorted (list order).
    var idx = Array(0..<TransformOp.allCases.count)
    for k in 0..<n {
      let r = k + rng.int(below: idx.count - k)
      idx.swapAt(k, r)
    }
    let ops = idx[0..<n].sorted().map { TransformOp(rawValue: $0)! }
    var out = img
    var values: [Double] = []
    for op in ops {
      let v = op.drawValue(&rng)
      values.append(v)
      out = op.apply(out, value: v, rng: &rng)
    }
    return (out, TransformDraw(ops: ops, values: values))
  }
}

extension RGBImage {
  /// AugLy `change_aspect_ratio`: w' = int(sqrt(r W H)), h' = int(W H / w'), bicubic.
  public func changeAspectRatio(_ r: Double) -> RGBImage {
    let area = Double(width * height)
    let nw = max(1, Int((r * area).squareRoot()))
    let nh = max(1, Int(area / Double(nw)))
    return resized(width: nw, height: nh, filter: .bicubic)
  }

  /// AugLy `pixelization`: bicubic resize to (int(W r), int(H r)), then back to (W, H).
  public func pixelization(_ r: Double) -> RGBImage {
    let sw = max(1, Int(Double(width) * r)), sh = max(1, Int(Double(height) * r))
    return resized(width: sw, height: sh, filter: .bicubic).resized(width: width, height: height, filter: .bicubic)
  }

  /// AugLy `rotate`: `rotate(d, expand=True)` (nearest, black fill), then the centred
  /// crop (int(cx - wr/2), int(cy - hr/2), int(cx + wr/2), int(cy + hr/2)) of the largest
  /// axis-aligned rectangle (wr, hr) inside the rotated W x H rectangle.
  public func augLyRotate(degrees: Double) -> RGBImage {
    let rot = rotatedExpand(degrees: degrees)
    let (wr, hr) = RGBImage.rotatedRectWithMaxArea(width, height, degrees)
    let cx = Double(rot.width) / 2, cy = Double(rot.height) / 2
    let l = Int(cx - wr / 2), t = Int(cy - hr / 2), r = Int(cx + wr / 2), b = Int(cy + hr / 2)
    return rot.croppedPadding(x: l, y: t, width: max(1, r - l), height: max(1, b - t))
  }

  static func rotatedRectWithMaxArea(_ w: Int, _ h: Int, _ angle: Double) -> (Double, Double) {
    let widthIsLonger = w >= h
    let (long, short) = widthIsLonger ? (Double(w), Double(h)) : (Double(h), Double(w))
    let sa = abs(sin(angle * Double.pi / 180)), ca = abs(cos(angle * Double.pi / 180))
    if short <= 2.0 * sa * ca * long || abs(sa - ca) < 1e-10 {
      let x = 0.5 * short
      return widthIsLonger ? (x / sa, x / ca) : (x / ca, x / sa)
    }
    let cos2a = ca * ca - sa * sa
    return ((Double(w) * ca - Double(h) * sa) / cos2a, (Double(h) * ca - Double(w) * sa) / cos2a)
  }

  /// AugLy `opacity(level)` brought back to RGB: m = uint8(255 level) (truncated);
  /// out = DIV255(s m + 255 (255 - m)) with DIV255(v) = ((v + 128) >> 8 + v + 128) >> 8,
  /// i.e. the image composited over white as `Image.composite` does, alpha dropped.
  public func opacity(_ level: Double) -> RGBImage {
    let m = Int(UInt8(clamping: Int(255.0 * level)))
    var out = self
    out.pixels.withUnsafeMutableBufferPointer { p in
      for i in 0..<p.count {
        let t = 255 * (255 - m) + Int(p[i]) * m + 128
        p[i] = UInt8(truncatingIfNeeded: ((t >> 8) + t) >> 8)
      }
    }
    return out
  }

  /// AugLy `overlay_stripes(line_width)` with the defaults (white, angle 0, density 0.5,
  /// solid, opaque): row y is white when (cos(2 pi y' / D) + 1) / 2 > (cos(pi lw) + 1) / 2,
  /// y' = y - H/2, D = 0.5 min(W, H).
  public func overlayStripes(lineWidth lw: Double) -> RGBImage {
    let distance = (1 - 0.5) * Double(min(width, height))
    let yPeriod = cos(0.0) / distance
    let thr = (cos(Double.pi * lw) + 1) / 2
    var out = self
    let w3 = width * 3
    out.pixels.withUnsafeMutableBufferPointer { p in
      for y in 0..<height {
        let yc = Double(y) - Double(height) / 2
        let soft = (cos(2 * Double.pi * yPeriod * yc) + 1) / 2
        if soft > thr { (p.baseAddress! + y * w3).update(repeating: 255, count: w3) }
      }
    }
    return out
  }

  /// AugLy `pad(w_factor = h_factor = f)`: black border of int(f W) left and right,
  /// int(f H) top and bottom.
  public func augLyPad(_ f: Double) -> RGBImage {
    let l = Int(f * Double(width)), t = Int(f * Double(height))
    return placed(onCanvasWidth: width + 2 * l, height: height + 2 * t, left: l, top: t)
  }

  /// Size after torchvision `RandomCrop(s, pad_if_needed=True)` padding: a side shorter
  /// than s gets (s - side) black pixels on both ends.
  public static func randomCropPaddedSize(width w: Int, height h: Int, size s: Int) -> (Int, Int) {
    (w < s ? w + 2 * (s - w) : w, h < s ? h + 2 * (s - h) : h)
  }

  /// torchvision `RandomCrop(s, pad_if_needed=True)` with the crop's top-left (top, left)
  /// in the padded image.
  public func randomCrop(size s: Int, top: Int, left: Int) -> RGBImage {
    let padL = width < s ? s - width : 0, padT = height < s ? s - height : 0
    return croppedPadding(x: left - padL, y: top - padT, width: s, height: s)
  }

  /// AugLy `scale(f)`: resize to (int(W f), int(H f)), LANCZOS when f < 1, else BILINEAR.
  public func augLyScale(_ f: Double) -> RGBImage {
    let sw = max(1, Int(Double(width) * f)), sh = max(1, Int(Double(height) * f))
    return resized(width: sw, height: sh, filter: f < 1 ? .lanczos : .bilinear)
  }

  /// AugLy `shuffle_pixels(f)`: k = int(f N) distinct pixels chosen uniformly, their
  /// colours permuted uniformly among those positions; f = 0 is the identity.
  public func shufflePixels(fraction f: Double, rng: inout CounterRNG) -> RGBImage {
    let n = count
    let k = Int(f * Double(n))
    if k <= 1 { return self }
    var idx = [Int32](repeating: 0, count: n)
    for i in 0..<n { idx[i] = Int32(i) }
    for i in 0..<k { idx.swapAt(i, i + rng.int(below: n - i)) }
    var perm = Array(idx[0..<k])
    for i in stride(from: k - 1, to: 0, by: -1) { perm.swapAt(i, rng.int(below: i + 1)) }
    var out = self
    pixels.withUnsafeBufferPointer { s in
      out.pixels.withUnsafeMutableBufferPointer { o in
        for i in 0..<k {
          let d = Int(idx[i]) * 3, src = Int(perm[i]) * 3
          o[d] = s[src]; o[d + 1] = s[src + 1]; o[d + 2] = s[src + 2]
        }
      }
    }
    return out
  }

  /// AugLy `skew(k, axis=0)`: affine (1, k, -k H / 2, 0, 1, 0), bilinear, black fill.
  public func skew(_ k: Double) -> RGBImage {
    affineBilinear(width: width, height: height, [1, k, -k * Double(height) / 2, 0, 1, 0])
  }

  /// AugLy `encoding_quality(q)`: JPEG encode (4:2:0) and decode with libvips; the
  /// image is returned unchanged if libvips fails.
  public func jpegReencoded(quality q: Int) -> RGBImage {
    guard let d = try? ImageCodec.encode(self, format: .jpeg, quality: q),
          let img = try? ImageCodec.decode(d, name: "jpeg re-encoding") else { return self }
    return img
  }
}
