// RSA and Ed25519 keys as DKIM (RFC 6376, RFC 8463) needs them, over swift-crypto's _CryptoExtras,
// which stays internal: plugins see these few types and never link a second copy of swift-crypto.
import Foundation
import PluginAPI
internal import _CryptoExtras

/// Why a signing or verifying key was refused.
public enum SigningKeyError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The text or bytes are not a key of the expected kind.
    case malformed(String)
    /// An RSA key shorter than the least accepted (`bits` when known).
    case tooSmall(minimum: Int)
    /// The key file could not be written.
    case file(String)

    public var description: String {
        switch self {
        case .malformed(let why): return why
        case .tooSmall(let minimum): return "RSA key shorter than \(minimum) bits"
        case .file(let why): return why
        }
    }
}

/// An RSA private key that signs with PKCS#1 v1.5 and SHA-256 (DKIM's `rsa-sha256`).
public struct RSASigningKey: Sendable {
    private let key: _RSA.Signing.PrivateKey

    /// From PEM: PKCS#1 (`RSA PRIVATE KEY`) or PKCS#8 (`PRIVATE KEY`), 1024 bits or more (RFC 8301 §3.2).
    public init(pem: String) throws {
        do {
            key = try _RSA.Signing.PrivateKey(unsafePEMRepresentation: pem)
        } catch CryptoKitError.incorrectParameterSize {
            throw SigningKeyError.tooSmall(minimum: 1024)
        } catch {
            throw SigningKeyError.malformed("not an RSA private key in PEM (PKCS#1 or PKCS#8)")
        }
    }

    /// A new key of `bits` bits (2048 or more).
    public static func generate(bits: Int = 2048) throws -> RSASigningKey {
        guard bits >= 2048 else { throw SigningKeyError.tooSmall(minimum: 2048) }
        return RSASigningKey(key: try _RSA.Signing.PrivateKey(keySize: .init(bitCount: bits)))
    }

    private init(key: _RSA.Signing.PrivateKey) { self.key = key }

    public var bits: Int { key.keySizeInBits }

    /// The PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`), which every DKIM implementation reads.
    public var pemRepresentation: String { key.pemRepresentation }

    /// The public key as DER SubjectPublicKeyInfo: what a DKIM key record's `p=` carries.
    public var publicKeyDER: [UInt8] { [UInt8](key.publicKey.derRepresentation) }

    /// The RSASSA-PKCS1-v1_5 signature of SHA-256(`data`).
    public func signSHA256(_ data: [UInt8]) throws -> [UInt8] {
        [UInt8](try key.signature(for: SHA256.hash(data: data), padding: .insecurePKCS1v1_5).rawRepresentation)
    }
}

/// An RSA public key that checks PKCS#1 v1.5 SHA-256 signatures.
public struct RSAVerifyingKey: Sendable {
    private let key: _RSA.Signing.PublicKey

    /// From DER: SubjectPublicKeyInfo, or a bare PKCS#1 RSAPublicKey (which some DKIM records
    /// carry). 1024 bits or more: shorter keys throw `.tooSmall`.
    public init(der: [UInt8]) throws {
        do {
            key = try _RSA.Signing.PublicKey(unsafeDERRepresentation: der)
        } catch CryptoKitError.incorrectParameterSize {
            throw SigningKeyError.tooSmall(minimum: 1024)
        } catch {
            throw SigningKeyError.malformed("not an RSA public key in DER")
        }
    }

    public var bits: Int { key.keySizeInBits }

    /// Whether `signature` is the RSASSA-PKCS1-v1_5 signature of SHA-256(`data`).
    public func isValidSHA256Signature(_ signature: [UInt8], for data: [UInt8]) -> Bool {
        key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA256.hash(data: data),
                             padding: .insecurePKCS1v1_5)
    }
}

