import Foundation
import Imaging
import Randomness

/// Geometry and normalisation of the eight CoDE views (the CoDE paper; the official code's
/// `--last-crop --crop-pct 0.9` pipeline).
public struct ViewSpec: Sendable, Equatable {
  /// Side S of the base and global views (multiple of 16).
  public var imageSize: Int = 224
  /// Side of the local views (96 as the paper, 224 as the official code).
  public var localSize: Int = 96
  /// n of T is drawn from {0, ..., numTransform}.
  public var numTransform: Int = 2
  /// RandomResizedCrop area fractions of the global and local views.
  public var globalScale: (Double, Double) = (0.4, 1.0)
  public var localScale: (Double, Double) = (0.05, 0.4)
  /// RandomResizedCrop aspect-ratio range (log-uniform).
  public var ratio: (Double, Double) = (3.0 / 4.0, 4.0 / 3.0)
  /// ImageNet normalisation.
  public var mean: (Float, Float, Float) = (0.485, 0.456, 0.406)
  public var std: (Float, Float, Float) = (0.229, 0.224, 0.225)
  /// Final step of every view: resize the shorter side to baseResize (bicubic) and
  /// centre-crop imageSize; local views use floor(localSize / cropPct) and localSize.
  public var baseResize: Int = 248
  public var cropPct: Double = 0.9

  public init() {}

  public init(imageSize: Int = 224, localSize: Int = 96, numTransform: Int = 2) {
    self.imageSize = imageSize
    self.localSize = localSize
    self.numTransform = numTransform
    self.baseResize = Int(floor(Double(imageSize) / cropPct))
  }

  /// Resize target (shorter side) before the centre crop of a view of side `size`.
  public func resizeFor(size: Int) -> Int {
    size == imageSize ? baseResize : Int(floor(Double(size) / cropPct))
  }

  public static func == (a: ViewSpec, b: ViewSpec) -> Bool {
    a.imageSize == b.imageSize && a.localSize == b.localSize && a.numTransform == b.numTransform
      && a.globalScale == b.globalScale && a.localScale == b.localScale && a.ratio == b.ratio
      && a.mean == b.mean && a.std == b.std && a.baseResize == b.baseResize && a.cropPct == b.cropPct
  }
}

/// The eight views in batch order. Randomness of view v is `CounterRNG(stream: v.rawValue)`.
public enum CoDEView: Int, CaseIterable, Sendable {
  case real, fake, augReal, augFake, globalReal, globalFake, localReal, localFake

  public var isFake: Bool { rawValue % 2 == 1 }
  public var isLocal: Bool { self == .localReal || self == .localFake }
  public var isGlobal: Bool { self == .globalReal || self == .globalFake }
  public var hasTransform: Bool { rawValue >= 2 }
}

/// torchvision `RandomResizedCrop.get_params` with the view's counter RNG: up to ten
/// attempts of area fraction s ~ U[scale), aspect r = exp(U[log ratio)),
/// w = round(sqrt(A s r)), h = round(sqrt(A s / r)) (half to even), accepted when
/// 0 < w <= W and 0 < h <= H, then top ~ U{0..H-h}, left ~ U{0..W-w}; otherwise the
/// centre crop of the whole image clamped to the ratio range.
public func randomResizedCropRect(width W: Int, height H: Int, scale: (Double, Double), ratio: (Double, Double),
                                  rng: inout CounterRNG) -> PixelRect {
  let area = Double(W * H)
  let lr0 = log(ratio.0), lr1 = log(ratio.1)
  for _ in 0..<10 {
    let target = area * rng.uniform(scale.0, scale.1)
    let ar = exp(rng.uniform(lr0, lr1))
    let w = Int((target * ar).squareRoot().rounded(.toNearestOrEven))
    let h = Int((target / ar).squareRoot().rounded(.toNearestOrEven))
    if w > 0 && w <= W && h > 0 && h <= H {
      let i = rng.int(below: H - h + 1)
      let j = rng.int(below: W - w + 1)
      return PixelRect(x: j, y: i, width: w, height: h)
    }
  }
  let inRatio = Double(W) / Double(H)
  var w = W, h = H
  if inRatio < min(ratio.0, ratio.1) {
    h = Int((Double(w) / min(ratio.0, ratio.1)).rounded(.toNearestOrEven))
  } else if inRatio > max(ratio.0, ratio.1) {
    w = Int((Double(h) * max(ratio.0, ratio.1)).rounded(.toNearestOrEven))
  }
  return PixelRect(x: (W - w) / 2, y: (H - h) / 2, width: w, height: h)
}

/// The generator k in 0..<4 drawn for a record at an epoch (stream `CounterRNG.generatorStream`).
public func drawGenerator(seed: UInt64, epoch: Int, record: Int) -> Int {
  var rng = CounterRNG(seed: seed, epoch: epoch, record: record, stream: CounterRNG.generatorStream)
  return rng.int(below: 4)
}

