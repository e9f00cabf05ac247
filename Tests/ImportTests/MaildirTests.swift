import Foundation
import PosternTestSupport
import PosternHost
import PosternImport
import XCTest

/// The Maildir++ reader as pure functions over listings and file bytes.
final class MaildirTests: XCTestCase {
    func testMailboxNames() {
        XCTAssertEqual(Maildir.mailboxName(directory: ""), "INBOX")
        XCTAssertEqual(Maildir.mailboxName(directory: ".Sent"), "Sent")
        XCTAssertEqual(Maildir.mailboxName(directory: ".Archive.2024"), "Archive/2024")
        XCTAssertEqual(Maildir.mailboxName(directory: ".Entw&APw-rfe"), "Entwürfe")
        XCTAssertEqual(Maildir.mailboxName(directory: ".A&-B"), "A&B")
        XCTAssertEqual(Maildir.mailboxName(directory: ".&ZeVnLIqe-"), "日本語")
        XCTAssertNil(Maildir.mailboxName(directory: "."))
        XCTAssertNil(Maildir.mailboxName(directory: ".."))
        XCTAssertNil(Maildir.mailboxName(directory: ".a..b"))
        XCTAssertNil(Maildir.mailboxName(directory: ".bad&AP"))
        XCTAssertNil(Maildir.mailboxName(directory: "cur"))
    }

    func testFlags() {
        let keywords = Maildir.keywords(parsing: Array("0 $Label1\n1 Work\n\nbad line\n30 tooFar\n".utf8))
        XCTAssertEqual(keywords, [0: "$Label1", 1: "Work"])
        func f(_ name: String) -> [String] { Maildir.flags(fileName: name, keywords: keywords).flags }
        XCTAssertEqual(f("1700000000.M1P2.host,S=10,W=11:2,DFPRST"), ["\\Draft", "\\Flagged", "$Forwarded", "\\Answered", "\\Seen", "\\Deleted"])
        XCTAssertEqual(f("1700000000.M1P2.host:2,Sab"), ["\\Seen", "$Label1", "Work"])
        XCTAssertEqual(f("1700000000.M1P2.host"), [])            // no info: no flags
        XCTAssertEqual(f("1700000000.M1P2.host:2,"), [])
        XCTAssertEqual(f("1700000000.M1P2.host:1,experimental"), [])
        XCTAssertEqual(Maildir.flags(fileName: "x:2,Sc", keywords: keywords).unknown, ["c"])
        XCTAssertEqual(Maildir.baseName("1700000000.M1P2.host,S=10:2,S"), "1700000000.M1P2.host,S=10")
    }

    func testUIDList() {
        let v3 = Maildir.uids(parsing: Array("""
            3 V1700000000 N4 G3085f01b7f11094c501100008c4a11c1
            1 :1700000002.M1P1.host,S=10,W=11
            2 W123 S120 :1700000001.M2P1.host,S=120
            3 :1700000003.M3P1.host,S=5:2,S
            """.utf8))
        XCTAssertEqual(v3, ["1700000002.M1P1.host,S=10,W=11": 1, "1700000001.M2P1.host,S=120": 2, "1700000003.M3P1.host,S=5": 3])
        XCTAssertEqual(Maildir.uids(parsing: Array("1 1700000000 3\n7 abc.host\n".utf8)), ["abc.host": 7])
        XCTAssertEqual(Maildir.uids(parsing: []), [:])
    }

    func testPlanOrdersByUIDListThenByName() {
        let uidlist = Array("3 V1 N4\n1 :200.b\n2 :100.a\n".utf8)
        let (folders, problems) = Maildir.plan([
            .init(directory: ".Sent", cur: ["1000.x:2,S", "999.y:2,"], new: []),
            .init(directory: "", cur: ["100.a:2,S", ".hidden", "200.b:2,RS"], new: ["300.c", "250.d"], uidlist: uidlist),
        ])
        XCTAssertEqual(problems, [])
        XCTAssertEqual(folders.map(\.name), ["INBOX", "Sent"])
        XCTAssertEqual(folders[0].messages, [
            .init(path: "cur/200.b:2,RS", flags: ["\\Answered", "\\Seen"]),
            .init(path: "cur/100.a:2,S", flags: ["\\Seen"]),
            .init(path: "new/250.d", flags: []),   // not in the uidlist yet: after, by name
            .init(path: "new/300.c", flags: []),
        ])
        // Without a uidlist, by the leading time as a number.
        XCTAssertEqual(folders[1].messages.map(\.path), [".Sent/cur/999.y:2,", ".Sent/cur/1000.x:2,S"])
    }

    func testMalformedTrees() {
        let (folders, problems) = Maildir.plan([
            .init(directory: "", cur: nil, new: ["1.a,S=42"]),
            .init(directory: ".Empty", cur: nil, new: nil),
            .init(directory: ".bad..name", cur: [], new: []),
            .init(directory: ".Keywords", cur: ["1.a:2,Sz"], new: []),
            .init(directory: ".Archive.2024", cur: [], new: nil),
        ])
        XCTAssertEqual(folders.map(\.name), ["INBOX", "Archive/2024", "Keywords"])
        XCTAssertEqual(folders[0].messages, [.init(path: "new/1.a,S=42", flags: [], expectedSize: 42)])
        XCTAssertEqual(folders[0].problems, ["INBOX (top directory): no cur/ directory; imported new/ only"])
        XCTAssertEqual(folders[1].problems, [".Archive.2024: no new/ directory; imported cur/ only"])
        XCTAssertEqual(folders[2].messages, [.init(path: ".Keywords/cur/1.a:2,Sz", flags: ["\\Seen"])])
        XCTAssertEqual(folders[2].problems, [".Keywords/cur/1.a:2,Sz: keyword letter(s) z not in dovecot-keywords, dropped"])
        XCTAssertEqual(problems, [".Empty: no cur/ or new/, not a maildir folder, skipped", ".bad..name: not a Maildir++ folder name, skipped"])
    }
}
