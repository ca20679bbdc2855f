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
