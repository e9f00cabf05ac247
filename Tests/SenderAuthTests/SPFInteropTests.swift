import Foundation
import PluginAPI
import PosternTestSupport
import XCTest
@testable import PosternSenderAuthCore

/// SPF against real DNS: a throw-away unbound serving the zone below, asked through the built
/// DNS plugin, and every case checked by Postern and by pyspf (Debian python3-spf, the reference
/// implementation, over dnspython pointed at the same unbound). Both must agree with each other
/// and with the result the RFC gives. unbound starts once for the class; pyspf runs once per
/// test over its whole table. A missing unbound or pyspf fails the tests.
final class SPFInteropTests: XCTestCase {
    nonisolated(unsafe) static var unbound: UnboundServer?
    nonisolated(unsafe) static var resolver: (any DNSResolver)?
    nonisolated(unsafe) static var startError: String?

    override class func setUp() {
        super.setUp()
        do {
            let server = try UnboundServer(zones: SPFTestZone.unboundLines)
            unbound = server
            resolver = try DNSPluginFile.resolver(DNSPluginFile.config(nameservers: [server.address], timeout: "1s", attempts: 1))
        } catch {
            startError = "\(error)"
        }
    }

    override class func tearDown() {
        unbound?.stop()
        unbound = nil
        resolver = nil
        super.tearDown()
    }

    /// One check: the client, MAIL FROM and HELO, and what RFC 7208 says it gives. `explanation`
    /// is the expanded exp= text expected for a fail.
    struct Case {
        var name: String
        var ip: String
        var sender: String
        var helo = "mail.client.test"
        var expected: SPFResult
        var explanation: String?
    }

