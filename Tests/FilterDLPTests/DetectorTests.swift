import PluginAPI
import XCTest

@testable import PosternFilterDLPCore

/// Each built-in detector on valid identifiers (published test numbers) and on the same shapes
/// with a wrong check digit, in running text.
final class DetectorTests: XCTestCase {
    func detector(_ name: String) throws -> any Detector { try XCTUnwrap(BuiltInDetectors.all.first { $0.name == name }, name) }

    func count(_ name: String, _ text: String) throws -> Int { try detector(name).count(in: ScanText(text)) }

    func testCardNumbersNeedTheLuhnCheckAKnownPrefixAndItsLength() throws {
        XCTAssertEqual(try count("credit_card", "Visa 4111 1111 1111 1111, MC 5500-0000-0000-0004, Amex 3782 822463 10005."), 3)
        XCTAssertEqual(try count("credit_card", "Discover 6011111111111117 and MC 2223000048400011 and Visa13 4222222222222"), 3)
        XCTAssertEqual(try count("credit_card", "bad Luhn 4111 1111 1111 1112"), 0)
        XCTAssertEqual(try count("credit_card", "Luhn-valid but no issuer 9000000000000001"), 0)
        XCTAssertEqual(try count("credit_card", "Luhn-valid Visa prefix of 18 digits 411111111111111118"), 0)
        XCTAssertEqual(try count("credit_card", "inside a longer number 14111111111111111 or a word x4111111111111111"), 0)
        XCTAssertEqual(try count("credit_card", "doubled separators 4111  1111 1111 1111"), 0)
        XCTAssertEqual(try count("credit_card", "end of sentence 4111111111111111."), 1)
    }

    func testIBANsNeedTheirCountrysLengthAndMod97() throws {
        XCTAssertEqual(try count("iban", "Pay GB82 WEST 1234 5698 7654 32 or DE89370400440532013000 or fr14 2004 1010 0505 0001 3m02 606."), 3)
        XCTAssertEqual(try count("iban", "NL91ABNA0417164300"), 1)
        XCTAssertEqual(try count("iban", "wrong check GB82 WEST 1234 5698 7654 33"), 0)
        XCTAssertEqual(try count("iban", "wrong length DE89 3704 0044 0532 0130 0"), 0)
        XCTAssertEqual(try count("iban", "unknown country QQ82 WEST 1234 5698 7654 32"), 0)
    }

    func testUSSocialSecurityNumbersFollowTheIssuingRules() throws {
        XCTAssertEqual(try count("us_ssn", "SSN 123-45-6789 and 536 22 1234"), 2)
        XCTAssertEqual(try count("us_ssn", "000-12-3456 666-12-3456 912-12-3456 123-00-4567 123-45-0000 078-05-1120"), 0)
        XCTAssertEqual(try count("us_ssn", "no separators 123456789, phone 555-123-4567"), 0)
    }

    func testUKNationalInsuranceNumbersFollowThePrefixRules() throws {
        XCTAssertEqual(try count("uk_nino", "NINO AB123456C, ab 12 34 56 d"), 2)
        XCTAssertEqual(try count("uk_nino", "DA123456C QQ123456C BG123456C AO123456A AB123456E"), 0)
    }

    func testSpanishDNIAndNIECheckLetters() throws {
        XCTAssertEqual(try count("es_dni", "DNI 12345678Z, 12345678-z, NIE X1234567L and Y1234567X"), 4)
        XCTAssertEqual(try count("es_dni", "12345678A X1234567A"), 0)
    }

    func testDutchBSNElevenProof() throws {
        XCTAssertEqual(try count("nl_bsn", "BSN 111222333 en 123456782"), 2)
        XCTAssertEqual(try count("nl_bsn", "123456789 000000000 1234567820"), 0)
    }

    func testItalianCodiceFiscaleCheckCharacter() throws {
        XCTAssertEqual(try count("it_codice_fiscale", "CF RSSMRA85T10A562S e mrtmtt91d08f205j"), 2)
        XCTAssertEqual(try count("it_codice_fiscale", "RSSMRA85T10A562T RSSMRA85Z10A562S"), 0)
    }

    func testChecksumsDirectly() {
        XCTAssertTrue(Checksums.luhn([4, 0, 1, 2, 8, 8, 8, 8, 8, 8, 8, 8, 1, 8, 8, 1]))
        XCTAssertFalse(Checksums.luhn([]))
        XCTAssertTrue(Checksums.ibanChecksum("BE71096123456769"))
        XCTAssertFalse(Checksums.ibanChecksum("BE71096123456768"))
        XCTAssertTrue(Checksums.italianCodiceFiscale("RSSMRA85T10A562S"))
        XCTAssertTrue(Checksums.dutchBSN([1, 2, 3, 4, 5, 6, 7, 8, 2]))
        XCTAssertTrue(Checksums.spanishDNI("Z1234567R"))
    }

    func testDictionariesAreWholeWordsCaseIgnoredAndPhrasesSpanWhitespace() {
        let d = PhraseDetector(name: "projects", phrases: ["Project Falcon", "bluebird"], caseSensitive: false)
        XCTAssertEqual(d.count(in: ScanText("About PROJECT\n  falcon: Bluebird, bluebird.")), 3)
        XCTAssertEqual(d.count(in: ScanText("bluebirds and project falconry")), 0)
    }

    func testMarkingsKeepTheirCase() {
        let d = PhraseDetector(name: "markings", phrases: ["CONFIDENTIAL", "STRICTLY CONFIDENTIAL"], caseSensitive: true)
        XCTAssertEqual(d.count(in: ScanText("CONFIDENTIAL report")), 1)
        XCTAssertEqual(d.count(in: ScanText("a confidential chat, NONCONFIDENTIAL")), 0)
        XCTAssertEqual(d.count(in: ScanText("STRICTLY\nCONFIDENTIAL")), 2, "the phrase and the word in it")
    }

    func testRegexesCountEveryMatch() throws {
        let d = try RegexDetector(name: "employee", pattern: "EMP-[0-9]{6}", caseInsensitive: true)
        XCTAssertEqual(d.count(in: ScanText("emp-123456, EMP-654321, EMP-12")), 2)
        XCTAssertThrowsError(try RegexDetector(name: "bad", pattern: "([a-z", caseInsensitive: false))
    }
}
