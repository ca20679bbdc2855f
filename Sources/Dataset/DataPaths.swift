import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One unit of data on disk: a tar shard, or a folder in the authors' test layout
/// (`real/`, `gen_0/` ... `gen_3/` holding image files).
public enum DataLocation: Hashable, Sendable, CustomStringConvertible {
  case shard(String)
  case folders(String)
  public var path: String {
    switch self { case .shard(let p), .folders(let p): return p }
  }
  public var description: String { path }
}

/// Expands WebDataset-style numeric ranges: `a-{0000..0003}.tar` gives a-0000.tar ...
/// a-0003.tar (width kept from the first bound). Other text is left alone.
public func expandBraceRanges(_ pattern: String) -> [String] {
  guard let open = pattern.firstIndex(of: "{"), let close = pattern[open...].firstIndex(of: "}") else { return [pattern] }
  let inner = pattern[pattern.index(after: open)..<close]
  let parts = inner.components(separatedBy: "..")
  guard parts.count == 2, let lo = Int(parts[0]), let hi = Int(parts[1]), lo <= hi, hi - lo < 10_000_000 else { return [pattern] }
  let width = parts[0].count
  let head = String(pattern[..<open]), tail = String(pattern[pattern.index(after: close)...])
  var out: [String] = []
  for v in lo...hi {
    var s = String(v)
    if s.count < width { s = String(repeating: "0", count: width - s.count) + s }
    out.append(contentsOf: expandBraceRanges(head + s + tail))
  }
  return out
}

private func isDirectory(_ path: String) -> Bool? {
  var d: ObjCBool = false
  guard FileManager.default.fileExists(atPath: path, isDirectory: &d) else { return nil }
  return d.boolValue
}

/// True when `dir` holds at least one of `real/`, `gen_0/` ... `gen_3/`.
func isFolderLayout(_ dir: String) -> Bool {
  RecordRole.images.contains { isDirectory((dir as NSString).appendingPathComponent($0.tag)) == true }
}

/// Resolves user paths to shards and folder sets, in a stable order:
/// - a file is a shard; a glob (`*`, `?`, `[`) or brace range expands to sorted matches;
/// - a directory in the test layout is one folder set;
/// - another directory contributes its `*.tar` files (sorted) and its immediate
///   subdirectories in the test layout (e.g. `augm/`, `no_augm/`).
/// A path that does not exist, or a directory with neither, is an error naming it.
public func resolveDataPaths(_ paths: [String]) throws -> [DataLocation] {
  var ignored: [String] = []
  return try resolveDataPaths(paths, ignored: &ignored)
}

/// As `resolveDataPaths(_:)`; `ignored` receives one line per directory that holds
/// files which are neither `.tar` shards nor test-layout folders (shard index caches
/// `*.cdeidx` aside), naming them, so that callers can warn about them.
///
/// `absentShards`: a path named literally (not a glob) that ends in `.tar` and does not
/// exist is kept as a shard instead of being an error. Shard-local sampling on node-local
/// disks needs it: every node lists the same shards, in the same order, and holds only
/// those of its own ranks (the caller checks that those exist).
public func resolveDataPaths(_ paths: [String], ignored: inout [String], absentShards: Bool = false) throws -> [DataLocation] {
  if paths.isEmpty { throw DatasetError(.invalidArgument, "no data paths given") }
  var out: [DataLocation] = []
  for raw in paths {
    for p in expandBraceRanges(raw) {
      if p.contains("*") || p.contains("?") || p.contains("[") {
        let matches = globPaths(p)
        if matches.isEmpty { throw DatasetError(.notFound(path: p), "\(p): no files match") }
        for m in matches { out.append(contentsOf: try resolveOne(m, ignored: &ignored)) }
      } else if absentShards, p.hasSuffix(".tar"), isDirectory(p) == nil {
        out.append(.shard(p))
      } else {
        out.append(contentsOf: try resolveOne(p, ignored: &ignored))
      }
    }
  }
  return out
}

private func resolveOne(_ p: String, ignored: inout [String]) throws -> [DataLocation] {
  guard let dir = isDirectory(p) else { throw DatasetError(.notFound(path: p), "\(p): no such file or directory") }
  if !dir { return [.shard(p)] }
  if isFolderLayout(p) { return [.folders(p)] }
  let names: [String]
  do { names = try FileManager.default.contentsOfDirectory(atPath: p).sorted() } catch {
    throw DatasetError(.io(path: p), "\(p): cannot list directory")
  }
  var out: [DataLocation] = []
  var other: [String] = []
  for n in names where !n.hasPrefix(".") {
    let full = (p as NSString).appendingPathComponent(n)
    if n.hasSuffix(".tar"), isDirectory(full) == false { out.append(.shard(full)) }
    else if isDirectory(full) == true, isFolderLayout(full) { out.append(.folders(full)) }
    else if isDirectory(full) == false, !n.hasSuffix(".cdeidx"), !n.contains(".cdeidx.tmp") { other.append(n) }
  }
  if !other.isEmpty {
    let shown = other.prefix(5).joined(separator: ", ") + (other.count > 5 ? ", ..." : "")
    ignored.append("\(p): \(other.count) file(s) that are not .tar shards ignored (\(shown))")
  }
  if out.isEmpty { throw DatasetError(.noRecords, "\(p): no .tar shards and no real/ gen_0/ ... gen_3/ folders") }
  return out
}

private func globPaths(_ pattern: String) -> [String] {
  var g = glob_t()
  defer { globfree(&g) }
  guard glob(pattern, 0, nil, &g) == 0 else { return [] }
  var out: [String] = []
  for i in 0..<Int(g.gl_pathc) {
    if let c = g.gl_pathv[i] { out.append(String(cString: c)) }
  }
  return out.sorted()
}
