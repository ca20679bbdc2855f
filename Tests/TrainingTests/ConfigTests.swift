import Foundation
import TestSupport
import XCTest
@testable import Training
@testable import TrainingRun
import ViT

final class ConfigTests: XCTestCase {
  func config(_ name: String) -> String { repositoryPath("configs/\(name)") }

  func error(_ body: () throws -> Any) -> String {
    do { _ = try body(); XCTFail("no error"); return "" } catch { return "\(error)" }
  }

  /// The paper run (the CoDE paper, Baraldi et al., ECCV 2024): 150 epochs x 1,700 steps, 5 warmup epochs.
  func testPaperConfig() throws {
    let c = try TrainConfig.load(path: config("d3-vit-tiny.yaml"))
    XCTAssertEqual([c.model.width, c.model.depth, c.model.heads, c.model.patch, c.model.imageSize], [192, 12, 3, 16, 224])
    XCTAssertEqual(c.model.mlpRatio, 4)
    XCTAssertEqual(c.model.lnEps, 1e-6)
    XCTAssertEqual(c.optim.lr, 0.002)
    XCTAssertEqual(c.optim.betas, [0.9, 0.999])
    XCTAssertEqual(c.optim.eps, 1e-8)
    XCTAssertEqual(c.optim.weightDecay, 2e-5)
    XCTAssertEqual(c.optim.warmupLrInit, 1e-6)
    XCTAssertEqual(c.train.globalBatch, 1024)
    XCTAssertEqual(c.train.seed, 42)
    XCTAssertEqual(c.loss.temperature, 0.1)
    XCTAssertEqual(c.data.sampling, .global)
    let s = c.schedule(records: 2_300_000)
    XCTAssertEqual(s, ResolvedSchedule(stepsPerEpoch: 1700, totalSteps: 150 * 1700, warmupSteps: 5 * 1700))
  }

  func testSmokeConfigAndDerivedStepsPerEpoch() throws {
    let c = try TrainConfig.load(path: config("smoke.yaml"))
    XCTAssertEqual(c.model.imageSize % c.model.patch, 0)
    XCTAssertEqual(c.data.localSize % c.model.patch, 0)
    var e = c
    e.train.steps = nil
    e.train.epochs = 2.5
    e.train.globalBatch = 16
    e.optim.warmupSteps = nil
    e.optim.warmupEpochs = 0.5
    // floor(1000 / 16) = 62 steps per epoch; round(2.5 * 62) = 155; round(0.5 * 62) = 31.
    XCTAssertEqual(e.schedule(records: 1000), ResolvedSchedule(stepsPerEpoch: 62, totalSteps: 155, warmupSteps: 31))
  }

  func testOverridesAreTypedBySchema() throws {
    let c = try TrainConfig.load(path: config("d3-vit-tiny.yaml"), overrides: [
      "optim.lr=1e-3", "data.train=a.tar, b/*.tar", "train.steps=300", "model.depth=6",
      "optim.betas=[0.8, 0.99]", "data.sampling=shard-local", "train.seed=7", "optim.warmup_steps=10",
      "data.test=/data/test", "checkpoint.keep=5", "data.local_size=224",
    ])
    XCTAssertEqual(c.optim.lr, 0.001)
    XCTAssertEqual(c.data.train, ["a.tar", "b/*.tar"])
    XCTAssertEqual(c.train.steps, 300)
    XCTAssertNil(c.train.epochs, "setting train.steps replaces the file's train.epochs")
    XCTAssertEqual(c.optim.warmupSteps, 10)
    XCTAssertNil(c.optim.warmupEpochs)
    XCTAssertEqual(c.model.depth, 6)
    XCTAssertEqual(c.optim.betas, [0.8, 0.99])
    XCTAssertEqual(c.data.sampling, .shardLocal)
    XCTAssertEqual(c.train.seed, 7)
    XCTAssertEqual(c.data.test, "/data/test")
    XCTAssertEqual(c.checkpoint.keep, 5)
    XCTAssertEqual(c.data.localSize, 224)
    let d = try TrainConfig.load(path: config("d3-vit-tiny.yaml"), overrides: ["data.test=/x", "data.test=null"])
    XCTAssertNil(d.data.test)
  }

