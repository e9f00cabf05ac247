import PluginAPI
import XCTest

@testable import PosternFilterDisclaimerCore

/// `[[plugin.filter-disclaimer.profiles]]` as the host hands it: the schema's checks, the
/// defaults inside the array, and the errors that say what to fix.
final class DisclaimerConfigTests: XCTestCase {
    let schema = DisclaimerRegistration.registration.manifest.config

    func section(_ profiles: [[String: ConfigValue]]) -> ConfigSection {
        ConfigSection(schema.applyingDefaults(to: ["profiles": .array(profiles.map { .table($0) })]))
    }

    func testProfilesWithTheirDefaults() throws {
        let table: [String: ConfigValue] = ["sender_domains": .array([.string("Example.ORG")]), "text": .string("Confidential.")]
        XCTAssertEqual(schema.validate(["profiles": .array([.table(table)])]), [])
        let profiles = try DisclaimerRegistration.profiles(section([table, ["name": .string("all"), "text": .string("x"), "signed": .string("wrap"),
                                                                          "directions": .array([.string("inbound")]), "html": .string("<i>x</i>")]]))
        XCTAssertEqual(profiles, [
            DisclaimerProfile(name: "profile-1", senderDomains: ["example.org"], directions: [.outbound], text: "Confidential.",
                              html: "<div class=\"disclaimer\"><p>Confidential.</p></div>"),
            DisclaimerProfile(name: "all", directions: [.inbound], text: "x", html: "<i>x</i>", signed: .wrap),
        ])
    }

    func testSchemaRefusesWhatItDoesNotKnow() {
        let issues = schema.validate(["profiles": .array([.table(["text": .string("x"), "signed": .string("sign"), "colour": .string("red")])])])
        XCTAssertEqual(issues.map(\.keyPath), [["profiles", "0", "colour"], ["profiles", "0", "signed"]])
        XCTAssertEqual(schema.validate(["profiles": .array([.table([:])])]).map(\.message), ["required key 'text' is missing"])
    }

    func testErrorsSayWhatToFix() {
        XCTAssertThrowsError(try DisclaimerRegistration.profiles(section([["text": .string("x"), "only_external_recipients": .boolean(true)]]))) {
            XCTAssertTrue("\($0)".contains("needs internal_domains"), "\($0)")
        }
        XCTAssertThrowsError(try DisclaimerRegistration.profiles(section([["text": .string("  ")]]))) {
            XCTAssertTrue("\($0)".contains("text is empty"), "\($0)")
        }
        XCTAssertThrowsError(try DisclaimerRegistration.profiles(section([["text": .string("x"), "directions": .array([])]]))) {
            XCTAssertTrue("\($0)".contains("directions is empty"), "\($0)")
        }
    }

    func testRegisteredAsTheFilterDisclaimer() {
        XCTAssertEqual(DisclaimerRegistration.registration.manifest.name, "filter-disclaimer")
        XCTAssertEqual(DisclaimerRegistration.registration.manifest.kinds, [.filter])
        XCTAssertEqual(DisclaimerRegistration.filterName, "disclaimer")
    }
}
