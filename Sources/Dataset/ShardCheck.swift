import Foundation
import Imaging

/// Result of checking one shard or folder set: every record is read and its five images
/// decoded; a record with any problem is listed with its reason.
public struct SourceCheck: Sendable {
  public struct Skip: Sendable { public var key: String; public var reason: SkipReason; public var detail: String }
  public var path: String
  public var records: Int = 0
  public var good: Int = 0
  public var skipped: [Skip] = []
  /// Source-level problems (truncation, bad headers, cannot open).
  public var issues: [String] = []
  /// The source is damaged (bad headers, truncation, not a tar, cannot open): records
  /// were or may have been lost even where none is listed as skipped.
  public var damaged = false
  /// Records found but lost to the damage (skipped as `damaged shard` or `truncated member`).
  public var lost: Int { skipped.filter { $0.reason.isDamage }.count }
}

/// The result of `checkData`: every source's report, and the files that were ignored
/// (not `.tar` shards, in a directory of shards).
public struct DataCheck: Sendable {
  public var sources: [SourceCheck]
  public var ignored: [String]
}

/// Checks shards / folders (`threads` records decoded in parallel). Throws only for a path
/// that does not exist; unreadable shards are reported in their `SourceCheck`.
public func checkData(paths: [String], threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                      policy: DecodePolicy? = nil) throws -> [SourceCheck] {
  try checkDataSet(paths: paths, threads: threads, policy: policy).sources
}

/// As `checkData`, with the ignored files (for `cde shards check`).
public func checkDataSet(paths: [String], threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                         policy: DecodePolicy? = nil) throws -> DataCheck {
  var out: [SourceCheck] = []
  var ignored: [String] = []
  for loc in try resolveDataPaths(paths, ignored: &ignored) {
    var report = SourceCheck(path: loc.path)
    let source: RecordSource
    do {
      switch loc {
      case .shard(let p): source = try TarShardSource(path: p, useCache: false)
      case .folders(let p): source = try FolderSource(directory: p)
      }
    } catch {
      report.issues.append("\(error)")
      report.damaged = true
      out.append(report)
      continue
    }
    report.records = source.count
    report.issues = source.issues
    report.damaged = source.damaged
    var results = [SourceCheck.Skip?](repeating: nil, count: source.count)
    let lock = NSLock()
    let chunks = max(1, min(threads, source.count))
    DispatchQueue.concurrentPerform(iterations: chunks) { c in
      var r = c
      while r < source.count {
        let res = checkRecord(source, r, policy)
        lock.lock(); results[r] = res; lock.unlock()
        r += chunks
      }
    }
    for r in 0..<source.count {
      if let s = results[r] { report.skipped.append(s) } else { report.good += 1 }
    }
    out.append(report)
  }
  return DataCheck(sources: out, ignored: ignored)
}

private func checkRecord(_ source: RecordSource, _ r: Int, _ policy: DecodePolicy?) -> SourceCheck.Skip? {
  let key = source.key(r)
  if let (reason, detail) = source.staticProblem(r) { return .init(key: key, reason: reason, detail: detail) }
  for role in RecordRole.images {
    let data: Data
    do { data = try source.read(r, role) } catch {
      return .init(key: key, reason: .unreadable, detail: "\(error)")
    }
    do { _ = try ImageCodec.decode(data, name: source.memberName(r, role), policy: policy) } catch {
      return .init(key: key, reason: .corruptImage, detail: "\(error)")
    }
  }
  for role in [RecordRole.caption, .url] where source.has(r, role) {
    do { _ = try source.read(r, role) } catch { return .init(key: key, reason: .unreadable, detail: "\(error)") }
  }
  return nil
}
