import ArgumentParser

@main
struct CDE: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "cde",
    abstract: "Train and use CoDE (Contrastive Deepfake Embeddings) ViT models on CPU clusters.",
    subcommands: [])
}
