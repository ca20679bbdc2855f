import Foundation
import JSONOutput
import XCTest

final class JSONOutputTests: XCTestCase {
  /// Keys sorted at every level, one line, numbers as JSONSerialization writes them.
  func testCompactSortedKeys() throws {
    let s = try JSONOutput.string(["b": 1, "a": ["z": 2.5, "y": NSNull()], "c": [true, "x"]] as [String: Any])
    XCTAssertEqual(s, #"{"a":{"y":null,"z":2.5},"b":1,"c":[true,"x"]}"#)
    XCTAssertEqual(try JSONOutput.string(["v": 4.0, "w": 1e-06] as [String: Any]), #"{"v":4,"w":1e-06}"#)
  }

  /// "/" is escaped by default and written as is with escapingSlashes false.
  func testSlashes() throws {
    XCTAssertEqual(try JSONOutput.string(["p": "a/b"]), #"{"p":"a\/b"}"#)
    XCTAssertEqual(try JSONOutput.string(["p": "a/b"], escapingSlashes: false), #"{"p":"a/b"}"#)
  }

  /// The pretty layout is JSONSerialization's .prettyPrinted with sorted keys.
  func testPrettyMatchesJSONSerialization() throws {
    let o: [String: Any] = ["step": 3, "files": ["m": ["sha256": "00"]], "format": "x"]
    let want = try JSONSerialization.data(withJSONObject: o, options: [.prettyPrinted, .sortedKeys])
    XCTAssertEqual(try JSONOutput.data(o, layout: .pretty), want)
  }

}
