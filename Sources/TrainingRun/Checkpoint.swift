import CheckpointLayout
import CodedError
import Foundation
import JSONOutput

/// A checkpoint (or run-log file) problem: a `kind` that callers and tests can tell
/// apart, and a description of one line naming the path and what is wrong.
public typealias CheckpointError = CodedError<CheckpointErrorKind>

/// The failure cases of writing and reading checkpoints and the run's log files.
public enum CheckpointErrorKind: Equatable, Sendable {
  /// A file or directory at `path` that cannot be created, opened, read, written,
  /// synced or renamed.
  case io(path: String)
  /// A file of a checkpoint (or its trainer.json) at `path` is missing.
  case missing(path: String)
  /// A checkpoint file at `path` that does not verify (not JSON, no step or checksums,
  /// wrong size, SHA-256 mismatch).
  case corrupt(path: String)
  /// The trainer state cannot be encoded or decoded.
  case state
  /// A run directory at `path` with no checkpoint that verifies.
  case noValidCheckpoint(path: String)
  /// `path` is neither a checkpoint directory nor a run directory.
  case notACheckpoint(path: String)
}

/// A checkpoint that verified: its directory, step and trainer.json.
public struct Checkpoint {
  /// RUN/checkpoints/step-NNNNNNNN
  public let url: URL
  public let step: Int
  /// trainer.json as written (the trainer's state plus `step`, `format` and `files`).
  public let trainerJSON: Data

  /// Path of a file of the checkpoint, e.g. `file("model.safetensors")`.
  public func file(_ name: String) -> URL { url.appendingPathComponent(name) }

  /// trainer.json as a JSON object.
  public var trainerObject: [String: Any] {
    (try? JSONSerialization.jsonObject(with: trainerJSON)) as? [String: Any] ?? [:]
  }

  /// trainer.json decoded as the trainer's state type (extra keys are ignored).
  public func state<S: Decodable>(_ type: S.Type) throws -> S {
    do {
      return try JSONDecoder().decode(S.self, from: trainerJSON)
    } catch {
      throw CheckpointError(.state, "\(file("trainer.json").path): cannot read the trainer state: \(error)")
    }
  }
}

/// Checkpoints of one run, laid out as the README's "Training" section says:
/// RUN/checkpoints/step-NNNNNNNN/{model.safetensors, optimizer.safetensors, trainer.json}.
///
/// Writing (rank 0 only): files go to RUN/checkpoints/.tmp-step-NNNNNNNN/, each
/// fsync'ed; trainer.json records each file's SHA-256 and size; the directory is
/// fsync'ed, renamed to step-NNNNNNNN and the parent fsync'ed; then all but the
/// newest `keep` checkpoints are removed. A crash at any moment leaves earlier
/// checkpoints intact and at worst a `.tmp-*` directory, which readers ignore and
/// the next `save` (or the trainer at start-up, holding the run lock) removes; a
/// write that fails (e.g. no space left on device) removes its own `.tmp-*`.
///
/// RUN/checkpoints/best (`saveBest`) holds the same files for the best probe
/// evaluation so far; it is replaced in place (the old one is moved aside to
/// `.old-best-PID` first and moved back by the next save if the replacement never
/// arrived) and never pruned.
public final class CheckpointStore {
  public let runDirectory: URL
  /// RUN/checkpoints
  public let directory: URL
  public let keep: Int
  /// Receives one-line warnings (corrupt checkpoints skipped); default: stderr.
  public var warn: (String) -> Void = { FileHandle.standardError.write(Data(("warning: " + $0 + "\n").utf8)) }

  public static let format = "cde-checkpoint-1"

  public init(runDirectory: URL, keep: Int) {
    self.runDirectory = runDirectory
    self.directory = runDirectory.appendingPathComponent(CheckpointLayout.checkpointsFolder, isDirectory: true)
    self.keep = max(1, keep)
  }

  public convenience init(runDirectory: String, keep: Int) {
    self.init(runDirectory: URL(fileURLWithPath: runDirectory, isDirectory: true), keep: keep)
  }

  static func name(step: Int) -> String { CheckpointLayout.directoryName(step: step) }

  // MARK: Writing

  /// Writes a checkpoint atomically and prunes old ones; returns its directory.
  /// `state` is the trainer's state (step, epoch, data cursor, schedule, seed,
  /// config, world size, metrics, ...); it must encode to a JSON object. The keys
  /// `step`, `format` and `files` are set by the store.
  @discardableResult
  public func save<S: Encodable>(step: Int, files: [(name: String, data: Data)], state: S) throws -> URL {
    try save(step: step, files: files, trainerState: try Self.object(state, step: step))
  }

  /// As `save(step:files:state:)` with the state as a JSON object.
  @discardableResult
  public func save(step: Int, files: [(name: String, data: Data)], trainerState: [String: Any]) throws -> URL {
    let final = try writeDirectory(name: Self.name(step: step), step: step, files: files, trainerState: trainerState)
    prune()
    return final
  }

  /// Name of the best checkpoint's directory, RUN/checkpoints/best.
  public static let bestName = "best"

