import Foundation
import Imaging
import JSONOutput

/// The parquet files of an import, in the order their rows are numbered (global row r is
/// row r - sum(rows[..<i]) of files[i]), as `scripts/d3_import.py plan` reports them.
public struct ImportPlan: Codable, Equatable, Sendable {
  public var files: [String]
  public var rows: [Int]
  public var total: Int
  public init(files: [String], rows: [Int], total: Int) { self.files = files; self.rows = rows; self.total = total }
}

/// One image of a parquet row: its bytes and extension, or why it is missing.
public enum ImportImage: Sendable {
  case present(ext: String, data: Data)
  case missing(String)
}

/// One parquet row joined with its real image: `images` = real, gen_0 ... gen_3.
public struct ImportRow: Sendable {
  public var row: Int
  public var id: String
  /// Record key (the id with characters other than [A-Za-z0-9_-] replaced by `_`).
  public var key: String
  public var caption: String
  public var url: String
  public var images: [ImportImage]
  public init(row: Int, id: String, key: String, caption: String, url: String, images: [ImportImage]) {
    self.row = row; self.id = id; self.key = key; self.caption = caption; self.url = url; self.images = images
  }
}

/// A row left out of the shards, with the reason (one line).
public struct ImportSkip: Codable, Equatable, Sendable {
  public var row: Int
  public var id: String
  public var url: String
  public var reason: String
}

/// One completed unit of the import: a shard (or, for `shard == nil`, the skipped rows after
/// the last shard), the rows it covers and the rows it left out. One JSON line each in
/// `OUT/import/shards.jsonl`, appended after the shard is renamed into place.
public struct ImportedShard: Codable, Equatable, Sendable {
  public var shard: String?
  public var bytes: Int64
  public var records: Int
  public var firstRow: Int
  public var endRow: Int
  public var skipped: [ImportSkip]
}

/// What is fixed for an output directory: the inputs and the shard layout
/// (`OUT/import/inputs.json`). A rerun with other inputs is refused rather than mixed in.
public struct ImportInputs: Codable, Equatable, Sendable {
  public var plan: ImportPlan
  public var shardSize: Int
  public var prefix: String
  public init(plan: ImportPlan, shardSize: Int, prefix: String) { self.plan = plan; self.shardSize = shardSize; self.prefix = prefix }
}

/// Writes D3 records as WebDataset shards `OUT/PREFIX-NNNNNN.tar` of `shardSize` records
/// (`KEY.real.EXT`, `KEY.gen_0.EXT` ... `KEY.gen_3.EXT`, `KEY.caption.txt`, `KEY.url.txt`),
/// from rows in global row order. Every image is decoded with the training decoder
/// (`ImageCodec.decode` under `policy`); a row whose real or generated image is missing or
/// unreadable is left out and listed in `OUT/import/skipped.tsv`.
///
/// Resumable: a shard is written to a hidden temporary file and renamed into place, then
/// its line is appended to `OUT/import/shards.jsonl`; a rerun keeps the longest prefix of
/// listed shards whose files exist with the listed size and starts at the row after them.
public final class D3ShardImporter {
  public let out: String
  public let inputs: ImportInputs
  public let policy: DecodePolicy
  public let threads: Int
  /// Units completed before this run (verified) and during it.
  public private(set) var done: [ImportedShard] = []
  /// First row this run has to read.
  public let startRow: Int

  var writer: TarWriter? = nil
  var current = ImportedShard(shard: nil, bytes: 0, records: 0, firstRow: 0, endRow: 0, skipped: [])
  var tmpPath = ""
  var stateDir: String { (out as NSString).appendingPathComponent("import") }
  var statePath: String { (stateDir as NSString).appendingPathComponent("shards.jsonl") }

  /// Rows read in this run, records written in this run.
  public private(set) var rowsThisRun = 0
  public private(set) var recordsThisRun = 0

