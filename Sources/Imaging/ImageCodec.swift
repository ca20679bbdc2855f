import CVips
import Foundation

/// Encodings of D3 images (and WebP, common in LAION).
public enum ImageFormat: String, Sendable, CaseIterable {
  case jpeg, png, bmp, gif, tiff, webp

  /// File extension used in shards and folders.
  public var fileExtension: String {
    switch self {
    case .jpeg: return "jpg"
    case .png: return "png"
    case .bmp: return "bmp"
    case .gif: return "gif"
    case .tiff: return "tiff"
    case .webp: return "webp"
    }
  }

  /// The format for a file extension (case-insensitive; jpg/jpeg, tif/tiff), or nil.
  public init?(fileExtension ext: String) {
    switch ext.lowercased() {
    case "jpg", "jpeg": self = .jpeg
    case "png": self = .png
    case "bmp": self = .bmp
    case "gif": self = .gif
    case "tif", "tiff": self = .tiff
    case "webp": self = .webp
    default: return nil
    }
  }
}

/// What decoding accepts (one policy for `shards check`, training, embed, detect and eval).
///
/// - Damage is an error for every format: libvips' `fail_on` (see `cde_vips_load_buffer`
///   in Sources/CVips/shim.h) turns a truncated or corrupt stream into a decode failure
///   instead of a warning and grey or black filler, as Pillow refuses such files
///   ("image file is truncated", "broken data stream").
/// - `maxPixels` bounds width x height, read from the image header before any pixel is
///   decoded (a decompression bomb: a 1 MB PNG can claim 20000x20000 = 400 M pixels,
///   1.2 GB as RGB). The default is Pillow's `Image.MAX_IMAGE_PIXELS`,
///   int(1024 * 1024 * 1024 // 4 // 3) = 89,478,485.
public struct DecodePolicy: Sendable, Equatable {
  public static let pillowMaxPixels = 89_478_485
  public var maxPixels: Int
  public init(maxPixels: Int = DecodePolicy.pillowMaxPixels) { self.maxPixels = maxPixels }
}

/// Image decoding and encoding with libvips.
///
/// Decoding accepts any encoding libvips recognises from the bytes (JPEG, PNG, GIF,
/// TIFF, WebP natively, BMP through libvips' ImageMagick loader) and returns 8-bit
/// RGB the way `PIL.Image.open(f).convert("RGB")` does for D3's images:
/// grey is replicated to three channels, palette images are expanded, 16-bit
/// samples are brought to 8 bits, CMYK is converted to sRGB, and an alpha
/// channel is dropped (not composited: PIL's RGBA->RGB conversion discards alpha).
/// GIF and multi-page TIFF give their first frame. No EXIF auto-rotation (as PIL).
///
/// Thread-safe: libvips is initialised once (`cde_vips_init`) with its operation
/// cache disabled and its own thread pool at 1 thread, since the loader already
/// decodes one image per thread.
public enum ImageCodec {
  /// One-time libvips initialisation (Swift globals are initialised once, thread-safely).
  static let initialised: Bool = {
    if cde_vips_init("cde") != 0 { return false }
    vips_cache_set_max(0)
    vips_cache_set_max_mem(0)
    vips_concurrency_set(1)
    return true
  }()

  /// Initialises libvips now, on the calling thread, and says whether it started. libvips
  /// sets environment variables while it starts (`g_setenv`), which races with any other
  /// thread reading the environment (a crash in `ProcessInfo.environment` at training start):
  /// call this before starting threads that decode.
  @discardableResult
  public static func prepare() -> Bool { initialised }

  static func ensureInit(_ name: String) throws {
    if !initialised { throw ImagingError(.libvips, "\(name): cannot initialise libvips") }
  }

  static func vipsMessage() -> String {
    let msg = String(cString: vips_error_buffer())
    vips_error_clear()
    let line = msg.split(whereSeparator: { $0 == "\n" }).first.map(String.init) ?? "unknown libvips error"
    return line
  }

  private static let policyLock = NSLock()
  nonisolated(unsafe) private static var sharedPolicy = DecodePolicy()

  /// The process-wide decoding policy, used when `decode` is given none. Commands set it
  /// once from their options (`--max-image-pixels`, `data.max_image_pixels`).
  public static var policy: DecodePolicy {
    get { policyLock.lock(); defer { policyLock.unlock() }; return sharedPolicy }
    set { policyLock.lock(); sharedPolicy = newValue; policyLock.unlock() }
  }

