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
    // The scale-out store: index and contents in PostgreSQL (postgres-nio, in PluginAPI's PluginPostgres
    // module beside the one NIO), change notifications between nodes by LISTEN/NOTIFY.
    plugin("StorePostgres", path: "Plugins/StorePostgres"),
    // The mail queue: spool, manager, retries, delivery reports, routing; local and discard transports.
    plugin("Queue", path: "Plugins/Queue"),
    // POP3 access to the INBOX.
    plugin("POP3", path: "Plugins/POP3"),
    // SASL mechanisms (plaintext: offered only under TLS or on allowed loopback).
    plugin("SASLPlain", path: "Plugins/SASLPlain"),
    plugin("SASLLogin", path: "Plugins/SASLLogin"),
    // Password-based challenge-response mechanisms (offered without TLS too): SCRAM-SHA-256/-1 and
    // their -PLUS variants; CRAM-MD5 and DIGEST-MD5, which need extra stored secrets per account.
    plugin("SASLSCRAM", path: "Plugins/SASLSCRAM"),
    plugin("SASLCRAMMD5", path: "Plugins/SASLCRAMMD5", extra: ["COpenSSLMD5"]),
    plugin("SASLDigestMD5", path: "Plugins/SASLDigestMD5"),
    // libsasl2 (Cyrus SASL) mechanisms through a bridge: a site keeps its sasldb2, saslauthd or
    // Cyrus plug-ins. Links the system libsasl2 (CSASL2, inside the plugin's folder).
    plugin("SASLCyrus", path: "Plugins/SASLCyrus", extra: ["CSASL2"]),
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
    plugin("IMAP", path: "Plugins/IMAP", extra: ["CSystemZlib"]),
    // The outbound transports: smtp (MX routing, STARTTLS, PIPELINING, 8BITMIME downgrade) and lmtp.
    plugin("SMTPClient", path: "Plugins/SMTPClient"),
    // Webmail over IMAP: HTTP from PluginAPI's PluginHTTP module (Hummingbird), pages from
    // Mustache templates (linked into this plugin alone), sessions in SQLite through GRDB.
    plugin("Webmail", path: "Plugins/Webmail", extra: [.product(name: "Mustache", package: "swift-mustache"),
                                                      .product(name: "GRDB", package: "GRDB.swift")],
           resources: [.copy("Resources")]),
    // The administration API and console (HTTP from PluginHTTP; sessions, tokens and the audit
    // log in SQLite through GRDB, linked into this plugin alone).
    plugin("Admin", path: "Plugins/Admin", extra: [.product(name: "GRDB", package: "GRDB.swift")], resources: [.copy("Resources")]),
    // Kerberos 5 for `postern authproxyd` only (GSSAPI acceptor, KDC password checks): the one
    // plugin that links libkrb5, through its own system-library target (CKerberos).
    plugin("AuthKerberos", path: "Plugins/AuthKerberos", extra: ["CKerberos"]),
    // The GSSAPI SASL mechanism and Kerberos password checks, forwarded to authproxyd.
    plugin("SASLGSSAPI", path: "Plugins/SASLGSSAPI"),
    // An LDAP directory (OpenLDAP's libldap through CLDAP in its folder): credential backend,
    // routing tables (aliases, groups, mailHost) and the white pages.
    plugin("LDAP", path: "Plugins/LDAP", extra: ["CLDAP"]),
    // The Sendmail milter protocol (v6) client: each configured milter is a filter listeners run.
    plugin("Milter", path: "Plugins/Milter"),
    // The IMAP access proxy: logs clients in, routes each user to their store, logs in there with
    // a master credential and splices the two connections.
    plugin("AccessProxy", path: "Plugins/AccessProxy"),
    // The message copier: archive and journal copies queued with the message, or .eml files.
    plugin("FilterArchive", path: "Plugins/FilterArchive"),
    // In-process content filters (PluginAPI's MessageInspector): a disclaimer stamped on outbound
    // mail, MIME-correctly.
    plugin("FilterDisclaimer", path: "Plugins/FilterDisclaimer"),
    // Data loss prevention: validated card numbers, IBANs and national IDs, dictionaries,
    // patterns and markings in every text part; reject, quarantine or notify.
    plugin("FilterDLP", path: "Plugins/FilterDLP"),
    // Anti-spam rule sets (the filter `rules`): rule files are TOML, read with TOMLKit linked into
    // this plugin alone (no TOMLKit type crosses into the host).
    // Sender authentication: SPF, DKIM (signing on the way out, verification), DMARC with its
    // aggregate reports, ARC, and Authentication-Results. DMARC's aggregate-report store is SQLite
    // (GRDB, linked into this plugin alone); the reports are gzip-compressed with the system zlib.
    plugin("SenderAuth", path: "Plugins/SenderAuth", extra: [.product(name: "GRDB", package: "GRDB.swift"), "CSystemZlib"]),
    plugin("FilterRules", path: "Plugins/FilterRules", extra: [.product(name: "TOMLKit", package: "TOMLKit")]),
    // Attachments blocked, removed or quarantined by name, type, content and ZIP member names
    // (ZIPFoundation, linked into this plugin alone, lists the archives).
    plugin("FilterAttachments", path: "Plugins/FilterAttachments", extra: [.product(name: "ZIPFoundation", package: "ZIPFoundation")]),
    // Anti-virus through a running clamd (INSTREAM): the `clamav` filter listeners run.
    plugin("FilterClamAV", path: "Plugins/FilterClamAV"),
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
        .package(url: "https://github.com/weichsel/ZIPFoundation.git", exact: "0.9.20"),
    ],
    targets: [
        // The system zlib, for the imap plugin's COMPRESS=DEFLATE (a C library, not a Swift
        // module the host shares, so the plugin may link it itself). Not called CZlib: that is
        // ZIPFoundation's own zlib module, and two modules of one name cannot meet in a build.
        .systemLibrary(name: "CSystemZlib", path: "Plugins/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // The system libcrypto's MD5 with its chaining state, for the sasl-cram-md5 plugin's stored contexts.
        .systemLibrary(name: "COpenSSLMD5", path: "Plugins/SASLCRAMMD5/COpenSSLMD5", pkgConfig: "libcrypto",
                       providers: [.apt(["libssl-dev"])]),
        // The system libsasl2, for the sasl-cyrus bridge only.
        .systemLibrary(name: "CSASL2", path: "Plugins/SASLCyrus/CSASL2", pkgConfig: "libsasl2", providers: [.apt(["libsasl2-dev"])]),
        // MIT Kerberos (GSSAPI and krb5), for the auth-kerberos plugin that only authproxyd loads.
        .systemLibrary(name: "CKerberos", path: "Plugins/AuthKerberos/CKerberos", pkgConfig: "krb5-gssapi",
                       providers: [.apt(["libkrb5-dev"])]),
        // OpenLDAP's client library, for the ldap plugin alone.
        .systemLibrary(name: "CLDAP", path: "Plugins/LDAP/CLDAP", pkgConfig: "ldap", providers: [.apt(["libldap-dev"])]),
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
        .testTarget(name: "MailCoreTests", dependencies: ["PosternTestSupport", pluginAPI], path: "Tests/MailCoreTests"),
        // Each plugin's core is imported with @testable; the built .so files are loaded as a worker
        // loads them where a test needs the plugin whole (PluginFileTests, PluginHarness, AdminContext).
        .testTarget(name: "SASLTests", dependencies: ["PosternTestSupport", pluginAPI, "PosternHost",
                                                      "PosternSASLPlainCore", "PosternSASLLoginCore"], path: "Tests/SASLTests"),
        // The SCRAM, CRAM-MD5 and DIGEST-MD5 step machines byte by byte (RFC vectors, malformed
        // input, channel binding, replays) and the store's per-mechanism secrets.
        .testTarget(name: "SASLMechanismTests", dependencies: ["PosternTestSupport", pluginAPI, "PosternHost",
                                                               "PosternSASLSCRAMCore", "PosternSASLCRAMMD5Core",
                                                               "PosternSASLDigestMD5Core"], path: "Tests/SASLMechanismTests"),
        // The same mechanisms through the binary: Cyrus imtest/smtptest/pop3test, Python's imaplib
        // and a Python SCRAM-PLUS client (Scripts/).
        .testTarget(name: "SASLInteropTests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI],
                    path: "Tests/SASLInteropTests", exclude: ["Scripts"]),
        // OAUTHBEARER/XOAUTH2, ANONYMOUS and EXTERNAL: step machines byte by byte, token and
        // certificate checks, and the real binary with curl, Python and cyrus imtest.
        .testTarget(name: "SASLTokenTests", dependencies: ["PosternTestSupport", pluginAPI, "PosternHost", "PosternSASLOAuthCore",
                                                           "PosternSASLAnonymousCore", "PosternSASLExternalCore"], path: "Tests/SASLTokenTests"),
        // The IMAP parser, response encoder and session state machine; sessions on the real store.
        .testTarget(name: "IMAPTests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI, "PosternIMAPCore"], path: "Tests/IMAPTests"),
        // The store plugin through the host (AdminContext), as `postern admin` opens it.
        .testTarget(name: "StoreTests", dependencies: ["PosternTestSupport", pluginAPI, "PosternHost", "PosternImport"], path: "Tests/StoreTests"),
        // One behavioural contract for every store plugin (StorageBackend, AccountStore,
        // CredentialBackend, ChangeNotifier), run against store-sqlite and against store-postgres on
        // a throw-away PostgreSQL server (PostgresServer).
        .testTarget(name: "StoreConformanceTests", dependencies: ["PosternTestSupport", pluginAPI, "PosternHost"], path: "Tests/StoreConformanceTests"),
        // Backup and restore of the store, through the host like StoreTests.
        .testTarget(name: "BackupTests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI], path: "Tests/BackupTests"),
        // Maildir and mbox readers; the import through the binary, and from a real Dovecot's Maildir.
        .testTarget(name: "ImportTests", dependencies: ["PosternTestSupport", "PosternHost", "PosternImport", pluginAPI], path: "Tests/ImportTests"),
        // The queue plugin with the real store, through the host; bounces and vacation from its core.
        .testTarget(name: "QueueTests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI, "PosternQueueCore"], path: "Tests/QueueTests"),
        // The DNS codec from its core, and the built libPosternDNS.so against a throw-away unbound.
        .testTarget(name: "DNSTests", dependencies: ["PosternTestSupport", pluginAPI, "PosternHost", "PosternDNSCore"], path: "Tests/DNSTests"),
        // The POP3 command parser, transfer encoding and session state machine (on the real store).
        .testTarget(name: "POP3Tests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI, "PosternPOP3Core", "PosternSASLPlainCore"],
                    path: "Tests/POP3Tests"),
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
        // The admin plugin: its parts (AdminPartsTests) and the API through the binary, over HTTP,
        // with the isolation enumeration, the security checks and schemathesis (AdminAPITests).
        .testTarget(name: "AdminTests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI, "PosternAdminCore"],
                    path: "Tests/AdminTests", exclude: ["Scripts"]),
        // The IMAP access proxy: its command reader and router byte by byte, and the binary in
        // front of two Postern stores with Python's imaplib.
        .testTarget(name: "AccessProxyTests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI, "PosternAccessProxyCore"],
                    path: "Tests/AccessProxyTests"),
        .testTarget(name: "WebmailTests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI, "PosternWebmailCore"],
                    path: "Tests/WebmailTests", exclude: ["Fixtures"]),
        .testTarget(name: "WebmailBrowserTests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI, "PosternWebmailCore"],
                    path: "Tests/WebmailBrowserTests", exclude: ["Scripts"]),
        // The libsasl2 bridge: sasldb2 users (saslpasswd2) through the real binary with Cyrus's
        // imtest and smtptest; the mechanism clash refusal.
        .testTarget(name: "SASLCyrusTests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI, "PosternSASLCyrusCore"],
                    path: "Tests/SASLCyrusTests"),
        // Legacy password hashes: passwd-file and CSV import, the store's migration to SCRAM at the
        // first login, the per-domain date, `admin auth report`; through the real binary and imaplib.
        .testTarget(name: "LegacyAuthTests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI, "PosternImport"],
                    path: "Tests/LegacyAuthTests"),
        // authproxyd and Kerberos: the wire codec, the RFC 4752 security layer and principal map,
        // and GSSAPI/PLAIN logins through the real binary against a throw-away MIT KDC.
        .testTarget(name: "KerberosTests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI,
                                                          "PosternAuthKerberosCore", "PosternSASLGSSAPICore"], path: "Tests/KerberosTests"),
        // The ldap plugin's filter and DN escaping, templates and settings from its core.
        .testTarget(name: "LDAPTests", dependencies: ["PosternTestSupport", pluginAPI, "PosternHost", "PosternLDAPCore"], path: "Tests/LDAPTests"),
        // The ldap plugin against a throw-away slapd: its core, and the binary's IMAP and SMTP logins,
        // routing, groups, white pages, failover and a directory that goes away.
        .testTarget(name: "LDAPInteropTests", dependencies: ["PosternTestSupport", pluginAPI, "PosternHost", "PosternLDAPCore"],
                    path: "Tests/LDAPInteropTests"),
        // The milter codec and conversation byte by byte (fixtures, malformed input), from its core.
        .testTarget(name: "MilterTests", dependencies: ["PosternTestSupport", pluginAPI, "PosternMilterCore"], path: "Tests/MilterTests"),
        // The milter plugin through the real binary against OpenDKIM, rspamd and clamav-milter, and
        // the filter chain's concurrency and timeouts with scripted milters.
        .testTarget(name: "MilterInteropTests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI],
                    path: "Tests/MilterInteropTests", exclude: ["Scripts"]),
        .testTarget(name: "FilterArchiveTests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI, "PosternFilterArchiveCore"],
                    path: "Tests/FilterArchiveTests"),
        // The disclaimer filter from its core, on byte-level MIME fixtures.
        .testTarget(name: "FilterDisclaimerTests", dependencies: [pluginAPI, "PosternFilterDisclaimerCore"], path: "Tests/FilterDisclaimerTests"),
        // The DLP filter's detectors (check digits, valid and invalid), policies and texts, from its core.
        .testTarget(name: "FilterDLPTests", dependencies: [pluginAPI, "PosternFilterDLPCore"], path: "Tests/FilterDLPTests"),
        // Both content filters through the real binary: smtplib against listeners running them,
        // the queue read back byte for byte.
        .testTarget(name: "FilterContentInteropTests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI],
                    path: "Tests/FilterContentInteropTests"),
        // The rules filter: every condition on byte-level messages, scoring and thresholds, config
        // errors; and the real binary with smtplib, unbound as the block lists' DNS, and a reload.
        .testTarget(name: "FilterRulesTests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI, "PosternFilterRulesCore"],
                    path: "Tests/FilterRulesTests"),
        // The filter-attachments plugin: file names, magic bytes, ZIP listings and cleansing from its
        // core over byte-level MIME fixtures, and the plugin through the real binary with smtplib.
        .testTarget(name: "FilterAttachmentsTests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI, "PosternFilterAttachmentsCore",
                                                                   .product(name: "ZIPFoundation", package: "ZIPFoundation")],
                    path: "Tests/FilterAttachmentsTests"),
        // The clamav filter: the INSTREAM codec and the cleanse rewrite from its core, and the real
        // binary against a real clamd with a signature database the tests write.
        .testTarget(name: "FilterClamAVTests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI, "PosternFilterClamAVCore"],
                    path: "Tests/FilterClamAVTests"),
        // Sender authentication: parsers and verifiers from the core; pyspf, dkimpy and OpenDKIM
        // against it over a throw-away unbound; the binary end to end.
        .testTarget(name: "SenderAuthTests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI, "PosternSenderAuthCore",
                                                            "PosternDNSCore"], path: "Tests/SenderAuthTests", exclude: ["Fixtures"]),
        .testTarget(name: "PosternInteropTests", dependencies: ["PosternTestSupport", "PosternHost", pluginAPI], path: "Tests/PosternInteropTests"),
    ] + plugins.flatMap(\.1),
    swiftLanguageModes: [.v5]
)