/// Ed25519 keys in PEM (PKCS#8 `PRIVATE KEY`, as `openssl genpkey -algorithm ed25519` writes).
public enum Ed25519PEM {
    public static func privateKey(pem: String) throws -> Curve25519.Signing.PrivateKey {
        do {
            return try Curve25519.Signing.PrivateKey(pemRepresentation: pem)
        } catch {
            throw SigningKeyError.malformed("not an Ed25519 private key in PEM (PKCS#8)")
        }
    }

    public static func pem(_ key: Curve25519.Signing.PrivateKey) -> String { key.pemRepresentation }
}

/// A new DKIM key pair for `postern admin dkim keygen`: the private key file and the key record
/// to publish at `SELECTOR._domainkey.DOMAIN`.
public enum DKIMKeyGeneration {
    public enum Algorithm: String, Sendable, CaseIterable {
        case rsa, ed25519
    }

    public struct Result: Sendable, Equatable {
        /// The record's text, `v=DKIM1; k=rsa; p=...`.
        public var record: String
        /// The same cut into character-strings of at most 255 octets (RFC 1035 §3.3), for a zone file.
        public var strings: [String]
        /// `SELECTOR._domainkey.DOMAIN. IN TXT "..." "..."`.
        public var zoneLine: String
        public var keyPath: String
    }

    /// Writes a new private key (PEM, mode 0600) to `path`, refusing to replace a file, and returns
    /// the key record.
    public static func generate(domain: String, selector: String, algorithm: Algorithm, bits: Int = 2048,
                                path: String) throws -> Result {
        guard isName(domain) else { throw SigningKeyError.malformed("not a domain name: \(domain)") }
        guard isName(selector) else { throw SigningKeyError.malformed("not a selector: \(selector)") }
        let pem: String
        let record: String
        switch algorithm {
        case .rsa:
            let key = try RSASigningKey.generate(bits: bits)
            pem = key.pemRepresentation
            record = "v=DKIM1; k=rsa; p=" + Data(key.publicKeyDER).base64EncodedString()
        case .ed25519:
            let key = Curve25519.Signing.PrivateKey()
            pem = Ed25519PEM.pem(key)
            record = "v=DKIM1; k=ed25519; p=" + key.publicKey.rawRepresentation.base64EncodedString()
        }
        try writePrivate(pem.hasSuffix("\n") ? pem : pem + "\n", to: path)
        let strings = characterStrings(record)
        let name = "\(selector)._domainkey.\(domain.hasSuffix(".") ? domain : domain + ".")"
        let zoneLine = "\(name) IN TXT " + strings.map { "\"\($0)\"" }.joined(separator: " ")
        return Result(record: record, strings: strings, zoneLine: zoneLine, keyPath: path)
    }

    /// Dot-separated labels of letters, digits, '-' and '_' (a selector may have dots too): what
    /// can be both a DNS name and part of a file name.
    static func isName(_ text: String) -> Bool {
        let trimmed = text.hasSuffix(".") ? String(text.dropLast()) : text
        let labels = trimmed.split(separator: ".", omittingEmptySubsequences: false)
        return !trimmed.isEmpty && trimmed.utf8.count <= 253 && labels.allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && label.utf8.allSatisfy { byte in
                (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                    || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
            }
        }
    }

    /// `text` cut into pieces of at most 255 octets (the record is ASCII, so characters are octets).
    public static func characterStrings(_ text: String, limit: Int = 255) -> [String] {
        var pieces: [String] = []
        var rest = Substring(text)
        while !rest.isEmpty {
            pieces.append(String(rest.prefix(limit)))
            rest = rest.dropFirst(limit)
        }
        return pieces.isEmpty ? [""] : pieces
    }

    private static func writePrivate(_ text: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            throw SigningKeyError.file("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        // The umask may have narrowed the mode; never widened it, but make it exactly 0600.
        fchmod(fd, 0o600)
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw SigningKeyError.file("cannot write \(path): \(String(cString: strerror(errno)))") }
            written += n
        }
    }
}
