import Foundation
import JSONOutput
import SafeTensors

/// RUN/metrics.jsonl: one JSON object per line, e.g.
/// {"step":120,"time":1767000000.5,"loss":4.1,"lr":0.00051,...}, written by rank 0.
/// Each line goes to the file with one write() (visible to readers at once).
/// Non-finite numbers are written as null (JSON has no NaN).
public final class MetricsLog {
  public let url: URL
  private let handle: FileHandle

  /// Opens `url` for appending (created if absent). With `resumeStep`, lines of
  /// steps after it (written by the run that was interrupted after its last
  /// checkpoint) are dropped first, so the file continues where training resumes.
  public init(url: URL, resumeStep: Int? = nil) throws {
    self.url = url
    let fm = FileManager.default
    if let s = resumeStep, fm.fileExists(atPath: url.path) { try Self.dropEntries(in: url, afterStep: s) }
    if !fm.fileExists(atPath: url.path) {
      guard fm.createFile(atPath: url.path, contents: nil) else {
        throw CheckpointError(.io(path: url.path), "\(url.path): cannot create the metrics file")
      }
    }
    do {
      handle = try FileHandle(forWritingTo: url)
      try handle.seekToEnd()
    } catch {
      throw CheckpointError(.io(path: url.path), "\(url.path): cannot open for appending: \(error.localizedDescription)")
    }
  }

  deinit { try? handle.close() }

  /// Appends {"step": step, "time": wall clock, values..., extra...} (keys sorted).
  public func append(step: Int, _ values: [String: Double], extra: [String: String] = [:],
                     time: Double = Date().timeIntervalSince1970) {
    var parts = ["\"step\":\(step)", "\"time\":\(Self.number(time))"]
    var keyed: [(String, String)] = values.map { ($0.key, Self.number($0.value)) }
    keyed += extra.map { ($0.key, Self.string($0.value)) }
    for (k, v) in keyed.sorted(by: { $0.0 < $1.0 }) where k != "step" && k != "time" {
      parts.append("\(Self.string(k)):\(v)")
    }
    write("{" + parts.joined(separator: ",") + "}\n")
  }

  /// Appends any JSON object (`JSONOutput`: keys sorted), e.g. the evaluation rows.
  public func append(object: [String: Any]) throws {
    write(try JSONOutput.string(object) + "\n")
  }

  private func write(_ line: String) {
    handle.write(Data(line.utf8))
  }

  static func number(_ x: Double) -> String {
    guard x.isFinite else { return "null" }
    if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
    return "\(x)"
  }

  static func string(_ s: String) -> String { jsonString(s) }

  /// Rewrites `url` (via a temporary file renamed into place) keeping lines whose
  /// "step" is at most `step`, and lines without a step.
  public static func dropEntries(in url: URL, afterStep step: Int) throws {
    guard let data = FileManager.default.contents(atPath: url.path) else { return }
    var kept = Data()
    for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
      let obj = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any]
      if let s = (obj?["step"] as? NSNumber)?.intValue, s > step { continue }
      if obj == nil { continue }  // a torn last line from a crash
      kept.append(Data(line))
      kept.append(UInt8(ascii: "\n"))
    }
    let tmp = url.path + ".tmp"
    guard FileManager.default.createFile(atPath: tmp, contents: kept), rename(tmp, url.path) == 0 else {
      throw CheckpointError(.io(path: url.path), "\(url.path): cannot rewrite the metrics file")
    }
  }
}
