// swift-tools-version:6.0
// Postern: one host binary, plugins loaded at run time. Every plugin is one folder under Plugins/
// and one dynamic product libPostern<Name>.so, built from a static core (Plugins/<Name>/Core) and a
// two-symbol entry (Plugins/<Name>/Entry). Host, plugins and tests depend on the PluginAPI
// *product* only (never on NIO, swift-log or swift-metrics directly): see ARCHITECTURE.md.
import PackageDescription

let pluginAPI: Target.Dependency = .product(name: "PluginAPI", package: "PluginAPI")

/// A plugin: one folder, one shared object. `PATH/Core` holds all its logic as the static target
/// `Postern<Name>Core` (linked into this plugin alone; tests `@testable import` it); `PATH/Entry`
/// holds only the two exported C symbols, in the target behind the dynamic product.
func plugin(_ name: String, path: String, extra: [Target.Dependency] = [], resources: [Resource]? = nil,
            mode: SwiftLanguageMode = .v6) -> (Product, [Target]) {
    (.library(name: "Postern\(name)", type: .dynamic, targets: ["Postern\(name)"]),
     [.target(name: "Postern\(name)Core", dependencies: [pluginAPI] + extra, path: path + "/Core", resources: resources,
              swiftSettings: [.swiftLanguageMode(mode)]),
      .target(name: "Postern\(name)", dependencies: [.target(name: "Postern\(name)Core"), pluginAPI], path: path + "/Entry", swiftSettings: [.swiftLanguageMode(.v6)])])
}

let plugins: [(Product, [Target])] = [
    // The embedded default store: SQLite (GRDB, linked into this plugin alone) and blob files.
    plugin("StoreSQLite", path: "Plugins/StoreSQLite", extra: [.product(name: "GRDB", package: "GRDB.swift")]),
    // The mail queue: spool, manager, retries, delivery reports, routing; local and discard transports.
    plugin("Queue", path: "Plugins/Queue"),
    // POP3 access to the INBOX.
    plugin("POP3", path: "Plugins/POP3"),
    // SASL mechanisms (plaintext: offered only under TLS or on allowed loopback).
    plugin("SASLPlain", path: "Plugins/SASLPlain"),
    plugin("SASLLogin", path: "Plugins/SASLLogin"),
    // Token, guest and certificate SASL mechanisms: OAUTHBEARER/XOAUTH2 (JWT via PluginAPI's
    // PluginCredentials module, or RFC 7662 introspection), ANONYMOUS, EXTERNAL.
    plugin("SASLOAuth", path: "Plugins/SASLOAuth"),
    plugin("SASLAnonymous", path: "Plugins/SASLAnonymous"),
    plugin("SASLExternal", path: "Plugins/SASLExternal"),
    // The DNS resolver for mail routing (MX, A/AAAA, TXT, PTR), a host service.
    plugin("DNS", path: "Plugins/DNS"),
    // The SMTP server (MX, submission, submissions): hands messages to the queue plugin. Its state
    // machine in LMTP mode serves lmtp listeners too, delivering into the store (RFC 2033).
    plugin("SMTP", path: "Plugins/SMTP"),
    // Lookup tables from Postfix-style key/value files (access tables, sender login maps).
    plugin("TableFile", path: "Plugins/TableFile"),
    // IMAP4rev1 on the store: Parser/ (commands, responses), Session/ (state machine), NIO glue.
    plugin("IMAP", path: "Plugins/IMAP", extra: ["CZlib"]),
    // The outbound transports: smtp (MX routing, STARTTLS, PIPELINING, 8BITMIME downgrade) and lmtp.
    plugin("SMTPClient", path: "Plugins/SMTPClient"),
    // Webmail over IMAP: HTTP from PluginAPI's PluginHTTP module (Hummingbird), pages from
    // Mustache templates (linked into this plugin alone), sessions in SQLite through GRDB.
    plugin("Webmail", path: "Plugins/Webmail", extra: [.product(name: "Mustache", package: "swift-mustache"),
                                                      .product(name: "GRDB", package: "GRDB.swift")],
           resources: [.copy("Resources")]),
]
// The test plugins (Tests/Plugins: a small line protocol and four plugins the loader must refuse)
// are no products: the interop tests compile them with swiftc into .build/.../test-plugins
// (FixturePlugins in Tests/PosternInteropTests/Harness.swift), so they never sit beside the
// shipped plugins that `make run` and installs load.

