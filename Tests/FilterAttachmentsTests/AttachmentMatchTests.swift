import PluginAPI
@testable import PosternFilterAttachmentsCore
import XCTest

/// File names, globs, MIME type patterns, magic bytes, rules and scopes, and the configuration.
final class AttachmentMatchTests: XCTestCase {
    func testNamesAreNormalisedAsWindowsWouldSaveThem() {
        let trailing = AttachmentName("Invoice.PDF.exe. . ")
        XCTAssertEqual(trailing.normalized, "invoice.pdf.exe")
        XCTAssertEqual(trailing.extensions, ["pdf", "exe"])
        XCTAssertEqual(trailing.finalExtension, "exe")
        XCTAssertEqual(trailing.innerExtension, "pdf")
        XCTAssertEqual(AttachmentName("C:\\Temp\\..\\SETUP.EXE").normalized, "setup.exe")
        XCTAssertEqual(AttachmentName("../../etc/x.scr").finalExtension, "scr")
        XCTAssertEqual(AttachmentName("README").extensions, [])
        XCTAssertNil(AttachmentName("README").finalExtension)
        XCTAssertEqual(AttachmentName(".exe").extensions, ["exe"])
        // Blanks between the extensions hide the second one in a narrow column, not from us.
        let padded = AttachmentName("invoice.pdf          .exe")
        XCTAssertEqual(padded.finalExtension, "exe")
        XCTAssertEqual(padded.innerExtension, "pdf")
        XCTAssertEqual(AttachmentName("backup.tar.gz").extensions, ["tar", "gz"])
    }

    func testPrintableNamesAreASCIIWithoutQuotes() {
        XCTAssertEqual(AttachmentName("€-\"rechnung\".exe\r\n").printable, "?-rechnung.exe??")
        XCTAssertEqual(AttachmentName(String(repeating: "a", count: 100)).printable.count, 83)
    }

    func testGlobsIgnoreCase() {
        XCTAssertTrue(AttachmentRule.glob("*.pdf.exe", matches: "invoice.pdf.exe"))
        XCTAssertTrue(AttachmentRule.glob("*.PDF.EXE", matches: "invoice.pdf.exe"))
        XCTAssertTrue(AttachmentRule.glob("report-??.xls[mb]", matches: "report-07.xlsm"))
        XCTAssertFalse(AttachmentRule.glob("report-??.xls[mb]", matches: "report-07.xlsx"))
        XCTAssertFalse(AttachmentRule.glob("*.pdf.exe", matches: "invoice.pdf"))
    }

    func testMIMETypePatterns() {
        XCTAssertTrue(AttachmentRule.mimeType("application/zip", matches: "application/*"))
        XCTAssertFalse(AttachmentRule.mimeType("applicationx/zip", matches: "application/*"))
        XCTAssertTrue(AttachmentRule.mimeType("application/x-msdownload", matches: "application/x-msdownload"))
        XCTAssertFalse(AttachmentRule.mimeType("application/x-msdownload2", matches: "application/x-msdownload"))
    }

    func testMagicBytes() {
        XCTAssertEqual(FileKind.detect(Fixture.windowsExecutable), .windowsExecutable)
        // `MZ` alone (a text that starts with it, a truncated header) is no executable.
        XCTAssertNil(FileKind.detect(Array("MZ is where the story begins, and it goes on for a while longer than sixty-four bytes.".utf8)))
        XCTAssertNil(FileKind.detect([0x4d, 0x5a, 0x90, 0]))
        XCTAssertEqual(FileKind.detect(Fixture.elfExecutable), .elfExecutable)
        XCTAssertEqual(FileKind.detect([0x50, 0x4b, 3, 4, 20, 0]), .zip)
        XCTAssertEqual(FileKind.detect(Fixture.pdf), .pdf)
        XCTAssertEqual(FileKind.detect(Fixture.png), .png)
        XCTAssertEqual(FileKind.detect([0xff, 0xd8, 0xff, 0xe0]), .jpeg)
        XCTAssertEqual(FileKind.detect(Array("GIF89a...".utf8)), .gif)
        XCTAssertEqual(FileKind.detect([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1, 0]), .ole2)
        XCTAssertEqual(FileKind.detect(Array("Rar!\u{1a}\u{07}\u{01}\u{00}".utf8)), .rar)
        XCTAssertEqual(FileKind.detect([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c, 0, 4]), .sevenZip)
        XCTAssertEqual(FileKind.detect([0x1f, 0x8b, 8, 0]), .gzip)
        XCTAssertNil(FileKind.detect([UInt8]()))
        XCTAssertNil(FileKind.detect(Array("Hello.".utf8)))
    }

