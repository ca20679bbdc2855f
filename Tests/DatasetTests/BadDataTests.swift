import Foundation
import Imaging
import TestSupport
import XCTest
@testable import Dataset

/// Bad data never stops a run: bad records are counted, warned about once, and replaced
/// by the next good record of the epoch order; missing paths and empty sets are errors.
final class BadDataTests: XCTestCase {
  /// Shard A: 6 good records, except r1 lacks gen_2 and r3 has a corrupt real image.
  /// Shard B: 6 records, cut inside record b4 (b5 lost). Shard C: not a tar file.
  func badShards() throws -> String {
    let dir = temporaryDirectory(self, prefix: "dataset")
    let shards = dir + "/shards"
    try FileManager.default.createDirectory(atPath: shards, withIntermediateDirectories: true)
    let a = try TarWriter(path: shards + "/a.tar")
    for i in 0..<6 {
      for m in try smallMembers(index: i) {
        if i == 1 && m.role == .gen2 { continue }
        let data = (i == 3 && m.role == .real) ? Data(m.data.prefix(40)) + Data(repeating: 0x5A, count: 300) : m.data
        try a.add(name: "a\(i).\(m.role.tag).\(m.ext)", data: data)
      }
    }
    try a.finish()
    let b = try TarWriter(path: dir + "/b-full.tar")
    var cut: Int64 = 0
    for i in 0..<6 {
      for m in try smallMembers(index: 10 + i) { try b.add(name: "b\(i).\(m.role.tag).\(m.ext)", data: m.data) }
    }
    try b.finish()
    let full = try Data(contentsOf: URL(fileURLWithPath: dir + "/b-full.tar"))
    let idx = try ShardIndex.build(source: MemoryByteSource([UInt8](full)))
    let b4 = (0..<idx.count).first { idx.key($0) == "b4" }!
    cut = idx.member(b4, .gen1)!.offset + 10
    try full.prefix(Int(cut)).write(to: URL(fileURLWithPath: shards + "/b.tar"))
    try Data(repeating: 0x41, count: 3000).write(to: URL(fileURLWithPath: shards + "/c.tar"))
    return dir
  }

  func testBadRecordsAreCountedWarnedOnceAndReplaced() throws {
    let dir = try badShards()
    let log = WarningLog()
    var c = LoaderConfig(paths: [dir + "/shards"], seed: 5, globalBatch: 4, spec: LoaderTests.spec, threads: 2)
    c.indexDirectory = dir + "/idx"
    c.warn = { log.add($0) }
    let l = try D3Loader(config: c, cursor: DataCursor())
    // a0..a5, b0..b4 (b4 truncated) = 11 records; c.tar has none (bad header).
    XCTAssertEqual(l.recordCount, 11)
    XCTAssertEqual(l.stepsPerEpoch, 2)
    let catalog = l.catalog
    let bad: Set<String> = ["a1", "a3", "b4"]
    for epoch in 0..<3 {
      let perm = epochPermutation(count: 11, seed: 5, epoch: epoch).map(Int.init)
      for step in 0..<2 {
        let batch = try l.next()
        XCTAssertEqual(batch.records, 4)
        for i in 0..<4 {
          var p = step * 4 + i
          XCTAssertEqual(batch.drawnIDs[i], perm[p])
          while bad.contains(catalog.locate(perm[p % 11]).source.key(catalog.locate(perm[p % 11]).local)) { p += 1 }
          XCTAssertEqual(batch.recordIDs[i], perm[p % 11], "epoch \(epoch) step \(step) slot \(i)")
          XCTAssertEqual(batch.generators[i], drawGenerator(seed: 5, epoch: epoch, record: perm[step * 4 + i]))
        }
      }
    }
    let s = l.stats
    l.close()
    // Only the bad records actually drawn (or scanned past) are counted; over 3 epochs
    // of 8 of 11 positions every bad record is met with these seeds.
    XCTAssertEqual(s.skipped[.missingMember], 1)
    XCTAssertEqual(s.skipped[.corruptImage], 1)
    XCTAssertEqual(s.skipped[.truncatedMember], 1)
    let recordWarnings = log.all.filter { $0.contains("skipped") && !$0.contains("no records, skipped") }
    XCTAssertEqual(recordWarnings.count, 3, "\(log.all)")
    XCTAssertTrue(recordWarnings.contains { $0.contains("a.tar") && $0.contains("a3") }, "\(recordWarnings)")
    XCTAssertTrue(recordWarnings.contains { $0.contains("a.tar") && $0.contains("a1") && $0.contains("gen_2") })
  }

  func testCheckReportsReasonsPerShard() throws {
    let dir = try badShards()
    let reports = try checkData(paths: [dir + "/shards"], threads: 2)
    XCTAssertEqual(reports.map { ($0.path as NSString).lastPathComponent }, ["a.tar", "b.tar", "c.tar"])
    XCTAssertEqual(reports.map(\.records), [6, 5, 0])
    XCTAssertEqual(reports.map(\.good), [4, 4, 0])
    XCTAssertEqual(reports[0].skipped.map(\.key), ["a1", "a3"])
    XCTAssertEqual(reports[0].skipped.map(\.reason), [.missingMember, .corruptImage])
    XCTAssertEqual(reports[1].skipped.map(\.reason), [.truncatedMember])
    XCTAssertTrue(reports[1].issues[0].hasPrefix("truncated"), "\(reports[1].issues)")
    XCTAssertTrue(reports[2].issues[0].contains("not a tar archive"), "\(reports[2].issues)")
  }

