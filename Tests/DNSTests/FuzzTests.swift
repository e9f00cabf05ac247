import PosternTestSupport
import XCTest
@testable import PosternDNSCore

/// Mutated real packets through the decoder: whatever the bytes, it returns a message or a
/// DNSWireError, and what it returns survives encoding and decoding again. Seeded, so a failure
/// is reproducible: the message names the seed and iteration.
final class FuzzTests: XCTestCase {
    /// One to four edits of the kinds that break parsers: flipped bits, bytes set to values that
    /// mean something (pointer prefixes, big lengths, zero), cuts, insertions and duplicated spans.
    static func mutate(_ packet: [UInt8], using random: inout SeededRandom) -> [UInt8] {
        var bytes = packet
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            guard !bytes.isEmpty else { bytes = [UInt8.random(in: 0...255, using: &random)]; continue }
            let at = Int.random(in: 0..<bytes.count, using: &random)
            switch Int.random(in: 0..<7, using: &random) {
            case 0: bytes[at] ^= 1 << UInt8.random(in: 0...7, using: &random)
            case 1: bytes[at] = [0x00, 0x3F, 0x40, 0xC0, 0xFF, 0x01].randomElement(using: &random)!
            case 2: bytes[at] = 0xC0 | UInt8.random(in: 0...0x3F, using: &random)
                    if at + 1 < bytes.count { bytes[at + 1] = UInt8.random(in: 0...255, using: &random) }
            case 3: bytes.removeSubrange(at...)
            case 4: bytes.insert(UInt8.random(in: 0...255, using: &random), at: at)
            case 5: let end = min(bytes.count, at + Int.random(in: 1...16, using: &random))
                    bytes.insert(contentsOf: bytes[at..<end], at: Int.random(in: 0...bytes.count, using: &random))
            default: // a section count or a length field made large
                let field = [4, 6, 8, 10].randomElement(using: &random)!
                if field + 1 < bytes.count { bytes[field] = UInt8.random(in: 0...255, using: &random) }
            }
        }
        return bytes
    }

    func testMutatedPacketsNeverCrash() {
        let seed: UInt64 = 0x5EED_D115
        var random = SeededRandom(seed: seed)
        var decoded = 0
        var refused = 0
        for iteration in 0..<30_000 {
            let packet = Self.mutate(Captured.all[iteration % Captured.all.count], using: &random)
            do {
                let message = try DNSWire.decode(packet)
                decoded += 1
                // What was accepted holds only valid names and lengths, so it must go round again.
                let again = try DNSWire.decode(DNSWire.encode(message))
                if again != message {
                    XCTFail("seed \(seed) iteration \(iteration): round trip changed the message")
                    return
                }
            } catch is DNSWireError {
                refused += 1
            } catch {
                XCTFail("seed \(seed) iteration \(iteration): unexpected error \(error)")
                return
            }
        }
        // Both outcomes must be well represented, or the mutations test nothing.
        XCTAssertGreaterThan(decoded, 1000)
        XCTAssertGreaterThan(refused, 1000)
    }

    func testRandomBytesNeverCrash() {
        var random = SeededRandom(seed: 42)
        for _ in 0..<20_000 {
            let packet = (0..<Int.random(in: 0...80, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            _ = try? DNSWire.decode(packet)
        }
    }
}