    func testMagicMismatchOnlyForExecutablesAndArchivesClaimingHarmlessTypes() {
        func mismatch(_ type: String?, _ name: String?, _ content: [UInt8]) -> MagicMismatch? {
            MagicMismatch.find(claims: ClaimedKind.claims(mimeType: type, extension: name.map(AttachmentName.init)?.finalExtension),
                               actual: FileKind.detect(content))
        }
        XCTAssertEqual(mismatch("image/png", "photo.png", Fixture.windowsExecutable), MagicMismatch(claimed: .image, actual: .windowsExecutable))
        XCTAssertEqual(mismatch("application/octet-stream", "invoice.pdf", Fixture.elfExecutable), MagicMismatch(claimed: .pdf, actual: .elfExecutable))
        XCTAssertEqual(mismatch("text/plain", nil, [0x50, 0x4b, 3, 4]), MagicMismatch(claimed: .text, actual: .zip))
        // Everyday mail: no mismatch.
        XCTAssertNil(mismatch("image/jpeg", "photo.jpg", Fixture.png), "a PNG named .jpg")
        XCTAssertNil(mismatch("application/octet-stream", "report.docx", [0x50, 0x4b, 3, 4]), "Office files are ZIPs")
        XCTAssertNil(mismatch("application/octet-stream", "setup.bin", Fixture.windowsExecutable), "claims nothing harmless")
        XCTAssertNil(mismatch("application/pdf", "a.pdf", Fixture.pdf))
        XCTAssertNil(mismatch("image/png", "a.png", Fixture.pdf), "a document for an image is not an executable")
    }

    func file(_ name: String?, type: String = "application/octet-stream", content: [UInt8] = Array("data".utf8)) -> InspectedFile {
        InspectedFile(location: .part(1), name: name, mimeType: type, content: content, complete: true, archiveLimits: ArchiveLimits())
    }

    func firstMatch(_ f: InspectedFile, _ rules: [AttachmentRule] = AttachmentRule.defaults) -> (String, String)? {
        for r in rules { if let why = r.match(f) { return (r.name, why) } }
        return nil
    }

    func testDefaultRules() throws {
        XCTAssertEqual(firstMatch(file("invoice.pdf.exe"))?.1, "executable file type")
        XCTAssertEqual(firstMatch(file("Setup.EXE . ."))?.0, "executables")
        XCTAssertEqual(firstMatch(file("shortcut.lnk"))?.0, "executables")
        XCTAssertEqual(firstMatch(file("disk.iso"))?.0, "executables")
        XCTAssertEqual(firstMatch(file(nil, type: "application/x-msdownload"))?.0, "executables", "by declared type without a name")
        XCTAssertEqual(firstMatch(file("statement.pdf.html"))?.1, "disguised file type (double extension)")
        XCTAssertEqual(firstMatch(file("photo.jpg.svg"))?.0, "disguised-web-pages")
        XCTAssertEqual(firstMatch(file("photo.png", type: "image/png", content: Fixture.windowsExecutable))?.1,
                       "content does not match its declared type (content is a Windows executable, not the image it claims to be)")
        // Ordinary attachments pass.
        for name in ["newsletter.html", "report.v2.pdf", "backup.tar.gz", "photo.jpg", "notes.txt", "README", "slides.pptx"] {
            XCTAssertNil(firstMatch(file(name)), name)
        }
        XCTAssertNil(firstMatch(file(nil, type: "text/plain")))
    }

