import Kernels
import Randomness
import SafeTensors
import Training
import TrainingRun
import ViT
import TestSupport
import XCTest

/// A whole CoDE step of a small ViT (width 32, depth 2, heads 2, 48 px global
/// views, 32 px local views so the 3x3 position grid is resampled to 2x2)
/// against PyTorch + timm (scripts/fixtures/engine_fixtures.py).
class CoDEStepParityTests: XCTestCase {
  static let smallConfig = ViTConfig(width: 32, depth: 2, heads: 2, mlpRatio: 4, patch: 16, imageSize: 48)
  /// The step's learning rate (scripts/fixtures/engine_fixtures.py uses the same).
  static let lr: Float = 1e-3

  func runStep(threads: Int) throws -> (CoDEStep, CoDEStep.Result) {
    Threads.configure(threads)
    let model = try ViTModel(config: Self.smallConfig)
    try model.load(path: fixturePath("Engine", "model_small.safetensors"))
    let views = try CoDEViewsFile.read(path: fixturePath("Engine", "views_small.safetensors"),
                                       channels: Self.smallConfig.channels, patch: Self.smallConfig.patch)
    let b = 3
    let step = CoDEStep(model: model)
    let r = try step.run(global: views.global, local: views.local, records: b, imageSize: 48, localSize: 32, perm: views.perm,
                         lr: Self.lr, weightDecay: 0.05)
    return (step, r)
  }

  func testStepMatchesPyTorch() throws {
    let (step, r) = try runStep(threads: 2)
    let ref = try SafeTensorsFile(path: fixturePath("Engine", "step_small.safetensors"))
    let d = 32, b = 3
    XCTAssertEqual(r.loss, Double(try ref.floats("loss")[0]), accuracy: 1e-5, "loss")
    XCTAssertEqual(r.lossReal, Double(try ref.floats("loss_real")[0]), accuracy: 1e-5, "loss_real")
    XCTAssertEqual(r.lossFake, Double(try ref.floats("loss_fake")[0]), accuracy: 1e-5, "loss_fake")
    for (i, n) in CoDEStep.globalViewNames.enumerated() {
      let e = Array(UnsafeBufferPointer(start: step.globalEmbeddings! + i * b * d, count: b * d))
      assertClose(e, try ref.floats("embedding.\(n)"), atol: 1e-5, "embedding.\(n)")
    }
    for (i, n) in CoDEStep.localViewNames.enumerated() {
      let e = Array(UnsafeBufferPointer(start: step.localEmbeddings! + i * b * d, count: b * d))
      assertClose(e, try ref.floats("embedding.\(n)"), atol: 1e-5, "embedding.\(n)")
    }
    let model = step.model
    for e in model.layout.entries {
      let g = Array(UnsafeBufferPointer(start: model.grads + e.offset, count: e.count))
      let rg = try ref.floats("grad.\(e.name)")
      XCTAssertLessThan(relFrobenius(g, rg), 1e-4, "grad.\(e.name)")
      let p = Array(UnsafeBufferPointer(start: model.params + e.offset, count: e.count))
      let rp = try ref.floats("param.\(e.name)")
      if e.name.hasSuffix(".attn.qkv.bias") {
        // The key bias (elements d..<2d) has zero true gradient: q . (k + c) adds q . c to
        // every logit in a query's row, which the softmax cancels. Its gradient, here and in
        // PyTorch, is rounding noise, and AdamW's first step moves each element by
        // lr * g / (|g| + eps), up to lr, however small the noise: so these elements are held
        // to that closed form from the two gradients, and the gradient to the noise level.
        let queryScale = g[0..<d].map { abs($0) }.max() ?? 0
        let eps = Double(step.optimizer.eps)
        let update = { (x: Float) -> Double in Double(x) / (abs(Double(x)) + eps) }
        for i in d..<(2 * d) {
          XCTAssertLessThanOrEqual(abs(g[i]), 1e-5 * queryScale, "grad.\(e.name)[\(i)]: the key bias has zero true gradient")
          XCTAssertEqual(Double(p[i]), Double(rp[i]) - Double(Self.lr) * (update(g[i]) - update(rg[i])), accuracy: 1e-6,
                         "param.\(e.name)[\(i)]: AdamW's first step from the two noise gradients")
        }
        assertClose(Array(p[0..<d] + p[(2 * d)...]), Array(rp[0..<d] + rp[(2 * d)...]), atol: 2e-5, "param.\(e.name) (query, value)")
      } else {
        assertClose(p, rp, atol: 2e-5, "param.\(e.name)")
      }
    }
  }