    static let mechanisms: [Case] = [
        Case(name: "+all", ip: "192.0.2.5", sender: "u@all-pass.spf.test", expected: .pass),
        Case(name: "-all", ip: "192.0.2.5", sender: "u@all-fail.spf.test", expected: .fail),
        Case(name: "~all", ip: "192.0.2.5", sender: "u@all-soft.spf.test", expected: .softfail),
        Case(name: "?all", ip: "192.0.2.5", sender: "u@all-neutral.spf.test", expected: .neutral),
        Case(name: "no directives", ip: "192.0.2.5", sender: "u@empty.spf.test", expected: .neutral),
        Case(name: "uppercase terms", ip: "192.0.2.5", sender: "u@upper.spf.test", expected: .pass),
        Case(name: "extra spaces", ip: "192.0.2.5", sender: "u@spaces.spf.test", expected: .pass),
        Case(name: "split TXT strings", ip: "192.0.2.5", sender: "u@split.spf.test", expected: .pass),
        Case(name: "ip4 network in", ip: "192.0.2.200", sender: "u@ip4.spf.test", expected: .pass),
        Case(name: "ip4 network out", ip: "198.51.100.1", sender: "u@ip4.spf.test", expected: .fail),
        Case(name: "ip4 host in", ip: "192.0.2.5", sender: "u@ip4host.spf.test", expected: .pass),
        Case(name: "ip4 host out", ip: "192.0.2.6", sender: "u@ip4host.spf.test", expected: .fail),
        Case(name: "ip4 /0", ip: "203.0.113.9", sender: "u@ip4any.spf.test", expected: .pass),
        Case(name: "ip4 for IPv6 client", ip: "2001:db8::5", sender: "u@ip4any.spf.test", expected: .fail),
        Case(name: "ip4 for IPv4-mapped client", ip: "::ffff:192.0.2.5", sender: "u@ip4host.spf.test", expected: .pass),
        Case(name: "ip6 in", ip: "2001:db8:1::1", sender: "u@ip6.spf.test", expected: .pass),
        Case(name: "ip6 out", ip: "2001:db9::1", sender: "u@ip6.spf.test", expected: .fail),
        Case(name: "ip6 for IPv4 client", ip: "192.0.2.5", sender: "u@ip6.spf.test", expected: .fail),
        Case(name: "ip6 full form in", ip: "2001:db8::5", sender: "u@ip6host.spf.test", expected: .pass),
        Case(name: "ip6 full form out", ip: "2001:db8::6", sender: "u@ip6host.spf.test", expected: .fail),
        Case(name: "a for IPv6 client without AAAA", ip: "2001:db8::40", sender: "u@a.spf.test", expected: .fail),
        Case(name: "a own", ip: "192.0.2.40", sender: "u@a.spf.test", expected: .pass),
        Case(name: "a own miss", ip: "192.0.2.41", sender: "u@a.spf.test", expected: .fail),
        Case(name: "a/24", ip: "192.0.2.99", sender: "u@acidr.spf.test", expected: .pass),
        Case(name: "a:domain v4", ip: "192.0.2.10", sender: "u@adomain.spf.test", expected: .pass),
        Case(name: "a:domain v6", ip: "2001:db8::10", sender: "u@adomain.spf.test", expected: .pass),
        Case(name: "a:domain trailing dot", ip: "192.0.2.10", sender: "u@adot.spf.test", expected: .pass),
        Case(name: "a dual cidr v6 in", ip: "2001:db8::ffff", sender: "u@adual.spf.test", expected: .pass),
        Case(name: "a dual cidr v4 out", ip: "192.0.2.11", sender: "u@adual.spf.test", expected: .fail),
        Case(name: "mx in", ip: "192.0.2.21", sender: "u@mx.spf.test", expected: .pass),
        Case(name: "mx v6 in", ip: "2001:db8::21", sender: "u@mx.spf.test", expected: .pass),
        Case(name: "mx out", ip: "192.0.2.22", sender: "u@mx.spf.test", expected: .fail),
        Case(name: "mx:domain/30", ip: "192.0.2.23", sender: "u@mxcidr.spf.test", expected: .pass),
        Case(name: "null MX skipped", ip: "192.0.2.5", sender: "u@nullmx.spf.test", expected: .softfail),
        Case(name: "ptr validated", ip: "192.0.2.30", sender: "u@ptr.spf.test", expected: .pass),
        Case(name: "ptr not validated", ip: "192.0.2.31", sender: "u@ptr.spf.test", expected: .fail),
        Case(name: "ptr no PTR record", ip: "192.0.2.5", sender: "u@ptr.spf.test", expected: .fail),
        Case(name: "ptr:domain", ip: "192.0.2.30", sender: "u@ptrdomain.spf.test", expected: .pass),
        Case(name: "ptr v6", ip: "2001:db8::30", sender: "u@ptr6.spf.test", expected: .pass),
        Case(name: "exists in", ip: "192.0.2.5", sender: "u@exists.spf.test", expected: .pass),
        Case(name: "exists out", ip: "192.0.2.6", sender: "u@exists.spf.test", expected: .fail),
        Case(name: "exists asks A for IPv6 client", ip: "2001:db8::5", sender: "u@existsany.spf.test", expected: .pass),
        Case(name: "include pass", ip: "192.0.2.5", sender: "u@incpass.spf.test", expected: .pass),
        Case(name: "include fail does not match", ip: "192.0.2.5", sender: "u@incfail.spf.test", expected: .softfail),
        Case(name: "later terms not evaluated", ip: "192.0.2.5", sender: "u@early.spf.test", expected: .pass),
        Case(name: "unknown modifier ignored", ip: "192.0.2.5", sender: "u@unknownmod.spf.test", expected: .fail),
        Case(name: "redirect pass", ip: "192.0.2.5", sender: "u@redirect.spf.test", expected: .pass),
        Case(name: "redirect fail", ip: "192.0.2.6", sender: "u@redirect.spf.test", expected: .fail),
        Case(name: "redirect ignored after all", ip: "192.0.2.5", sender: "u@redirectall.spf.test", expected: .neutral),
        Case(name: "redirect after no match", ip: "192.0.2.5", sender: "u@redirectlate.spf.test", expected: .fail),
        Case(name: "not v=spf1 is none", ip: "192.0.2.5", sender: "u@spf10.spf.test", expected: .none),
        Case(name: "SPF beside other TXT", ip: "192.0.2.5", sender: "u@withother.spf.test", expected: .fail),
        Case(name: "no TXT", ip: "192.0.2.5", sender: "u@mail.spf.test", expected: .none),
        Case(name: "only other TXT", ip: "192.0.2.5", sender: "u@nospf.spf.test", expected: .none),
        Case(name: "no such domain", ip: "192.0.2.5", sender: "u@nx.spf.test", expected: .none),
        Case(name: "null sender: HELO domain", ip: "192.0.2.40", sender: "", helo: "a.spf.test", expected: .pass),
        Case(name: "exp on fail", ip: "192.0.2.5", sender: "u@exp.spf.test", expected: .fail,
             explanation: "192.0.2.5 is not a mail server of exp.spf.test"),
    ]

