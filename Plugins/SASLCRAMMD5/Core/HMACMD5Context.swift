import COpenSSLMD5
import PluginAPI

/// HMAC-MD5 split at its precomputable point (RFC 2104 §4): the MD5 chaining states after the
/// first block of the inner hash (key XOR ipad) and of the outer hash (key XOR opad). Whoever has
/// them can compute HMAC-MD5 under the password for any message, so they are password-equivalent
/// for CRAM-MD5 — but not the password itself. Dovecot keeps the same 32 bytes as `{CRAM-MD5}`.
struct HMACMD5Context: Equatable {
    /// A, B, C, D of MD5 after the inner key block, each word little-endian (16 bytes).
    var inner: [UInt8]
    /// The same after the outer key block.
    var outer: [UInt8]

    static let blockLength = 64

    /// The contexts of `password` as HMAC key: hashed first when longer than a block (RFC 2104 §2).
    init(password: [UInt8]) {
        var key = password
        if key.count > Self.blockLength { key = Array(Insecure.MD5.hash(data: key)) }
        key += [UInt8](repeating: 0, count: Self.blockLength - key.count)
        inner = Self.stateAfterBlock(key.map { $0 ^ 0x36 })
        outer = Self.stateAfterBlock(key.map { $0 ^ 0x5C })
    }

    init?(inner: [UInt8], outer: [UInt8]) {
        guard inner.count == 16, outer.count == 16 else { return nil }
        self.inner = inner
        self.outer = outer
    }

    /// HMAC-MD5(password, message), from the two states alone.
    func authenticationCode(_ message: [UInt8]) -> [UInt8] {
        let innerDigest = Self.finish(from: inner, message)
        return Self.finish(from: outer, innerDigest)
    }

    private static func stateAfterBlock(_ block: [UInt8]) -> [UInt8] {
        var context = MD5_CTX()
        MD5_Init(&context)
        block.withUnsafeBufferPointer { MD5_Transform(&context, $0.baseAddress) }
        return [context.A, context.B, context.C, context.D].flatMap { word in (0..<4).map { UInt8(truncatingIfNeeded: word >> (8 * $0)) } }
    }

    /// MD5 of (one block already absorbed into `state`) + `message`.
    private static func finish(from state: [UInt8], _ message: [UInt8]) -> [UInt8] {
        var context = MD5_CTX()
        MD5_Init(&context)
        func word(_ i: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(state[4 * i + $1]) << (8 * $1) } }
        context.A = word(0); context.B = word(1); context.C = word(2); context.D = word(3)
        // One block of 512 bits is behind the state.
        context.Nl = 512
        context.Nh = 0
        message.withUnsafeBufferPointer { _ = MD5_Update(&context, $0.baseAddress, $0.count) }
        var digest = [UInt8](repeating: 0, count: 16)
        digest.withUnsafeMutableBufferPointer { _ = MD5_Final($0.baseAddress, &context) }
        return digest
    }
}
