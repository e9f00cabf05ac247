import PosternTestSupport
import PluginAPI
import XCTest
@testable import PosternIMAPCore

/// Bytes of a Swift string literal, for readable fixtures.
func b(_ text: String) -> [UInt8] { Array(text.utf8) }

typealias Event = IMAPCommandParser.Event

/// Feeds `input` whole to one parser and one byte at a time to another, checks that both give
/// the same events, and returns them.
func events(_ input: [UInt8], options: IMAPParserOptions = IMAPParserOptions(),
            file: StaticString = #filePath, line: UInt = #line) -> [Event] {
    var whole = IMAPCommandParser(options: options)
    let all = whole.feed(input)
    var bytewise = IMAPCommandParser(options: options)
    var one: [Event] = []
    for byte in input { one += bytewise.feed([byte]) }
    XCTAssertEqual(all, one, "whole and byte-by-byte feeding disagree", file: file, line: line)
    return all
}

func events(_ text: String, options: IMAPParserOptions = IMAPParserOptions(),
            file: StaticString = #filePath, line: UInt = #line) -> [Event] {
    events(b(text), options: options, file: file, line: line)
}

/// Asserts `text` (fed whole and byte by byte) is exactly one command, tagged `a1` unless told.
func assertCommand(_ text: String, _ expected: IMAPCommand, tag: String = "a1", options: IMAPParserOptions = IMAPParserOptions(),
                   file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(events(text, options: options, file: file, line: line),
                   [.command(IMAPTaggedCommand(tag: tag, command: expected))], file: file, line: line)
}

/// Asserts `text` is refused with exactly `reply` (the bytes of the BAD/NO line).
func assertRefused(_ text: String, _ reply: String, options: IMAPParserOptions = IMAPParserOptions(),
                   file: StaticString = #filePath, line: UInt = #line) {
    let got = events(text, options: options, file: file, line: line)
    XCTAssertEqual(got.count, 1, "expected one event, got \(got)", file: file, line: line)
    guard case .error(let error)? = got.first else {
        XCTFail("expected an error, got \(got)", file: file, line: line)
        return
    }
    XCTAssertEqual(String(decoding: error.responseBytes, as: UTF8.self), reply, file: file, line: line)
}

/// The reply bytes of every error event, and "+" for continuation requests, "cmd:TAG NAME" for
/// commands: a compact transcript for framing tests.
func transcript(_ events: [Event]) -> [String] {
    events.map { event in
        switch event {
        case .command(let c): return "cmd:\(c.tag) \(c.command.name)"
        case .continuationRequest: return "+"
        case .error(let e): return String(decoding: e.responseBytes, as: UTF8.self)
        case .authenticationResponse(let r): return "auth:\(r)"
        case .idleDone: return "done"
        }
    }
}

func set(_ text: String) -> IMAPSequenceSet { IMAPSequenceSet.parse(Array(text.utf8))! }

func date(_ year: Int, _ month: Int, _ day: Int) -> IMAPDate { IMAPDate(year: year, month: month, day: day)! }
