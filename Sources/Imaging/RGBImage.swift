import CodedError
import Foundation

/// An 8-bit RGB image, rows top to bottom, pixels interleaved:
/// `pixels[(y * width + x) * 3 + c]`, c = 0 (R), 1 (G), 2 (B). Shape [H, W, 3].
public struct RGBImage: Sendable, Equatable {
  public var width: Int
  public var height: Int
  public var pixels: [UInt8]

  public init(width: Int, height: Int, pixels: [UInt8]) {
    precondition(width >= 0 && height >= 0 && pixels.count == width * height * 3,
                 "RGBImage: \(pixels.count) bytes for \(width)x\(height)x3")
    self.width = width
    self.height = height
    self.pixels = pixels
  }

  /// A uniformly filled image (default black).
  public init(width: Int, height: Int, fill: (UInt8, UInt8, UInt8) = (0, 0, 0)) {
    self.width = width
    self.height = height
    if fill == (0, 0, 0) {
      pixels = [UInt8](repeating: 0, count: width * height * 3)
    } else {
      var p = [UInt8](repeating: 0, count: width * height * 3)
      var i = 0
      while i < p.count { p[i] = fill.0; p[i + 1] = fill.1; p[i + 2] = fill.2; i += 3 }
      pixels = p
    }
  }

  /// Number of pixels (W * H).
  @inlinable public var count: Int { width * height }

  /// The pixel at (x, y) as (R, G, B).
  public subscript(x: Int, y: Int) -> (UInt8, UInt8, UInt8) {
    let i = (y * width + x) * 3
    return (pixels[i], pixels[i + 1], pixels[i + 2])
  }
}

/// Errors of the Imaging module: a `kind` that callers and tests can tell apart, and a
/// `description` of one line naming the input.
public typealias ImagingError = CodedError<ImagingErrorKind>

/// The failure cases of the Imaging module.
public enum ImagingErrorKind: Equatable, Sendable {
  /// libvips could not be started.
  case libvips
  /// The bytes of `name` are not an image libvips can decode into RGB (empty, damaged,
  /// an unsupported layout).
  case decode(name: String)
  /// The header of `name` claims more pixels than the limit (a possible decompression bomb).
  case tooManyPixels(name: String, pixels: Int, limit: Int)
  /// An image could not be encoded.
  case encode
}
