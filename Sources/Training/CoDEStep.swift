import Foundation
import Kernels
import ViT

/// One CoDE training step on one rank: the six 224-px views and the two
/// local views of B records through the ViT, the multi-scale InfoNCE loss,
/// backward, and an AdamW update.
///
/// View buffers are view-major: `global [6, B, C, S, S]` in the order
/// real, fake, aug_real, aug_fake, global_real, global_fake, and
/// `local [2, B, C, L, L]` in the order local_real, local_fake. All six
/// global views go through the network as one batch of 6B images, the local
/// views as one batch of 2B.
public final class CoDEStep {
  public let model: ViTModel
  public let loss: CoDELoss
  public let optimizer: AdamW
  var globalActs: ViTActivations?
  var localActs: ViTActivations?
  var dGlobal: [Float] = []
  var dLocal: [Float] = []

  public static let globalViewNames = ["real", "fake", "aug_real", "aug_fake", "global_real", "global_fake"]
  public static let localViewNames = ["local_real", "local_fake"]

  public init(model: ViTModel, temperature: Float = 0.1, betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8) {
    self.model = model
    loss = CoDELoss(temperature: temperature)
    optimizer = AdamW(layout: model.layout, beta1: betas.0, beta2: betas.1, eps: eps)
  }

  public struct Result {
    public var loss: Double
    public var lossReal: Double
    public var lossFake: Double
  }

  func activations(_ cached: inout ViTActivations?, n: Int, size: Int) throws -> ViTActivations {
    if let a = cached, a.batch == n, a.height == size, a.width == size, a.scratchThreadsOK { return a }
    cached = nil  // free before allocating the next one
    let a = try model.makeActivations(batch: n, height: size, width: size)
    cached = a
    return a
  }

  /// Forward both view groups and compute the loss and the gradient with
  /// respect to every embedding (no parameter gradients yet).
  public func forwardLoss(global: UnsafePointer<Float>, local: UnsafePointer<Float>, records b: Int, imageSize s: Int,
                          localSize l: Int, perm: [Int]) throws -> Result {
    let d = model.config.width
    let ga = try activations(&globalActs, n: 6 * b, size: s)
    let la = try activations(&localActs, n: 2 * b, size: l)
    model.forward(global, ga)
    model.forward(local, la)
    if dGlobal.count != 6 * b * d { dGlobal = [Float](repeating: 0, count: 6 * b * d) }
    if dLocal.count != 2 * b * d { dLocal = [Float](repeating: 0, count: 2 * b * d) }
    let e = UnsafePointer(ga.embeddings), el = UnsafePointer(la.embeddings)
    let bd = b * d
    let v = dGlobal.withUnsafeMutableBufferPointer { dg in
      dLocal.withUnsafeMutableBufferPointer { dl in
        let g = dg.baseAddress!, gl = dl.baseAddress!
        return loss.compute(
          queries: .init(real: e, fake: e + bd, localReal: el, localFake: el + bd),
          keys: .init(augReal: e + 2 * bd, augFake: e + 3 * bd, globalReal: e + 4 * bd, globalFake: e + 5 * bd),
          local: b, global: b, offset: 0, dim: d, perm: perm,
          dQueries: .init(real: g, fake: g + bd, localReal: gl, localFake: gl + bd),
          dKeys: .init(augReal: g + 2 * bd, augFake: g + 3 * bd, globalReal: g + 4 * bd, globalFake: g + 5 * bd))
      }
    }
    return Result(loss: v.total, lossReal: v.real, lossFake: v.fake)
  }

  /// Parameter gradients (overwritten) for the batch of the last `forwardLoss`.
  public func backward() {
    model.zeroGradients()
    dGlobal.withUnsafeBufferPointer { model.backward(globalActs!, dEmbedding: $0.baseAddress!) }
    dLocal.withUnsafeBufferPointer { model.backward(localActs!, dEmbedding: $0.baseAddress!) }
  }

  /// The whole step: forward, loss, backward, AdamW.
  @discardableResult
  public func run(global: UnsafePointer<Float>, local: UnsafePointer<Float>, records b: Int, imageSize s: Int,
                  localSize l: Int, perm: [Int], lr: Float, weightDecay: Float) throws -> Result {
    let r = try forwardLoss(global: global, local: local, records: b, imageSize: s, localSize: l, perm: perm)
    backward()
    optimizer.step(params: model.params, grads: model.grads, lr: lr, weightDecay: weightDecay)
    return r
  }

  /// Embeddings of the last forward pass: `[6B, D]` global views then `[2B, D]` local views.
  public var globalEmbeddings: UnsafePointer<Float>? { globalActs.map { UnsafePointer($0.embeddings) } }
  public var localEmbeddings: UnsafePointer<Float>? { localActs.map { UnsafePointer($0.embeddings) } }

  /// Bytes of activations currently held.
  public var activationBytes: Int { (globalActs?.bytes ?? 0) + (localActs?.bytes ?? 0) }
}
