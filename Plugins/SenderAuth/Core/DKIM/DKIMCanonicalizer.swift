// Canonicalisation (RFC 6376 §3.4): header fields one at a time, the body as a stream.
import PluginAPI


package enum DKIMHeaderCanonicalizer {
    /// A whole field as it appears (name, colon, value, folding, no final CRLF), canonicalised,
    /// without the CRLF that ends it in the hash input (the signature field itself goes in without one).
    package static func canonicalize(_ field: some Collection<UInt8>, _ method: DKIMCanonicalization) -> [UInt8] {
        switch method {
        case .simple:
            return Array(field)
        case .relaxed:
            var out: [UInt8] = []
            out.reserveCapacity(field.count)
            var inName = true
            var pendingSpace = false
            var valueStarted = false
            for byte in field {
                if inName {
                    if byte == UInt8(ascii: ":") {
                        // WSP before the colon goes (§3.4.2): the name ends at its last non-WSP byte.
                        while let last = out.last, last == 0x20 || last == 0x09 { out.removeLast() }
                        out.append(byte)
                        inName = false
                    } else if byte != 0x0D && byte != 0x0A {
                        out.append(byte >= 0x41 && byte <= 0x5A ? byte + 0x20 : byte)
                    }
                    continue
                }
                switch byte {
                case 0x0D, 0x0A:
                    // Unfolding: line breaks go, the WSP after them is kept (then reduced).
                    continue
                case 0x20, 0x09:
                    pendingSpace = true
                default:
                    // WSP right after the colon goes; elsewhere a run becomes one SP.
                    if pendingSpace && valueStarted { out.append(0x20) }
                    pendingSpace = false
                    valueStarted = true
                    out.append(byte)
                }
            }
            return out
        }
    }
}

/// The body canonicaliser as a state machine fed chunks of any size: the same output however the
/// body is cut. Line ends are CRLF; a CR not followed by LF and a lone LF are ordinary octets.
package struct DKIMBodyCanonicalizer: Sendable {
    package let method: DKIMCanonicalization
    /// CRLFs seen since the last octet written: empty lines that may turn out to end the body.
    private var pendingLineEnds = 0
    /// A CR at the end of the last chunk, not yet known to start a CRLF.
    private var heldCR = false
    /// relaxed: white space seen in the line since the last octet written.
    private var pendingSpace = false
    /// Whether anything but line ends has been written.
    private var wroteContent = false

    package init(_ method: DKIMCanonicalization) { self.method = method }

    package mutating func feed(_ chunk: some Sequence<UInt8>, into out: inout [UInt8]) {
        for byte in chunk {
            if heldCR {
                heldCR = false
                if byte == 0x0A {
                    lineEnd()
                    continue
                }
                content(0x0D, into: &out)
            }
            switch byte {
            case 0x0D:
                heldCR = true
            // (A `where` after a pattern list guards only its last pattern: spell it out for both.)
            case 0x20 where method == .relaxed, 0x09 where method == .relaxed:
                pendingSpace = true
            default:
                content(byte, into: &out)
            }
        }
    }

    /// Writes what the end of the body adds: one CRLF after content (after nothing too, for simple).
    package mutating func finish(into out: inout [UInt8]) {
        if heldCR {
            heldCR = false
            content(0x0D, into: &out)
        }
        if wroteContent || method == .simple { out += [0x0D, 0x0A] }
        pendingLineEnds = 0
        pendingSpace = false
    }

    private mutating func lineEnd() {
        // relaxed: white space at the end of a line goes.
        pendingSpace = false
        pendingLineEnds += 1
    }

    private mutating func content(_ byte: UInt8, into out: inout [UInt8]) {
        for _ in 0..<pendingLineEnds { out += [0x0D, 0x0A] }
        pendingLineEnds = 0
        if pendingSpace {
            out.append(0x20)
            pendingSpace = false
        }
        out.append(byte)
        wroteContent = true
    }
}

/// The body hash (`bh=`): the canonical body, cut at `l=` octets when given, through SHA-256.
package struct DKIMBodyHasher {
    private var canonicalizer: DKIMBodyCanonicalizer
    private var hash = SHA256()
    private let limit: Int?
    /// Canonical octets produced so far (all of them, past the limit too).
    package private(set) var canonicalLength = 0
    private var buffer: [UInt8] = []

    package init(_ method: DKIMCanonicalization, limit: Int? = nil) {
        canonicalizer = DKIMBodyCanonicalizer(method)
        self.limit = limit
    }

    package mutating func feed(_ chunk: some Sequence<UInt8>) {
        canonicalizer.feed(chunk, into: &buffer)
        drain()
    }

    package mutating func finish() -> [UInt8] {
        canonicalizer.finish(into: &buffer)
        drain()
        return Array(hash.finalize())
    }

    private mutating func drain() {
        guard !buffer.isEmpty else { return }
        let room = limit.map { max(0, $0 - canonicalLength) } ?? buffer.count
        if room > 0 { hash.update(data: buffer.prefix(room)) }
        canonicalLength += buffer.count
        buffer.removeAll(keepingCapacity: true)
    }
}
