import ArgumentParser
import Collectives
import Foundation
import Kernels
import SafeTensors
import Training
import TrainingRun
import ViT

/// `cde step`: one CoDE training step on given views, written out tensor by
/// tensor (the parity and debugging interface).
struct Step: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run one CoDE training step on a batch of views and write loss, embeddings, gradients and updated parameters.",
    discussion: """
      VIEWS holds F32 tensors real, fake, aug_real, aug_fake, global_real, global_fake [B,3,S,S], \
      local_real, local_fake [B,3,L,L] (normalised pixels) and I64 perm [B]. The output holds loss [1], \
      loss_real, loss_fake, embedding.<view> [B,D] for the eight views, grad.<name> for every parameter, \
      param.<name> after one AdamW step, and health.<figure> [1] for each health figure `cde train` logs \
      (loss terms, embedding figures, gradient norms; see Sources/Training/EmbeddingHealth.swift).
      """)

  @Option(help: "Model weights (safetensors, timm names).") var model: String?
  @Option(name: .customLong("init-seed"), help: "Initialise the model timm-style from this seed instead of --model.") var initSeed: UInt64?
  @Option(help: "YAML config whose model: section gives a non-default ViT shape.") var config: String?
  @Option(help: "Views file (safetensors).") var views: String
  @Option(help: "Learning rate of the AdamW step.") var lr: Float = 1e-3
  @Option(name: .customLong("weight-decay"), help: "Weight decay (weight matrices only).") var weightDecay: Float = 0.05
  @Option(help: "InfoNCE temperature.") var temperature: Float = 0.1
  @Option(help: "Output file (safetensors).") var out: String
  @Option(name: .customLong("grad-cache-chunk"), help: "Gradient caching: records per forward/backward chunk (0: off).")
  var gradCacheChunk: Int = 0
  @OptionGroup var precisionOption: PrecisionOption
  @OptionGroup var compute: ComputeOptions

  func validate() throws {
    if (model == nil) == (initSeed == nil) { throw ValidationError("give exactly one of --model and --init-seed") }
    if lr < 0 { throw ValidationError("--lr must not be negative") }
  }

  func run() throws {
    compute.apply()
    precisionOption.apply()
    let cfg = try loadModelConfig(config)
    let vit = try ViTModel(config: cfg)
    if let model { try vit.load(path: model) } else { vit.initialize(seed: initSeed!) }
    let batch = try CoDEViewsFile.read(path: views, channels: cfg.channels, patch: cfg.patch)
    // Under mpirun, rank r takes rows r*B/N ..< (r+1)*B/N of every view.
    let comm = makeCommunicator()
    defer { comm.finalize() }
    let b = batch.records, s = batch.imageSize, l = batch.localSize
    guard b % comm.size == 0 else {
      throw CLIError(.invalidArgument, "\(views): batch of \(b) records does not split evenly over \(comm.size) ranks")
    }
    let lb = b / comm.size
    let myGlobal = CoDEStep.rankRows(batch.global, views: 6, records: b, rank: comm.rank, ranks: comm.size, per: cfg.channels * s * s)
    let myLocal = CoDEStep.rankRows(batch.local, views: 2, records: b, rank: comm.rank, ranks: comm.size, per: cfg.channels * l * l)
    let step = CoDEStep(model: vit, temperature: temperature, communicator: comm)
    step.chunkRecords = gradCacheChunk
    let r = try myGlobal.withUnsafeBufferPointer { g in
      try myLocal.withUnsafeBufferPointer { lo in
        try step.forwardBackward(global: g.baseAddress!, local: lo.baseAddress!, records: lb, imageSize: s, localSize: l,
                                 perm: batch.perm)
      }
    }
    let embeddings = step.gatheredEmbeddings()
    step.optimizer.step(params: vit.params, grads: vit.grads, lr: lr, weightDecay: weightDecay)
    // The trainer's health figures of this step, from the gathered keys and the all-reduced gradients.
    let health = step.healthMetrics(r, globalBatch: b, meter: EmbeddingHealthMeter(),
                                    norms: GradientNorms(layout: vit.layout, depth: cfg.depth))
    guard comm.rank == 0 else { return }
    try write(r, embeddings: embeddings, health: health, model: vit, records: b, ranks: comm.size)
    print(String(format: "loss %.6f (real %.6f, fake %.6f), B=%d on %d rank(s), %dpx global, %dpx local -> %@", r.loss,
                 r.lossReal, r.lossFake, b, comm.size, s, l, out))
    print(String(format: "health: terms %.6f %.6f %.6f %.6f (global real, fake, multi-scale real, fake; ln(1+B) = %.6f), "
                 + "emb mean cos %.6f, centroid cos %.6f, dim std %.6f, grad norm %.6e, final LN weight norm %.6f",
                 health["loss_global_real"]!, health["loss_global_fake"]!, health["loss_multiscale_real"]!,
                 health["loss_multiscale_fake"]!, health["loss_collapse"]!, health["emb_mean_cos"]!,
                 health["emb_centroid_cos"]!, health["emb_dim_std"]!, health["grad_norm"]!, health["final_ln_weight_norm"]!))
  }

  /// Rank 0 writes `--out`: loss, embeddings, health figures, gradients and updated parameters.
  func write(_ r: CoDEStep.Result, embeddings: [(String, [Float])], health: [String: Double], model vit: ViTModel,
             records b: Int, ranks: Int) throws {
    let d = vit.config.width
    var w = SafeTensorsWriter(metadata: ["producer": "cde step", "ranks": "\(ranks)"])
    w.add("loss", floats: [Float(r.loss)], shape: [1])
    w.add("loss_real", floats: [Float(r.lossReal)], shape: [1])
    w.add("loss_fake", floats: [Float(r.lossFake)], shape: [1])
    for (n, e) in embeddings { w.add("embedding.\(n)", floats: e, shape: [b, d]) }
    for (n, v) in health.sorted(by: { $0.key < $1.key }) { w.add("health.\(n)", floats: [Float(v)], shape: [1]) }
    vit.addTensors(to: &w, from: vit.grads, prefix: "grad.")
    vit.addTensors(to: &w, prefix: "param.")
    try w.write(to: out)
  }
}
