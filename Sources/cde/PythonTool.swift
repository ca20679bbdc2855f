import Foundation

/// A Python tool of the repository (`scripts/NAME`), run with the Python of `CDE_PYTHON`
/// or the first `python3` on PATH. The tools stay in Python where a maintained Python
/// library does the work (pyarrow for parquet, scikit-learn for its pickles).
struct PythonTool {
  let python: String
  let script: String

  /// Finds the interpreter and `scripts/<name>`: in `CDE_SCRIPTS` if set, else in a
  /// `scripts/` folder beside the executable or above it (the repository's
  /// `.build/release/cde`), else in `<prefix>/share/cde/scripts`.
  static func locate(_ name: String) throws -> PythonTool {
    let env = ProcessInfo.processInfo.environment
    var python: String? = nil
    if let p = env["CDE_PYTHON"], !p.isEmpty {
      guard FileManager.default.isExecutableFile(atPath: p) else { throw CLIError(.pythonTool, "CDE_PYTHON \(p): not an executable file") }
      python = p
    } else {
      for dir in (env["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
        let p = (String(dir) as NSString).appendingPathComponent("python3")
        if FileManager.default.isExecutableFile(atPath: p) { python = p; break }
      }
    }
    guard let python else { throw CLIError(.pythonTool, "python3 not found on PATH (install Python 3, or set CDE_PYTHON)") }

    var candidates: [String] = []
    if let d = env["CDE_SCRIPTS"], !d.isEmpty { candidates.append((d as NSString).appendingPathComponent(name)) } else {
      let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
      var dir = (exe as NSString).deletingLastPathComponent
      for _ in 0..<5 {
        candidates.append((dir as NSString).appendingPathComponent("scripts/\(name)"))
        dir = (dir as NSString).deletingLastPathComponent
      }
      candidates.append(((exe as NSString).deletingLastPathComponent as NSString).appendingPathComponent("../share/cde/scripts/\(name)"))
    }
    guard let script = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
      throw CLIError(.pythonTool, "cannot find scripts/\(name) of the cde repository (looked in \(candidates.first ?? "-") and above; set CDE_SCRIPTS to its scripts/ folder)")
    }
    return PythonTool(python: python, script: URL(fileURLWithPath: script).standardizedFileURL.path)
  }

  /// Starts the tool; its stderr is this process's stderr.
  func start(_ arguments: [String], stdout: Pipe) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: python)
    p.arguments = [script] + arguments
    p.standardOutput = stdout
    p.standardError = FileHandle.standardError
    do { try p.run() } catch { throw CLIError(.pythonTool, "\(python): cannot run (\(error.localizedDescription))") }
    return p
  }

  /// Runs the tool to the end and returns its stdout. A failure (the tool printed its
  /// own error line) is exit status 1.
  func output(_ arguments: [String]) throws -> Data {
    let pipe = Pipe()
    let p = try start(arguments, stdout: pipe)
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    if p.terminationStatus != 0 { throw ExitStatus(status: p.terminationStatus) }
    return data
  }

  /// The tool exited non-zero after printing its error.
  struct ExitStatus: Error { let status: Int32 }
}

/// Reads a byte stream of lines and fixed-size blocks from a file descriptor.
final class FrameReader {
  let fd: Int32
  var buffer = [UInt8]()
  var start = 0
  var eof = false

  init(fd: Int32) { self.fd = fd }

  private func fill() -> Bool {
    if eof { return false }
    if start > 0 && start == buffer.count { buffer.removeAll(keepingCapacity: true); start = 0 }
    else if start > 1 << 20 { buffer.removeFirst(start); start = 0 }
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    if n <= 0 { eof = true; return false }
    buffer.append(contentsOf: chunk[0..<n])
    return true
  }

  /// The next line without its newline; nil at the end of the stream.
  func line() -> Data? {
    var scanned = start
    while true {
      if let nl = buffer[scanned...].firstIndex(of: 10) {
        let d = Data(buffer[start..<nl])
        start = nl + 1
        return d
      }
      scanned = buffer.count
      let offset = scanned - start
      if !fill() { return nil }
      scanned = start + offset
    }
  }

  /// Exactly `n` bytes; nil if the stream ends first.
  func bytes(_ n: Int) -> Data? {
    while buffer.count - start < n { if !fill() { return nil } }
    let d = Data(buffer[start..<(start + n)])
    start += n
    return d
  }
}