  func testUnknownKeysAndWrongTypesNameTheKey() {
    let cases: [(yaml: String, message: String)] = [
      ("model:\n  width: 192\n  widht: 3\ntrain:\n  steps: 10\n", "x.yaml:3: unknown key 'model.widht' (did you mean 'model.width'?)"),
      ("optim:\n  lr: abc\ntrain:\n  steps: 1\n", "x.yaml:2: key 'optim.lr': expected a number, got 'abc'"),
      ("train:\n  global_batch: 1.5\n  steps: 1\n", "x.yaml:2: key 'train.global_batch': expected an integer, got '1.5'"),
      ("train:\n  steps: [1, 2]\n", "x.yaml:2: key 'train.steps': expected an integer, got a list"),
      ("data:\n  sampling: random\ntrain:\n  steps: 1\n", "x.yaml:2: key 'data.sampling': expected one of global, shard-local, got 'random'"),
      ("train:\n  steps: 10\n  epochs: 2\n", "x.yaml: 'train.steps' and 'train.epochs' are both set; keep one"),
      ("optim:\n  lr: \"0.1\"\ntrain:\n  steps: 1\n", "x.yaml:2: key 'optim.lr': expected a number, got '0.1'"),
    ]
    for c in cases { XCTAssertEqual(error { try TrainConfig.parse(yaml: c.yaml, source: "x.yaml") }, c.message, c.yaml) }
    let e5 = error { try TrainConfig.parse(yaml: "trian:\n  steps: 1\n", source: "x.yaml") }
    XCTAssertTrue(e5.hasPrefix("x.yaml:1: unknown section 'trian'"), e5)
    let e9 = error { try TrainConfig.parse(yaml: "train: [1\n", source: "x.yaml") }
    XCTAssertTrue(e9.hasPrefix("x.yaml: invalid YAML: "), e9)
    XCTAssertFalse(e9.contains("\n"))
    let e10 = error { try TrainConfig.parse(yaml: "optim:\n  lr: 0.1\n", source: "x.yaml") }
    XCTAssertEqual(e10, "x.yaml: set 'train.steps' or 'train.epochs'")
    let e11 = error { try TrainConfig.load(path: "/nonexistent/c.yaml") }
    XCTAssertEqual(e11, "/nonexistent/c.yaml: cannot read the configuration file")
  }

  func testOverrideErrorsNameTheOption() {
    let y = "train:\n  steps: 1\n"
    XCTAssertEqual(error { try TrainConfig.parse(yaml: y, overrides: ["optim.lrr=1"]) },
                   "--set optim.lrr: unknown key (did you mean 'optim.lr'?)")
    XCTAssertEqual(error { try TrainConfig.parse(yaml: y, overrides: ["train.global_batch=big"]) },
                   "--set train.global_batch=big: expected an integer")
    XCTAssertEqual(error { try TrainConfig.parse(yaml: y, overrides: ["optim.lr"]) },
                   "--set optim.lr: expected key=value, e.g. --set optim.lr=0.001")
    XCTAssertEqual(error { try TrainConfig.parse(yaml: y, overrides: ["optim.lr=null"]) },
                   "--set optim.lr=null: expected a number")
  }

  /// The errors of the two tests above, by kind.
  func testConfigErrorKinds() {
    func kind(_ body: () throws -> Any) -> ConfigError.Kind? {
      do { _ = try body(); XCTFail("no error"); return nil } catch { return (error as? ConfigError)?.kind }
    }
    let y = "train:\n  steps: 1\n"
    XCTAssertEqual(kind { try TrainConfig.parse(yaml: "model:\n  widht: 3\ntrain:\n  steps: 10\n") }, .unknownKey("model.widht"))
    XCTAssertEqual(kind { try TrainConfig.parse(yaml: "optim:\n  lr: abc\ntrain:\n  steps: 1\n") }, .wrongType(key: "optim.lr"))
    XCTAssertEqual(kind { try TrainConfig.parse(yaml: "trian:\n  steps: 1\n") }, .unknownSection("trian"))
    XCTAssertEqual(kind { try TrainConfig.parse(yaml: "train:\n  steps: 10\n  epochs: 2\n") }, .exclusiveKeys("train.steps", "train.epochs"))
    XCTAssertEqual(kind { try TrainConfig.parse(yaml: "train: [1\n") }, .invalidYAML)
    XCTAssertEqual(kind { try TrainConfig.parse(yaml: "optim:\n  lr: 0.1\n") }, .missingRunLength)
    XCTAssertEqual(kind { try TrainConfig.load(path: "/nonexistent/c.yaml") }, .unreadable(path: "/nonexistent/c.yaml"))
    XCTAssertEqual(kind { try TrainConfig.parse(yaml: y, overrides: ["optim.lrr=1"]) }, .unknownKey("optim.lrr"))
    XCTAssertEqual(kind { try TrainConfig.parse(yaml: y, overrides: ["optim.lr"]) }, .badOverride)
    XCTAssertEqual(kind { try TrainConfig.parse(yaml: y, overrides: ["train.global_batch=big"]) }, .wrongType(key: "train.global_batch"))
    XCTAssertEqual(kind { try TrainConfig.parse(yaml: y, overrides: ["model.heads=5"]) }, .outOfRange(key: "model.heads"))
    XCTAssertEqual(kind { try TrainConfig.parse(yaml: y, overrides: ["train.global_batch=10"]).validate(worldSize: 4) },
                   .outOfRange(key: "train.global_batch"))
  }

