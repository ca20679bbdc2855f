import ArgumentParser
import Evaluation
import Foundation

/// `cde export`: a model in another layout.
struct Export: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Write a model in another layout: a Hugging Face transformers ViTModel directory, or a timm-named safetensors file.",
    discussion: """
      --to hf writes OUT/model.safetensors (transformers names: q, k, v split out of qkv) and \
      OUT/config.json (shape, layer_norm_eps of the model), loadable by ViTModel.from_pretrained(OUT); \
      the class token of last_hidden_state is the CoDE embedding. --to timm writes the parameters \
      under timm's names (OUT, or OUT/model.safetensors when OUT is a directory or has no .safetensors \
      suffix), loadable by timm.create_model("vit_tiny_patch16_224", num_classes=0) for ViT-Tiny.
      """)

  @OptionGroup var modelOptions: ModelOptions

  @Option(help: "Target layout: hf or timm.") var to: String

  @Option(help: "Output directory (hf) or file (timm).") var out: String

  func validate() throws {
    if modelOptions.model == nil { throw ValidationError("--model is required") }
    if to != "hf" && to != "timm" { throw ValidationError("--to must be hf or timm (got \(to))") }
  }

  func run() throws {
    let model = try modelOptions.load()
    let tensors = model.tensors()
    let c = model.config
    let shape = "width \(c.width), depth \(c.depth), heads \(c.heads), MLP \(c.mlpDim), patch \(c.patch), image \(c.imageSize), eps \(c.lnEps)"
    if to == "hf" {
      try exportHuggingFace(tensors: tensors, config: HFViTConfig(vit: c), to: out)
      print("\(out): Hugging Face ViTModel (\(shape))")
    } else {
      var isDir: ObjCBool = false
      let exists = FileManager.default.fileExists(atPath: out, isDirectory: &isDir)
      var file = out
      if (exists && isDir.boolValue) || !out.hasSuffix(".safetensors") {
        do { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) } catch {
          throw CLIError(.io(path: out), "\(out): cannot create directory: \(error.localizedDescription)")
        }
        file = (out as NSString).appendingPathComponent("model.safetensors")
      }
      try model.vit.save(path: file)
      print("\(file): timm names (\(shape))")
    }
  }
}
