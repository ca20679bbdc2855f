import Foundation
import JSONOutput

extension TrainConfig {
  /// Keys that do not change what is trained, step by step: logging, checkpoint
  /// cadence, evaluation, loader parallelism, the stall watchdog.
  static let operationalKeys: Set<String> = [
    "train.log_every", "train.consistency_check_every", "train.stall_timeout_s", "train.early_stop_patience",
    "data.loader_threads", "data.prefetch", "data.test",
  ]
  static let operationalSections: Set<String> = ["checkpoint", "eval", "model"]

  /// The keys on which this config differs from `old` (a checkpoint's) and on which an
  /// exact resume depends (batch, seed, data, schedule, optimiser, loss), each as
  /// "key old -> new", sorted by key. The model section is checked on its own
  /// (a different shape cannot resume at all).
  public func resumeDifferences(from old: TrainConfig) -> [String] {
    let a = old.toJSONObject(), b = toJSONObject()
    var out: [String] = []
    for section in Set(a.keys).union(b.keys).sorted() where !Self.operationalSections.contains(section) {
      let sa = a[section] as? [String: Any] ?? [:], sb = b[section] as? [String: Any] ?? [:]
      for key in Set(sa.keys).union(sb.keys).sorted() {
        let name = "\(section).\(key)"
        if Self.operationalKeys.contains(name) { continue }
        let va = sa[key].map(Self.render) ?? "unset", vb = sb[key].map(Self.render) ?? "unset"
        if va != vb { out.append("\(name) \(va) -> \(vb)") }
      }
    }
    return out
  }

  static func render(_ v: Any) -> String {
    if let d = try? JSONOutput.data([v], escapingSlashes: false) {
      return String(String(decoding: d, as: UTF8.self).dropFirst().dropLast())
    }
    return "\(v)"
  }
}