  /// Decodes encoded bytes to RGB. Errors name `name` (a file or member name).
  /// Damaged data and images over `policy.maxPixels` are errors (see `DecodePolicy`).
  public static func decode(_ data: Data, name: String, policy: DecodePolicy? = nil) throws -> RGBImage {
    try ensureInit(name)
    if data.isEmpty { throw ImagingError(.decode(name: name), "\(name): empty image file") }
    let limit = (policy ?? ImageCodec.policy).maxPixels
    // vips_image_new_from_buffer does not copy the bytes: the whole pipeline runs
    // inside one withUnsafeBytes, and the image is written to memory before it ends.
    return try data.withUnsafeBytes { raw -> RGBImage in
      guard var img = cde_vips_load_buffer(raw.baseAddress, raw.count) else {
        throw ImagingError(.decode(name: name), "\(name): cannot decode image (\(vipsMessage()))")
      }
      defer { g_object_unref(img) }
      // Header only so far: refuse a decompression bomb before decoding any pixel.
      let pixels = Int64(vips_image_get_width(img)) * Int64(vips_image_get_height(img))
      if pixels > Int64(limit) {
        throw ImagingError(.tooManyPixels(name: name, pixels: Int(pixels), limit: Int(limit)), "\(name): image of \(vips_image_get_width(img))x\(vips_image_get_height(img)) = \(pixels) pixels exceeds the limit of \(limit) (max_image_pixels; possible decompression bomb)")
      }
      func step(_ f: (UnsafeMutablePointer<VipsImage>, UnsafeMutablePointer<UnsafeMutablePointer<VipsImage>?>) -> Int32) throws {
        var out: UnsafeMutablePointer<VipsImage>? = nil
        if f(img, &out) != 0 || out == nil {
          throw ImagingError(.decode(name: name), "\(name): cannot convert image to RGB (\(vipsMessage()))")
        }
        g_object_unref(img)
        img = out!
      }
      let interp = vips_image_get_interpretation(img)
      if !(interp == VIPS_INTERPRETATION_sRGB && vips_image_get_format(img) == VIPS_FORMAT_UCHAR) {
        do { try step { cde_vips_to_srgb($0, $1) } } catch {
          // Unknown colour route (e.g. MULTIBAND): keep the samples as they are if
          // there are three or more bands, as PIL would read them.
          if vips_image_get_bands(img) < 3 { throw error }
        }
      }
      let bands = Int(vips_image_get_bands(img))
      if bands > 3 { try step { cde_vips_extract_bands($0, $1, 0, 3) } }
      if vips_image_get_format(img) != VIPS_FORMAT_UCHAR { try step { cde_vips_cast_uchar($0, $1) } }
      let w = Int(vips_image_get_width(img)), h = Int(vips_image_get_height(img))
      let b = Int(vips_image_get_bands(img))
      guard w > 0, h > 0, b == 3 else {
        throw ImagingError(.decode(name: name), "\(name): unsupported image layout (\(w)x\(h), \(b) bands)")
      }
      var size = 0
      guard let mem = vips_image_write_to_memory(img, &size) else {
        throw ImagingError(.decode(name: name), "\(name): cannot decode image (\(vipsMessage()))")
      }
      defer { g_free(mem) }
      guard size == w * h * 3 else { throw ImagingError(.decode(name: name), "\(name): decoded size mismatch") }
      return RGBImage(width: w, height: h, pixels: [UInt8](UnsafeRawBufferPointer(start: mem, count: size)))
    }
  }

  /// Encodes an RGB image. `quality` is used by JPEG (1...100, 4:2:0 chroma
  /// subsampling as PIL's default) and WebP; PNG uses zlib level 3, TIFF LZW,
  /// GIF libvips' palette quantiser (cgif), BMP 24-bit (ImageMagick).
  public static func encode(_ img: RGBImage, format: ImageFormat, quality: Int = 90) throws -> Data {
    try ensureInit("encode \(format.rawValue)")
    guard img.width > 0, img.height > 0 else { throw ImagingError(.encode, "encode \(format.rawValue): empty image") }
    let vimg: UnsafeMutablePointer<VipsImage>? = img.pixels.withUnsafeBytes { raw in
      vips_image_new_from_memory_copy(raw.baseAddress, raw.count, Int32(img.width), Int32(img.height), 3, VIPS_FORMAT_UCHAR)
    }
    guard let v = vimg else { throw ImagingError(.encode, "encode \(format.rawValue): \(vipsMessage())") }
    defer { g_object_unref(v) }
    var buf: UnsafeMutableRawPointer? = nil
    var len = 0
    let q = Int32(max(1, min(100, quality)))
    let rc: Int32
    switch format {
    case .jpeg: rc = cde_vips_jpegsave(v, &buf, &len, q)
    case .png: rc = cde_vips_pngsave(v, &buf, &len, 3)
    case .tiff: rc = cde_vips_tiffsave(v, &buf, &len)
    case .webp: rc = cde_vips_webpsave(v, &buf, &len, q)
    case .gif: rc = cde_vips_gifsave(v, &buf, &len)
    case .bmp: rc = cde_vips_bmpsave(v, &buf, &len)
    }
    guard rc == 0, let b = buf else { throw ImagingError(.encode, "encode \(format.rawValue): \(vipsMessage())") }
    defer { g_free(b) }
    return Data(bytes: b, count: len)
  }
}
