import PluginAPI
import XCTest

@testable import PosternFilterDLPCore

/// `[plugin.filter-dlp]` as the host hands it: the schema, detectors by name, and the errors
/// that say what to fix.
final class DLPConfigTests: XCTestCase {
    let schema = DLPRegistration.registration.manifest.config

    func section(_ table: [String: ConfigValue]) -> ConfigSection { ConfigSection(schema.applyingDefaults(to: table)) }

    func policy(_ fields: [String: ConfigValue]) -> [String: ConfigValue] { ["policies": .array([.table(fields)])] }

    func testPoliciesDictionariesPatternsAndDefaults() throws {
        let table: [String: ConfigValue] = [
            "dictionaries": .table(["projects": .table(["words": .array([.string("Project Falcon")])])]),
            "patterns": .table(["employee": .table(["regex": .string("EMP-[0-9]{6}")])]),
            "policies": .array([
                .table(["name": .string("pci"), "detectors": .array([.string("credit_card")]), "action": .string("reject")]),
                .table(["detectors": .array([.string("projects"), .string("employee"), .string("markings")]), "threshold": .integer(2),
                        "action": .string("notify"), "notify": .string("compliance@example.org"), "directions": .array([.string("internal")])]),
            ]),
        ]
        XCTAssertEqual(schema.validate(table), [])
        let policies = try DLPRegistration.policies(section(table))
        XCTAssertEqual(policies.map(\.name), ["pci", "policy-2"])
        XCTAssertEqual(policies[0].directions, [.outbound])
        XCTAssertEqual(policies[0].threshold, 1)
        XCTAssertEqual(policies[1].detectors.map(\.name), ["projects", "employee", "markings"])
        XCTAssertEqual(policies[1].directions, [.internal])
        XCTAssertEqual(policies[1].notify, "compliance@example.org")
        // The default markings are used when none are configured.
        XCTAssertEqual(policies[1].detectors[2].count(in: ScanText("STRICTLY CONFIDENTIAL and INTERNAL ONLY")), 3)
    }

    func testErrorsSayWhatToFix() {
        func error(_ table: [String: ConfigValue]) -> String {
            do { _ = try DLPRegistration.policies(section(table)); return "no error" } catch { return "\(error)" }
        }
        XCTAssertTrue(error(policy(["detectors": .array([.string("passport")]), "action": .string("reject")])).contains("no detector 'passport' (known: "))
        XCTAssertTrue(error(policy(["detectors": .array([.string("iban")]), "action": .string("notify")])).contains("needs notify = "))
        XCTAssertTrue(error(policy(["detectors": .array([.string("iban")]), "action": .string("reject"), "notify": .string("a@b.example")])).contains("remove notify"))
        XCTAssertTrue(error(policy(["detectors": .array([]), "action": .string("reject")])).contains("detectors is empty"))
        XCTAssertTrue(error(["patterns": .table(["p": .table(["regex": .string("([")])])]).contains("is not a valid regular expression"))
        XCTAssertTrue(error(["dictionaries": .table(["iban": .table(["words": .array([.string("x")])])])]).contains("already a detector"))
        XCTAssertTrue(error(["dictionaries": .table(["d": .table(["words": .array([.string(" ")])])])]).contains("words is empty"))
        XCTAssertEqual(schema.validate(policy(["detectors": .array([.string("iban")]), "action": .string("bounce")])).map(\.keyPath),
                       [["policies", "0", "action"]])
    }

    func testRegisteredAsTheFilterDLP() {
        XCTAssertEqual(DLPRegistration.registration.manifest.name, "filter-dlp")
        XCTAssertEqual(DLPRegistration.filterName, "dlp")
        XCTAssertEqual(BuiltInDetectors.names, ["credit_card", "iban", "us_ssn", "uk_nino", "es_dni", "nl_bsn", "it_codice_fiscale"])
    }
}