  public init(out: String, inputs: ImportInputs, policy: DecodePolicy = DecodePolicy(), threads: Int = 1) throws {
    self.out = out
    self.inputs = inputs
    self.policy = policy
    self.threads = max(1, threads)
    let fm = FileManager.default
    let stateDir = (out as NSString).appendingPathComponent("import")
    do { try fm.createDirectory(atPath: stateDir, withIntermediateDirectories: true) } catch {
      throw DatasetError(.io(path: out), "--out \(out): cannot create directory (\(error.localizedDescription))")
    }
    let inputsPath = (stateDir as NSString).appendingPathComponent("inputs.json")
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    if let data = fm.contents(atPath: inputsPath) {
      guard let before = try? JSONDecoder().decode(ImportInputs.self, from: data) else {
        throw DatasetError(.io(path: inputsPath), "\(inputsPath): unreadable import state (remove the directory \(out) to start over)")
      }
      if before != inputs {
        let what = before.plan != inputs.plan ? "other parquet files" : (before.shardSize != inputs.shardSize ? "--shard-size \(before.shardSize)" : "--prefix \(before.prefix)")
        throw DatasetError(.importMismatch(path: out), "--out \(out): was imported from \(what); use another --out (or the same inputs to resume)")
      }
    } else {
      do { try enc.encode(inputs).write(to: URL(fileURLWithPath: inputsPath), options: .atomic) } catch {
        throw DatasetError(.io(path: inputsPath), "\(inputsPath): cannot write (\(error.localizedDescription))")
      }
    }
    // Longest valid prefix of the completed units.
    var kept: [ImportedShard] = []
    let statePath = (stateDir as NSString).appendingPathComponent("shards.jsonl")
    if let text = fm.contents(atPath: statePath).map({ String(decoding: $0, as: UTF8.self) }) {
      for line in text.split(separator: "\n") {
        guard let u = try? JSONDecoder().decode(ImportedShard.self, from: Data(line.utf8)),
              u.firstRow == (kept.last?.endRow ?? 0) else { break }
        if let name = u.shard {
          let p = (out as NSString).appendingPathComponent(name)
          guard let attrs = try? fm.attributesOfItem(atPath: p), (attrs[.size] as? NSNumber)?.int64Value == u.bytes else { break }
        }
        kept.append(u)
      }
    }
    done = kept
    startRow = kept.last?.endRow ?? 0
    let lines = kept.map { String(decoding: (try? JSONEncoder().encode($0)) ?? Data(), as: UTF8.self) + "\n" }.joined()
    do { try Data(lines.utf8).write(to: URL(fileURLWithPath: statePath), options: .atomic) } catch {
      throw DatasetError(.io(path: statePath), "\(statePath): cannot write (\(error.localizedDescription))")
    }
    current.firstRow = startRow
    current.endRow = startRow
  }

  /// Number of shards written so far (this run and before).
  public var shardCount: Int { done.filter { $0.shard != nil }.count }
  public var recordsTotal: Int { done.reduce(0) { $0 + $1.records } + current.records }
  public var skippedTotal: [ImportSkip] { done.flatMap(\.skipped) + current.skipped }

  func shardName(_ i: Int) -> String { String(format: "%@-%06d.tar", inputs.prefix, i) }

  /// Why a row cannot become a record, or nil when all five images decode.
  public func problem(_ r: ImportRow) -> String? {
    guard r.images.count == RecordRole.images.count else { return "expected 5 images, got \(r.images.count)" }
    for (role, img) in zip(RecordRole.images, r.images) {
      switch img {
      case .missing(let why): return why
      case .present(let ext, let data):
        do { _ = try ImageCodec.decode(data, name: "\(role.tag).\(ext)", policy: policy) } catch {
          return "\(role.tag) image unreadable: \(error)"
        }
      }
    }
    return nil
  }

  /// Validates `rows` (consecutive, in row order) on `threads` threads and appends the good
  /// ones to the shards, closing every shard that reaches `shardSize` records.
  public func add(_ rows: [ImportRow]) throws {
    var problems = [String?](repeating: nil, count: rows.count)
    let lock = NSLock()
    DispatchQueue.concurrentPerform(iterations: min(threads, rows.count)) { t in
      var i = t
      while i < rows.count {
        let p = problem(rows[i])
        lock.lock(); problems[i] = p; lock.unlock()
        i += threads
      }
    }
    for (r, p) in zip(rows, problems) {
      guard r.row == current.endRow else {
        throw DatasetError(.badRecord, "import: row \(r.row) out of order (expected \(current.endRow))")
      }
      current.endRow = r.row + 1
      rowsThisRun += 1
      if let p {
        current.skipped.append(ImportSkip(row: r.row, id: r.id, url: r.url, reason: p))
        continue
      }
      try write(r)
      if current.records == inputs.shardSize { try closeShard(endRow: r.row + 1) }
    }
  }

