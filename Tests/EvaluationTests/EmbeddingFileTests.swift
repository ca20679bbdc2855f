import Foundation
import SafeTensors
import TestSupport
import XCTest
@testable import Evaluation

final class EmbeddingFileTests: XCTestCase {
  func testReadsFixture() throws {
    let f = try EmbeddingFile(path: fixturePath("eval-test.safetensors"))
    XCTAssertEqual(f.dimension, 192)
    XCTAssertEqual(f.count, 1408)
    XCTAssertEqual(f.labels.filter { $0 == 0 }.count, 400)
    XCTAssertEqual(f.labels.filter { $0 == -1 }.count, 8)
    XCTAssertEqual(f.generators, [0, 1, 2, 3])
    XCTAssertEqual(f.sources.count, f.count)
    XCTAssertTrue(f.sources[0].hasPrefix("test/"))
    XCTAssertEqual(f.metadata["model"], "synthetic")
    // The source names the class of each row.
    for i in 0..<f.count { XCTAssertTrue(f.sources[i].contains("/\(EmbeddingFile.className(f.labels[i]))/")) }
  }

  func testWriteReadRoundTrip() throws {
    let dir = temporaryDirectory(self, prefix: "eval")
    let e = try EmbeddingFile(embeddings: [1, 2, 3, 4, 5, 6], dimension: 3, labels: [0, 2],
                              sources: ["a \"quoted\".png", "b/ü.jpg"], metadata: ["model": "m.safetensors"])
    try e.write(to: dir + "/e.safetensors")
    let back = try EmbeddingFile(path: dir + "/e.safetensors")
    XCTAssertEqual(back.embeddings, e.embeddings)
    XCTAssertEqual(back.labels, e.labels)
    XCTAssertEqual(back.sources, e.sources)
    XCTAssertEqual(back.metadata, ["model": "m.safetensors"])
    let raw = try SafeTensorsFile(path: dir + "/e.safetensors")
    XCTAssertEqual(try raw.info("embeddings").dtype, .f32)
    XCTAssertEqual(try raw.info("labels").dtype, .i64)
  }

  func testBadInputsGiveOneClearLine() throws {
    let dir = temporaryDirectory(self, prefix: "eval")
    func write(_ name: String, _ build: (inout SafeTensorsWriter) -> Void) throws -> String {
      var w = SafeTensorsWriter()
      build(&w)
      let p = dir + "/" + name
      try w.write(to: p)
      return p
    }
    func expect(_ path: String, _ fragment: String, line: UInt = #line) {
      XCTAssertThrowsError(try EmbeddingFile(path: path), line: line) { e in
        let s = "\(e)"
        XCTAssertTrue(s.hasPrefix(path) && s.contains(fragment), s, line: line)
        XCTAssertFalse(s.contains("\n"), line: line)
      }
    }
    expect(try write("nolabels", { $0.add("embeddings", floats: [1, 2], shape: [1, 2]) }), "no tensor `labels`")
    expect(try write("noemb", { $0.add("labels", int64: [0], shape: [1]) }), "no tensor `embeddings`")
    expect(try write("shape", { $0.add("embeddings", floats: [1, 2], shape: [2]); $0.add("labels", int64: [0, 0], shape: [2]) }),
           "shape [2], expected [N, D]")
    expect(try write("count", { $0.add("embeddings", floats: [1, 2], shape: [1, 2]); $0.add("labels", int64: [0, 0], shape: [2]) }),
           "labels has shape [2], expected [1]")
    expect(try write("label", { $0.add("embeddings", floats: [1, 2], shape: [1, 2]); $0.add("labels", int64: [-3], shape: [1]) }),
           "labels[0] = -3")
    expect(try write("nan", { $0.add("embeddings", floats: [1, 2, .nan, 0], shape: [2, 2]); $0.add("labels", int64: [0, 1], shape: [2]) }),
           "row 1 has a non-finite value")
    expect(try write("sources", {
      $0.metadata["sources"] = "[\"a\"]"
      $0.add("embeddings", floats: [1, 2, 3, 4], shape: [2, 2]); $0.add("labels", int64: [0, 1], shape: [2])
    }), "`sources` has 1 entries for 2 rows")
    expect(try write("sources2", {
      $0.metadata["sources"] = "not json"
      $0.add("embeddings", floats: [1, 2], shape: [1, 2]); $0.add("labels", int64: [0], shape: [1])
    }), "`sources` is not a JSON list")
    let garbage = dir + "/garbage"
    try Data("hello".utf8).write(to: URL(fileURLWithPath: garbage))
    expect(garbage, "truncated")
    expect(dir + "/missing", "cannot read")
  }

