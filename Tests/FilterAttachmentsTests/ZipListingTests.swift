@testable import PosternFilterAttachmentsCore
import XCTest

/// ZIP member names listed with ZIPFoundation from archives built here, nested, encrypted, broken.
final class ZipListingTests: XCTestCase {
    func testMembersOfAStoredAndADeflatedArchive() throws {
        for compressed in [false, true] {
            let zip = try Fixture.zip([("docs/readme.txt", Array("read me".utf8)), ("Run.EXE", Fixture.windowsExecutable)], compressed: compressed)
            let listing = ZipListing.list(zip)
            XCTAssertEqual(listing.members, ["docs/readme.txt", "Run.EXE"])
            XCTAssertNil(listing.unreadable)
        }
    }

    func testNestedArchiveIsListedOneLevelDeep() throws {
        let inner = try Fixture.zip([("evil.scr", Fixture.windowsExecutable)])
        let middle = try Fixture.zip([("photos/inner.zip", inner), ("a.txt", Array("a".utf8))])
        let outer = try Fixture.zip([("middle.zip", middle)])
        let two = ZipListing.list(middle)
        XCTAssertEqual(two.members, ["photos/inner.zip", "photos/inner.zip/evil.scr", "a.txt"])
        XCTAssertNil(two.unreadable)
        // One level more than allowed: listed as far as allowed, and the rest reported.
        let three = ZipListing.list(outer)
        XCTAssertEqual(three.members, ["middle.zip", "middle.zip/photos/inner.zip", "middle.zip/a.txt"])
        XCTAssertEqual(three.unreadable, "middle.zip/photos/inner.zip is nested deeper than 2 levels")
        XCTAssertEqual(ZipListing.list(outer, maxDepth: 3).members,
                       ["middle.zip", "middle.zip/photos/inner.zip", "middle.zip/photos/inner.zip/evil.scr", "middle.zip/a.txt"])
        XCTAssertNil(ZipListing.list(outer, maxDepth: 3).unreadable)
        XCTAssertEqual(ZipListing.list(middle, maxNestedBytes: 10).unreadable, "photos/inner.zip is bigger than 10 bytes")
    }

    func testEncryptedArchiveIsUnreadableButItsNamesAreListed() throws {
        let zip = Fixture.markedEncrypted(try Fixture.zip([("secret/run.exe", Fixture.windowsExecutable)], compressed: false))
        let directory = try XCTUnwrap(ZipCentralDirectory(zip))
        XCTAssertEqual(directory.names, ["secret/run.exe"])
        XCTAssertTrue(directory.hasEncryptedMember)
        XCTAssertEqual(ZipCentralDirectory(try Fixture.zip([("a.txt", [1])]))?.hasEncryptedMember, false)
        XCTAssertNil(ZipCentralDirectory(Array("PK\u{5}\u{6} too short".utf8)))
        let listing = ZipListing.list(zip)
        XCTAssertEqual(listing.members, ["secret/run.exe"])
        XCTAssertEqual(listing.unreadable, "archive has encrypted members")
        // Encrypted after a plain member (ZIPFoundation would list the first only), and nested.
        let mixed = try Fixture.zip([("a.txt", [65]), ("b.exe", Fixture.windowsExecutable)], compressed: false)
        var second = mixed
        let central = try XCTUnwrap((0..<(second.count - 4)).last { second[$0] == 0x50 && second[$0 + 1] == 0x4b && second[$0 + 2] == 1 && second[$0 + 3] == 2 })
        second[central + 8] |= 1
        XCTAssertEqual(ZipListing.list(second).members, ["a.txt", "b.exe"])
        XCTAssertEqual(ZipListing.list(second).unreadable, "archive has encrypted members")
        let outer = try Fixture.zip([("in/locked.zip", zip)])
        XCTAssertEqual(ZipListing.list(outer).members, ["in/locked.zip", "in/locked.zip/secret/run.exe"])
        XCTAssertEqual(ZipListing.list(outer).unreadable, "in/locked.zip has encrypted members")
    }

    func testBrokenArchives() throws {
        XCTAssertEqual(ZipListing.list(Array("not a zip at all".utf8)).unreadable, "archive is not a readable ZIP archive")
        XCTAssertEqual(ZipListing.list([]).unreadable, "archive is not a readable ZIP archive")
        let zip = try Fixture.zip([("a.txt", Array(repeating: 65, count: 500))])
        // Cut in the middle: the end of central directory record is gone.
        let cut = ZipListing.list(Array(zip.prefix(zip.count / 2)))
        XCTAssertEqual(cut.members, [])
        XCTAssertEqual(cut.unreadable, "archive is not a readable ZIP archive")
        // A nested member whose bytes are garbage.
        let outer = try Fixture.zip([("inner.zip", Array("PK\u{3}\u{4}garbage".utf8))])
        XCTAssertEqual(ZipListing.list(outer).unreadable, "inner.zip is not a readable ZIP archive")
    }

    func testZipAttachmentsAgainstTheRules() throws {
        let rule = AttachmentRule.defaults.first { $0.name == "archived-executables" }!
        func file(_ zip: [UInt8], name: String = "files.zip") -> InspectedFile {
            InspectedFile(location: .part(1), name: name, mimeType: "application/zip", content: zip, complete: true, archiveLimits: ArchiveLimits())
        }
        let bad = try Fixture.zip([("readme.txt", [65]), ("tools/Setup.exe ", Fixture.windowsExecutable)])
        XCTAssertEqual(rule.match(file(bad)), "executable file type in archive (member tools/Setup.exe )")
        let nested = try Fixture.zip([("inner.zip", try Fixture.zip([("x.js", Array("alert(1)".utf8))]))])
        XCTAssertEqual(rule.match(file(nested)), "executable file type in archive (member inner.zip/x.js)")
        XCTAssertNil(rule.match(file(try Fixture.zip([("report.pdf", Fixture.pdf)]))))
        // A ZIP under another name is still listed: its content says ZIP.
        XCTAssertNotNil(rule.match(file(bad, name: "holiday.dat")))
        // Claims to be a ZIP, is not one: unreadable.
        XCTAssertEqual(file(Fixture.pdf).zip?.unreadable, "archive is not a readable ZIP archive")
        XCTAssertNil(InspectedFile(location: .part(1), name: "a.pdf", mimeType: "application/pdf", content: Fixture.pdf,
                                   complete: true, archiveLimits: ArchiveLimits()).zip, "no ZIP, no listing")
    }
}
