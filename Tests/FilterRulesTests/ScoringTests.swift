import Foundation
import PluginAPI
@testable import PosternFilterRulesCore
import XCTest

/// Scores, thresholds, headers and the subject prefix; which set judges a message; block list
/// lookups (concurrent, bounded, failures not counted); the default rules.
final class ScoringTests: XCTestCase {
    func set(_ toml: String) throws -> RuleSet {
        try XCTUnwrap(RuleFile.sets(text: toml, origin: "test", defaults: RuleFile.defaultSet().rules).first)
    }

    let thresholds = """
        [[sets]]
        name = "a"
        tag = 5.0
        quarantine = 10.0
        reject = 15.0
        subject_prefix = "[SPAM] "
        [[sets.rules]]
        name = "CASINO"
        score = 6.0
        header = "Subject"
        pattern = 'casino'
        [[sets.rules]]
        name = "PRIZE"
        score = 5.0
        body = "prize"
        [[sets.rules]]
        name = "WINNER"
        score = 4.5
        body = "winner"
        [[sets.rules]]
        name = "FRIEND"
        score = -2.0
        sender = '@friend\\.example$'

        """

    func decide(_ set: RuleSet, _ text: String, sender: String = "a@example.net") -> SpamDecision {
        let m = Fixture.message(text, sender: sender)
        return SpamDecision(set: set, hits: RuleEvaluator.hits(set.rules, facts: Fixture.facts(m), listed: []), fields: m.fields)
    }

    func testBelowTagWritesNoAndChangesNothingElse() throws {
        let d = decide(try set(thresholds), "Subject: lunch\nX-Spam-Status: Yes, forged\n\nHello\n")
        XCTAssertEqual(d.verdict, .continue)
        XCTAssertEqual(d.modifications, [.changeHeader(name: "X-Spam-Status", index: 1, value: nil),
                                         .addHeader(name: "X-Spam-Score", value: "0.0"),
                                         .addHeader(name: "X-Spam-Status", value: "No, score=0.0 required=5.0 tests=none")])
    }

    func testTagAddsPrefixAndYes() throws {
        let d = decide(try set(thresholds), "Subject: Casino night\n\nHello\n")
        XCTAssertEqual(d.verdict, .continue)
        XCTAssertEqual(d.score, 6.0)
        XCTAssertEqual(d.modifications, [.addHeader(name: "X-Spam-Score", value: "6.0"),
                                         .addHeader(name: "X-Spam-Status", value: "Yes, score=6.0 required=5.0 tests=CASINO"),
                                         .changeHeader(name: "Subject", index: 1, value: "[SPAM] Casino night")])
        // Already prefixed: not twice. No Subject at all: one is added.
        XCTAssertFalse(decide(try set(thresholds), "Subject: [SPAM] Casino\n\nHi\n").modifications.contains { if case .changeHeader("Subject", _, _) = $0 { return true } else { return false } })
        let noSubject = try set(thresholds.replacingOccurrences(of: "header = \"Subject\"\npattern = 'casino'", with: "body = \"casino\""))
        XCTAssertTrue(decide(noSubject, "From: a@example.net\n\ncasino\n").modifications.contains(.addHeader(name: "Subject", value: "[SPAM]")))
    }

    func testQuarantineAndRejectThresholds() throws {
        let q = decide(try set(thresholds), "Subject: casino\n\nA prize for you\n")
        XCTAssertEqual(q.score, 11.0)
        XCTAssertEqual(q.verdict, .quarantine(reason: "spam score 11.0 (rule set a: CASINO,PRIZE)"))
        XCTAssertTrue(q.modifications.contains(.addHeader(name: "X-Spam-Status", value: "Yes, score=11.0 required=5.0 tests=CASINO,PRIZE")))
        let r = decide(try set(thresholds), "Subject: casino\n\nA prize for the winner\n")
        XCTAssertEqual(r.score, 15.5)
        XCTAssertEqual(r.verdict, .reject(MailReply(550, "5.7.1", "message refused as spam (score 15.5)")))
        XCTAssertEqual(r.modifications, [])
        // A negative score brings it back under the reject threshold.
        let friend = decide(try set(thresholds), "Subject: casino\n\nA prize for the winner\n", sender: "x@friend.example")
        XCTAssertEqual(friend.score, 13.5)
        XCTAssertEqual(friend.verdict, .quarantine(reason: "spam score 13.5 (rule set a: CASINO,PRIZE,WINNER,FRIEND)"))
    }