  func testMissingPathAndEmptySetAreOneLineErrors() throws {
    let dir = temporaryDirectory(self, prefix: "dataset")
    func message(_ paths: [String]) -> String {
      do {
        _ = try D3Loader(config: LoaderConfig(paths: paths, seed: 1, globalBatch: 2, spec: LoaderTests.spec), cursor: DataCursor())
        return "no error"
      } catch { return "\(error)" }
    }
    let m1 = message([dir + "/nope.tar"])
    XCTAssertTrue(m1.contains("nope.tar") && m1.contains("no such file"), m1)
    XCTAssertTrue(message([dir]).contains("no .tar shards"), message([dir]))
    try Data(count: 1024).write(to: URL(fileURLWithPath: dir + "/empty.tar"))
    let m3 = message([dir + "/empty.tar"])
    XCTAssertTrue(m3.contains("no records"), m3)
    XCTAssertTrue(message([dir + "/x-{0..2}.tar"]).contains("x-0.tar"))
    for m in [m1, m3] { XCTAssertFalse(m.contains("\n")) }
  }

  func testGlobalBatchMustDivideByRanks() {
    XCTAssertThrowsError(try D3Loader(config: LoaderConfig(paths: ["/x"], seed: 1, globalBatch: 6, rank: 0, worldSize: 4,
                                                           spec: LoaderTests.spec), cursor: DataCursor())) {
      XCTAssertTrue("\($0)".contains("multiple of the number of ranks"))
      XCTAssertEqual(($0 as? DatasetError)?.kind, .invalidArgument)
    }
  }
}

/// The synthetic D3 writer (tar shards and folders) and the `check` pass over it.
final class SyntheticWriterTests: XCTestCase {
  func testWriterIsDeterministicAndChecksClean() throws {
    let dir = temporaryDirectory(self, prefix: "dataset")
    let make: (Int) throws -> [(role: RecordRole, ext: String, data: Data)] = { try smallMembers(index: $0) }
    let s1 = try writeRecords(out: dir + "/a", records: 7, shardSize: 3, layout: .wds, threads: 1, make: make)
    let s2 = try writeRecords(out: dir + "/b", records: 7, shardSize: 3, layout: .wds, threads: 2, make: make)
    XCTAssertEqual(s1.files.map { ($0 as NSString).lastPathComponent }, ["d3synth-000000.tar", "d3synth-000001.tar", "d3synth-000002.tar"])
    for (f1, f2) in zip(s1.files, s2.files) {
      XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: f1)), try Data(contentsOf: URL(fileURLWithPath: f2)))
    }
    let reports = try checkData(paths: [dir + "/a"], threads: 2)
    XCTAssertEqual(reports.map(\.records), [3, 3, 1])
    XCTAssertEqual(reports.map(\.good), [3, 3, 1])
    let shard = try TarShardSource(path: s1.files[1], useCache: false)
    XCTAssertEqual(shard.key(1), syntheticKey(4))
    XCTAssertEqual(try shard.read(1, .gen2), try smallMembers(index: 4)[3].data)
    XCTAssertEqual(String(decoding: try shard.read(1, .caption), as: UTF8.self), "caption 4")
    let f = try writeRecords(out: dir + "/f", records: 4, shardSize: 3, layout: .folders, threads: 2, make: make)
    XCTAssertEqual(f.files.count, 20)
    XCTAssertEqual(try checkData(paths: [dir + "/f"]).map(\.good), [4])
  }

  /// The real synthetic D3 (one record: rendering is slow in debug builds).
  func testSyntheticD3RecordIsWrittenAsIs() throws {
    let dir = temporaryDirectory(self, prefix: "dataset")
    let s = try writeSyntheticD3(out: dir + "/a", records: 1, shardSize: 5, seed: 9, layout: .wds, threads: 1)
    let shard = try TarShardSource(path: s.files[0], useCache: false)
    let rec = SyntheticD3.record(seed: 9, index: 0)
    XCTAssertEqual(shard.key(0), syntheticKey(0))
    XCTAssertEqual(String(decoding: try shard.read(0, .caption), as: UTF8.self), rec.caption)
    for (k, img) in ([rec.real] + rec.gens).enumerated() {
      XCTAssertEqual(try shard.read(0, RecordRole.images[k]), img.data)
      XCTAssertTrue(shard.memberName(0, RecordRole.images[k]).hasSuffix("." + img.fileExtension))
    }
  }

  func testBraceRanges() {
    XCTAssertEqual(expandBraceRanges("s-{08..11}.tar"), ["s-08.tar", "s-09.tar", "s-10.tar", "s-11.tar"])
    XCTAssertEqual(expandBraceRanges("plain.tar"), ["plain.tar"])
  }
}