    static let macros: [Case] = [
        Case(name: "%{l}", ip: "192.0.2.5", sender: "alice@local.spf.test", expected: .pass),
        Case(name: "%{l} miss", ip: "192.0.2.5", sender: "bob@local.spf.test", expected: .fail),
        Case(name: "%{l1r-}", ip: "192.0.2.5", sender: "first-last@delim.spf.test", expected: .pass),
        Case(name: "%{d2}", ip: "192.0.2.5", sender: "u@sub.d2.spf.test", expected: .pass),
        Case(name: "%{ir}.%{v} v4", ip: "192.0.2.5", sender: "u@rev.spf.test", expected: .pass),
        Case(name: "%{ir}.%{v} v6", ip: "2001:db8::5", sender: "u@rev.spf.test", expected: .pass),
        Case(name: "%{h}", ip: "192.0.2.5", sender: "u@helo.spf.test", expected: .pass),
        Case(name: "%{o} inside include", ip: "192.0.2.5", sender: "u@origin.spf.test", expected: .pass),
        Case(name: "%{p} validated", ip: "192.0.2.30", sender: "u@pmacro.spf.test", expected: .pass),
        Case(name: "%{p} unknown", ip: "192.0.2.5", sender: "u@pmacro.spf.test", expected: .fail),
        Case(name: "%{l2r.-}", ip: "192.0.2.5", sender: "x-y.z@smacro.spf.test", expected: .pass),
    ]

    static let limits: [Case] = [
        Case(name: "10 DNS terms", ip: "192.0.2.5", sender: "u@c0.spf.test", expected: .pass),
        Case(name: "11 DNS terms", ip: "192.0.2.5", sender: "u@cextra.spf.test", expected: .permerror),
        Case(name: "11 a terms in one record", ip: "192.0.2.5", sender: "u@manya.spf.test", expected: .permerror),
        Case(name: "include loop", ip: "192.0.2.5", sender: "u@loop.spf.test", expected: .permerror),
        Case(name: "2 void lookups", ip: "192.0.2.5", sender: "u@void2.spf.test", expected: .pass),
        Case(name: "3 void lookups", ip: "192.0.2.5", sender: "u@void3.spf.test", expected: .permerror),
        Case(name: "void mx and exists", ip: "192.0.2.5", sender: "u@voidmixed.spf.test", expected: .permerror),
        Case(name: "11 MX names", ip: "192.0.2.5", sender: "u@mxmany.spf.test", expected: .permerror),
    ]

    static let errors: [Case] = [
        Case(name: "two SPF records", ip: "192.0.2.5", sender: "u@twospf.spf.test", expected: .permerror),
        Case(name: "unknown mechanism", ip: "192.0.2.5", sender: "u@badmech.spf.test", expected: .permerror),
        Case(name: "bad ip4", ip: "192.0.2.5", sender: "u@badip4.spf.test", expected: .permerror),
        Case(name: "ip4 /33", ip: "192.0.2.5", sender: "u@badcidr.spf.test", expected: .permerror),
        Case(name: "a/33", ip: "192.0.2.5", sender: "u@badacidr.spf.test", expected: .permerror),
        Case(name: "bad macro", ip: "192.0.2.5", sender: "u@badmacro.spf.test", expected: .permerror),
        Case(name: "two redirects", ip: "192.0.2.5", sender: "u@tworedirect.spf.test", expected: .permerror),
        Case(name: "empty exp", ip: "192.0.2.5", sender: "u@emptyexp.spf.test", expected: .permerror),
        Case(name: "syntax error after a match", ip: "192.0.2.5", sender: "u@lateerror.spf.test", expected: .permerror),
        Case(name: "include without record", ip: "192.0.2.5", sender: "u@incnone.spf.test", expected: .permerror),
        Case(name: "include of no such domain", ip: "192.0.2.5", sender: "u@incnx.spf.test", expected: .permerror),
        Case(name: "include of a permerror", ip: "192.0.2.5", sender: "u@incperm.spf.test", expected: .permerror),
        Case(name: "redirect without record", ip: "192.0.2.5", sender: "u@redirectnone.spf.test", expected: .permerror),
        Case(name: "SERVFAIL for the record", ip: "192.0.2.5", sender: "u@x.servfail.test", expected: .temperror),
        Case(name: "include of SERVFAIL", ip: "192.0.2.6", sender: "u@inctemp.spf.test", expected: .temperror),
        Case(name: "SERVFAIL not reached", ip: "192.0.2.5", sender: "u@inctemp.spf.test", expected: .pass),
        Case(name: "a of SERVFAIL", ip: "192.0.2.5", sender: "u@atemp.spf.test", expected: .temperror),
    ]

    func testMechanismsAgreeWithPyspf() async throws { try await run(Self.mechanisms) }
    func testMacrosAgreeWithPyspf() async throws { try await run(Self.macros) }
    func testLimitsAgreeWithPyspf() async throws { try await run(Self.limits) }
    func testErrorsAgreeWithPyspf() async throws { try await run(Self.errors) }

