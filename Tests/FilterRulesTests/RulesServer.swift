import Foundation
import PosternHost
import PosternTestSupport
import XCTest

/// The filter-rules tests' `FilterServer`: the DNS resolver asking a throw-away unbound that serves
/// the block list zones below, the filter-rules plugin, and smtp listeners running the `rules`
/// filter; with the messages the tests send and what they compare.
enum RulesServer {
    /// The block lists: 127.0.0.2 is listed in dnsbl.test (RFC 5782 §5's test entry), 127.0.0.3
    /// is not; spam.example is listed in uribl.test.
    static let zones: String = [
        #"local-zone: "dnsbl.test." static"#,
        #"local-data: "dnsbl.test. 300 IN SOA ns.dnsbl.test. hostmaster.dnsbl.test. 1 3600 600 86400 30""#,
        #"local-data: "2.0.0.127.dnsbl.test. 300 IN A 127.0.0.2""#,
        #"local-zone: "uribl.test." static"#,
        #"local-data: "uribl.test. 300 IN SOA ns.uribl.test. hostmaster.uribl.test. 1 3600 600 86400 30""#,
        #"local-data: "spam.example.uribl.test. 300 IN A 127.0.0.2""#,
    ].map { "  " + $0 }.joined(separator: "\n")

    /// `plugin`: the lines of `[plugin.filter-rules]` and its sets; `listeners`: each listener's
    /// name and `[listener.options]` lines (`filters = ["rules"]` is added to each).
    static func start(_ name: String, dns: UnboundServer, plugin: String,
                      listeners: [(name: String, options: String)]) throws -> FilterServer {
        try FilterServer(name, plugins: """
            [plugin.dns]
            nameservers = ["\(dns.address)"]
            [plugin.filter-rules]
            \(plugin)
            """, listeners: listeners.map { ($0.name, "filters = [\"rules\"]\n" + $0.options) })
    }

    static func crlf(_ text: String) -> String { text.replacingOccurrences(of: "\n", with: "\r\n") }

    /// A message with every field a real client writes, so that the default rules stay quiet.
    static func message(subject: String, body: String, extraFields: String = "") -> String {
        """
        Date: Mon, 7 Dec 2026 10:00:00 +0000
        Message-ID: <\(UUID().uuidString)@client.test.example>
        From: Sender <sender@remote.example>
        To: rcpt@a.example
        Subject: \(subject)
        \(extraFields)MIME-Version: 1.0
        Content-Type: text/plain; charset=utf-8

        \(body)

        """
    }

    /// The queued text minus the Received field Postern put first (it may be folded).
    static func withoutReceived(_ queued: String) -> String {
        guard queued.hasPrefix("Received:") else { return queued }
        var rest = queued[...]
        repeat {
            guard let end = rest.range(of: "\r\n") else { return "" }
            rest = rest[end.upperBound...]
        } while rest.hasPrefix(" ") || rest.hasPrefix("\t")
        return String(rest)
    }
}

extension FilterServer {
    /// The queued entry whose text contains `marker` (each test's own), its message as text,
    /// which is what these tests compare.
    func queued(containing marker: String) throws -> (summary: [String: Any], message: String)? {
        try queuedEntry(containing: marker).map { ($0.summary, String(decoding: $0.message, as: UTF8.self)) }
    }
}
