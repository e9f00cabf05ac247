// swift-tools-version:6.1
// PluginAPI is its own package with ONE dynamic product. The host, every plugin and every
// third-party plugin link this single image, so types and global state (NIO, swift-log,
// swift-metrics) exist exactly once per process. See ARCHITECTURE.md, "Plugins".
import PackageDescription

let package = Package(
    name: "PluginAPI",
    platforms: [.macOS(.v14)],
    products: [
        // PluginHTTP (Hummingbird and the glue that serves it on a host listener) is a second module
        // of the same image: the HTTP plugins (webmail, admin) import it, and NIO stays one copy.
        // PluginCredentials likewise: jwt-kit (JWT/JWKS verification) and swift-certificates (X.509
        // parsing) for the SASL plugins that check tokens and client certificates, on the one copy
        // of swift-crypto. PluginPostgres: postgres-nio for the store-postgres plugin, on the same NIO.
        .library(name: "PluginAPI", type: .dynamic, targets: ["PluginAPI", "PluginHTTP", "PluginCredentials", "PluginPostgres"]),
    ],
    dependencies: [
        // Pinned exactly: a plugin and the host must agree on these to the byte.
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", exact: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", exact: "2.4.1"),
        // Hashes, HMAC and key derivation (SCRAM, password secrets, DKIM later): one copy for every plugin.
        // 4.x: jwt-kit 5 (below) needs swift-crypto 4.1 or later.
        .package(url: "https://github.com/apple/swift-crypto.git", exact: "4.5.2"),
        // JWS/JWKS verification (OAUTHBEARER, XOAUTH2), exported by the PluginCredentials module.
        .package(url: "https://github.com/vapor/jwt-kit.git", exact: "5.8.0"),
        // X.509: the self-signed certificate a new installation serves until a real one is put in place.
        .package(url: "https://github.com/apple/swift-certificates.git", exact: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", exact: "1.7.4"),
        // HTTP for the webmail and admin plugins. Without the swift-configuration trait: Postern's
        // config is its own TOML, read by the host.
        .package(url: "https://github.com/apple/swift-http-types.git", exact: "1.8.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1", traits: ["FullFoundation"]),
        // The PostgreSQL client (wire protocol, pool, LISTEN/NOTIFY) for the store-postgres plugin.
        .package(url: "https://github.com/vapor/postgres-nio.git", exact: "1.33.2"),
    ],
    targets: [
        .target(
            name: "PluginAPI",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                // TLSUserEvent: what NIOSSL's handlers announce (handshake done, TLS closed).
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
                // Internal only (PBKDF2); not re-exported.
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                // Internal only (SelfSignedCertificate); not re-exported.
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                // Internal only (LegacyPasswordHash: crypt_r for imported crypt(3) hashes).
                "CLibCrypt",
            ]
        ),
        // libxcrypt (Debian libcrypt-dev), a C library linked into libPluginAPI.so alone.
        .systemLibrary(name: "CLibCrypt", path: "Sources/CLibCrypt", pkgConfig: "libcrypt", providers: [.apt(["libcrypt-dev"])]),
        .target(
            name: "PluginHTTP",
            dependencies: [
                "PluginAPI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        .target(
            name: "PluginCredentials",
            dependencies: [
                "PluginAPI",
                .product(name: "JWTKit", package: "jwt-kit"),
                // Internal only (SigningKeys: RSA for DKIM); not re-exported.
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        .target(
            name: "PluginPostgres",
            dependencies: [
                "PluginAPI",
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v5]
)
