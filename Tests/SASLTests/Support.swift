import PosternTestSupport
import PluginAPI
import XCTest
@testable import PosternSASLPlainCore
@testable import PosternSASLLoginCore

/// Bytes of a Swift string literal ("\0" is NUL), for readable fixtures.
func b(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Bytes from hex, for fixtures that must be exact (UTF-8 forms, invalid sequences).
func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.filter { !$0.isWhitespace })
    precondition(digits.count % 2 == 0)
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

func base64(_ text: String) -> [UInt8] { Base64Decoder.decode(Array(text.utf8)) }
func base64(_ bytes: [UInt8]) -> String { String(decoding: Base64Encoder.encode(bytes, lineLength: 0), as: UTF8.self) }

let context = SASLExchangeContext(service: "smtp", serverHostname: "mx.example.org", isSecure: true)

/// A failure step's malformed text, or nil when the step is something else.
func malformedText(_ step: SASLStep) -> String? {
    if case .failure(.malformed(let text)) = step { return text }
    return nil
}
