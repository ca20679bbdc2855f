import ArgumentParser
import Evaluation
import Foundation

/// `cde report RUN`: one self-contained HTML page about a run.
struct Report: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "report",
    abstract: "Write a one-file HTML report of a run: loss, learning rate, throughput, per-generator accuracy, embedding projection.",
    discussion: """
      Reads RUN/metrics.jsonl (training log), RUN/eval.json (`cde eval --output`) and \
      RUN/embeddings-test.safetensors (`cde embed`), whichever exist. The page has no \
      scripts and loads nothing from the network.
      """)

  @Argument(help: "The run directory.")
  var runDirectory: String

  @Option(name: .shortAndLong, help: "Output file (default RUN/report.html).")
  var output: String?

  func run() throws {
    let path = try HTMLReport.write(run: runDirectory, to: output)
    print(path)
  }
}