  /// The same step with 1 and 2 worker threads gives bit-identical results.
  func testThreadCountDoesNotChangeResults() throws {
    let (s1, r1) = try runStep(threads: 1)
    let (s2, r2) = try runStep(threads: 2)
    Threads.configure(1)
    XCTAssertEqual(r1.loss, r2.loss)
    let n = s1.model.parameterCount
    XCTAssertEqual(Array(UnsafeBufferPointer(start: s1.model.params, count: n)),
                   Array(UnsafeBufferPointer(start: s2.model.params, count: n)))
  }
}
import Foundation

/// Gradient caching (embed all views without activations, loss, then forward and
/// backward again chunk by chunk) gives the gradients of the direct step.
final class GradientCacheTests: XCTestCase {
  func testChunkedStepMatchesDirectStep() throws {
    Threads.configure(1)
    let cfg = CoDEStepParityTests.smallConfig
    var rng = SplitMix64(seed: 11)
    let b = 5, s = 48, l = 32
    let global = normals(6 * b * 3 * s * s, &rng)
    let local = normals(2 * b * 3 * l * l, &rng)
    let perm = derangement(b, seed: 3)
    func grads(chunk: Int) throws -> (Double, [Float], [Float]) {
      let model = try ViTModel(config: cfg)
      model.initialize(seed: 5)
      let step = CoDEStep(model: model)
      step.chunkRecords = chunk
      let r = try global.withUnsafeBufferPointer { g in
        try local.withUnsafeBufferPointer { lo in
          try step.forwardBackward(global: g.baseAddress!, local: lo.baseAddress!, records: b, imageSize: s, localSize: l, perm: perm)
        }
      }
      let emb = Array(UnsafeBufferPointer(start: step.globalEmbeddings!, count: 6 * b * cfg.width))
      return (r.loss, Array(UnsafeBufferPointer(start: model.grads, count: model.parameterCount)), emb)
    }
    let (l0, g0, e0) = try grads(chunk: 0)
    for chunk in [1, 2, 3] {  // 3 leaves a smaller last chunk
      let (l1, g1, e1) = try grads(chunk: chunk)
      XCTAssertEqual(l1, l0, accuracy: 1e-6 * abs(l0), "loss, chunk \(chunk)")
      if blasRowGroup == 1 {
        XCTAssertEqual(e1, e0, "embeddings, chunk \(chunk)")
      } else {
        // OpenBLAS's AVX2 kernel rounds a row by its position in a group of 12 (see `blasRowGroup`),
        // and a chunk puts an image's rows at other positions: equal up to float rounding.
        XCTAssertLessThan(relFrobenius(e1, e0), 1e-6, "embeddings, chunk \(chunk)")
      }
      XCTAssertLessThan(relFrobenius(g1, g0), 1e-5, "gradients, chunk \(chunk)")
    }
  }
}

/// A step object reused across steps (activations, scratch, optimizer state) gives
/// the same second step as a fresh object restored from the first step's state:
/// nothing stale leaks from one step into the next.
final class StepReuseTests: XCTestCase {
  func testSecondStepMatchesFreshRestoredStep() throws {
    Threads.configure(2)
    let cfg = CoDEStepParityTests.smallConfig
    var rng = SplitMix64(seed: 21)
    let b = 4, s = 48, l = 32
    func views() -> ([Float], [Float]) {
      (normals(6 * b * 3 * s * s, &rng), normals(2 * b * 3 * l * l, &rng))
    }
    let (g1, l1) = views(), (g2, l2) = views()
    let perm = derangement(b, seed: 9)
    let m1 = try ViTModel(config: cfg)
    m1.initialize(seed: 1)
    let a = CoDEStep(model: m1)
    try a.run(global: g1, local: l1, records: b, imageSize: s, localSize: l, perm: perm, lr: 1e-3, weightDecay: 0.05)
    let n = m1.parameterCount
    let m2 = try ViTModel(config: cfg)
    m2.params.update(from: m1.params, count: n)
    let fresh = CoDEStep(model: m2)
    fresh.optimizer.m.update(from: a.optimizer.m, count: n)
    fresh.optimizer.v.update(from: a.optimizer.v, count: n)
    fresh.optimizer.restore(stepCount: a.optimizer.stepCount)
    let r1 = try a.run(global: g2, local: l2, records: b, imageSize: s, localSize: l, perm: perm, lr: 1e-3, weightDecay: 0.05)
    let r2 = try fresh.run(global: g2, local: l2, records: b, imageSize: s, localSize: l, perm: perm, lr: 1e-3, weightDecay: 0.05)
    XCTAssertEqual(r1.loss, r2.loss)
    XCTAssertEqual(Array(UnsafeBufferPointer(start: m1.params, count: n)), Array(UnsafeBufferPointer(start: m2.params, count: n)))
  }
}

