import ArgumentParser
import Clock
import Dataset
import Imaging
import Foundation

/// `cde shards`: write synthetic D3 data, check shards and folders.
struct Shards: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "shards",
    abstract: "Write synthetic D3 data, import the published D3, or check D3 shards and folders.",
    subcommands: [Synth.self, Import.self, Check.self, Bench.self, Preview.self])

  struct Synth: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Write synthetic D3 records (WebDataset tar shards or real/ gen_k/ folders).")

    @Option(help: "Output directory.") var out: String
    @Option(help: "Number of records.") var records: Int
    @Option(name: .customLong("shard-size"), help: "Records per tar shard.") var shardSize: Int = 5000
    @Option(help: "Seed of the synthetic images.") var seed: UInt64 = 42
    @Option(help: "Output layout: wds (tar shards) or folders (real/, gen_0/ ... gen_3/).") var layout: String = "wds"
    @Option(help: "Threads making images (default: all cores).") var threads: Int?
    @Option(help: "Scale of every real-vs-generated cue (1: the documented subtle levels; see docs/synthetic-d3.md).")
    var strength: Double = 1
    @Option(help: "What a record's images share: theme (palette and scene type, each image its own layout) or layout (the generated images re-render the real image's scene).")
    var scene: String = "theme"

    func run() throws {
      guard strength >= 0, strength <= 20 else { throw ValidationError("--strength must be between 0 and 20 (got \(strength))") }
      guard let lay = SynthLayout(rawValue: layout) else {
        throw ValidationError("--layout must be wds or folders (got \(layout))")
      }
      guard let sharing = SyntheticD3.SceneSharing(rawValue: scene) else {
        throw ValidationError("--scene must be theme or layout (got \(scene))")
      }
      let t0 = MonotonicClock.seconds()
      let s = try runOrExit {
        try writeSyntheticD3(out: out, records: records, shardSize: shardSize, seed: seed, layout: lay,
                             threads: threads ?? ProcessInfo.processInfo.activeProcessorCount, strength: strength,
                             scene: sharing)
      }
      let secs = MonotonicClock.seconds(since: t0)
      print("wrote \(s.records) records, \(s.files.count) files, \(s.bytes / 1024) KiB in \(out) (\(String(format: "%.1f", secs)) s)")
    }
  }

  struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Validate shards or folders: records, skipped records and their reasons per shard.",
      discussion: """
        Every image is decoded with the training policy (damage is an error; images over \
        --max-image-pixels are refused). Exits 1 when no record is readable, or when a source is \
        damaged (bad tar headers, truncation, not a tar archive, cannot be opened): records were lost.
        """)

    @Argument(help: "Shards, globs, directories of shards, or real/ gen_k/ folders.") var paths: [String]
    @Option(help: "Threads decoding images (default: all cores).") var threads: Int?
    @Option(name: .customLong("max-image-pixels"), help: "Largest image (width x height) decoded; larger ones are bad records (default: Pillow's 89478485).")
    var maxImagePixels: Int = DecodePolicy.pillowMaxPixels
    @Flag(help: "Print only the per-shard summary lines, not each skipped record.") var quiet = false

    func validate() throws {
      if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1 (got \(t))") }
      if maxImagePixels < 1 { throw ValidationError("--max-image-pixels must be at least 1 (got \(maxImagePixels))") }
    }

    func run() throws {
      setenv("VIPS_WARNING", "0", 0)  // damage is reported per record below
      let check = try runOrExit {
        try checkDataSet(paths: paths, threads: threads ?? ProcessInfo.processInfo.activeProcessorCount,
                         policy: DecodePolicy(maxPixels: maxImagePixels))
      }
      let reports = check.sources
      var records = 0, good = 0, lost = 0, damaged = 0
      for i in check.ignored { print("ignored: \(i)") }
      for r in reports {
        records += r.records
        good += r.good
        lost += r.lost
        if r.damaged { damaged += 1 }
        print("\(r.path): \(r.records) records, \(r.good) readable, \(r.skipped.count) skipped, \(r.lost) lost to damage"
              + (r.damaged ? " (damaged)" : ""))
        for i in r.issues { print("  issue: \(i)") }
        var byReason: [SkipReason: Int] = [:]
        for s in r.skipped { byReason[s.reason, default: 0] += 1 }
        for reason in SkipReason.allCases where byReason[reason] != nil {
          print("  \(reason.rawValue): \(byReason[reason]!)")
        }
        if !quiet {
          for s in r.skipped { print("  skipped \(s.key): \(s.reason.rawValue): \(s.detail)") }
        }
      }
      print("total: \(reports.count) sources, \(records) records, \(good) readable, \(records - good) skipped, "
            + "\(lost) lost to damage, \(damaged) damaged source(s)")
      if good == 0 {
        FileHandle.standardError.write(Data("error: \(paths.joined(separator: " ")): no readable records\n".utf8))
        throw ExitCode(1)
      }
      if damaged > 0 {
        FileHandle.standardError.write(Data("error: \(damaged) damaged source(s), \(lost) record(s) found lost to damage (more may be lost: see the issues)\n".utf8))
        throw ExitCode(1)
      }
    }
  }
}