    func testRuleOwnExplanationsWithoutAReason() {
        let rule = AttachmentRule(name: "custom", extensions: ["docm"], namePatterns: ["*.pdf.*"], mimeTypes: ["application/x-sh", "text/*"])
        XCTAssertEqual(rule.match(file("macro.docm")), "file type .docm not accepted")
        XCTAssertEqual(rule.match(file("x.pdf.txt")), "file name matches \"*.pdf.*\"")
        XCTAssertEqual(rule.match(file("x.bin", type: "application/x-sh")), "type application/x-sh not accepted")
        XCTAssertEqual(rule.match(file(nil, type: "text/x-script")), "type text/x-script not accepted")
        XCTAssertNil(rule.match(file("x.docx")))
        let double = AttachmentRule(name: "double", extensions: ["js"], doubleExtension: true)
        XCTAssertEqual(double.match(file("invoice.pdf.js")), "file type .js disguised as .pdf")
        XCTAssertNil(double.match(file("library.js")), "one extension is not a double one")
        XCTAssertNil(double.match(file("jquery.min.js")), "min is no document extension")
    }

    func testScopes() {
        var scope = RuleScope()
        XCTAssertTrue(scope.applies(sender: "a@b.example", recipients: ["c@d.example"], direction: .inbound), "no scope: everything")
        scope.senderDomains = ["partner.example"]
        XCTAssertTrue(scope.applies(sender: "x@partner.example", recipients: [], direction: .inbound))
        XCTAssertTrue(scope.applies(sender: "x@MAIL.Partner.example", recipients: [], direction: .inbound), "subdomains")
        XCTAssertFalse(scope.applies(sender: "x@notpartner.example", recipients: [], direction: .inbound))
        XCTAssertFalse(scope.applies(sender: "", recipients: [], direction: .inbound), "the null sender has no domain")
        scope.senders = ["boss@else.example"]
        XCTAssertTrue(scope.applies(sender: "Boss@else.example", recipients: [], direction: .inbound), "senders or sender_domains")
        scope = RuleScope(recipients: ["it@example.org"], recipientDomains: ["lab.example.org"])
        XCTAssertTrue(scope.applies(sender: "x@y", recipients: ["a@example.org", "it@example.org"], direction: .inbound), "any recipient")
        XCTAssertTrue(scope.applies(sender: "x@y", recipients: ["a@lab.example.org"], direction: .inbound))
        XCTAssertFalse(scope.applies(sender: "x@y", recipients: ["a@example.org"], direction: .inbound))
        scope = RuleScope(directions: [.outbound])
        XCTAssertFalse(scope.applies(sender: "x@y", recipients: [], direction: .inbound))
        XCTAssertTrue(scope.applies(sender: "x@y", recipients: [], direction: .outbound))
    }

    func testFirstMatchingRuleDecidesAndAllowExempts() {
        let settings = AttachmentSettings(rules: [
            AttachmentRule(name: "it-may", extensions: ["exe"], scope: RuleScope(recipients: ["it@example.org"]), action: .allow),
            AttachmentRule(name: "strip-exe", extensions: ["exe"], action: .remove),
        ] + AttachmentRule.defaults)
        let inspector = Fixture.inspector(settings)
        let exe = file("tool.exe")
        XCTAssertEqual(inspector.judge([exe], sender: "a@b", recipients: ["x@example.org"], direction: .inbound).map(\.rule), ["strip-exe"])
        XCTAssertEqual(inspector.judge([exe], sender: "a@b", recipients: ["it@example.org"], direction: .inbound), [], "allowed")
        XCTAssertEqual(inspector.judge([file("a.scr")], sender: "a@b", recipients: ["x@example.org"], direction: .inbound).map(\.action), [.reject])
    }

    func config(_ values: [String: ConfigValue]) -> ConfigSection {
        let schema = FilterAttachmentsRegistration.registration.manifest.config
        XCTAssertEqual(schema.validate(values), [], "the schema accepts it")
        return ConfigSection(schema.applyingDefaults(to: values))
    }

