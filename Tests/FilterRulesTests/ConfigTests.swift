import Foundation
import PluginAPI
import PosternHost
@testable import PosternFilterRulesCore
import XCTest

/// Config mistakes: each refused with a message naming where it is and what to change.
final class ConfigTests: XCTestCase {
    func error(_ toml: String) -> String {
        do {
            _ = try RuleFile.sets(text: toml, origin: "rules.toml", defaults: [])
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    func rule(_ lines: String) -> String {
        error("[[sets]]\nname = \"s\"\ntag = 5.0\n[[sets.rules]]\nname = \"R\"\nscore = 1.0\n\(lines)\n")
    }

    func testRuleNeedsExactlyOneCondition() {
        XCTAssertEqual(rule(""), "rules.toml: sets.0 (set 's'): rules.0 (rule 'R'): give exactly one condition (one of \(RuleSchema.conditionKeys.joined(separator: ", "))); found none")
        XCTAssertTrue(rule("body = \"a\"\nhelo = 'b'").hasSuffix("found body, helo"), rule("body = \"a\"\nhelo = 'b'"))
        XCTAssertTrue(rule("header = \"Subject\"").hasSuffix("header needs a pattern"))
        XCTAssertTrue(rule("body = \"a\"\npattern = 'b'").hasSuffix("pattern goes with header only"))
    }

    func testBadValuesSayWhatToFix() {
        XCTAssertTrue(rule("body_regex = '(unclosed'").hasSuffix("body_regex '(unclosed' is not a valid regular expression (ICU syntax)"), rule("body_regex = '(unclosed'"))
        XCTAssertTrue(rule("client_network = [\"192.0.2.0/33\"]").hasSuffix("client_network '192.0.2.0/33' is not an address or CIDR network"))
        XCTAssertTrue(rule("malformed_date = false").hasSuffix("malformed_date takes true (use negate to invert a rule)"))
        XCTAssertTrue(rule("dnsbl = \"localhost\"").hasSuffix("dnsbl 'localhost' is not a DNS zone"))
        XCTAssertTrue(rule("missing_header = \"Date:\"").hasSuffix("missing_header 'Date:' is not a field name"))
        // Types and unknown keys, through the same schema the host uses for inline sets.
        XCTAssertEqual(rule("body = 3"), "rules.toml: sets.0.rules.0.body: expected string, found integer 3")
        XCTAssertTrue(rule("bodyy = \"x\"").hasPrefix("rules.toml: sets.0.rules.0.bodyy: unknown key 'bodyy'"), rule("bodyy = \"x\""))
        XCTAssertEqual(error("[[sets]]\ntag = 1.0\n"), "rules.toml: sets.0.name: required key 'name' is missing")
        XCTAssertEqual(error("[[sets]]\nname = \"s\"\ntag = 1.0\ndirections = [\"sideways\"]\n"),
                       "rules.toml: sets.0.directions.0: expected one of \"inbound\", \"outbound\", \"internal\", found string \"sideways\"")
    }

    func testSetLevelMistakes() {
        XCTAssertEqual(error("[[sets]]\nname = \"s\"\n"), "rules.toml: sets.0 (set 's'): give at least one of tag, quarantine and reject (scores from which the set acts)")
        XCTAssertEqual(error("[[sets]]\nname = \"s\"\ntag = 5.0\nquarantine = 3.0\n"), "rules.toml: sets.0 (set 's'): quarantine (3.0) is below tag (5.0)")
        XCTAssertEqual(error("[[sets]]\nname = \"s\"\ntag = 5.0\n[[sets.rules]]\nname = \"A\"\nscore = 1.0\nbody = \"x\"\n[[sets.rules]]\nname = \"A\"\nscore = 1.0\nbody = \"y\"\n"),
                       "rules.toml: sets.0 (set 's'): rules.1: rule name 'A' is used twice in this set; rename one")
        XCTAssertTrue(error("[[sets]]\nname = \"s\"\ntag = 5.0\n[[sets.rules]]\nname = \"A B\"\nscore = 1.0\nbody = \"x\"\n").hasSuffix("name must be letters, digits, '_', '-' or '.' (it goes into X-Spam-Status)"))
        XCTAssertTrue(error("[[sets]\nname = 1").hasPrefix("rules.toml:1: TOML syntax error"), error("[[sets]\nname = 1"))
    }

    func testPluginSettings() throws {
        let dir = NSTemporaryDirectory() + "filter-rules-config-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let schema = FilterRulesRegistration.schema
        func settings(_ values: [String: ConfigValue]) throws -> RulesSettings {
            XCTAssertEqual(schema.validate(values), [])
            return try FilterRulesPlugin.settings(ConfigSection(schema.applyingDefaults(to: values)), dataDirectory: dir)
        }
        // Nothing configured: the default set.
        XCTAssertEqual(try settings([:]).sets.map(\.name), ["default"])
        // Inline first, then the file (relative to data_dir).
        try "[[sets]]\nname = \"from-file\"\nreject = 9.0\n".write(toFile: dir + "/rules.toml", atomically: true, encoding: .utf8)
        let inline: ConfigValue = .array([.table(["name": .string("inline"), "tag": .float(2)])])
        XCTAssertEqual(try settings(["sets": inline, "rules_file": .string("rules.toml")]).sets.map(\.name), ["inline", "from-file"])
        // Errors: a missing file, a duplicate set name, a bad trusted network.
        XCTAssertThrowsError(try settings(["rules_file": .string("nope.toml")])) { XCTAssertTrue("\($0)".hasPrefix("rules_file \(dir)/nope.toml: cannot read it"), "\($0)") }
        let twice: ConfigValue = .array([.table(["name": .string("from-file"), "tag": .float(2)])])
        XCTAssertThrowsError(try settings(["sets": twice, "rules_file": .string(dir + "/rules.toml")])) {
            XCTAssertEqual("\($0)", "filter-rules: rule set name 'from-file' is used twice; rename one")
        }
        XCTAssertThrowsError(try settings(["trusted_networks": .array([.string("10.0.0.0/8"), .string("ten")])])) {
            XCTAssertEqual("\($0)", "[plugin.filter-rules] trusted_networks: 'ten' is not an address or CIDR network")
        }
        XCTAssertEqual(schema.validate(["sets": .array([.table(["name": .string("x"), "tag": .string("high")])])]).map(\.description),
                       ["sets.0.tag: expected float, found string \"high\""])
    }

    /// The README's example, as a config: its sets pass every check of activation, not only the schema.
    func testReadmeExampleLoads() throws {
        let readme = try String(contentsOfFile: packageRoot + "/Plugins/FilterRules/README.md", encoding: .utf8)
        let example = try XCTUnwrap(readme.components(separatedBy: "```toml\n").dropFirst().first?.components(separatedBy: "```").first)
        let source = example.replacingOccurrences(of: "rules_file = \"/etc/postern/rules.toml\"", with: "")
        let config: HostConfig
        switch HostConfig.parse(source: "data_dir = \"/tmp\"\n" + source, file: "README.md") {
        case .success(let c): config = c
        case .failure(let d): return XCTFail("\(d.all)")
        }
        let values = try XCTUnwrap(config.pluginSections["filter-rules"])
        let schema = FilterRulesRegistration.schema
        XCTAssertEqual(schema.validate(values), [])
        let settings = try FilterRulesPlugin.settings(ConfigSection(schema.applyingDefaults(to: values)), dataDirectory: "/tmp")
        let set = try XCTUnwrap(settings.sets.first)
        XCTAssertEqual(set.name, "example-org")
        XCTAssertEqual(set.rules.count, RuleFile.defaultSet().rules.count + 2, "MISSING_DATE replaced, two added")
        XCTAssertEqual(settings.trustedNetworks.count, 3)
    }
}