  func write(_ r: ImportRow) throws {
    if writer == nil {
      let name = shardName(shardCount)
      tmpPath = (out as NSString).appendingPathComponent(".\(name).tmp")
      writer = try TarWriter(path: tmpPath)
      current.shard = name
    }
    let w = writer!
    for (role, img) in zip(RecordRole.images, r.images) {
      if case .present(let ext, let data) = img { try w.add(name: "\(r.key).\(role.tag).\(ext)", data: data) }
    }
    try w.add(name: "\(r.key).caption.txt", data: Data(r.caption.utf8))
    try w.add(name: "\(r.key).url.txt", data: Data(r.url.utf8))
    current.records += 1
    recordsThisRun += 1
  }

  func closeShard(endRow: Int) throws {
    current.endRow = max(current.endRow, endRow)
    if let w = writer, let name = current.shard {
      try w.finish()
      let final = (out as NSString).appendingPathComponent(name)
      let fd = open(tmpPath, O_RDONLY)
      if fd >= 0 { fsync(fd); close(fd) }
      guard rename(tmpPath, final) == 0 else { throw DatasetError(.io(path: final), "\(final): cannot rename the finished shard into place") }
      current.bytes = ((try? FileManager.default.attributesOfItem(atPath: final))?[.size] as? NSNumber)?.int64Value ?? 0
      writer = nil
    }
    let line = String(decoding: try JSONEncoder().encode(current), as: UTF8.self) + "\n"
    guard let h = FileHandle(forWritingAtPath: statePath) else { throw DatasetError(.io(path: statePath), "\(statePath): cannot open") }
    do {
      try h.seekToEnd()
      try h.write(contentsOf: Data(line.utf8))
      try h.synchronize()
      try h.close()
    } catch { throw DatasetError(.io(path: statePath), "\(statePath): cannot append (\(error.localizedDescription))") }
    done.append(current)
    current = ImportedShard(shard: nil, bytes: 0, records: 0, firstRow: current.endRow, endRow: current.endRow, skipped: [])
  }

  /// Ends the import after the last row: closes the last shard (or records the trailing
  /// skipped rows) and writes `OUT/import/skipped.tsv` (row, id, url, reason; every
  /// skipped row of every run) and `OUT/import/summary.json`.
  public func finish(extra summary: [String: Any] = [:]) throws -> (records: Int, skipped: Int, shards: Int) {
    if current.endRow > current.firstRow {
      try closeShard(endRow: current.endRow)
    }
    let skipped = skippedTotal
    var tsv = "row\tid\turl\treason\n"
    func clean(_ s: String) -> String { s.replacingOccurrences(of: "\t", with: " ").replacingOccurrences(of: "\n", with: " ") }
    for s in skipped { tsv += "\(s.row)\t\(clean(s.id))\t\(clean(s.url))\t\(clean(s.reason))\n" }
    let reportPath = (stateDir as NSString).appendingPathComponent("skipped.tsv")
    do { try Data(tsv.utf8).write(to: URL(fileURLWithPath: reportPath), options: .atomic) } catch {
      throw DatasetError(.io(path: reportPath), "\(reportPath): cannot write (\(error.localizedDescription))")
    }
    var obj = summary
    obj["rows"] = done.last?.endRow ?? 0
    obj["records"] = recordsTotal
    obj["skipped"] = skipped.count
    obj["shards"] = shardCount
    obj["shard_size"] = inputs.shardSize
    let data = try JSONOutput.data(obj, layout: .pretty)
    try? data.write(to: URL(fileURLWithPath: (stateDir as NSString).appendingPathComponent("summary.json")), options: .atomic)
    return (recordsTotal, skipped.count, shardCount)
  }
}
