import Foundation
import Randomness
import Imaging

/// One encoded synthetic image.
public struct SyntheticImage: Sendable {
  public var data: Data
  /// Extension of the encoding ("jpg", "png", "bmp", "gif", "tiff").
  public var fileExtension: String
  public var width: Int
  public var height: Int
}

/// One synthetic D3 record: a "real" photo, four generated images of the same caption.
public struct SyntheticRecord: Sendable {
  public var caption: String
  public var real: SyntheticImage
  /// gen_0 ... gen_3.
  public var gens: [SyntheticImage]
}

/// Synthetic D3 for machines without the dataset. Pure function of (seed, index).
///
/// Content (shared by all five images of a record, like a caption): a palette and a
/// scene type (landscape, object, pattern). Every image renders its own layout of it:
/// a sky/ground or plain background, multi-octave value noise with a 1/f amplitude
/// spectrum (natural-image statistics), 3-8 soft-edged ellipses and rectangles with
/// noise and grating textures, and smooth illumination.
///
/// **Real** ("camera", LAION-like): rendered with a 1/f spectrum down to 2-px scales,
/// optical blur (sigma 0.6-1.1 px), signal-dependent sensor noise (Poisson-Gaussian,
/// sigma^2 = a x + b per channel, a in [2e-4, 2e-3]) with chroma noise correlated over
/// 2 px (demosaicing), vignetting; sizes with a shorter side of 200-500 px and aspect
/// ratios 1, 4:3, 3:2, 16:9, 3:4, 2:3; saved as JPEG at quality 70-95 (88%), PNG (8%),
/// GIF, BMP or TIFF (4%).
///
/// **Generated**: the same renderer with a steeper spectrum (amplitude ~ f^-1.25: less
/// fine detail) and **no sensor noise**, at 256x256, 512x512, 640x480 or 640x360, saved
/// as JPEG q 75-95 (55%), PNG (25%), BMP (7%), TIFF (7%), GIF (6%); plus one fingerprint
/// per generator, of the kinds reported for diffusion models. Each has a fine (pixel-level)
/// part and a coarse, image-independent part (a fixed pattern in height-normalised coordinates
/// centred on the image, u = (x - W/2)/S, v = (y - H/2)/S with S the shorter side (the height of
/// every D3 size), so it lands at the same place of
/// the 248-resize/224-centre-crop view for every generated size). Amplitudes at strength 1,
/// in [0, 1] intensity units (x 255 for grey levels):
/// - gen_0 ("SD 1.4-like", latent VAE decoder): a fixed zero-mean 8x8-pixel tile added
///   over the image (amplitude 2.2/255, modulated by local brightness), the periodic
///   up-sampling grid of a decoder with 8x spatial expansion; and the seams of tiled
///   decoding: bright lines on the boundaries of 8 tiles per image height, Gaussian
///   profile of sigma H/124, peak 0.015;
/// - gen_1 ("SD 2.1-like"): spectral peaks, two faint fixed-frequency sinusoids
///   (periods 6 px diagonal and 11 px horizontal, amplitude 1.8/255 each, random phase)
///   and an extra 1-px blur of fine detail; and a fixed mid-frequency luma field (24
///   cosines of periods H/16 to H/4, fixed phases; standard deviation 0.03), the coarse
///   part of the generator's average residual;
/// - gen_2 ("SDXL-like"): colour statistics, saturation x1.04, an S-shaped tone curve
///   (contrast 0.06), a warm cast (+0.8% red, -0.8% blue); and an uneven white balance: a
///   fixed mid-frequency chroma field (another 24 cosines, periods H/16 to H/4; standard
///   deviation 0.02, + on red, - on blue);
/// - gen_3 ("DeepFloyd IF-like", pixel cascade): rendered at a quarter of the size and
///   up-sampled x4 bilinearly (4-px interpolation periodicity, soft detail), then a
///   spatially white, signal-independent luma noise (sigma 1.2/255) like a
///   super-resolution stage's hallucinated texture; and block shading of the coarse
///   stage, 0.005 (cos 2 pi 8u + cos 2 pi 8v) / 2 (period S/8).
/// The fine parts are a few grey levels, the coarse parts one to five at strength 1: a
/// single pixel does not tell the class (a pixel's value varies with the random palette
/// far more), while a ViT's patches, which see the same pattern at the same place in every
/// image, do. At `strength` 4 a ViT of the smoke shape trained with cross-entropy separates
/// every generator and a one-pixel classifier stays far lower (docs/learnability.md).
/// See docs/synthetic-d3.md. This file: the record API, encodings and images;
/// `SyntheticD3+Themes.swift` the record content, `SyntheticD3+Canvas.swift` the renderer
/// and camera, `SyntheticD3+Fingerprints.swift` the generators' fingerprints.
public enum SyntheticD3 {
  /// D3's generated sizes (width, height).
  public static let generatedSizes: [(Int, Int)] = [(256, 256), (512, 512), (640, 480), (640, 360)]