    func testTaggedHeaderModeLeavesCleanMailUntouched() throws {
        let s = try set(thresholds.replacingOccurrences(of: "name = \"a\"\n", with: "name = \"a\"\nadd_headers = \"tagged\"\n"))
        XCTAssertEqual(decide(s, "Subject: lunch\n\nHello\n").modifications, [])
        XCTAssertEqual(decide(s, "Subject: casino\n\nHello\n").modifications.count, 3)
    }

    func testScoreFormatting() {
        XCTAssertEqual(SpamDecision.format(7.5), "7.5")
        XCTAssertEqual(SpamDecision.format(1000), "1000.0")
        XCTAssertEqual(SpamDecision.format(-2.25), "-2.3")
        XCTAssertEqual(SpamDecision.format(0.04), "0.0")
    }

    func testSetChoiceByDomainAndDirection() throws {
        let sets = try RuleFile.sets(text: """
            [[sets]]
            name = "catch-all"
            tag = 5.0
            [[sets]]
            name = "org"
            domains = ["Example.ORG"]
            tag = 3.0
            [[sets]]
            name = "out"
            directions = ["outbound"]
            tag = 8.0
            """, origin: "test", defaults: [])
        let settings = RulesSettings(sets: sets, trustedNetworks: [], maxMessageBytes: 1 << 20, maxScanBytes: 1 << 20, maxURIHosts: 20, dnsConcurrency: 4)
        XCTAssertEqual(settings.set(for: ["a@other.example", "b@example.org"], direction: .inbound)?.name, "org",
                       "a set naming a recipient's domain beats the catch-all before it")
        XCTAssertEqual(settings.set(for: ["a@other.example"], direction: .inbound)?.name, "catch-all")
        XCTAssertEqual(settings.set(for: ["b@example.org"], direction: .outbound)?.name, "out")
        XCTAssertNil(settings.set(for: ["b@example.org"], direction: .internal))
    }

    func testDefaultRulesMatchTheShippedFileAndCatchGTUBE() throws {
        let file = try String(contentsOfFile: packageRoot + "/Plugins/FilterRules/default-rules.toml", encoding: .utf8)
        XCTAssertEqual(DefaultRules.text + "\n", file, "Core/DefaultRules.swift must hold default-rules.toml verbatim")
        let defaults = RuleFile.defaultSet()
        XCTAssertEqual(defaults.name, "default")
        XCTAssertEqual(defaults.tag, 5.0)
        XCTAssertEqual(defaults.quarantine, 10.0)
        XCTAssertNil(defaults.reject)
        let gtube = decide(defaults, Fixture.plain + "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\n")
        XCTAssertEqual(gtube.tests, ["GTUBE"])
        XCTAssertEqual(gtube.verdict, .quarantine(reason: "spam score 1000.0 (rule set default: GTUBE)"))
        XCTAssertEqual(decide(defaults, Fixture.plain).tests, [], "an ordinary message hits no default rule")
        // A bare message from outside: no Date, no Message-ID, shouting subject about a casino, HTML only.
        let junk = decide(defaults, "From: x@example.net\nSubject: WIN AT THE CASINO TODAY\nContent-Type: text/html\n\n<p>Win 5 million dollars</p>\n",
                          sender: "x@localhost")
        XCTAssertEqual(junk.tests, ["MISSING_DATE", "MISSING_MESSAGE_ID", "UNQUALIFIED_SENDER_DOMAIN", "SUBJECT_ALL_CAPS",
                                    "SUBJECT_SPAM_WORDS", "BODY_MONEY_OFFER", "HTML_ONLY"])
        XCTAssertEqual(junk.score, 12.0)
    }