let package = Package(
    name: "Postern",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "postern", targets: ["postern"]),
    ] + plugins.map(\.0),
    dependencies: [
        .package(path: "PluginAPI"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", exact: "0.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", exact: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", exact: "2.1.1"),
    ],
    targets: [
        // The system zlib, for the imap plugin's COMPRESS=DEFLATE (a C library, not a Swift
        // module the host shares, so the plugin may link it itself).
        .systemLibrary(name: "CZlib", path: "Plugins/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(
            name: "PosternHost",
            dependencies: [pluginAPI, .product(name: "TOMLKit", package: "TOMLKit")],
            path: "Host/PosternHost", swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Mail and account importers for `postern admin import` and `user import` (Maildir++, mbox,
        // CSV): tools, not hosting, so outside Host/.
        .target(name: "PosternImport", dependencies: [pluginAPI], path: "Tools/Import", swiftSettings: [.swiftLanguageMode(.v6)]),
        // `postern admin` and `postern queue`: the command-line tools over the store and the queue.
        .target(name: "PosternCommands", dependencies: ["PosternHost", "PosternImport", pluginAPI,
                                                        .product(name: "ArgumentParser", package: "swift-argument-parser")],
                path: "Tools/Commands", swiftSettings: [.swiftLanguageMode(.v6)]),
        .executableTarget(
            name: "postern",
            dependencies: ["PosternHost", "PosternCommands", pluginAPI,
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Host/postern"
        ),
        // Helpers shared by the test targets: temporary directories and free ports, the `postern`
        // binary and its server processes (ServerHarness), a store opened as `postern admin` opens
        // it (StoreFixture), a throw-away unbound (UnboundServer), the test plugins (FixturePlugins).
        .target(name: "PosternTestSupport", dependencies: ["PosternHost", "PosternCommands", pluginAPI], path: "Tests/TestSupport"),
        .testTarget(name: "PosternHostTests", dependencies: ["PosternHost", pluginAPI], path: "Tests/PosternHostTests"),
        .testTarget(name: "MailCoreTests", dependencies: [pluginAPI], path: "Tests/MailCoreTests"),
        // Each plugin's core is imported with @testable; the built .so files are loaded as a worker
        // loads them where a test needs the plugin whole (PluginFileTests, PluginHarness, AdminContext).
        .testTarget(name: "SASLTests", dependencies: ["PosternTestSupport", pluginAPI, "PosternHost",
                                                      "PosternSASLPlainCore", "PosternSASLLoginCore"], path: "Tests/SASLTests"),
        // OAUTHBEARER/XOAUTH2, ANONYMOUS and EXTERNAL: step machines byte by byte, token and
        // certificate checks, and the real binary with curl, Python and cyrus imtest.
        .testTarget(name: "SASLTokenTests", dependencies: ["PosternTestSupport", pluginAPI, "PosternHost", "PosternSASLOAuthCore",
                                                           "PosternSASLAnonymousCore", "PosternSASLExternalCore"], path: "Tests/SASLTokenTests"),
        // The IMAP parser, response encoder and session state machine; sessions on the real store.
        .testTarget(name: "IMAPTests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI, "PosternIMAPCore"], path: "Tests/IMAPTests"),
        // The store plugin through the host (AdminContext), as `postern admin` opens it.
        .testTarget(name: "StoreTests", dependencies: ["PosternTestSupport", pluginAPI, "PosternHost", "PosternImport"], path: "Tests/StoreTests"),
        // Backup and restore of the store, through the host like StoreTests.
        .testTarget(name: "BackupTests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI], path: "Tests/BackupTests"),
        // Maildir and mbox readers; the import through the binary, and from a real Dovecot's Maildir.
        .testTarget(name: "ImportTests", dependencies: ["PosternTestSupport", "PosternHost", "PosternImport", pluginAPI], path: "Tests/ImportTests"),
        // The queue plugin with the real store, through the host; bounces and vacation from its core.
        .testTarget(name: "QueueTests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI, "PosternQueueCore"], path: "Tests/QueueTests"),
        // The DNS codec from its core, and the built libPosternDNS.so against a throw-away unbound.
        .testTarget(name: "DNSTests", dependencies: ["PosternTestSupport", pluginAPI, "PosternHost", "PosternDNSCore"], path: "Tests/DNSTests"),
        // The POP3 command parser, transfer encoding and session state machine (on the real store).
        .testTarget(name: "POP3Tests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI, "PosternPOP3Core"], path: "Tests/POP3Tests"),
        // The SMTP session state machine without sockets, with the PLAIN and LOGIN mechanisms and
        // the file table parser.
        .testTarget(name: "SMTPTests", dependencies: ["PosternTestSupport", pluginAPI, "PosternHost", "PosternSMTPCore",
                                                      "PosternSASLPlainCore", "PosternSASLLoginCore", "PosternTableFileCore"], path: "Tests/SMTPTests"),
        // The imap plugin through the real binary: Python's imaplib, raw sockets, and the compliance
        // transcripts against Postern and a throw-away Dovecot.
        .testTarget(name: "IMAPInteropTests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI],
                    path: "Tests/IMAPInteropTests", exclude: ["Scripts"]),
        // The smtp-client plugin's next hops and MX routing from its core; PluginAPI's SMTPSubmission
        // against `postern serve`; the built .so against a throw-away Postfix, smtp-sink, unbound and
        // LMTP servers. (PluginAPI's SMTP client units, parser to session, are in MailCoreTests.)
        .testTarget(name: "SMTPClientTests", dependencies: ["PosternTestSupport", pluginAPI, "PosternHost", "PosternSMTPClientCore"],
                    path: "Tests/SMTPClientTests"),
        // The webmail's core: the HTML sanitizer (with the hostile corpus), the IMAP client's
        // response framer and parser, the session store, message display, catalogues; and the
        // plugin whole, through the binary, in headless Chromium (WebmailBrowserTests).
        .testTarget(name: "WebmailTests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI, "PosternWebmailCore"],
                    path: "Tests/WebmailTests", exclude: ["Fixtures"]),
        .testTarget(name: "WebmailBrowserTests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI, "PosternWebmailCore"],
                    path: "Tests/WebmailBrowserTests", exclude: ["Scripts"]),
        .testTarget(name: "PosternInteropTests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI], path: "Tests/PosternInteropTests"),
    ] + plugins.flatMap(\.1),
    swiftLanguageModes: [.v5]
)