  func testRangeChecksNameTheKey() {
    let y = "train:\n  steps: 1\n"
    XCTAssertEqual(error { try TrainConfig.parse(yaml: y, source: "c.yaml", overrides: ["model.heads=5"]) },
                   "c.yaml: key 'model.heads': must be positive and divide model.width (192)")
    XCTAssertEqual(error { try TrainConfig.parse(yaml: y, source: "c.yaml", overrides: ["data.local_size=100"]) },
                   "c.yaml: key 'data.local_size': must be a positive multiple of model.patch (16)")
    XCTAssertEqual(error { try TrainConfig.parse(yaml: y, source: "c.yaml", overrides: ["optim.betas=0.9"]) },
                   "c.yaml: key 'optim.betas': must be two numbers in [0, 1)")
    XCTAssertEqual(error { try TrainConfig.parse(yaml: y, source: "c.yaml", overrides: ["checkpoint.keep=0"]) },
                   "c.yaml: key 'checkpoint.keep': must be at least 1")
    let c = try! TrainConfig.parse(yaml: y, overrides: ["train.global_batch=10"])
    XCTAssertThrowsError(try c.validate(worldSize: 4))
    XCTAssertNoThrow(try c.validate(worldSize: 5))
  }

  func testJSONAndYAMLRoundTrip() throws {
    let c = try TrainConfig.load(path: config("d3-vit-tiny.yaml"), overrides: ["data.test=t e\"st", "optim.lr=3.3e-4"])
    let json = c.toJSON()
    let obj = try JSONSerialization.jsonObject(with: json) as! [String: Any]
    XCTAssertEqual((obj["optim"] as! [String: Any])["weight_decay"] as? Double, 2e-5)
    XCTAssertEqual((obj["model"] as! [String: Any])["mlp_ratio"] as? Double, 4)
    XCTAssertEqual(try TrainConfig.fromJSON(json), c)
    XCTAssertEqual(try TrainConfig.parse(yaml: c.toYAML()), c)
  }

  /// `loadModel`: the model section of a file by the rules of `load`, with the model checks
  /// only. A model-only file (the engine fixtures' small.yaml) and a full training config
  /// load; a bare mapping, a wrong type and an impossible shape are one line naming the key.
  func testLoadModelReadsTheModelSectionByTheTrainingRules() throws {
    let small = try TrainConfig.loadModel(path: fixturePath("Engine", "small.yaml"))
    XCTAssertEqual(small.vit, ViTConfig(width: 32, depth: 2, heads: 2, mlpRatio: 4, patch: 16, imageSize: 48))
    XCTAssertEqual(try TrainConfig.loadModel(path: config("smoke.yaml")), try TrainConfig.load(path: config("smoke.yaml")).model)
    let dir = temporaryDirectory(self, prefix: "model-config")
    func message(_ yaml: String) -> String {
      let path = dir + "/m.yaml"
      try! yaml.write(toFile: path, atomically: true, encoding: .utf8)
      return error { try TrainConfig.loadModel(path: path) }.replacingOccurrences(of: path, with: "m.yaml")
    }
    XCTAssertTrue(message("width: 32\nheads: 2\n").hasPrefix("m.yaml:1: unknown section 'width'"), message("width: 32\n"))
    XCTAssertEqual(message("model:\n  heads: 2.5\n"), "m.yaml:2: key 'model.heads': expected an integer, got '2.5'")
    XCTAssertEqual(message("model:\n  heads: true\n"), "m.yaml:2: key 'model.heads': expected an integer, got 'true'")
    XCTAssertEqual(message("model:\n  widht: 32\n"), "m.yaml:2: unknown key 'model.widht' (did you mean 'model.width'?)")
    XCTAssertEqual(message("model:\n  heads: 5\n"), "m.yaml: key 'model.heads': must be positive and divide model.width (192)")
    XCTAssertEqual(error { try TrainConfig.loadModel(path: dir + "/none.yaml") }, dir + "/none.yaml: cannot read the configuration file")
  }
}