  /// Streams of the counter RNG (epoch field = `epochTag`, so they never meet view streams).
  static let epochTag = 0x0D3_5EED
  static let themeStream = 100, realStream = 101, layoutStream = 102, genStream = 110

  /// The record `index` of the synthetic dataset `seed`.
  ///
  /// `strength` scales every real-vs-generated cue (1: the documented, subtle levels):
  /// the sensor-noise sigma of real images, the gen_0 tile and seam, gen_1 sinusoid and
  /// field amplitudes, the gen_2 field and colour grade (saturation 1 + 0.04 s, contrast
  /// 0.06 s, warm cast 0.008 s), the gen_3 noise sigma and block shading. Larger values
  /// make a set that a small ViT separates within minutes of training (`make run` uses 4).
  ///
  /// `scene` says what the five images of a record share: `.theme` (each image lays out its
  /// own scene of the record's palette and scene type, as D3's images share only a caption) or
  /// `.layout` (the four generated images re-render the real image's scene: same background,
  /// value noise, shapes and illumination, at the real image's size, with the generated
  /// spectrum and each generator's fingerprint; like image-to-image generation). With `.layout`
  /// nothing but the camera and generator traces tells a real image from its generated twins.
  public static func record(seed: UInt64, index: Int, strength: Double = 1, scene: SceneSharing = .theme)
    -> SyntheticRecord
  {
    let theme = Theme(seed: seed, index: index)
    var rng = CounterRNG(seed: seed, epoch: epochTag, record: index, stream: realStream)
    let layout = scene == .layout ? CounterRNG(seed: seed, epoch: epochTag, record: index, stream: layoutStream) : nil
    let real = realImage(theme: theme, rng: &rng, strength: strength, layout: layout)
    let realEnc = encodeReal(real, rng: &rng)
    var gens: [SyntheticImage] = []
    for k in 0..<4 {
      var g = CounterRNG(seed: seed, epoch: epochTag, record: index, stream: genStream + k)
      let twin = layout.map { (rng: $0, width: real.width, height: real.height) }
      let img = generatedImage(generator: k, theme: theme, rng: &g, strength: strength, twin: twin)
      gens.append(encodeGenerated(img, rng: &g))
    }
    return SyntheticRecord(caption: theme.caption, real: realEnc, gens: gens)
  }

  /// What the images of one synthetic record share (see `record(seed:index:strength:scene:)`).
  public enum SceneSharing: String, Sendable, CaseIterable {
    case theme, layout
  }

  /// The unencoded real image of a record (for tests and previews).
  public static func realImage(seed: UInt64, index: Int) -> RGBImage {
    var rng = CounterRNG(seed: seed, epoch: epochTag, record: index, stream: realStream)
    return realImage(theme: Theme(seed: seed, index: index), rng: &rng)
  }

  /// The unencoded image of generator k (0..<4) of a record.
  /// `fingerprint: false` gives the same image without the generator's fingerprint
  /// (same layout, size and noise), for tests of the fingerprints.
  public static func generatedImage(generator k: Int, seed: UInt64, index: Int, fingerprint: Bool = true) -> RGBImage {
    var rng = CounterRNG(seed: seed, epoch: epochTag, record: index, stream: genStream + k)
    return generatedImage(generator: k, theme: Theme(seed: seed, index: index), rng: &rng, fingerprint: fingerprint)
  }

  // MARK: Encoding choices