extension Shards {
  /// Loader throughput: records per second turned into eight views.
  struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Measure the data loader: records/s decoded and turned into the eight CoDE views.",
      discussion: "The trainer is simulated as taking no time, so the figure is the loader's own rate.")

    @Argument(help: "Shards or folders (e.g. the output of `cde shards synth`).") var paths: [String]
    @Option(help: "Loader threads.") var threads: Int = 1
    @Option(name: .customLong("batch"), help: "Records per step.") var batch: Int = 16
    @Option(help: "Steps to time (after one warm-up step).") var steps: Int = 8
    @Option(name: .customLong("image-size"), help: "Side of the global views.") var imageSize: Int = 224
    @Option(name: .customLong("local-size"), help: "Side of the local views.") var localSize: Int = 96
    @Option(help: "Sampling seed.") var seed: UInt64 = 42
    @Option(name: .customLong("index-dir"), help: "Directory for shard indexes (default: beside the shards).") var indexDir: String?

    func validate() throws {
      if threads < 1 { throw ValidationError("--threads must be at least 1 (got \(threads))") }
      if batch < 1 { throw ValidationError("--batch must be at least 1 (got \(batch))") }
      if steps < 1 { throw ValidationError("--steps must be at least 1 (got \(steps))") }
      if imageSize < 1 || localSize < 1 { throw ValidationError("--image-size and --local-size must be positive") }
      // The loader's pool: prefetch + 1 = 2 batches of eight views [3, S, S] / [3, L, L] as floats.
      let s = Double(imageSize), l = Double(localSize)
      try requireMemory("--batch", batch, bytes: 2 * Double(batch) * 3 * 4 * (6 * s * s + 2 * l * l),
                        what: "two batches of the eight views of \(batch) records")
    }

    func run() throws {
      var config = LoaderConfig(paths: paths, seed: seed, globalBatch: batch,
                                spec: ViewSpec(imageSize: imageSize, localSize: localSize),
                                threads: threads, prefetch: 1)
      config.indexDirectory = indexDir
      let loader = try runOrExit { try D3Loader(config: config, cursor: DataCursor()) }
      defer { loader.close() }
      _ = try runOrExit { try loader.next() }
      let t0 = MonotonicClock.seconds()
      for _ in 0..<steps { _ = try runOrExit { try loader.next() } }
      let secs = MonotonicClock.seconds(since: t0)
      let n = steps * batch
      let st = loader.stats
      print(String(format: "loader: %d records in %.2f s = %.2f records/s (%d thread(s), views %d/%d px, %d records in set, %d skipped)",
                   n, secs, Double(n) / secs, threads, imageSize, localSize, loader.recordCount, st.skippedTotal))
    }
  }
}

/// Runs `body`, turning an error into one line on stderr and exit code 1.
private func runOrExit<T>(_ body: () throws -> T) throws -> T {
  do { return try body() } catch let e as ExitCode { throw e } catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    throw ExitCode(1)
  }
}
