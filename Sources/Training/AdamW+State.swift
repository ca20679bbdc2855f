import Foundation
import SafeTensors
import ViT

/// The optimiser state of a checkpoint, `optimizer.safetensors` (PyTorch's state names):
/// metadata `{"optimizer": "AdamW", "step": t}`, and per parameter tensor NAME of the model
/// `exp_avg.NAME` (m) and `exp_avg_sq.NAME` (v), F32, NAME's shape. The step count t that
/// resumes from is the trainer's (`TrainerState.optimizerSteps`), equal to the metadata's.
extension AdamW {
  /// Tensor-name prefixes of the first and second moment.
  public static let firstMomentPrefix = "exp_avg.", secondMomentPrefix = "exp_avg_sq."

  /// The bytes of `optimizer.safetensors` for the moments of `model`'s parameters.
  public func serializedState(model: ViTModel) -> Data {
    var w = SafeTensorsWriter(metadata: ["optimizer": "AdamW", "step": "\(stepCount)"])
    model.addTensors(to: &w, from: m, prefix: Self.firstMomentPrefix)
    model.addTensors(to: &w, from: v, prefix: Self.secondMomentPrefix)
    return w.serialized()
  }

  /// Reads both moments from the `optimizer.safetensors` at `path` (every tensor of the
  /// layout, with its shape) and sets the step count (resume).
  public func loadState(path: String, stepCount: Int) throws {
    let file = try SafeTensorsFile(path: path)
    for e in layout.entries {
      try file.read(Self.firstMomentPrefix + e.name, into: m + e.offset, shape: e.shape)
      try file.read(Self.secondMomentPrefix + e.name, into: v + e.offset, shape: e.shape)
    }
    restore(stepCount: stepCount)
  }
}
