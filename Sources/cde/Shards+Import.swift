import ArgumentParser
import Clock
import Dataset
import Foundation
import Imaging

extension Shards {
  /// `cde shards import`: the Hugging Face release of D3 (parquet) plus the real images
  /// fetched with img2dataset, as training shards.
  struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "import",
      abstract: "Write D3 training shards from the Hugging Face parquet files and an img2dataset download of the real images.",
      discussion: """
        The parquet files (elsaEU/ELSA_D3: id, original_prompt, url, filepath_gen0..3, \
        image_gen0..3 with `bytes`, ...) are read with pyarrow by scripts/d3_import.py \
        (python3 on PATH or CDE_PYTHON; pip install pyarrow). Each row is joined on `url` \
        with the --real img2dataset output (folders or .tar shards; every image has a .json \
        sidecar carrying its url) and written as KEY.real.EXT, KEY.gen_0.EXT ... KEY.gen_3.EXT \
        (each generator's own encoding, extension from filepath_genK), KEY.caption.txt \
        (original_prompt) and KEY.url.txt, KEY being the row's id. Every image is decoded as \
        training decodes it: a row whose real or generated image is missing or unreadable is \
        left out, counted, and listed in OUT/import/skipped.tsv. Shards OUT/PREFIX-NNNNNN.tar \
        hold --shard-size records each (the last one fewer). A rerun with the same inputs \
        resumes after the last complete shard.
        """)

    @Option(name: .customLong("parquet"), parsing: .upToNextOption, help: "Parquet files, globs (expanded by the tool) or directories of .parquet files.")
    var parquet: [String]
    @Option(name: .customLong("real"), parsing: .upToNextOption, help: "img2dataset output: folders of images with .json sidecars, or .tar shards.")
    var real: [String]
    @Option(help: "Output directory of the shards.") var out: String
    @Option(name: .customLong("shard-size"), help: "Records per shard.") var shardSize: Int = 5000
    @Option(help: "Shard file name prefix (PREFIX-000000.tar ...).") var prefix: String = "d3"
    @Option(help: "Threads decoding images (default: all cores).") var threads: Int?
    @Option(name: .customLong("max-image-pixels"), help: "Largest image (width x height) accepted; larger ones make their row skipped (default: Pillow's 89478485).")
    var maxImagePixels: Int = DecodePolicy.pillowMaxPixels
    @Flag(help: "No progress bar.") var quiet = false

    func validate() throws {
      if parquet.isEmpty { throw ValidationError("--parquet: give at least one parquet file or glob") }
      if real.isEmpty { throw ValidationError("--real: give the img2dataset output folder") }
      if shardSize < 1 { throw ValidationError("--shard-size must be at least 1 (got \(shardSize))") }
      if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1 (got \(t))") }
      if maxImagePixels < 1 { throw ValidationError("--max-image-pixels must be at least 1 (got \(maxImagePixels))") }
      if prefix.isEmpty || prefix.contains("/") || prefix.hasPrefix(".") {
        throw ValidationError("--prefix must be a plain file name prefix (got '\(prefix)')")
      }
    }

    func run() throws {
      setenv("VIPS_WARNING", "0", 0)  // an unreadable image is one line in the report
      do { try execute() } catch is PythonTool.ExitStatus { throw ExitCode(1) }  // the tool printed its error line
    }

    func execute() throws {
      let tool = try PythonTool.locate("d3_import.py")
      let planData = try tool.output(["plan", "--parquet"] + parquet)
      let plan: ImportPlan
      do { plan = try JSONDecoder().decode(ImportPlan.self, from: planData) } catch {
        throw CLIError(.pythonTool, "\(tool.script) plan: unexpected output")
      }
      let threads = self.threads ?? ProcessInfo.processInfo.activeProcessorCount
      let importer = try D3ShardImporter(out: out, inputs: ImportInputs(plan: plan, shardSize: shardSize, prefix: prefix),
                                         policy: DecodePolicy(maxPixels: maxImagePixels), threads: threads)
      let t0 = MonotonicClock.seconds()
      print("import: \(plan.total) rows in \(plan.files.count) parquet file(s)"
            + (importer.startRow > 0 ? "; resuming at row \(importer.startRow) after \(importer.shardCount) complete shard(s)" : ""))
      if importer.startRow < plan.total {
        try stream(tool: tool, importer: importer, total: plan.total)
      }
      let secs = MonotonicClock.seconds(since: t0)
      let rate = Double(importer.rowsThisRun) / max(secs, 1e-9)
      let r = try importer.finish(extra: ["seconds_last_run": secs, "rows_last_run": importer.rowsThisRun,
                                          "rows_per_s_last_run": rate, "threads": threads])
      let skipped = importer.skippedTotal
      var byReason: [String: Int] = [:]
      for s in skipped { byReason[Self.reasonClass(s.reason), default: 0] += 1 }
      print("import: \(r.records) records in \(r.shards) shard(s) in \(out), \(r.skipped) row(s) skipped"
            + (r.skipped > 0 ? " (listed in \((out as NSString).appendingPathComponent("import/skipped.tsv")))" : ""))
      for (reason, n) in byReason.sorted(by: { $0.key < $1.key }) { print("  \(reason): \(n)") }
      print(String(format: "import: this run read %d rows in %.1f s = %.1f rows/s (%d thread(s))",
                   importer.rowsThisRun, secs, rate, threads))
      if r.records == 0 {
        printErr("error: no record could be imported (see \((out as NSString).appendingPathComponent("import/skipped.tsv")))")
        throw ExitCode(1)
      }
    }

    /// The kind of a skip reason, for the summary: its text before the first colon or parenthesis.
    static func reasonClass(_ r: String) -> String {
      let cut = r.firstIndex(where: { $0 == ":" || $0 == "(" }) ?? r.endIndex
      return r[..<cut].trimmingCharacters(in: .whitespaces)
    }

    /// Reads the tool's frames on a background thread (batches of rows, at most two
    /// waiting) while this thread validates and writes them.
    func stream(tool: PythonTool, importer: D3ShardImporter, total: Int) throws {
      let pipe = Pipe()
      let process = try tool.start(["stream", "--parquet"] + importer.inputs.plan.files + ["--real"] + real
                                     + ["--start-row", String(importer.startRow)], stdout: pipe)
      let reader = FrameReader(fd: pipe.fileHandleForReading.fileDescriptor)
      let batchRows = max(16, 8 * importer.threads)
      let queue = BoundedQueue<Result<[ImportRow], Error>?>(capacity: 2)
      let thread = Thread {
        var batch: [ImportRow] = []
        do {
          while let row = try Self.nextRow(reader) {
            batch.append(row)
            if batch.count == batchRows { queue.put(.success(batch)); batch = [] }
          }
          if !batch.isEmpty { queue.put(.success(batch)) }
          queue.put(nil)
        } catch { queue.put(.failure(error)) }
      }
      thread.start()
      let bar = ProgressBar(total: total - importer.startRow, enabled: !quiet, unit: "rows")
      var failure: Error? = nil
      while let item = queue.take() {
        switch item {
        case .success(let rows):
          do { try importer.add(rows) } catch { failure = error }
          bar.update(importer.rowsThisRun)
        case .failure(let e): failure = e
        }
        if failure != nil { break }
      }
      bar.finish()
      if failure != nil { process.terminate() }
      process.waitUntilExit()
      if failure is StreamEnded, process.terminationStatus != 0 { throw PythonTool.ExitStatus(status: process.terminationStatus) }
      if let failure { throw failure }
      if process.terminationStatus != 0 { throw PythonTool.ExitStatus(status: process.terminationStatus) }
    }

    /// One frame of `d3_import.py stream`: nil at its end marker.
    static func nextRow(_ r: FrameReader) throws -> ImportRow? {
      guard let line = r.line() else { throw StreamEnded() }
      guard let h = (try? JSONSerialization.jsonObject(with: line)) as? [String: Any] else {
        throw CLIError(.pythonTool, "d3_import.py: malformed frame header")
      }
      if h["end"] as? Bool == true { return nil }
      guard let row = h["row"] as? Int, let key = h["key"] as? String, let imgs = h["images"] as? [[String: Any]] else {
        throw CLIError(.pythonTool, "d3_import.py: frame header without row, key or images")
      }
      var images: [ImportImage] = []
      for i in imgs {
        if let why = i["missing"] as? String { images.append(.missing(why)); continue }
        guard let ext = i["ext"] as? String, let size = i["size"] as? Int, let data = r.bytes(size) else {
          throw CLIError(.pythonTool, "d3_import.py: stream ended inside row \(row)")
        }
        images.append(.present(ext: ext, data: data))
      }
      return ImportRow(row: row, id: h["id"] as? String ?? "", key: key, caption: h["caption"] as? String ?? "",
                       url: h["url"] as? String ?? "", images: images)
    }

    /// The tool's output ended before its end marker (it failed and said why on stderr).
    struct StreamEnded: Error, CustomStringConvertible {
      var description: String { "d3_import.py: stream ended early" }
    }
  }
}

/// A blocking queue of at most `capacity` items.
final class BoundedQueue<T>: @unchecked Sendable {
  private var items: [T] = []
  private let capacity: Int
  private let cond = NSCondition()
  init(capacity: Int) { self.capacity = capacity }

  func put(_ x: T) {
    cond.lock()
    while items.count >= capacity { cond.wait() }
    items.append(x)
    cond.broadcast()
    cond.unlock()
  }

  func take() -> T {
    cond.lock()
    while items.isEmpty { cond.wait() }
    let x = items.removeFirst()
    cond.broadcast()
    cond.unlock()
    return x
  }
}
