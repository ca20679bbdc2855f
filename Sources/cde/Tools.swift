import ArgumentParser
import Foundation
import Kernels
import Randomness
import SafeTensors
import Training
import TrainingRun
import ViT

/// `cde compare`: tensor-by-tensor comparison of two safetensors files (parity checks).
struct Compare: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Compare two safetensors files tensor by tensor; exit 1 if any tensor is outside the tolerance.")

  @Argument(help: "File under test.") var actual: String
  @Argument(help: "Reference file.") var expected: String
  @Option(help: "Largest relative Frobenius error |a-e|/|e| allowed.") var rtol: Double = 1e-5
  @Option(name: .customLong("atol-prefix"), parsing: .upToNextOption,
          help: "PREFIX=ATOL: compare tensors whose names start with PREFIX by max absolute error instead.")
  var atolPrefix: [String] = []
  @Flag(help: "Print every tensor, not only the worst and the failures.") var verbose = false

  func run() throws {
    let a = try SafeTensorsFile(path: actual), e = try SafeTensorsFile(path: expected)
    var absRules: [(String, Double)] = []
    for r in atolPrefix {
      let parts = r.split(separator: "=", maxSplits: 1)
      guard parts.count == 2, let v = Double(parts[1]) else { throw ValidationError("--atol-prefix \(r): expected PREFIX=NUMBER") }
      absRules.append((String(parts[0]), v))
    }
    var failures = 0, worstRel = 0.0, worstName = ""
    for name in e.names.sorted() {
      guard a.tensors[name] != nil else {
        print("missing  \(name)")
        failures += 1
        continue
      }
      guard a.tensors[name]!.shape == e.tensors[name]!.shape else {
        print("shape    \(name): \(a.tensors[name]!.shape) vs \(e.tensors[name]!.shape)")
        failures += 1
        continue
      }
      let x = try a.floats(name), y = try e.floats(name)
      let discrepancy = Discrepancy(x, reference: y)
      let num = discrepancy.squaredError, maxAbs = discrepancy.maxAbs, rel = discrepancy.relativeFrobenius
      let ok: Bool
      if let rule = absRules.first(where: { name.hasPrefix($0.0) }) {
        ok = maxAbs <= rule.1
      } else {
        ok = rel <= rtol || num == 0
        if rel > worstRel { worstRel = rel; worstName = name }
      }
      if !ok { failures += 1 }
      if !ok || verbose {
        print(String(format: "%@ %@: rel %.3e, max abs %.3e", ok ? "ok      " : "FAIL    ", name, rel, maxAbs))
      }
    }
    print(String(format: "%d tensors, %d outside tolerance; worst relative error %.3e (%@)", e.names.count, failures,
                 worstRel, worstName))
    if failures > 0 { throw ExitCode(1) }
  }
}

/// `cde random-views`: a views file of normal noise for `cde step` (tests, debugging).
struct RandomViews: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "random-views", abstract: "Write a views file of standard-normal pixels for cde step.",
    shouldDisplay: false)
  @Option var records: Int = 4
  @Option var size: Int = 224
  @Option(name: .customLong("local-size")) var localSize: Int = 96
  @Option var seed: UInt64 = 1
  @Option var out: String

  func run() throws {
    var rng = SplitMix64(seed: seed)
    let global = (0..<(6 * records * 3 * size * size)).map { _ in Float(rng.normal()) }
    let local = (0..<(2 * records * 3 * localSize * localSize)).map { _ in Float(rng.normal()) }
    let file = CoDEViewsFile(global: global, local: local, perm: derangement(records, seed: seed), records: records,
                             channels: 3, imageSize: size, localSize: localSize)
    var w = SafeTensorsWriter()
    file.add(to: &w)
    try w.write(to: out)
  }
}