/// Augmented views that equal their base views bit for bit (T drew no operation) are not
/// run through the network twice: the loss, the embeddings and the gradients are those of
/// the step that runs every view, and the next step (no duplicates) is unaffected.
final class ViewDeduplicationTests: XCTestCase {
  func testDuplicateViewsGiveTheFullStepsGradients() throws {
    Threads.configure(2)
    let cfg = CoDEStepParityTests.smallConfig
    var rng = SplitMix64(seed: 31)
    let b = 4, s = 48, l = 32, per = 3 * s * s
    var global = normals(6 * b * per, &rng)
    let local = normals(2 * b * 3 * l * l, &rng)
    let other = normals(6 * b * per, &rng)
    // aug_real = real for records 0 and 2, aug_fake = fake for record 1 (views are view-major).
    for (view, base, rec) in [(2, 0, 0), (2, 0, 2), (3, 1, 1)] {
      for i in 0..<per { global[(view * b + rec) * per + i] = global[(base * b + rec) * per + i] }
    }
    let perm = derangement(b, seed: 4)
    func step(dedupe: Bool) throws -> (CoDEStep, ViTModel) {
      let model = try ViTModel(config: cfg)
      model.initialize(seed: 6)
      let step = CoDEStep(model: model)
      step.deduplicateViews = dedupe
      return (step, model)
    }
    // What the loader reports for these views: aug_real of records 0 and 2, aug_fake of record 1.
    var unchanged = [Bool](repeating: false, count: 2 * b)
    unchanged[0] = true; unchanged[2] = true; unchanged[b + 1] = true
    func run(_ st: CoDEStep, _ m: ViTModel, _ g: [Float], _ unchanged: [Bool]) throws -> (Double, [Float], [Float]) {
      let r = try st.forwardBackward(global: g, local: local, records: b, imageSize: s, localSize: l, perm: perm,
                                     unchangedAugmented: unchanged)
      return (r.loss, Array(UnsafeBufferPointer(start: st.globalEmbeddings!, count: 6 * b * cfg.width)),
              Array(UnsafeBufferPointer(start: m.grads, count: m.parameterCount)))
    }
    let (full, fullModel) = try step(dedupe: false)
    let (dedup, dedupModel) = try step(dedupe: true)
    let (l0, e0, g0) = try run(full, fullModel, global, unchanged)
    let (l1, e1, g1) = try run(dedup, dedupModel, global, unchanged)
    XCTAssertEqual(full.lastDuplicateViews, 0)
    XCTAssertEqual(dedup.lastDuplicateViews, 3)
    XCTAssertEqual(l1, l0, accuracy: 1e-6 * abs(l0))
    XCTAssertLessThan(zip(e1, e0).map { abs($0 - $1) }.max()!, 1e-6, "embeddings")
    XCTAssertLessThan(relFrobenius(g1, g0), 1e-5, "gradients")
    XCTAssertGreaterThan(g0.map { abs($0) }.max()!, 1e-4, "non-trivial gradients")
    // The next step has no duplicates: the reused step object runs the whole batch again.
    let (fresh, freshModel) = try step(dedupe: true)
    let (l2, _, g2) = try run(dedup, dedupModel, other, [Bool](repeating: false, count: 2 * b))
    let (l3, _, g3) = try run(fresh, freshModel, other, [Bool](repeating: false, count: 2 * b))
    XCTAssertEqual(dedup.lastDuplicateViews, 0)
    XCTAssertEqual(l2, l3)
    XCTAssertEqual(g2, g3)
  }
}

/// `count` standard normal floats drawn from `rng`, in order (the tests' random views).
func normals(_ count: Int, _ rng: inout SplitMix64) -> [Float] { (0..<count).map { _ in Float(rng.normal()) } }
