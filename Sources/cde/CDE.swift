import ArgumentParser
import Kernels

@main
struct CDE: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "cde",
    abstract: "Train and use CoDE (Contrastive Deepfake Embeddings) ViT models on CPU clusters.",
    subcommands: [Train.self, Shards.self, Embed.self, Eval.self, Detect.self, ImportClassifiers.self, Export.self, Report.self, Step.self, Bench.self, Compare.self, RandomViews.self, SelfTest.self])

  static func main() {
    BLASRuntime.ensureBestKernel()
    do {
      var command = try parseAsRoot()
      try command.run()
    } catch {
      exit(withError: error)
    }
  }
}