    func testDefaultRulesInASetAreReplacedByName() throws {
        let s = try set("""
            [[sets]]
            name = "mine"
            tag = 4.0
            default_rules = true
            [[sets.rules]]
            name = "MISSING_DATE"
            score = 0.0
            missing_header = "Date"
            [[sets.rules]]
            name = "OWN"
            score = 1.0
            body = "own"
            """)
        XCTAssertEqual(s.rules.count, RuleFile.defaultSet().rules.count + 1)
        XCTAssertEqual(s.rules.first { $0.name == "MISSING_DATE" }?.score, 0.0)
        XCTAssertEqual(s.rules.last?.name, "OWN")
    }

    func testBlocklistLookupsAreConcurrentBoundedAndFailuresCountAsNotListed() async throws {
        let s = try set("""
            [[sets]]
            name = "bl"
            tag = 1.0
            [[sets.rules]]
            name = "IN_DNSBL"
            score = 3.0
            dnsbl = "dnsbl.test"
            [[sets.rules]]
            name = "IN_OTHER_DNSBL"
            score = 3.0
            dnsbl = "down.test"
            [[sets.rules]]
            name = "IN_URIBL"
            score = 2.0
            uribl = "uribl.test."
            """)
        let answers = ["10.2.0.192.dnsbl.test": ["127.0.0.2"], "spam.example.uribl.test": ["127.0.0.2"],
                       "notlisted.example.uribl.test": ["192.0.2.1"]]
        let text = "From: a@example.net\n\n" + (1...12).map { "http://h\($0).example/ " }.joined() + " https://www.spam.example/x http://notlisted.example/\n"
        let m = Fixture.message(text)
        let resolver = FixedResolver(answers, failing: ["10.2.0.192.down.test"], delayMilliseconds: 50)
        let settings = RulesSettings(sets: [s], trustedNetworks: [], maxMessageBytes: 1 << 20, maxScanBytes: 1 << 20, maxURIHosts: 20, dnsConcurrency: 4)
        let inspector = RulesInspector(settings: settings, resolver: { resolver }, logger: Logger(label: "test"))
        let started = Date()
        let decision = await inspector.judge(m, with: s)
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(decision.tests, ["IN_DNSBL", "IN_URIBL"], "an answer outside 127/8 and a SERVFAIL are not listings")
        // 2 client names + 12 hosts + www.spam.example and spam.example + notlisted.example = 17 questions.
        XCTAssertEqual(resolver.asked.count, 17)
        XCTAssertEqual(Set(resolver.asked).count, 17, "each name asked once")
        XCTAssertEqual(resolver.maxInFlight, 4, "at most dns_concurrency at once, and that many used")
        XCTAssertLessThan(elapsed, 17 * 0.05 / 2, "not one after the other")
        // No resolver loaded: the rules never hit, the others still count.
        let without = RulesInspector(settings: settings, resolver: { nil }, logger: Logger(label: "test"))
        let none = await without.judge(m, with: s)
        XCTAssertEqual(none.tests, [])
    }

    func testInspectorPassesMailNoSetJudges() async throws {
        let sets = try RuleFile.sets(text: "[[sets]]\nname = \"x\"\ndomains = [\"example.com\"]\ntag = 1.0\n", origin: "t", defaults: [])
        let settings = RulesSettings(sets: sets, trustedNetworks: [], maxMessageBytes: 1 << 20, maxScanBytes: 1 << 20, maxURIHosts: 20, dnsConcurrency: 4)
        let inspector = RulesInspector(settings: settings, resolver: { nil }, logger: Logger(label: "test"))
        let (verdict, changes) = await inspector.inspect(Fixture.message(Fixture.plain))
        XCTAssertEqual(verdict, .continue)
        XCTAssertEqual(changes, [])
    }
}

/// The package root, from this file's path (Tests/FilterRulesTests/ScoringTests.swift).
let packageRoot: String = {
    var dir = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { dir.deleteLastPathComponent() }
    return dir.path
}()
