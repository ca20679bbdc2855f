import Foundation
import Imaging
import TestSupport
import XCTest
@testable import Dataset

/// Shard damage is accounted for: a damaged header costs the member it hit (scanning
/// resumes at the next valid header), `checkData` reports the records lost, and the
/// loader's start-up summary and warnings say the same; files that are not shards are
/// named.
final class ShardDamageTests: XCTestCase {
  /// A shard of 16 small records (r0000 ... r0015), as bytes, with each member's header offset.
  func shardBytes(_ dir: String, records: Int = 16, first: Int = 0) throws -> (bytes: [UInt8], headers: [(String, Int)]) {
    let p = dir + "/whole-\(first).tar"
    let w = try TarWriter(path: p)
    for i in first..<(first + records) {
      for m in try smallMembers(index: i) { try w.add(name: "r\(String(format: "%04d", i)).\(m.role.tag).\(m.ext)", data: m.data) }
    }
    try w.finish()
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))
    try FileManager.default.removeItem(atPath: p)
    var headers: [(String, Int)] = []
    try TarScanner(source: MemoryByteSource(bytes)).scan { headers.append(($0.name, Int($0.dataOffset) - 512)) }
    return (bytes, headers)
  }

  /// The header of r0008's gen_1 member with one bit flipped (in its size field).
  func flippedShard(_ dir: String) throws -> (bytes: [UInt8], damagedMember: String) {
    var (bytes, headers) = try shardBytes(dir)
    let (name, at) = headers.first { $0.0.hasPrefix("r0008.gen_1") }!
    bytes[at + 130] ^= 0x01
    return (bytes, name)
  }

  func testFlippedHeaderByteLosesOneMemberAndScanningResumes() throws {
    let dir = temporaryDirectory(self, prefix: "dataset")
    let (whole, headers) = try shardBytes(dir)
    let (bytes, damaged) = try flippedShard(dir)
    var members: [String] = []
    let issues = try TarScanner(source: MemoryByteSource(bytes)).scan { members.append($0.name) }
    XCTAssertEqual(members, headers.map(\.0).filter { $0 != damaged })
    XCTAssertEqual(issues.map(\.kind), [.badHeader])
    let at = headers.first { $0.0 == damaged }!.1
    let next = headers[headers.firstIndex { $0.0 == damaged }! + 1].1
    XCTAssertEqual(issues[0].offset, Int64(at))
    XCTAssertEqual(issues[0].resumedAt, Int64(next))
    // The well-formed shard has no issue.
    XCTAssertEqual(try TarScanner(source: MemoryByteSource(whole)).scan { _ in }, [])
    let idx = try ShardIndex.build(source: MemoryByteSource(bytes))
    XCTAssertEqual(idx.count, 16)
    XCTAssertTrue(idx.damaged)
    let r8 = (0..<16).first { idx.key($0) == "r0008" }!
    XCTAssertNotEqual(idx.flags(r8) & ShardIndex.flagDamaged, 0)
    XCTAssertEqual((0..<16).filter { idx.flags($0) & ShardIndex.flagDamaged != 0 }, [r8])
  }

  func testZeroedBlockInsideTheArchiveIsDamageNotTheEnd() throws {
    let dir = temporaryDirectory(self, prefix: "dataset")
    var (bytes, headers) = try shardBytes(dir)
    let (_, at) = headers.first { $0.0.hasPrefix("r0005.real") }!
    for i in at..<(at + 512) { bytes[i] = 0 }
    var members = 0
    let issues = try TarScanner(source: MemoryByteSource(bytes)).scan { _ in members += 1 }
    XCTAssertEqual(members, headers.count - 1)
    XCTAssertEqual(issues.map(\.kind), [.badHeader])
    XCTAssertTrue(issues[0].detail.contains("zero block"), issues[0].detail)
  }

  func testNotATarAndTruncationAreTold() throws {
    let junk = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 7919 >> 3) }
    let i1 = try TarScanner(source: MemoryByteSource(junk)).scan { _ in }
    XCTAssertEqual(i1.map(\.kind), [.notTar])
    let dir = temporaryDirectory(self, prefix: "dataset")
    let (bytes, headers) = try shardBytes(dir)
    let cut = Array(bytes.prefix(headers[20].1 + 100))
    let i2 = try TarScanner(source: MemoryByteSource(cut)).scan { _ in }
    XCTAssertEqual(i2.map(\.kind), [.truncated])
  }

  /// Shards: a.tar with a flipped header byte in r0008, b.tar whole (r0016 ... r0031),
  /// c.tar random bytes, notes.json beside them.
  func damagedSet() throws -> String {
    let dir = temporaryDirectory(self, prefix: "dataset")
    let set = dir + "/set"
    try FileManager.default.createDirectory(atPath: set, withIntermediateDirectories: true)
    try Data(try flippedShard(dir).bytes).write(to: URL(fileURLWithPath: set + "/a.tar"))
    try Data(try shardBytes(dir, first: 16).bytes).write(to: URL(fileURLWithPath: set + "/b.tar"))
    try Data((0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 31 >> 2) }).write(to: URL(fileURLWithPath: set + "/c.tar"))
    try Data("{}".utf8).write(to: URL(fileURLWithPath: set + "/notes.json"))
    return dir
  }

  func testCheckReportsLossAndLoaderUsesEveryOtherRecord() throws {
    let dir = try damagedSet()
    let check = try checkDataSet(paths: [dir + "/set"], threads: 2)
    let r = check.sources
    XCTAssertEqual(r.map { ($0.path as NSString).lastPathComponent }, ["a.tar", "b.tar", "c.tar"])
    XCTAssertEqual(r.map(\.records), [16, 16, 0])
    XCTAssertEqual(r.map(\.good), [15, 16, 0])
    XCTAssertEqual(r.map(\.lost), [1, 0, 0])
    XCTAssertEqual(r.map(\.damaged), [true, false, true])
    XCTAssertEqual(r[0].skipped.map(\.key), ["r0008"])
    XCTAssertEqual(r[0].skipped.map(\.reason), [.damaged])
    XCTAssertTrue(r[2].issues[0].contains("not a tar archive"), "\(r[2].issues)")
    XCTAssertEqual(check.ignored.count, 1)
    XCTAssertTrue(check.ignored[0].contains("notes.json"), "\(check.ignored)")

    // The loader: start-up lines give the same counts; every damaged source and the
    // ignored file are warned about; training draws every record but r0008.
    let log = WarningLog(), info = WarningLog()
    var c = LoaderConfig(paths: [dir + "/set"], seed: 3, globalBatch: 4, spec: LoaderTests.spec, threads: 2)
    c.indexDirectory = dir + "/idx"
    c.warn = { log.add($0) }
    c.info = { info.add($0) }
    let l = try D3Loader(config: c, cursor: DataCursor())
    XCTAssertEqual(l.recordCount, 32)
    for s in r {
      XCTAssertTrue(info.all.contains("data: \(s.path): \(s.records) records"), "\(info.all)")
    }
    XCTAssertEqual(info.all.last, "data: 32 records in 3 source(s)")
    let startup = log.all
    XCTAssertEqual(startup.count, 3, "\(startup)")
    XCTAssertTrue(startup.contains { $0.contains("notes.json") })
    XCTAssertTrue(startup.contains { $0.contains("a.tar") && $0.contains("lost to damage") && $0.contains(r[0].issues[0]) })
    XCTAssertTrue(startup.contains { $0.contains("c.tar") && $0.contains("not a tar archive") })
    var seen = Set<String>()
    for _ in 0..<(3 * l.stepsPerEpoch) {
      let b = try l.next()
      for i in 0..<b.records {
        let (s, local, _) = l.catalog.locate(b.recordIDs[i])
        seen.insert(s.key(local))
      }
    }
    l.close()
    XCTAssertFalse(seen.contains("r0008"))
    XCTAssertEqual(seen.count, 31, "every record but the damaged one is used")
    XCTAssertTrue(log.all.contains { $0.contains("r0008") && $0.contains("damaged tar header") }, "\(log.all)")
  }

  func testOnlySourceNotATarIsAnError() throws {
    let dir = temporaryDirectory(self, prefix: "dataset")
    try Data((0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 31 >> 2) }).write(to: URL(fileURLWithPath: dir + "/x.tar"))
    XCTAssertThrowsError(try D3Loader(config: LoaderConfig(paths: [dir + "/x.tar"], seed: 1, globalBatch: 2, spec: LoaderTests.spec),
                                      cursor: DataCursor())) {
      XCTAssertTrue("\($0)".contains("x.tar") && "\($0)".contains("not a tar archive"), "\($0)")
      XCTAssertFalse("\($0)".contains("\n"))
    }
  }

  /// Damaged images inside a well-formed shard (the D3 cases) are bad records named by
  /// shard and key; the pixel limit applies to shards too.
  func testDamagedImagesInShardAreBadRecords() throws {
    let dir = temporaryDirectory(self, prefix: "dataset")
    let fix = fixtureDirectory("Imaging/damaged").path
    let jpeg = try Data(contentsOf: URL(fileURLWithPath: fix + "/d3-jpeg-3000.jpg"))
    let png = try Data(contentsOf: URL(fileURLWithPath: fix + "/d3-png-idat.png"))
    let w = try TarWriter(path: dir + "/s.tar")
    for i in 0..<4 {
      for m in try smallMembers(index: i) {
        var d = m.data, ext = m.ext
        if i == 1 && m.role == .real { d = jpeg; ext = "jpg" }
        if i == 2 && m.role == .gen3 { d = png; ext = "png" }
        try w.add(name: "k\(i).\(m.role.tag).\(ext)", data: d)
      }
    }
    try w.finish()
    let r = try checkData(paths: [dir + "/s.tar"], threads: 2)[0]
    XCTAssertEqual(r.good, 2)
    XCTAssertEqual(r.skipped.map(\.key), ["k1", "k2"])
    XCTAssertEqual(r.skipped.map(\.reason), [.corruptImage, .corruptImage])
    XCTAssertTrue(r.skipped[0].detail.contains("s.tar:k1.real.jpg"), r.skipped[0].detail)
    XCTAssertTrue(r.skipped[1].detail.contains("s.tar:k2.gen_3.png"), r.skipped[1].detail)
    XCTAssertFalse(r.damaged)
    // 48x48 is the largest small image: a limit below it refuses every record.
    XCTAssertEqual(try checkData(paths: [dir + "/s.tar"], threads: 2, policy: DecodePolicy(maxPixels: 48 * 48 - 1))[0].good, 0)
    XCTAssertEqual(try checkData(paths: [dir + "/s.tar"], threads: 2, policy: DecodePolicy(maxPixels: 48 * 48))[0].good, 2)
  }

  /// Genuine data decodes under the strict policy: the D3 sample shard and the synthetic writer.
  func testWellFormedDataIsNotRejected() throws {
    if let sample = Fixture.d3Sample {
      let r = try checkData(paths: [sample], threads: 2)[0]
      XCTAssertEqual(r.good, r.records)
      XCTAssertFalse(r.damaged)
    }
    let dir = temporaryDirectory(self, prefix: "dataset")
    let s = try writeSyntheticD3(out: dir + "/s", records: 6, shardSize: 3, seed: 3, layout: .wds, threads: 2, strength: 4)
    XCTAssertEqual(s.files.count, 2)
    let r = try checkData(paths: [dir + "/s"], threads: 2)
    XCTAssertEqual(r.map(\.good), [3, 3])
    XCTAssertEqual(r.map(\.damaged), [false, false])
  }
}
