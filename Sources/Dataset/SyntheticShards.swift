import Foundation
import Imaging

/// Output layout of synthetic D3.
public enum SynthLayout: String, Sendable, CaseIterable {
  /// WebDataset tar shards: `d3synth-NNNNNN.tar` with KEY.real.EXT, KEY.gen_k.EXT, KEY.caption.txt, KEY.url.txt.
  case wds
  /// The authors' test layout: real/KEY.EXT, gen_0/KEY.EXT ... gen_3/KEY.EXT.
  case folders
}

/// What `writeSyntheticD3` wrote.
public struct SynthSummary: Sendable {
  public var records: Int
  public var files: [String]
  public var bytes: Int64
}

/// Key of synthetic record `index`: `d3synth__train__NNNNNNNNNN`.
public func syntheticKey(_ index: Int) -> String {
  let s = String(index)
  return "d3synth__train__" + String(repeating: "0", count: max(0, 10 - s.count)) + s
}

/// Encoded members of synthetic record `index` (role, extension, bytes), images from
/// `SyntheticD3.record(seed:index:)`.
public func syntheticMembers(seed: UInt64, index: Int, strength: Double = 1,
                             scene: SyntheticD3.SceneSharing = .theme) throws -> [(role: RecordRole, ext: String, data: Data)] {
  let rec = SyntheticD3.record(seed: seed, index: index, strength: strength, scene: scene)
  var out: [(RecordRole, String, Data)] = []
  for (i, m) in ([rec.real] + rec.gens).enumerated() {
    out.append((RecordRole.images[i], m.fileExtension, m.data))
  }
  out.append((.caption, "txt", Data(rec.caption.utf8)))
  out.append((.url, "txt", Data("https://example.invalid/d3synth/\(syntheticKey(index)).jpg".utf8)))
  return out
}

/// Writes `records` synthetic D3 records under `out`: tar shards of `shardSize` records
/// (layout wds) or test-layout folders (shard size ignored). Images are made in parallel
/// over records (`threads`), a chunk at a time; the output is byte-identical for a given (records, shardSize, seed, layout).
public func writeSyntheticD3(out: String, records: Int, shardSize: Int, seed: UInt64, layout: SynthLayout,
                             threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                             strength: Double = 1, scene: SyntheticD3.SceneSharing = .theme) throws -> SynthSummary {
  try writeRecords(out: out, records: records, shardSize: shardSize, layout: layout, threads: threads) {
    try syntheticMembers(seed: seed, index: $0, strength: strength, scene: scene)
  }
}

/// The writer of `writeSyntheticD3` with any record maker (tests use small images).
func writeRecords(out: String, records: Int, shardSize: Int, layout: SynthLayout, threads: Int,
                  make: @escaping (Int) throws -> [(role: RecordRole, ext: String, data: Data)]) throws -> SynthSummary {
  guard records >= 1 else { throw DatasetError(.invalidArgument, "--records must be at least 1 (got \(records))") }
  guard shardSize >= 1 else { throw DatasetError(.invalidArgument, "--shard-size must be at least 1 (got \(shardSize))") }
  let fm = FileManager.default
  do { try fm.createDirectory(atPath: out, withIntermediateDirectories: true) } catch {
    throw DatasetError(.io(path: out), "\(out): cannot create directory")
  }
  var summary = SynthSummary(records: records, files: [], bytes: 0)
  if layout == .folders {
    for role in RecordRole.images {
      let d = (out as NSString).appendingPathComponent(role.tag)
      do { try fm.createDirectory(atPath: d, withIntermediateDirectories: true) } catch {
        throw DatasetError(.io(path: d), "\(d): cannot create directory")
      }
    }
  }
  // Records are made in parallel in chunks (bounded memory) and written in index order.
  let chunk = max(16, 4 * threads)
  var writer: TarWriter? = nil
  var index = 0
  while index < records {
    let n = min(chunk, records - index, shardSize - index % shardSize)
    var members = [[(role: RecordRole, ext: String, data: Data)]?](repeating: nil, count: n)
    var failure: Error? = nil
    let lock = NSLock()
    let workers = max(1, min(threads, n))
    let base = index
    DispatchQueue.concurrentPerform(iterations: workers) { w in
      var i = w
      while i < n {
        let r = Result { try make(base + i) }
        lock.lock()
        switch r { case .success(let m): members[i] = m; case .failure(let e): failure = failure ?? e }
        lock.unlock()
        i += workers
      }
    }
    if let e = failure { throw e }
    switch layout {
    case .wds:
      if index % shardSize == 0 {
        let s = String(index / shardSize)
        let path = (out as NSString).appendingPathComponent("d3synth-" + String(repeating: "0", count: max(0, 6 - s.count)) + s + ".tar")
        writer = try TarWriter(path: path)
        summary.files.append(path)
      }
      for i in 0..<n {
        let key = syntheticKey(index + i)
        for m in members[i]! { try writer!.add(name: "\(key).\(m.role.tag).\(m.ext)", data: m.data) }
      }
      if (index + n) % shardSize == 0 || index + n == records {
        try writer!.finish()
        summary.bytes += Int64((try? fm.attributesOfItem(atPath: writer!.path)[.size] as? Int) ?? 0)
        writer = nil
      }
    case .folders:
      for i in 0..<n {
        let key = syntheticKey(index + i)
        for m in members[i]! where m.role.isImage {
          let path = ((out as NSString).appendingPathComponent(m.role.tag) as NSString).appendingPathComponent("\(key).\(m.ext)")
          guard fm.createFile(atPath: path, contents: m.data) else { throw DatasetError(.io(path: path), "\(path): cannot write file") }
          summary.files.append(path)
          summary.bytes += Int64(m.data.count)
        }
      }
    }
    index += n
  }
  return summary
}
