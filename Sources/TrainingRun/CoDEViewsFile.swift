import Foundation
import SafeTensors
import Training

/// The views file of `cde step`: F32 tensors real, fake, aug_real, aug_fake, global_real,
/// global_fake `[B, C, S, S]`, local_real, local_fake `[B, C, L, L]` (normalised pixels, named
/// as `CoDEStep.globalViewNames` / `localViewNames`) and I64 perm `[B]`. `cde random-views`
/// writes one; `cde train --dump-views` writes the same tensors plus the step's context.
public struct CoDEViewsFile {
  /// Global views `[6, B, C, S, S]` and local views `[2, B, C, L, L]`, view-major in
  /// `CoDEStep`'s view order.
  public var global: [Float], local: [Float]
  /// The derangement of the batch: record i's positive is record perm[i]'s augmented view.
  public var perm: [Int]
  public var records: Int, channels: Int, imageSize: Int, localSize: Int

  public init(global: [Float], local: [Float], perm: [Int], records: Int, channels: Int, imageSize: Int, localSize: Int) {
    self.global = global; self.local = local; self.perm = perm
    self.records = records; self.channels = channels; self.imageSize = imageSize; self.localSize = localSize
  }

  /// Reads `path` and checks it: `channels` channels, square views whose sides are multiples
  /// of `patch`, every view of the same shape, perm a permutation of 0..<B. Errors are one
  /// line naming the file and the tensor.
  public static func read(path: String, channels c: Int, patch: Int) throws -> CoDEViewsFile {
    let v = try SafeTensorsFile(path: path)
    let real = try v.info("real")
    guard real.shape.count == 4, real.shape[1] == c, real.shape[2] == real.shape[3] else {
      throw TrainError(.viewsFile(path: path), "\(path): tensor real: shape \(real.shape), expected [B,\(c),S,S]")
    }
    let b = real.shape[0], s = real.shape[2]
    let lInfo = try v.info("local_real")
    guard lInfo.shape.count == 4, lInfo.shape[0] == b, lInfo.shape[1] == c, lInfo.shape[2] == lInfo.shape[3] else {
      throw TrainError(.viewsFile(path: path), "\(path): tensor local_real: shape \(lInfo.shape), expected [\(b),\(c),L,L]")
    }
    let l = lInfo.shape[2]
    for (size, what) in [(s, "global views"), (l, "local views")] where size % patch != 0 {
      throw TrainError(.viewsFile(path: path), "\(path): \(what) are \(size) px, not a multiple of the patch size \(patch)")
    }
    var global = [Float](), local = [Float]()
    for n in CoDEStep.globalViewNames {
      let t = try v.info(n)
      guard t.shape == [b, c, s, s] else { throw TrainError(.viewsFile(path: path), "\(path): tensor \(n): shape \(t.shape), expected \([b, c, s, s])") }
      global += try v.floats(n)
    }
    for n in CoDEStep.localViewNames {
      let t = try v.info(n)
      guard t.shape == [b, c, l, l] else { throw TrainError(.viewsFile(path: path), "\(path): tensor \(n): shape \(t.shape), expected \([b, c, l, l])") }
      local += try v.floats(n)
    }
    let perm = try v.ints("perm").map { Int($0) }
    guard perm.count == b, Set(perm) == Set(0..<b) else {
      throw TrainError(.viewsFile(path: path), "\(path): tensor perm: expected a permutation of 0..<\(b), got \(perm)")
    }
    return CoDEViewsFile(global: global, local: local, perm: perm, records: b, channels: c, imageSize: s, localSize: l)
  }

  /// Adds the eight views and perm to `w` (the tensors `read` reads).
  public func add(to w: inout SafeTensorsWriter) {
    addViews(to: &w)
    w.add("perm", int64: perm.map { Int64($0) }, shape: [records])
  }

  /// Adds the eight views alone, `[B, C, S, S]` and `[B, C, L, L]` under their names
  /// (`cde train --dump-views` follows them with the step's context).
  public func addViews(to w: inout SafeTensorsWriter) {
    let g = records * channels * imageSize * imageSize, lc = records * channels * localSize * localSize
    for (i, n) in CoDEStep.globalViewNames.enumerated() {
      w.add(n, floats: Array(global[(i * g)..<((i + 1) * g)]), shape: [records, channels, imageSize, imageSize])
    }
    for (i, n) in CoDEStep.localViewNames.enumerated() {
      w.add(n, floats: Array(local[(i * lc)..<((i + 1) * lc)]), shape: [records, channels, localSize, localSize])
    }
  }
}