  static func encodeReal(_ img: RGBImage, rng: inout CounterRNG) -> SyntheticImage {
    let u = rng.uniform()
    let fmt: ImageFormat = u < 0.88 ? .jpeg : u < 0.96 ? .png : u < 0.975 ? .gif : u < 0.99 ? .bmp : .tiff
    return encode(img, fmt, quality: 70 + rng.int(below: 26))
  }

  static func encodeGenerated(_ img: RGBImage, rng: inout CounterRNG) -> SyntheticImage {
    let u = rng.uniform()
    let fmt: ImageFormat = u < 0.55 ? .jpeg : u < 0.80 ? .png : u < 0.87 ? .bmp : u < 0.94 ? .tiff : .gif
    return encode(img, fmt, quality: 75 + rng.int(below: 21))
  }

  static func encode(_ img: RGBImage, _ fmt: ImageFormat, quality: Int) -> SyntheticImage {
    // Encoding an in-memory RGB image cannot fail short of memory exhaustion; fall back to PNG.
    let data = (try? ImageCodec.encode(img, format: fmt, quality: quality))
      ?? (try? ImageCodec.encode(img, format: .png, quality: 0)) ?? Data()
    let ext = data.isEmpty ? "png" : fmt.fileExtension
    return SyntheticImage(data: data, fileExtension: ext, width: img.width, height: img.height)
  }

  // MARK: Images

  /// `layout`: the scene's random stream when the record's images share one layout (the
  /// scene is then drawn from it, the camera's traces still from `rng`).
  static func realImage(theme: Theme, rng: inout CounterRNG, strength: Double = 1, layout: CounterRNG? = nil) -> RGBImage {
    let aspects: [Double] = [1, 4.0 / 3, 3.0 / 2, 16.0 / 9, 3.0 / 4, 2.0 / 3]
    let short = 200 + rng.int(below: 301)
    let a = aspects[rng.int(below: aspects.count)]
    let (w, h) = a >= 1 ? (min(800, Int(Double(short) * a)), short) : (short, min(800, Int(Double(short) / a)))
    var c = Canvas(width: w, height: h)
    if var scene = layout {
      c.render(theme: theme, spectrumExponent: 1.0, rng: &scene)
    } else {
      c.render(theme: theme, spectrumExponent: 1.0, rng: &rng)
    }
    c.blur(sigma: rng.uniform(0.6, 1.1))
    c.vignette(strength: rng.uniform(0.05, 0.25))
    let s2 = strength * strength  // sigma scales with strength, variance with its square
    c.sensorNoise(a: s2 * rng.uniform(2e-4, 2e-3), b: s2 * rng.uniform(1e-6, 2e-5), rng: &rng)
    return c.image()
  }

  /// `twin`: the real image's scene stream and size, when the generated image re-renders it.
  static func generatedImage(generator k: Int, theme: Theme, rng: inout CounterRNG, fingerprint: Bool = true,
                             strength: Double = 1, twin: (rng: CounterRNG, width: Int, height: Int)? = nil) -> RGBImage {
    let drawn = generatedSizes[rng.int(below: generatedSizes.count)]
    let (w, h) = twin.map { ($0.width, $0.height) } ?? drawn
    let f: Double = fingerprint ? strength : 0
    if let twin {
      // The real image's scene at its size; gen_3's cascade works on its 4x box average.
      var scene = twin.rng
      var c = Canvas(width: w, height: h)
      c.render(theme: theme, spectrumExponent: 1.25, rng: &scene)
      if k == 3 && fingerprint { c = c.cascade4(detail: 0.5) }
      return fingerprinted(c, generator: k, f: f, fingerprint: fingerprint, rng: &rng)
    }
    if k == 3 {
      var c: Canvas
      if fingerprint {
        var low = Canvas(width: w / 4, height: h / 4)
        low.render(theme: theme, spectrumExponent: 1.25, scale: 0.25, rng: &rng)
        c = low.upsampled4()
      } else {
        c = Canvas(width: w, height: h)
        c.render(theme: theme, spectrumExponent: 1.25, rng: &rng)
      }
      return fingerprinted(c, generator: k, f: f, fingerprint: fingerprint, rng: &rng)
    }
    var c = Canvas(width: w, height: h)
    c.render(theme: theme, spectrumExponent: 1.25, rng: &rng)
    return fingerprinted(c, generator: k, f: f, fingerprint: fingerprint, rng: &rng)
  }
}