  /// RUN/checkpoints/best (it may not exist).
  public var bestURL: URL { directory.appendingPathComponent(Self.bestName, isDirectory: true) }

  /// Writes RUN/checkpoints/best as `save` writes a step (same files, checksums and
  /// atomic replacement), outside the keep-K rotation: `prune` and `latestValid` only
  /// consider step-NNNNNNNN directories.
  @discardableResult
  public func saveBest<S: Encodable>(step: Int, files: [(name: String, data: Data)], state: S) throws -> URL {
    try writeDirectory(name: Self.bestName, step: step, files: files, trainerState: try Self.object(state, step: step))
  }

  static func object<S: Encodable>(_ state: S, step: Int) throws -> [String: Any] {
    let encoded: Data
    do { encoded = try JSONEncoder().encode(state) } catch {
      throw CheckpointError(.state, "checkpoint step \(step): cannot encode the trainer state: \(error)")
    }
    guard let object = try? JSONSerialization.jsonObject(with: encoded) as? [String: Any] else {
      throw CheckpointError(.state, "checkpoint step \(step): the trainer state must encode to a JSON object")
    }
    return object
  }

  /// Writes directory `name` atomically (temporary directory, fsync, rename).
  func writeDirectory(name: String, step: Int, files: [(name: String, data: Data)], trainerState: [String: Any]) throws -> URL {
    precondition(step >= 0, "checkpoint step must not be negative")
    let fm = FileManager.default
    do {
      try fm.createDirectory(at: directory, withIntermediateDirectories: true)
    } catch {
      throw CheckpointError(.io(path: directory.path), "\(directory.path): cannot create: \(error.localizedDescription)")
    }
    cleanLeftovers()
    let tmp = directory.appendingPathComponent(".tmp-" + name, isDirectory: true)
    let final = directory.appendingPathComponent(name, isDirectory: true)
    try? fm.removeItem(at: tmp)
    do { try fm.createDirectory(at: tmp, withIntermediateDirectories: false) } catch {
      throw CheckpointError(.io(path: tmp.path), "\(tmp.path): cannot create: \(error.localizedDescription)")
    }

    do {
      var digests: [String: Any] = [:]
      for f in files {
        precondition(f.name != "trainer.json" && !f.name.contains("/"), "bad checkpoint file name \(f.name)")
        try Self.writeSynced(f.data, to: tmp.appendingPathComponent(f.name).path)
        digests[f.name] = ["sha256": SHA256Digest.hex(f.data), "bytes": f.data.count]
      }
      var object = trainerState
      object["step"] = step
      object["format"] = Self.format
      object["files"] = digests
      let json: Data
      do {
        json = try JSONOutput.data(object, layout: .pretty)
      } catch {
        throw CheckpointError(.state, "checkpoint step \(step): the trainer state is not valid JSON: \(error)")
      }
      try Self.writeSynced(json, to: tmp.appendingPathComponent("trainer.json").path)
      try Self.syncDirectory(tmp.path)
    } catch {
      // A write that failed (e.g. no space left on device): free what it took; earlier checkpoints stay.
      try? fm.removeItem(at: tmp)
      throw error
    }

    // Move into place; an existing checkpoint of the same step is replaced.
    var old: URL? = nil
    if fm.fileExists(atPath: final.path) {
      let aside = directory.appendingPathComponent(".old-\(name)-\(getpid())", isDirectory: true)
      guard rename(final.path, aside.path) == 0 else {
        throw CheckpointError(.io(path: final.path), "\(final.path): cannot move aside: \(String(cString: strerror(errno)))")
      }
      old = aside
    }
    guard rename(tmp.path, final.path) == 0 else {
      throw CheckpointError(.io(path: final.path), "\(final.path): cannot rename the temporary checkpoint into place: \(String(cString: strerror(errno)))")
    }
    try Self.syncDirectory(directory.path)
    if let old { try? fm.removeItem(at: old) }
    return final
  }

  /// Removes all but the newest `keep` checkpoints.
  public func prune() {
    let all = list()
    guard all.count > keep else { return }
    for c in all.dropLast(keep) { try? FileManager.default.removeItem(at: c.url) }
  }

  /// Removes `.tmp-*` and `.old-*` directories left by an interrupted save; an
  /// `.old-NAME-PID` whose NAME is missing (a crash between moving the old checkpoint
  /// aside and renaming its replacement into place) is moved back to NAME instead.
  public func cleanLeftovers() {
    let fm = FileManager.default
    guard let names = try? fm.contentsOfDirectory(atPath: directory.path) else { return }
    for n in names.sorted() where n.hasPrefix(".tmp-") || n.hasPrefix(".old-") {
      let url = directory.appendingPathComponent(n)
      if n.hasPrefix(".old-"), let dash = n.lastIndex(of: "-"), dash > n.index(n.startIndex, offsetBy: 5) {
        let original = directory.appendingPathComponent(String(n[n.index(n.startIndex, offsetBy: 5)..<dash]))
        if !fm.fileExists(atPath: original.path), rename(url.path, original.path) == 0 { continue }
      }
      try? fm.removeItem(at: url)
    }
  }

