import Foundation
import Randomness

/// The AugLy / Pillow operations behind `TransformOp` that Pillow has no single call for
/// (`RGBImage+PILOps.swift` has the Pillow-exact ones), over 8-bit RGB.
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
