/// The zone SPFInteropTests serves from unbound: one domain per case under spf.test, hosts and
/// reverse names for a, mx, ptr and %{p}. The records are written for these tests.
enum SPFTestZone {
    /// TXT records, by owner name; several strings of one record are given as an array.
    static let txt: [(String, [String])] = [
        ("all-pass", ["v=spf1 +all"]),
        ("all-fail", ["v=spf1 -all"]),
        ("all-soft", ["v=spf1 ~all"]),
        ("all-neutral", ["v=spf1 ?all"]),
        ("empty", ["v=spf1"]),
        ("upper", ["v=spf1 IP4:192.0.2.5 -ALL"]),
        ("spaces", ["v=spf1  ip4:192.0.2.5   -all"]),
        ("ip4", ["v=spf1 ip4:192.0.2.0/24 -all"]),
        ("ip4host", ["v=spf1 ip4:192.0.2.5 -all"]),
        ("ip4any", ["v=spf1 ip4:0.0.0.0/0 -all"]),
        ("ip6", ["v=spf1 ip6:2001:db8::/32 -all"]),
        ("ip6host", ["v=spf1 ip6:2001:DB8:0:0:0:0:0:5 -all"]),
        ("a", ["v=spf1 a -all"]),
        ("acidr", ["v=spf1 a/24 -all"]),
        ("adomain", ["v=spf1 a:mail.spf.test -all"]),
        ("adot", ["v=spf1 a:mail.spf.test. -all"]),
        ("adual", ["v=spf1 a:mail.spf.test/32//64 -all"]),
        ("acname", ["v=spf1 a:alias.spf.test -all"]),
        ("mx", ["v=spf1 mx -all"]),
        ("mxcidr", ["v=spf1 mx:mx.spf.test/30 -all"]),
        ("nullmx", ["v=spf1 mx ~all"]),
        ("mxmany", ["v=spf1 mx ~all"]),
        ("ptr", ["v=spf1 ptr -all"]),
        ("ptrdomain", ["v=spf1 ptr:spf.test -all"]),
        ("ptr6", ["v=spf1 ptr:spf.test -all"]),
        ("exists", ["v=spf1 exists:%{i}.list.spf.test -all"]),
        ("existsany", ["v=spf1 exists:listed.spf.test -all"]),
        ("incpass", ["v=spf1 include:all-pass.spf.test -all"]),
        ("incfail", ["v=spf1 include:all-fail.spf.test ~all"]),
        ("early", ["v=spf1 +all include:x.servfail.test"]),
        ("unknownmod", ["v=spf1 -all foo=bar moo.cow=%{l}"]),
        ("redirect", ["v=spf1 redirect=ip4host.spf.test"]),
        ("redirectall", ["v=spf1 ?all redirect=all-fail.spf.test"]),
        ("redirectlate", ["v=spf1 ip4:198.51.100.1 redirect=all-fail.spf.test"]),
        ("spf10", ["v=spf10 +all"]),
        ("withother", ["v=spf1 -all", "site-verification=abc"]),
        ("nospf", ["site-verification=abc"]),
        ("exp", ["v=spf1 -all exp=explain.spf.test"]),
        ("explain", ["%{i} is not a mail server of %{d}"]),
        // Macros.
        ("local", ["v=spf1 exists:%{l}.users.spf.test -all"]),
        ("delim", ["v=spf1 exists:%{l1r-}.users.spf.test -all"]),
        ("sub.d2", ["v=spf1 exists:%{d2}.domains.spf.test -all"]),
        ("rev", ["v=spf1 exists:%{ir}.%{v}._spf.spf.test -all"]),
        ("helo", ["v=spf1 exists:%{h}.helos.spf.test -all"]),
        ("origin", ["v=spf1 include:inc-origin.spf.test -all"]),
        ("inc-origin", ["v=spf1 exists:%{o}.origins.spf.test -all"]),
        ("pmacro", ["v=spf1 exists:%{p}.names.spf.test -all"]),
        ("smacro", ["v=spf1 exists:%{l2r.-}.senders.spf.test -all"]),
        // Limits: c0 includes c1 ... c9 includes c10: ten includes.
        ("cextra", ["v=spf1 include:c0.spf.test -all"]),
        ("c10", ["v=spf1 ip4:192.0.2.5 -all"]),
        ("manya", ["v=spf1 " + String(repeating: "a:mail.spf.test ", count: 11) + "+all"]),
        ("loop", ["v=spf1 include:loop.spf.test -all"]),
        ("void2", ["v=spf1 a:nx1.spf.test a:nx2.spf.test +all"]),
        ("void3", ["v=spf1 a:nx1.spf.test a:nx2.spf.test a:nx3.spf.test +all"]),
        ("voidmixed", ["v=spf1 mx:nx1.spf.test exists:nx2.spf.test a:mail.spf.test exists:nx3.spf.test +all"]),
        // Errors.
        ("twospf", ["v=spf1 +all", "v=spf1 -all"]),
        ("badmech", ["v=spf1 foo -all"]),
        ("badip4", ["v=spf1 ip4:192.0.2.256 -all"]),
        ("badcidr", ["v=spf1 ip4:192.0.2.0/33 -all"]),
        ("badacidr", ["v=spf1 a/33 -all"]),
        ("badmacro", ["v=spf1 exists:%{x}.spf.test -all"]),
        ("tworedirect", ["v=spf1 redirect=all-pass.spf.test redirect=all-fail.spf.test"]),
        ("emptyexp", ["v=spf1 -all exp="]),
        ("lateerror", ["v=spf1 +all foo"]),
        ("incnone", ["v=spf1 include:nospf.spf.test -all"]),
        ("incnx", ["v=spf1 include:nx.spf.test -all"]),
        ("incperm", ["v=spf1 include:badmech.spf.test +all"]),
        ("redirectnone", ["v=spf1 redirect=nospf.spf.test"]),
        ("inctemp", ["v=spf1 ip4:192.0.2.5 include:x.servfail.test -all"]),
        ("atemp", ["v=spf1 a:x.servfail.test -all"]),
    ]