  func testEvaluationRejectsMismatchedSets() throws {
    let probe = try EmbeddingFile(embeddings: [1, 0, 0, 1], dimension: 2, labels: [0, 1])
    let test3 = try EmbeddingFile(embeddings: [1, 0, 0], dimension: 3, labels: [0])
    XCTAssertThrowsError(try runEvaluation(probe: probe, test: test3, probePath: "p.st", testPath: "t.st")) { e in
      XCTAssertEqual("\(e)", "t.st: embeddings have dimension 3, p.st has 2")
    }
    let onlyReal = try EmbeddingFile(embeddings: [1, 0, 0, 1], dimension: 2, labels: [0, 0])
    XCTAssertThrowsError(try runEvaluation(probe: onlyReal, test: probe, classifiers: [.linear], probePath: "p.st")) { e in
      XCTAssertEqual("\(e)", "p.st: no fake (label > 0) rows to fit the linear classifier on")
    }
    // The one-class SVM needs real rows only.
    XCTAssertNoThrow(try runEvaluation(probe: onlyReal, test: probe, classifiers: [.svm]))
    let unlabelled = try EmbeddingFile(embeddings: [1, 0], dimension: 2, labels: [-1])
    XCTAssertThrowsError(try runEvaluation(probe: probe, test: unlabelled, testPath: "t.st")) { e in
      XCTAssertTrue("\(e)".hasPrefix("t.st: no labelled rows"), "\(e)")
    }
    XCTAssertThrowsError(try ClassifierKind.parseList("linear,svn")) { e in
      XCTAssertEqual("\(e)", "--classifiers: unknown classifier 'svn' (expected linear, knn or svm)")
    }
  }
}

final class SourceLabelTests: XCTestCase {
  func testLabelsFromTestLayoutAndShardMembers() {
    XCTAssertEqual(EmbeddingFile.label(forSource: "d3_test/no_augm/real/000123.png"), 0)
    XCTAssertEqual(EmbeddingFile.label(forSource: "d3_test/augm/gen_2/000123.jpg"), 3)
    XCTAssertEqual(EmbeddingFile.label(forSource: "elsa_v2-0000.tar:1234567.gen_3.png"), 4)
    XCTAssertEqual(EmbeddingFile.label(forSource: "shard.tar:1234567.real.jpg"), 0)
    XCTAssertEqual(EmbeddingFile.label(forSource: "photos/holiday.jpg"), -1)
    XCTAssertEqual(EmbeddingFile.label(forSource: "gen_x/a.png"), -1)
    // The innermost folder wins.
    XCTAssertEqual(EmbeddingFile.label(forSource: "real/gen_0/a.png"), 1)
  }

  func testDetectionTableAndJSON() throws {
    let results: [(kind: ClassifierKind, predictions: Predictions)] = [
      (.linear, Predictions(labels: [1, 0], scores: [2.5, -1.25])),
      (.svm, Predictions(labels: [0, 0], scores: [-0.5, -3])),
    ]
    let table = DetectorBundle.table(sources: ["a.png", "b.png"], results: results)
    XCTAssertEqual(table, """
      image  linear          svm           
      a.png  fake +2.500     real -0.500   
      b.png  real -1.250     real -3.000   

      """)
    let json = DetectorBundle.jsonLines(sources: ["a.png"], results: results)
    XCTAssertEqual(json, "{\"image\":\"a.png\",\"linear\":{\"label\":\"fake\",\"score\":2.5},\"svm\":{\"label\":\"real\",\"score\":-0.5}}\n")
  }
}
