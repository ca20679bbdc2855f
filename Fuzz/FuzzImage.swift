import Foundation

// libFuzzer target for the image path: bytes -> decoded RGB through `ImageCodec.decode`
// (libvips with the project's fail_on policy and pixel limit). Built by
// scripts/fuzz-decoders.sh with `swiftc -sanitize=fuzzer,address` together with
// Sources/Imaging/ImageCodec.swift and RGBImage.swift (not part of the package build).
//
// Properties checked on every input (a failure is a crash that libFuzzer reports):
// - decoding never traps: it returns an image or throws a one-line error naming the input;
// - a decoded image is w x h x 3 bytes with w, h > 0 and w * h within the pixel limit.

let fuzzPolicy = DecodePolicy(maxPixels: 1 << 20)  // 1 M pixels: bounds memory and time per input

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImageOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = Data(bytes: data, count: size)
  do {
    let img = try ImageCodec.decode(bytes, name: "fuzz.img", policy: fuzzPolicy)
    precondition(img.width > 0 && img.height > 0, "empty image decoded")
    precondition(img.width * img.height <= fuzzPolicy.maxPixels, "pixel limit not applied")
    precondition(img.pixels.count == img.width * img.height * 3, "pixel buffer size")
  } catch let e as ImagingError {
    precondition(e.description.hasPrefix("fuzz.img: ") && !e.description.contains("\n"), "error not one line naming the input")
  } catch {
    preconditionFailure("unexpected error type \(error)")
  }
  return 0
}
