import COpenSSL
import Foundation

/// SHA-256 (FIPS 180-4) via OpenSSL's libcrypto EVP interface.
public enum SHA256Digest {
  /// Lower-case hex digest of `data`.
  public static func hex(_ data: Data) -> String {
    let ctx = Context()
    data.withUnsafeBytes { ctx.update($0.baseAddress, $0.count) }
    return ctx.finalHex()
  }

  /// Lower-case hex digest and byte count of the file at `path`, read in 4 MiB blocks.
  public static func hex(fileAt path: String) throws -> (hex: String, bytes: Int) {
    guard let f = fopen(path, "rb") else {
      throw CheckpointError(.io(path: path), "\(path): cannot open: \(String(cString: strerror(errno)))")
    }
    defer { fclose(f) }
    let ctx = Context()
    let block = 4 << 20
    let buf = UnsafeMutableRawPointer.allocate(byteCount: block, alignment: 64)
    defer { buf.deallocate() }
    var total = 0
    while true {
      let n = fread(buf, 1, block, f)
      if n > 0 { ctx.update(buf, n); total += n }
      if n < block {
        if ferror(f) != 0 { throw CheckpointError(.io(path: path), "\(path): read error") }
        break
      }
    }
    return (ctx.finalHex(), total)
  }

  final class Context {
    let ctx: OpaquePointer
    init() {
      ctx = EVP_MD_CTX_new()
      EVP_DigestInit_ex(ctx, EVP_sha256(), nil)
    }
    func update(_ p: UnsafeRawPointer?, _ n: Int) {
      if n > 0 { EVP_DigestUpdate(ctx, p, n) }
    }
    func finalHex() -> String {
      var md = [UInt8](repeating: 0, count: 32)
      var len: UInt32 = 0
      EVP_DigestFinal_ex(ctx, &md, &len)
      let hexDigits = Array("0123456789abcdef".utf8)
      var out = [UInt8]()
      out.reserveCapacity(64)
      for b in md.prefix(Int(len)) { out.append(hexDigits[Int(b >> 4)]); out.append(hexDigits[Int(b & 15)]) }
      return String(decoding: out, as: UTF8.self)
    }
    deinit { EVP_MD_CTX_free(ctx) }
  }
}