  static func writeSynced(_ data: Data, to path: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw CheckpointError(.io(path: path), "\(path): cannot create: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    try data.withUnsafeBytes { raw in
      var done = 0
      while done < raw.count {
        let n = write(fd, raw.baseAddress! + done, raw.count - done)
        if n < 0 {
          if errno == EINTR { continue }
          throw CheckpointError(.io(path: path), "\(path): write failed: \(String(cString: strerror(errno)))")
        }
        done += n
      }
    }
    guard fsync(fd) == 0 else { throw CheckpointError(.io(path: path), "\(path): fsync failed: \(String(cString: strerror(errno)))") }
  }

  static func syncDirectory(_ path: String) throws {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { throw CheckpointError(.io(path: path), "\(path): cannot open directory: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    guard fsync(fd) == 0 else { throw CheckpointError(.io(path: path), "\(path): fsync failed: \(String(cString: strerror(errno)))") }
  }

  // MARK: Reading

  /// Checkpoint directories (step-NNNNNNNN) present, oldest first; not verified.
  public func list() -> [(step: Int, url: URL)] {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return [] }
    return names.compactMap { n -> (Int, URL)? in
      guard let s = CheckpointLayout.step(ofDirectoryName: n) else { return nil }
      return (s, directory.appendingPathComponent(n, isDirectory: true))
    }.sorted { $0.0 < $1.0 }.map { (step: $0.0, url: $0.1) }
  }

  /// The newest checkpoint whose files match the checksums in its trainer.json.
  /// Each newer checkpoint that fails is reported through `warn` (one line) and skipped.
  public func latestValid() -> Checkpoint? {
    for c in list().reversed() {
      do {
        return try Self.verify(c.url)
      } catch {
        warn("skipping checkpoint \(c.url.path): \(error)")
      }
    }
    return nil
  }

  /// Reads and verifies one checkpoint directory. Throws a one-line error naming
  /// the file that is missing, truncated or altered.
  public static func verify(_ url: URL) throws -> Checkpoint {
    let tj = url.appendingPathComponent("trainer.json")
    guard let json = FileManager.default.contents(atPath: tj.path) else {
      throw CheckpointError(.missing(path: tj.path), "\(tj.path): missing or unreadable")
    }
    guard let object = (try? JSONSerialization.jsonObject(with: json)) as? [String: Any] else {
      throw CheckpointError(.corrupt(path: tj.path), "\(tj.path): not a JSON object (truncated?)")
    }
    guard let step = (object["step"] as? NSNumber)?.intValue ?? (object["step"] as? Int) else {
      throw CheckpointError(.corrupt(path: tj.path), "\(tj.path): no 'step'")
    }
    guard let files = object["files"] as? [String: Any], !files.isEmpty else {
      throw CheckpointError(.corrupt(path: tj.path), "\(tj.path): no 'files' checksums")
    }
    for name in files.keys.sorted() {
      guard let entry = files[name] as? [String: Any], let expected = entry["sha256"] as? String else {
        throw CheckpointError(.corrupt(path: tj.path), "\(tj.path): bad checksum entry for \(name)")
      }
      let path = url.appendingPathComponent(name).path
      guard FileManager.default.fileExists(atPath: path) else { throw CheckpointError(.missing(path: path), "\(path): missing") }
      let (hex, bytes) = try SHA256Digest.hex(fileAt: path)
      if let n = (entry["bytes"] as? NSNumber)?.intValue ?? (entry["bytes"] as? Int), n != bytes {
        throw CheckpointError(.corrupt(path: path), "\(path): \(bytes) bytes, expected \(n) (truncated?)")
      }
      guard hex == expected else { throw CheckpointError(.corrupt(path: path), "\(path): SHA-256 mismatch (altered or corrupt)") }
    }
    return Checkpoint(url: url, step: step, trainerJSON: json)
  }

  /// `--resume PATH`: PATH is a checkpoint directory (holding trainer.json),
  /// verified strictly, or a run directory, whose newest valid checkpoint is taken.
  public static func load(path: String, warn: ((String) -> Void)? = nil) throws -> Checkpoint {
    let url = URL(fileURLWithPath: path, isDirectory: true)
    let fm = FileManager.default
    if fm.fileExists(atPath: url.appendingPathComponent("trainer.json").path) {
      return try verify(url)
    }
    if fm.fileExists(atPath: url.appendingPathComponent(CheckpointLayout.checkpointsFolder).path) {
      let store = CheckpointStore(runDirectory: url, keep: 1)
      if let warn { store.warn = warn }
      guard let c = store.latestValid() else { throw CheckpointError(.noValidCheckpoint(path: path), "\(path): no valid checkpoint in \(store.directory.path)") }
      return c
    }
    var isDir: ObjCBool = false
    if !fm.fileExists(atPath: path, isDirectory: &isDir) { throw CheckpointError(.notACheckpoint(path: path), "\(path): no such checkpoint") }
    throw CheckpointError(.notACheckpoint(path: path), "\(path): not a checkpoint directory (no trainer.json) nor a run directory (no checkpoints/)")
  }
}
