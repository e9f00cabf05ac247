// PBKDF2 only; internal so that PluginAPI does not re-export _CryptoExtras (Crypto is re-exported in Exports.swift).
internal import _CryptoExtras

/// A password kept as SCRAM keys (RFC 5802, RFC 7677) rather than as a hash of one scheme.
///
/// One stored form serves both kinds of mechanism: plaintext ones (PLAIN, LOGIN) check a password
/// with `verify(password:)`, which derives the keys again and compares `storedKey`; SCRAM
/// mechanisms use `storedKey` and `serverKey` directly without ever seeing the password. So SCRAM
/// can be switched on later without asking anybody to reset a password.
///
/// Passwords are prepared minimally (see `prepare(password:)`): NUL is refused and the UTF-8 bytes
/// are used as given, with none of SASLprep's mapping or normalisation.
public struct SCRAMSecret: Sendable, Equatable, CustomStringConvertible {
    /// The SCRAM hash. Its raw value is the mechanism name, which is also the `StoredSecret`
    /// scheme and the prefix of the storage string.
    public enum Algorithm: String, Sendable, CaseIterable {
        /// RFC 5802's original; kept for clients and imported databases that only have it.
        case sha1 = "SCRAM-SHA-1"
        /// RFC 7677; the default for new secrets.
        case sha256 = "SCRAM-SHA-256"

        /// Length of every key: the hash's output size.
        public var keyLength: Int {
            switch self {
            case .sha1: return Insecure.SHA1.byteCount
            case .sha256: return SHA256.byteCount
            }
        }

        /// H(data), as SCRAM's StoredKey = H(ClientKey) needs it.
        public func hash(_ data: [UInt8]) -> [UInt8] {
            switch self {
            case .sha1: return Array(Insecure.SHA1.hash(data: data))
            case .sha256: return Array(SHA256.hash(data: data))
            }
        }

        /// HMAC(key, data), the building block of every SCRAM key, signature and proof.
        public func hmac(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
            let key = SymmetricKey(data: key)
            switch self {
            case .sha1: return Array(HMAC<Insecure.SHA1>.authenticationCode(for: data, using: key))
            case .sha256: return Array(HMAC<SHA256>.authenticationCode(for: data, using: key))
            }
        }

        /// Hi(password, salt, i) of RFC 5802 §2.2, which is PBKDF2 with this hash's HMAC.
        public func saltedPassword(_ password: [UInt8], salt: [UInt8], iterations: Int) throws -> [UInt8] {
            let function: KDF.Insecure.PBKDF2.HashFunction = self == .sha1 ? .insecureSHA1 : .sha256
            // The "unchecked" entry point: SCRAM's customary 4096 rounds are below the 210,000
            // that the checked one insists on, and clients must be able to reproduce them.
            let key = try KDF.Insecure.PBKDF2.deriveKey(from: password, salt: salt, using: function,
                                                         outputByteCount: keyLength,
                                                         unsafeUncheckedRounds: iterations)
            return key.withUnsafeBytes { Array($0) }
        }
    }

    /// Why a password or a stored secret was refused.
    public enum SecretError: Error, Sendable, Equatable {
        /// The password holds a character that cannot be used (NUL).
        case prohibitedCharacter
        /// Iterations outside `1...SCRAMSecret.maximumIterations`.
        case invalidIterations(Int)
        /// The salt is empty.
        case emptySalt
        /// A storage string or `StoredSecret` that does not parse; the text says what is wrong.
        case malformed(String)
        /// A scheme other than the SCRAM ones.
        case unsupportedScheme(String)
    }

    /// The RFC 5802/7677 minimum, and what clients expect unless told otherwise.
    public static let defaultIterations = 4096
    /// A bound on what a stored or imported secret may ask for, so a corrupt record cannot make
    /// every login spin for minutes.
    public static let maximumIterations = 10_000_000
    /// Salt length for new secrets (RFC 7677's example and PostgreSQL use 16 bytes).
    public static let defaultSaltLength = 16

    /// The hash these keys were made with.
    public var algorithm: Algorithm
    /// The per-user salt, sent to SCRAM clients as is.
    public var salt: [UInt8]
    /// The PBKDF2 iteration count, sent to SCRAM clients.
    public var iterations: Int
    /// H(HMAC(SaltedPassword, "Client Key")): what a client's proof is checked against.
    public var storedKey: [UInt8]
    /// HMAC(SaltedPassword, "Server Key"): proves to a SCRAM client that the server knew it.
    public var serverKey: [UInt8]

