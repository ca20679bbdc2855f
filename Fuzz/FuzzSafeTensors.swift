import Foundation

// libFuzzer target for the safetensors header parser (`SafeTensorsFile(data:)`).
// Built by scripts/fuzz-decoders.sh with `swiftc -sanitize=fuzzer,address` together with
// Sources/SafeTensors/SafeTensors.swift (not part of the package build).
//
// Properties checked on every input (a failure is a crash that libFuzzer reports):
// - parsing never traps (overflowing shapes, huge or negative offsets are errors);
// - every accepted tensor lies inside the data section, its byte size is its element
//   count times the dtype size, and reading it as floats gives that many values.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensorsOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = Data(bytes: data, count: size)
  guard let f = try? SafeTensorsFile(data: bytes, path: "fuzz.safetensors") else { return 0 }
  for name in f.names {
    let t = try! f.info(name)
    precondition(t.begin >= 0 && t.end >= t.begin && t.end <= size, "tensor outside the file")
    precondition(t.count * t.dtype.byteSize == t.end - t.begin, "byte size differs from the shape")
    if t.count <= 1 << 16 { precondition(try! f.floats(name).count == t.count, "floats count") }
  }
  return 0
}