    /// Other records, in unbound's `local-data` syntax (names relative to nothing: written whole).
    static let other: [String] = {
        var lines = [
            "spf.test. 300 IN SOA ns.spf.test. hostmaster.spf.test. 1 3600 600 86400 60",
            "mail.spf.test. 300 IN A 192.0.2.10",
            "mail.spf.test. 300 IN AAAA 2001:db8::10",
            "alias.spf.test. 300 IN CNAME mail.spf.test.",
            "a.spf.test. 300 IN A 192.0.2.40",
            "acidr.spf.test. 300 IN A 192.0.2.40",
            "mx.spf.test. 300 IN MX 10 mx1.spf.test.",
            "mx.spf.test. 300 IN MX 20 mx2.spf.test.",
            "mx1.spf.test. 300 IN A 192.0.2.20",
            "mx2.spf.test. 300 IN A 192.0.2.21",
            "mx2.spf.test. 300 IN AAAA 2001:db8::21",
            "nullmx.spf.test. 300 IN MX 0 .",
            "host.ptr.spf.test. 300 IN A 192.0.2.30",
            "fake.ptr.spf.test. 300 IN A 192.0.2.99",
            "host6.ptr.spf.test. 300 IN AAAA 2001:db8::30",
            "192.0.2.5.list.spf.test. 300 IN A 127.0.0.2",
            "listed.spf.test. 300 IN A 127.0.0.2",
            "alice.users.spf.test. 300 IN A 127.0.0.2",
            "first.users.spf.test. 300 IN A 127.0.0.2",
            "spf.test.domains.spf.test. 300 IN A 127.0.0.2",
            "5.2.0.192.in-addr._spf.spf.test. 300 IN A 127.0.0.2",
            "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.spf.test. 300 IN A 127.0.0.2",
            "mail.client.test.helos.spf.test. 300 IN A 127.0.0.2",
            "origin.spf.test.origins.spf.test. 300 IN A 127.0.0.2",
            "host.ptr.spf.test.names.spf.test. 300 IN A 127.0.0.2",
            // %{l2r.-} of x-y.z: split on . and -, reversed, the right-hand two: y.x
            "y.x.senders.spf.test. 300 IN A 127.0.0.2",
        ]
        for index in 0..<11 {
            lines.append("mxmany.spf.test. 300 IN MX \(index) m\(index).spf.test.")
        }
        return lines
    }()

    static let pointers = [
        "192.0.2.30 host.ptr.spf.test.",
        "192.0.2.31 fake.ptr.spf.test.",
        "2001:db8::30 host6.ptr.spf.test.",
    ]

    /// The zone as UnboundServer's `zones` text.
    static var unboundLines: String {
        var lines = [
            #"local-zone: "spf.test." static"#,
            #"local-zone: "2.0.192.in-addr.arpa." static"#,
            #"local-zone: "8.b.d.0.1.0.0.2.ip6.arpa." static"#,
        ]
        for index in 0..<10 {
            lines.append("local-data: 'c\(index).spf.test. 300 IN TXT \"v=spf1 include:c\(index + 1).spf.test -all\"'")
        }
        for (name, strings) in txt where !strings.isEmpty {
            if name == "split" { continue }
            for text in strings { lines.append("local-data: '\(name).spf.test. 300 IN TXT \"\(text)\"'") }
        }
        // One record in two character-strings, joined without a space (RFC 7208 §3.3).
        lines.append(#"local-data: 'split.spf.test. 300 IN TXT "v=spf1 ip4:192.0.2.5 " "-all"'"#)
        lines += other.map { "local-data: \"\($0)\"" }
        lines += pointers.map { "local-data-ptr: \"\($0)\"" }
        return lines.map { "  " + $0 }.joined(separator: "\n")
    }
}
