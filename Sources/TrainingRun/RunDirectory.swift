import Foundation
import JSONOutput

/// Start-up guards of a run directory, taken by rank 0 before anything in it is touched:
/// one job per directory (an `flock` on RUN/lock held for the life of the process),
/// writable RUN and RUN/checkpoints, room for a checkpoint, and RUN/status.json.
///
/// The lock is released by the kernel when the process ends, however it ends, so a
/// lock file left by a killed job does not block the next one; the file only tells
/// a second job who holds the lock ("host H pid P since T").
public final class RunDirectory {
  public let url: URL
  /// Descriptor of RUN/lock, locked (LOCK_EX) while this object lives.
  private var lockFD: Int32 = -1

  public var lockURL: URL { url.appendingPathComponent("lock") }
  public var statusURL: URL { url.appendingPathComponent("status.json") }

  public init(_ url: URL) { self.url = url }

  deinit { if lockFD >= 0 { close(lockFD) } }

  /// Creates RUN if needed and locks RUN/lock; a live holder is a refusal naming its host and pid.
  public func lock() throws {
    do {
      try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    } catch {
      throw TrainError.refusal(.runDirectory(path: url.path), "\(url.path): cannot create the run directory: \(Self.reason(error))")
    }
    let path = lockURL.path
    let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw TrainError.refusal(.runDirectory(path: path), "\(path): cannot open the run lock: \(String(cString: strerror(errno)))") }
    if flock(fd, LOCK_EX | LOCK_NB) != 0 {
      let e = errno
      var holder = String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
        .trimmingCharacters(in: .whitespacesAndNewlines)
      if holder.isEmpty { holder = "unknown holder" }
      close(fd)
      if e == EWOULDBLOCK {
        throw TrainError.refusal(.runDirectoryInUse(path: url.path), "\(url.path) is in use by another job (\(holder)); one job per run directory (lock \(path))")
      }
      throw TrainError.refusal(.runDirectory(path: path), "\(path): cannot lock: \(String(cString: strerror(e)))")
    }
    lockFD = fd
    var host = [CChar](repeating: 0, count: 256)
    gethostname(&host, host.count - 1)
    let line = "host \(String(cString: host)) pid \(getpid()) since \(ISO8601DateFormatter().string(from: Date()))\n"
    _ = ftruncate(fd, 0)
    _ = line.withCString { pwrite(fd, $0, strlen($0), 0) }
  }

  /// Fails unless a file can be created in `directory` (created if missing): found at
  /// start-up rather than at the first checkpoint, possibly hours later.
  public func requireWritable(_ directory: URL, what: String) throws {
    do {
      try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    } catch {
      throw TrainError.refusal(.runDirectory(path: directory.path), "\(directory.path): cannot create the \(what): \(Self.reason(error))")
    }
    let probe = directory.appendingPathComponent(".write-test-\(getpid())").path
    let fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
      throw TrainError.refusal(.runDirectory(path: directory.path), "\(directory.path): the \(what) is not writable (\(String(cString: strerror(errno))))")
    }
    close(fd)
    unlink(probe)
  }

  /// Fails unless the file system of `directory` has at least 2 x `checkpointBytes` free.
  public func requireSpace(_ directory: URL, checkpointBytes: Int) throws {
    var s = statvfs()
    guard statvfs(directory.path, &s) == 0 else { return }
    let free = Double(s.f_bavail) * Double(s.f_frsize)
    let need = 2 * Double(checkpointBytes)
    if free < need {
      throw TrainError.refusal(.runDirectory(path: directory.path), String(format: "%@: %.1f MiB free, a checkpoint takes %.1f MiB and at least twice that must be free",
                                      directory.path, free / 1048576, Double(checkpointBytes) / 1048576))
    }
  }

  /// Writes RUN/status.json: {"state": STATE, "step": N[, "reason": "..."]}. Atomically
  /// (temporary file and rename) when it can, else in place: on a full file system the
  /// rename's new file may not fit where rewriting the existing small file still does.
  public func writeStatus(_ state: String, step: Int, reason: String? = nil) {
    var object: [String: Any] = ["state": state, "step": step]
    if let reason { object["reason"] = reason }
    guard var data = try? JSONOutput.data(object, escapingSlashes: false) else { return }
    data.append(0x0A)
    do { try data.write(to: statusURL, options: .atomic) } catch { try? data.write(to: statusURL) }
  }

  static func reason(_ error: Error) -> String {
    let ns = error as NSError
    if let u = ns.userInfo[NSUnderlyingErrorKey] as? NSError, u.domain == NSPOSIXErrorDomain {
      return String(cString: strerror(Int32(u.code)))
    }
    return ns.localizedDescription
  }
}
