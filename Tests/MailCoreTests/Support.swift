import PosternTestSupport
import XCTest
import PluginAPI

/// How a fixture is fed: whole, or one byte at a time.
enum Feeding: CaseIterable, CustomStringConvertible {
    case whole, byteByByte
    var description: String { self == .whole ? "whole" : "1-byte chunks" }
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

/// Parses a message with the streaming parser, fed as `feeding` says.
func parseMessage(_ message: [UInt8], _ feeding: Feeding, limits: MIMEParserLimits = MIMEParserLimits()) -> MIMEMessage {
    var p = MIMEStructureParser(limits: limits)
    switch feeding {
    case .whole: p.feed(message)
    case .byteByByte: for b in message { p.feed(CollectionOfOne(b)) }
    }
    return p.finish()
}

/// Runs a header parser over `input`, fed as `feeding` says; returns its events and consumed count.
func parseHeader(_ input: [UInt8], _ feeding: Feeding, limits: MailHeaderLimits = MailHeaderLimits()) -> ([MailHeaderEvent], Int) {
    var p = MailHeaderParser(limits: limits)
    var events: [MailHeaderEvent] = []
    switch feeding {
    case .whole: events = p.feed(input)
    case .byteByByte: for b in input { events += p.feed(CollectionOfOne(b)) }
    }
    if !p.isComplete { events += p.finish() }
    return (events, p.consumed)
}

/// Runs a streaming decoder/encoder step over `input` cut in chunks of `size`.
func chunked(_ input: [UInt8], size: Int, _ step: ([UInt8]) -> [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    var i = 0
    while i < input.count {
        let j = min(input.count, i + size)
        out += step(Array(input[i..<j]))
        i = j
    }
    return out
}