    /// Assembles a secret from its parts (read from storage, say); checks only the shapes.
    public init(algorithm: Algorithm, salt: [UInt8], iterations: Int, storedKey: [UInt8], serverKey: [UInt8]) throws {
        guard (1...Self.maximumIterations).contains(iterations) else { throw SecretError.invalidIterations(iterations) }
        guard !salt.isEmpty else { throw SecretError.emptySalt }
        guard storedKey.count == algorithm.keyLength, serverKey.count == algorithm.keyLength else {
            throw SecretError.malformed("\(algorithm.rawValue) keys are \(algorithm.keyLength) bytes, found \(storedKey.count) and \(serverKey.count)")
        }
        self.algorithm = algorithm
        self.salt = salt
        self.iterations = iterations
        self.storedKey = storedKey
        self.serverKey = serverKey
    }

    /// The minimal SASLprep applied to every password before it is hashed, here and by
    /// `verify(password:)`: NUL is refused (it separates fields in PLAIN and ends strings in C
    /// interfaces), and otherwise the password's UTF-8 bytes are used exactly as given. Nothing is
    /// mapped or normalised (no NFKC, no space mapping, no bidi checks), so an ASCII password
    /// matches every SCRAM client; a non-ASCII one matches clients that send it already in the
    /// form it was set in. Returns nil when the password is refused.
    public static func prepare(password: String) -> [UInt8]? {
        let bytes = Array(password.utf8)
        return bytes.contains(0) ? nil : bytes
    }

    /// Derives the keys of `password` (RFC 5802 §3): SaltedPassword = PBKDF2-HMAC(password, salt,
    /// iterations), ClientKey = HMAC(SaltedPassword, "Client Key"), StoredKey = H(ClientKey),
    /// ServerKey = HMAC(SaltedPassword, "Server Key"). Without `salt`, a random one of
    /// `defaultSaltLength` bytes is drawn from the system's secure generator.
    public static func derive(password: String, algorithm: Algorithm = .sha256,
                              iterations: Int = defaultIterations, salt: [UInt8]? = nil) throws -> SCRAMSecret {
        guard let prepared = prepare(password: password) else { throw SecretError.prohibitedCharacter }
        guard (1...maximumIterations).contains(iterations) else { throw SecretError.invalidIterations(iterations) }
        let salt = salt ?? randomSalt()
        guard !salt.isEmpty else { throw SecretError.emptySalt }
        let keys = try clientAndServerKeys(prepared, algorithm: algorithm, salt: salt, iterations: iterations)
        return try SCRAMSecret(algorithm: algorithm, salt: salt, iterations: iterations,
                               storedKey: algorithm.hash(keys.client), serverKey: keys.server)
    }

    /// Whether `password` is the one these keys were derived from. Runs the full PBKDF2 whatever
    /// the password, and compares in constant time, so timing tells nothing about how close a
    /// guess was.
    public func verify(password: String) -> Bool {
        guard let prepared = Self.prepare(password: password),
              let keys = try? Self.clientAndServerKeys(prepared, algorithm: algorithm, salt: salt, iterations: iterations)
        else { return false }
        // Both keys, folded into one result: no early exit between them either.
        let stored = Self.constantTimeEqual(algorithm.hash(keys.client), storedKey)
        let server = Self.constantTimeEqual(keys.server, serverKey)
        return stored && server
    }

