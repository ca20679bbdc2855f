import Foundation
import Randomness

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
/// See docs/synthetic-d3.md.
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

/// Record-level content: palette, scene type, caption.
struct Theme {
  var palette: [(Float, Float, Float)]
  var scene: Int  // 0 landscape, 1 object, 2 pattern
  var caption: String

  init(seed: UInt64, index: Int) {
    var rng = CounterRNG(seed: seed, epoch: SyntheticD3.epochTag, record: index, stream: SyntheticD3.themeStream)
    let hue = rng.uniform()
    palette = (0..<5).map { i in
      let hh = (hue + rng.uniform(-0.12, 0.12) + (i == 4 ? 0.5 : 0)).truncatingRemainder(dividingBy: 1) + 1
      return Theme.hsv(hh.truncatingRemainder(dividingBy: 1), rng.uniform(0.15, 0.85), rng.uniform(0.25, 0.95))
    }
    scene = rng.int(below: 3)
    let colours = ["red", "blue", "green", "golden", "grey", "white", "dark", "orange", "purple", "brown"]
    let things = ["house", "car", "dog", "vase", "chair", "mountain", "boat", "tree", "lamp", "bicycle", "cake", "sofa"]
    let places = ["on a beach", "in a kitchen", "near a lake", "in the city", "in a garden", "on a white background",
                  "at sunset", "in the snow", "in a forest", "on a table"]
    let styles = ["photo of", "picture of", "close-up of", "stock image of", "vintage photo of"]
    caption = "\(styles[rng.int(below: styles.count)]) a \(colours[rng.int(below: colours.count)]) "
      + "\(things[rng.int(below: things.count)]) \(places[rng.int(below: places.count)])"
  }

  static func hsv(_ h: Double, _ s: Double, _ v: Double) -> (Float, Float, Float) {
    let i = Int(h * 6) % 6, f = h * 6 - floor(h * 6)
    let p = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s)
    let (r, g, b): (Double, Double, Double)
    switch i {
    case 0: (r, g, b) = (v, t, p)
    case 1: (r, g, b) = (q, v, p)
    case 2: (r, g, b) = (p, v, t)
    case 3: (r, g, b) = (p, q, v)
    case 4: (r, g, b) = (t, p, v)
    default: (r, g, b) = (v, p, q)
    }
    return (Float(r), Float(g), Float(b))
  }
}

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

  /// The terms of a fixed field: (2 pi / period, cos theta, sin theta, phase) of `Coarse.fieldTerms`
  /// cosines, periods uniform in `Coarse.fieldPeriods` (fractions of the height), from `seed` alone.
  static func fieldTerms(seed: UInt64) -> [(Double, Double, Double, Double)] {
    var rng = CounterRNG(seed: seed, epoch: 0, record: 0, stream: 0)
    let (p0, p1) = SyntheticD3.Coarse.fieldPeriods
    return (0..<SyntheticD3.Coarse.fieldTerms).map { _ in
      let period = rng.uniform(p0, p1), theta = rng.uniform(0, 2 * Double.pi), phase = rng.uniform(0, 2 * Double.pi)
      return (2 * Double.pi / period, cos(theta), sin(theta), phase)
    }
  }

  /// The fixed field at height-normalised (u, v): sum of the terms' cosines over sqrt(terms / 2),
  /// i.e. zero mean and unit variance over the image.
  static func field(_ terms: [(Double, Double, Double, Double)], _ u: Double, _ v: Double) -> Double {
    var s = 0.0
    for (w, c, sn, ph) in terms { s += cos(w * (u * c + v * sn) + ph) }
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