    func testSettingsFromConfig() throws {
        let defaults = try FilterAttachmentsRegistration.settings(config([:]))
        XCTAssertEqual(defaults.rules, AttachmentRule.defaults, "no rules: the built-in ones")
        XCTAssertEqual(defaults.unreadableArchiveAction, .quarantine)
        XCTAssertEqual(defaults.archiveLimits, ArchiveLimits(maxDepth: 2, maxNestedBytes: 16 << 20))
        XCTAssertEqual(defaults.headerName, "X-Postern-Attachments")

        let own = try FilterAttachmentsRegistration.settings(config([
            "rules": .array([.table([
                "name": .string("strip"), "extensions": .array([.string(".EXE"), .string("scr")]),
                "mime_types": .array([.string("Application/*")]), "action": .string("remove"),
                "sender_domains": .array([.string("@Partner.example")]), "directions": .array([.string("inbound")]),
            ]), .table(["zip_member_extensions": .array([.string("js")]), "reason": .string("scripts in archives")])]),
            "unreadable_archive_action": .string("reject"), "max_archive_depth": .integer(3), "header": .string(""),
        ]))
        XCTAssertEqual(own.rules.map(\.name), ["strip", "rule-2"], "own rules only")
        XCTAssertEqual(own.rules[0].extensions, ["exe", "scr"])
        XCTAssertEqual(own.rules[0].mimeTypes, ["application/*"])
        XCTAssertEqual(own.rules[0].action, .remove)
        XCTAssertEqual(own.rules[0].scope.senderDomains, ["partner.example"])
        XCTAssertEqual(own.rules[0].scope.directions, [.inbound])
        XCTAssertEqual(own.rules[1].action, .reject)
        XCTAssertEqual(own.rules[1].reason, "scripts in archives")
        XCTAssertEqual(own.unreadableArchiveAction, .reject)
        XCTAssertEqual(own.archiveLimits.maxDepth, 3)
        XCTAssertEqual(own.headerName, "")

        let both = try FilterAttachmentsRegistration.settings(config([
            "rules": .array([.table(["name": .string("mine"), "extensions": .array([.string("docm")])])]), "default_rules": .boolean(true),
        ]))
        XCTAssertEqual(both.rules.map(\.name), ["mine"] + AttachmentRule.defaults.map(\.name))
    }

    func testConfigErrorsSayWhatToFix() {
        func error(_ values: [String: ConfigValue]) -> String {
            do {
                _ = try FilterAttachmentsRegistration.settings(ConfigSection(values))
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertEqual(error(["rules": .array([.table(["name": .string("empty"), "action": .string("remove")])])]),
                       "filter-attachments rule 'empty': give at least one of extensions, name_patterns, mime_types, magic_mismatch = true or zip_member_extensions")
        XCTAssertEqual(error(["rules": .array([.table(["mime_types": .array([.string("exe")])])])]),
                       "filter-attachments rule 'rule-1': mime_types entry 'exe' is not type/subtype or type/*")
        XCTAssertEqual(error(["rules": .array([.table(["name": .string("a"), "extensions": .array([.string("exe")])]),
                                               .table(["name": .string("a"), "extensions": .array([.string("scr")])])])]),
                       "filter-attachments: two rules are named 'a'; give each its own name")
        XCTAssertEqual(error(["rules": .array([.table(["double_extension": .boolean(true), "name_patterns": .array([.string("*.x")])])])]),
                       "filter-attachments rule 'rule-1': double_extension = true needs the extensions it applies to")
        XCTAssertEqual(error(["header": .string("X-Bad: header")]),
                       "filter-attachments: header 'X-Bad: header' is not a header field name (printable ASCII, no colon or space)")
        let schema = FilterAttachmentsRegistration.registration.manifest.config
        XCTAssertFalse(schema.validate(["rules": .array([.table(["extensions": .array([.string("exe")]), "action": .string("delete")])])]).isEmpty,
                       "an unknown action is a schema error")
    }
}