    func testTableSize() {
        XCTAssertGreaterThanOrEqual(Self.mechanisms.count + Self.macros.count + Self.limits.count + Self.errors.count, 60)
    }

    /// The outcome's details on cases whose result alone would not show them.
    func testOutcomeDetails() async throws {
        let evaluator = SPFEvaluator(resolver: try XCTUnwrap(Self.resolver, Self.startError ?? "no resolver"))
        let include = await evaluator.check(ip: "192.0.2.5", mailFrom: "<u@incpass.spf.test>", helo: "h.test", receiver: "mx.test")
        XCTAssertEqual(include.mechanism, "include:all-pass.spf.test")
        XCTAssertEqual(include.domain, "incpass.spf.test")
        let void = await evaluator.check(ip: "192.0.2.5", mailFrom: "u@void3.spf.test", helo: "h.test", receiver: "mx.test")
        XCTAssertTrue(void.problem?.contains("void") == true, "\(void)")
        let temp = await evaluator.check(ip: "192.0.2.5", mailFrom: "u@x.servfail.test", helo: "h.test", receiver: "mx.test")
        XCTAssertTrue(temp.problem?.contains("x.servfail.test") == true, "\(temp)")
        let helo = await evaluator.checkHELO(ip: "192.0.2.41", helo: "a.spf.test", receiver: "mx.test")
        XCTAssertEqual(helo.result, .fail)
        XCTAssertEqual(helo.identity, .helo)
        XCTAssertEqual(helo.envelopeFrom, "postmaster@a.spf.test")
        // unbound's static zones answer a CNAME without its target: the DNS plugin follows it,
        // a stub resolver such as dnspython's does not, so this case is Postern's alone.
        let cname = await evaluator.check(ip: "192.0.2.10", mailFrom: "u@acname.spf.test", helo: "h.test", receiver: "mx.test")
        XCTAssertEqual(cname.result, .pass, "\(cname)")
        let literal = await evaluator.checkHELO(ip: "192.0.2.41", helo: "[192.0.2.41]", receiver: "mx.test")
        XCTAssertEqual(literal.result, .none)
    }

    // MARK: Running both

    func run(_ cases: [Case], file: StaticString = #filePath, line: UInt = #line) async throws {
        let resolver = try XCTUnwrap(Self.resolver, Self.startError ?? "no resolver")
        let port = try XCTUnwrap(Self.unbound).port
        let reference = try Self.pyspf(cases, port: port)
        XCTAssertEqual(reference.count, cases.count)
        let evaluator = SPFEvaluator(resolver: resolver)
        for (index, check) in cases.enumerated() {
            let outcome = await evaluator.check(ip: check.ip, mailFrom: check.sender, helo: check.helo, receiver: "mx.test")
            let (pyspfResult, pyspfExplanation) = reference[index]
            XCTAssertEqual(outcome.result, check.expected, "\(check.name): Postern (\(outcome.problem ?? "-"))", file: file, line: line)
            XCTAssertEqual(pyspfResult, check.expected.rawValue, "\(check.name): pyspf (\(pyspfExplanation))", file: file, line: line)
            if let explanation = check.explanation {
                XCTAssertEqual(outcome.explanation, explanation, "\(check.name): Postern", file: file, line: line)
                XCTAssertEqual(pyspfExplanation, explanation, "\(check.name): pyspf", file: file, line: line)
            }
        }
    }

    struct PyspfFailure: Error, CustomStringConvertible { var description: String }

    /// pyspf's `check2` for every case, in one python3 process: dnspython's default resolver is
    /// replaced by one that asks only the test's unbound.
    static func pyspf(_ cases: [Case], port: Int) throws -> [(String, String)] {
        let script = """
            import json, sys, warnings
            warnings.simplefilter("ignore")
            import dns.resolver, spf
            request = json.load(sys.stdin)
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = ["127.0.0.1"]
            resolver.port = request["port"]
            dns.resolver.default_resolver = resolver
            out = []
            for case in request["cases"]:
                result, explanation = spf.check2(i=case["i"], s=case["s"], h=case["h"], querytime=20)
                out.append([result, explanation])
            json.dump(out, sys.stdout)
            """
        let request: [String: Any] = ["port": port, "cases": cases.map { ["i": $0.ip, "s": $0.sender, "h": $0.helo] }]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        input.fileHandleForWriting.write(try JSONSerialization.data(withJSONObject: request))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0, let rows = try JSONSerialization.jsonObject(with: data) as? [[String]] else {
            throw PyspfFailure(description: "pyspf failed (is python3-spf installed? see scripts/install-deps.sh): \(errorText)")
        }
        return rows.map { ($0[0], $0.count > 1 ? $0[1] : "") }
    }
}