/// Makes the eight CoDE views of one record (the CoDE paper):
///
/// - real, fake: base view = resize shorter side to floor(S / 0.9) (bicubic), centre crop S;
/// - augReal, augFake: T, then the base resize and crop;
/// - globalReal/Fake: RandomResizedCrop(S, globalScale, ratio) (bicubic), T, resize to
///   floor(S / 0.9) and centre crop S;
/// - localReal/Fake: the same with localScale and S = localSize.
///
/// This is the official code's `--last-crop --crop-pct 0.9` pipeline. Pixels become
/// (v / 255 - mean_c) / std_c in float32 (torchvision ToTensor + Normalize, bit-exact).
/// View v's randomness (crop, n, ops, values, op internals) comes from
/// `CounterRNG(seed, epoch, record, stream: v)`, so the views of a record are a pure
/// function of (images, seed, epoch, record), whatever thread makes them.
public struct CoDEViewMaker: Sendable {
  public let spec: ViewSpec
  let transform: TransformOperator
  /// Normalisation tables: lut[c * 256 + v] = (Float(v) / 255 - mean[c]) / std[c].
  let lut: [Float]

  public init(spec: ViewSpec = ViewSpec()) {
    self.spec = spec
    transform = TransformOperator(numTransform: spec.numTransform)
    let m = [spec.mean.0, spec.mean.1, spec.mean.2], s = [spec.std.0, spec.std.1, spec.std.2]
    var t = [Float](repeating: 0, count: 768)
    for c in 0..<3 { for v in 0..<256 { t[c * 256 + v] = (Float(v) / 255 - m[c]) / s[c] } }
    lut = t
  }

  /// Writes the eight views of a record (real image, the drawn generator's fake image) into
  /// slot `slot` of `batch` (`ViewBatch.view(_:slot:)`), and sets the slot's two
  /// `unchangedAugmented` entries. Returns, for aug_real and aug_fake, whether the view equals
  /// its base view (real, fake) bit for bit: always when T drew no operation, and when the drawn
  /// operations happen to leave the 8-bit pixels unchanged (the normalisation maps equal pixels
  /// to equal floats and distinct ones to distinct floats).
  @discardableResult
  public func make(real: RGBImage, fake: RGBImage, seed: UInt64, epoch: Int, record: Int,
                   into batch: ViewBatch, slot: Int) -> (augRealUnchanged: Bool, augFakeUnchanged: Bool) {
    precondition(slot >= 0 && slot < batch.records, "slot \(slot) outside a batch of \(batch.records)")
    precondition(batch.imageSize == spec.imageSize && batch.localSize == spec.localSize,
                 "batch of \(batch.imageSize)/\(batch.localSize) for views of \(spec.imageSize)/\(spec.localSize)")
    var baseReal: RGBImage?, baseFake: RGBImage?
    var unchanged = (false, false)
    func same(_ a: RGBImage, _ b: RGBImage?) -> Bool {
      guard let b else { return false }
      return a.width == b.width && a.height == b.height && a.pixels == b.pixels
    }
    for v in CoDEView.allCases {
      let (img, identity) = drawView(v, image: v.isFake ? fake : real, seed: seed, epoch: epoch, record: record)
      normalise(img, into: batch.view(v, slot: slot))
      switch v {
      case .real: baseReal = img
      case .fake: baseFake = img
      case .augReal: unchanged.0 = identity || same(img, baseReal)
      case .augFake: unchanged.1 = identity || same(img, baseFake)
      default: break
      }
    }
    batch.setUnchanged(slot, augReal: unchanged.0, augFake: unchanged.1)
    return unchanged
  }

  /// The 8-bit RGB pixels of one view before normalisation (S x S), for tests and previews.
  public func viewImage(_ v: CoDEView, image: RGBImage, seed: UInt64, epoch: Int, record: Int) -> RGBImage {
    drawView(v, image: image, seed: seed, epoch: epoch, record: record).image
  }

  /// One view's pixels, and whether it went through T with no operation drawn (always false
  /// for the real and fake views, which have no T).
  func drawView(_ v: CoDEView, image: RGBImage, seed: UInt64, epoch: Int, record: Int) -> (image: RGBImage, identity: Bool) {
    var rng = CounterRNG(seed: seed, epoch: epoch, record: record, stream: v.rawValue)
    let size = v.isLocal ? spec.localSize : spec.imageSize
    var img = image
    if v.isGlobal || v.isLocal {
      let rect = randomResizedCropRect(width: img.width, height: img.height,
                                       scale: v.isLocal ? spec.localScale : spec.globalScale,
                                       ratio: spec.ratio, rng: &rng)
      img = img.resampled(width: size, height: size, filter: .bicubic, source: rect)
    }
    var identity = false
    if v.hasTransform {
      let (out, draw) = transform.apply(img, rng: &rng)
      img = out
      identity = draw.ops.isEmpty
    }
    return (CoDEViewMaker.resizeCenterCrop(img, shorter: spec.resizeFor(size: size), crop: size), identity)
  }

  /// The final step of every view: `RGBImage.resizedCenterCropped(shorter:crop:)`
  /// (torchvision Resize(shorter), bicubic, then CenterCrop(crop)).
  public static func resizeCenterCrop(_ img: RGBImage, shorter: Int, crop: Int) -> RGBImage {
    img.resizedCenterCropped(shorter: shorter, crop: crop)
  }

  /// Planar [3, H, W] float32 normalised pixels.
  public func normalise(_ img: RGBImage, into dst: UnsafeMutablePointer<Float>) {
    let n = img.count
    lut.withUnsafeBufferPointer { l in
      img.pixels.withUnsafeBufferPointer { p in
        for c in 0..<3 {
          let lc = l.baseAddress! + c * 256, d = dst + c * n
          for i in 0..<n { d[i] = lc[Int(p[3 * i + c])] }
        }
      }
    }
  }
}