    /// Equality whose running time depends on the lengths only, for comparing secrets and proofs.
    @inline(never)
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in 0..<a.count { difference |= a[i] ^ b[i] }
        return difference == 0
    }

    private static func clientAndServerKeys(_ password: [UInt8], algorithm: Algorithm, salt: [UInt8],
                                            iterations: Int) throws -> (client: [UInt8], server: [UInt8]) {
        let salted = try algorithm.saltedPassword(password, salt: salt, iterations: iterations)
        return (algorithm.hmac(key: salted, Array("Client Key".utf8)),
                algorithm.hmac(key: salted, Array("Server Key".utf8)))
    }

    private static func randomSalt() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<defaultSaltLength).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    // MARK: Storage string

    /// The one-string form for a database column, as PostgreSQL stores SCRAM verifiers:
    /// `SCRAM-SHA-256$<iterations>:<salt b64>$<StoredKey b64>:<ServerKey b64>`
    /// (`SCRAM-SHA-1$...` for SHA-1). Standard base64 with padding.
    public var encoded: String {
        "\(algorithm.rawValue)$\(iterations):\(Self.base64(salt))$\(Self.base64(storedKey)):\(Self.base64(serverKey))"
    }

    /// Parses the storage string strictly: known scheme, decimal iterations, canonical base64 and
    /// keys of the hash's length. Anything else is an error rather than a secret nobody can match.
    public init(encoded text: String) throws {
        let parts = text.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw SecretError.malformed("expected SCHEME$ITERATIONS:SALT$STOREDKEY:SERVERKEY") }
        guard let algorithm = Algorithm(rawValue: String(parts[0])) else {
            throw SecretError.unsupportedScheme(String(parts[0]))
        }
        let parameters = parts[1].split(separator: ":", omittingEmptySubsequences: false)
        let keys = parts[2].split(separator: ":", omittingEmptySubsequences: false)
        guard parameters.count == 2, keys.count == 2 else {
            throw SecretError.malformed("expected ITERATIONS:SALT and STOREDKEY:SERVERKEY")
        }
        let iterations = try Self.decimal(String(parameters[0]))
        try self.init(algorithm: algorithm, salt: try Self.unbase64(parameters[1], "salt"), iterations: iterations,
                      storedKey: try Self.unbase64(keys[0], "stored key"),
                      serverKey: try Self.unbase64(keys[1], "server key"))
    }

    // MARK: StoredSecret

    /// The form credential backends hand to SCRAM mechanisms: scheme = the mechanism name, fields
    /// `salt`, `stored-key`, `server-key` (raw bytes) and `iterations` (decimal digits in ASCII).
    public var storedSecret: StoredSecret {
        StoredSecret(scheme: algorithm.rawValue, fields: [
            "salt": salt,
            "iterations": Array(String(iterations).utf8),
            "stored-key": storedKey,
            "server-key": serverKey,
        ])
    }

    /// Reads a `StoredSecret` of a SCRAM scheme back, with the checks of `init(encoded:)`.
    public init(_ secret: StoredSecret) throws {
        guard let algorithm = Algorithm(rawValue: secret.scheme) else { throw SecretError.unsupportedScheme(secret.scheme) }
        func field(_ name: String) throws -> [UInt8] {
            guard let value = secret.fields[name] else { throw SecretError.malformed("missing field \(name)") }
            return value
        }
        let iterationText = try field("iterations")
        guard iterationText.allSatisfy({ $0 < 0x80 }) else { throw SecretError.malformed("iterations is not ASCII") }
        try self.init(algorithm: algorithm, salt: try field("salt"),
                      iterations: try Self.decimal(String(decoding: iterationText, as: UTF8.self)),
                      storedKey: try field("stored-key"), serverKey: try field("server-key"))
    }

    /// Shows the scheme, iterations and salt length only: the keys stay out of logs.
    public var description: String {
        "SCRAMSecret(\(algorithm.rawValue), iterations: \(iterations), salt: \(salt.count) bytes, keys redacted)"
    }

    private static func decimal(_ text: String) throws -> Int {
        guard !text.isEmpty, text.utf8.count <= 9, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
              let value = Int(text) else {
            throw SecretError.malformed("iterations \"\(text)\" is not a decimal count")
        }
        guard (1...maximumIterations).contains(value) else { throw SecretError.invalidIterations(value) }
        return value
    }

    private static func base64(_ bytes: [UInt8]) -> String {
        String(decoding: Base64Encoder.encode(bytes, lineLength: 0), as: UTF8.self)
    }

    private static func unbase64(_ text: Substring, _ what: String) throws -> [UInt8] {
        var decoder = Base64Decoder()
        let bytes = decoder.decode(text.utf8) + decoder.finish()
        // Canonical only: re-encoding must give the same text (no whitespace, no missing padding).
        guard !decoder.sawInvalidInput, base64(bytes) == text else {
            throw SecretError.malformed("\(what) is not base64")
        }
        return bytes
    }
}
