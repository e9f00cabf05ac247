import PosternTestSupport
import PluginAPI
import XCTest
@testable import PosternIMAPCore

/// Every command, well formed, fed whole and byte by byte, to its exact typed value.
final class CommandTests: XCTestCase {
    func testRFC3501Section8ClientTranscript() {
        let session = "a001 login mrc secret\r\na002 select inbox\r\na003 fetch 12 full\r\na004 fetch 12 body[header]\r\n"
            + "a005 store 12 +flags \\deleted\r\na006 logout\r\n"
        XCTAssertEqual(events(session), [
            .command(IMAPTaggedCommand(tag: "a001", command: .login(user: "mrc", password: "secret"))),
            .command(IMAPTaggedCommand(tag: "a002", command: .select("INBOX", IMAPSelectParameters()))),
            .command(IMAPTaggedCommand(tag: "a003", command: .fetch(IMAPFetchCommand(set: set("12"), attributes: IMAPFetchAttribute.fullMacro)))),
            .command(IMAPTaggedCommand(tag: "a004", command: .fetch(IMAPFetchCommand(set: set("12"), attributes: [.body(IMAPBodySection(.header), partial: nil, peek: false)])))),
            .command(IMAPTaggedCommand(tag: "a005", command: .store(IMAPStoreCommand(set: set("12"), operation: .add, flags: [.deleted])))),
            .command(IMAPTaggedCommand(tag: "a006", command: .logout)),
        ])
        XCTAssertEqual(IMAPSequenceSet("2,4:*"), set("2,4:*"))
        XCTAssertNil(IMAPSequenceSet("0"))
    }

    func testCommandsWithoutArguments() {
        assertCommand("a1 CAPABILITY\r\n", .capability)
        assertCommand("a1 noop\r\n", .noop)
        assertCommand("a1 LOGOUT\r\n", .logout)
        assertCommand("a1 STARTTLS\r\n", .startTLS)
        assertCommand("a1 NAMESPACE\r\n", .namespace)
        assertCommand("a1 CHECK\r\n", .check)
        assertCommand("a1 CLOSE\r\n", .close)
        assertCommand("a1 UNSELECT\r\n", .unselect)
        assertCommand("a1 EXPUNGE\r\n", .expunge)
        assertCommand("a1 IDLE\r\n", .idle)
    }

    func testTagsMayHoldAnyAStringCharacterButPlus() {
        assertCommand("A.0001]x NOOP\r\n", .noop, tag: "A.0001]x")
        assertCommand("1 NOOP\r\n", .noop, tag: "1")
    }

    func testLogin() {
        assertCommand("a1 LOGIN SMITH SESAME\r\n", .login(user: "SMITH", password: "SESAME"))
        assertCommand("a1 LOGIN \"fred\" \"p a\\\"s\\\\s\"\r\n", .login(user: "fred", password: "p a\"s\\s"))
        // A literal password with 8-bit UTF-8 and a space; a synchronizing literal asks for "+".
        // 8-bit in an atom is refused before the continuation; a client sending the literal
        // anyway sees it read as a command.
        XCTAssertEqual(transcript(events("a1 LOGIN jürgen {7}\r\npäss w\r\n")),
                       ["a1 BAD 8-bit characters are not allowed here (expected a space before a password)\r\n",
                        "* BAD Invalid characters in tag\r\n"])
        XCTAssertEqual(events("a1 LOGIN {7}\r\njürgen {7}\r\npäss w\r\n"),
                       [.continuationRequest, .continuationRequest,
                        .command(IMAPTaggedCommand(tag: "a1", command: .login(user: "jürgen", password: "päss w")))])
        assertCommand("a1 LOGIN {4+}\r\nuser {2+}\r\npw\r\n", .login(user: "user", password: "pw"))
    }

    func testAuthenticateWithAndWithoutInitialResponse() {
        assertCommand("a1 AUTHENTICATE plain\r\n", .authenticate(mechanism: "PLAIN", initialResponse: nil))
        assertCommand("a1 AUTHENTICATE PLAIN AHVzZXIAcGVuY2ls\r\n", .authenticate(mechanism: "PLAIN", initialResponse: b("\0user\0pencil")))
        assertCommand("a1 AUTHENTICATE EXTERNAL =\r\n", .authenticate(mechanism: "EXTERNAL", initialResponse: []))
        assertRefused("a1 AUTHENTICATE PLAIN AHVzZXIAcGVuY2l*\r\n", "a1 BAD Invalid base64 in the initial response\r\n")
        assertRefused("a1 AUTHENTICATE PLAIN AHV=ZXIA\r\n", "a1 BAD Invalid base64 in the initial response\r\n")
    }

    func testEnable() {
        assertCommand("a1 ENABLE CONDSTORE qresync UTF8=ACCEPT\r\n", .enable(["CONDSTORE", "QRESYNC", "UTF8=ACCEPT"]))
        assertRefused("a1 ENABLE\r\n", "a1 BAD Missing arguments for ENABLE (expected a capability name)\r\n")
    }

    func testSelectExamineWithCondstoreAndQresync() {
        assertCommand("a1 SELECT inbox\r\n", .select("INBOX", IMAPSelectParameters()))
        assertCommand("a1 EXAMINE \"Sent Items\"\r\n", .examine("Sent Items", IMAPSelectParameters()))
        assertCommand("a1 SELECT INBOX (CONDSTORE)\r\n", .select("INBOX", IMAPSelectParameters(condStore: true)))
        assertCommand("a1 SELECT INBOX (QRESYNC (67890007 20050715194045000))\r\n",
                      .select("INBOX", IMAPSelectParameters(qresync: IMAPQResyncParameters(uidValidity: 67890007, modSeq: 20050715194045000))))
        // RFC 7162 §3.2.5.2's example: known UIDs and sequence match data.
        assertCommand("a1 SELECT INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541 (1:10,15,20 41,43,50)))\r\n",
                      .select("INBOX", IMAPSelectParameters(qresync: IMAPQResyncParameters(
                        uidValidity: 67890007, modSeq: 90060115194045000, knownUIDs: set("41:211,214:541"),
                        knownSequenceSet: set("1:10,15,20"), knownUIDSet: set("41,43,50")))))
        assertCommand("a1 SELECT INBOX (QRESYNC (1 2 (1:2 7,9)))\r\n",
                      .select("INBOX", IMAPSelectParameters(qresync: IMAPQResyncParameters(
                        uidValidity: 1, modSeq: 2, knownSequenceSet: set("1:2"), knownUIDSet: set("7,9")))))
        assertRefused("a1 SELECT INBOX (QRESYNC (0 5))\r\n", "a1 BAD A UIDVALIDITY must not be 0\r\n")
        assertRefused("a1 SELECT INBOX (QRESYNC (1 5 1:*))\r\n", "a1 BAD Known UIDs must not contain * or $\r\n")
        assertRefused("a1 SELECT INBOX (FOO)\r\n", "a1 BAD Unknown select parameter FOO\r\n")
    }

    func testMailboxCommands() {
        assertCommand("a1 CREATE owatagusiam/\r\n", .create("owatagusiam/"))
        assertCommand("a1 DELETE blurdybloop\r\n", .delete("blurdybloop"))
        assertCommand("a1 RENAME blurdybloop sarasoop\r\n", .rename(from: "blurdybloop", to: "sarasoop"))
        assertCommand("a1 SUBSCRIBE #news.comp.mail.mime\r\n", .subscribe("#news.comp.mail.mime"))
        assertCommand("a1 UNSUBSCRIBE \"#news.comp.mail.mime\"\r\n", .unsubscribe("#news.comp.mail.mime"))
        assertCommand("a1 CREATE ~peter/mail/&U,BTFw-/&ZeVnLIqe-\r\n", .create("~peter/mail/台北/日本語"))
        assertCommand("a1 CREATE \"A &- B\"\r\n", .create("A & B"))
        assertRefused("a1 CREATE &Jjo\r\n", "a1 BAD Mailbox name is not valid modified UTF-7\r\n")
        assertRefused("a1 CREATE &AGE-\r\n", "a1 BAD Mailbox name is not valid modified UTF-7\r\n")
        // Under UTF8=ACCEPT names are UTF-8 and "&" is just a character.
        assertCommand("a1 CREATE \"Entwürfe & Co\"\r\n", .create("Entwürfe & Co"), options: IMAPParserOptions(utf8Accept: true))
        // Without it, UTF-8 in quotes is read (as Dovecot does) but is no modified UTF-7 name.
        assertRefused("a1 CREATE \"Entwürfe\"\r\n", "a1 BAD Mailbox name is not valid modified UTF-7\r\n")
        assertRefused("a1 CREATE {4+}\r\nxéy\r\n", "a1 BAD Mailbox name is not valid modified UTF-7\r\n")
    }

    func testInboxIsCaseInsensitiveOnlyAsAWholeName() {
        assertCommand("a1 SELECT InBoX\r\n", .select("INBOX", IMAPSelectParameters()))
        assertCommand("a1 SELECT {5}\r\niNbOx\r\n".replacingOccurrences(of: "{5}\r\n", with: "{5+}\r\n"), .select("INBOX", IMAPSelectParameters()))
        assertCommand("a1 SELECT inbox/Sub\r\n", .select("inbox/Sub", IMAPSelectParameters()))
    }

    func testListBasicAndExtended() {
        assertCommand("a1 LIST \"\" \"\"\r\n", .list(IMAPListCommand(reference: "", patterns: [""])))
        assertCommand("a1 LIST #news.comp.mail.misc %\r\n", .list(IMAPListCommand(reference: "#news.comp.mail.misc", patterns: ["%"])))
        assertCommand("a1 LIST ~/Mail/ *]x\r\n", .list(IMAPListCommand(reference: "~/Mail/", patterns: ["*]x"])))
        assertCommand("a1 LIST \"\" &ZeVnLIqe-/*\r\n", .list(IMAPListCommand(reference: "", patterns: ["日本語/*"])))
        assertCommand("a1 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"%\" INBOX*) RETURN (CHILDREN STATUS (MESSAGES UNSEEN) SPECIAL-USE)\r\n",
                      .list(IMAPListCommand(selectionOptions: [.subscribed, .recursiveMatch], reference: "", patterns: ["%", "INBOX*"],
                                            returnOptions: [.children, .status([.messages, .unseen]), .specialUse], isExtended: true)))
        assertCommand("a1 LIST () \"\" % RETURN ()\r\n", .list(IMAPListCommand(reference: "", patterns: ["%"], isExtended: true)))
        assertCommand("a1 LIST (SPECIAL-USE) \"\" *\r\n", .list(IMAPListCommand(selectionOptions: [.specialUse], reference: "", patterns: ["*"], isExtended: true)))
        assertCommand("a1 LIST \"\" % RETURN (SUBSCRIBED)\r\n", .list(IMAPListCommand(reference: "", patterns: ["%"], returnOptions: [.subscribed], isExtended: true)))
        assertRefused("a1 LIST (RECURSIVEMATCH) \"\" %\r\n", "a1 BAD RECURSIVEMATCH needs another selection option\r\n")
        assertRefused("a1 LIST (BOGUS) \"\" %\r\n", "a1 BAD Unknown LIST selection option BOGUS\r\n")
        assertRefused("a1 LIST \"\" % RETURN (BOGUS)\r\n", "a1 BAD Unknown LIST return option BOGUS\r\n")
        assertRefused("a1 LIST \"\"\r\n", "a1 BAD Missing arguments for LIST (expected a mailbox pattern)\r\n")
        assertRefused("a1 LIST \"\" % EXTRA\r\n", "a1 BAD Expected RETURN, found 'E'\r\n")
        assertCommand("a1 LSUB \"#news.\" \"comp.mail.*\"\r\n", .lsub(reference: "#news.", pattern: "comp.mail.*"))
    }

    func testStatus() {
        assertCommand("a1 STATUS blurdybloop (UIDNEXT MESSAGES)\r\n", .status("blurdybloop", [.uidNext, .messages]))
        assertCommand("a1 STATUS INBOX (messages recent uidnext uidvalidity unseen highestmodseq size deleted deleted-storage appendlimit)\r\n",
                      .status("INBOX", IMAPStatusAttribute.allCases))
        assertRefused("a1 STATUS INBOX (MESSAGES BOGUS)\r\n", "a1 BAD Unknown status item BOGUS\r\n")
        assertRefused("a1 STATUS INBOX ()\r\n", "a1 BAD Expected a status item, found ')'\r\n")
        assertRefused("a1 STATUS INBOX\r\n", "a1 BAD Missing arguments for STATUS (expected status items)\r\n")
    }

    func testAppendWithFlagsDateAndLiteral() {
        // RFC 3501 §6.3.11's example.
        let message = "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\nFrom: Fred Foobar <foobar@Blurdybloop.COM>\r\nSubject: afternoon meeting\r\n\r\nHello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
        let input = "A003 APPEND saved-messages (\\Seen) {\(message.utf8.count)}\r\n\(message)\r\n"
        XCTAssertEqual(events(input), [.continuationRequest, .command(IMAPTaggedCommand(tag: "A003", command: .append(IMAPAppendCommand(
            mailbox: "saved-messages", messages: [IMAPAppendMessage(flags: [.seen], data: b(message))]))))])

        let when = IMAPDateTime(date: date(1996, 7, 17), hour: 2, minute: 44, second: 25, zoneMinutes: -420)!
        assertCommand("a1 APPEND INBOX (\\seen $Forwarded) \"17-Jul-1996 02:44:25 -0700\" {3+}\r\nabc\r\n",
                      .append(IMAPAppendCommand(mailbox: "INBOX", messages: [IMAPAppendMessage(flags: [.seen, IMAPFlag("$Forwarded")], internalDate: when, data: b("abc"))])))
        assertCommand("a1 APPEND INBOX \" 7-Jul-1996 02:44:25 +0000\" {0+}\r\n\r\n",
                      .append(IMAPAppendCommand(mailbox: "INBOX", messages: [IMAPAppendMessage(
                        internalDate: IMAPDateTime(date: date(1996, 7, 7), hour: 2, minute: 44, second: 25, zoneMinutes: 0)!, data: [])])))
        assertCommand("a1 APPEND INBOX () {3+}\r\nabc\r\n", .append(IMAPAppendCommand(mailbox: "INBOX", messages: [IMAPAppendMessage(data: b("abc"))])))
        // The mailbox as a literal: the first literal is a string, the second the message.
        XCTAssertEqual(events("a1 APPEND {5}\r\nINBOX {2}\r\nhi\r\n"), [.continuationRequest, .continuationRequest,
            .command(IMAPTaggedCommand(tag: "a1", command: .append(IMAPAppendCommand(mailbox: "INBOX", messages: [IMAPAppendMessage(data: b("hi"))]))))])
        // NUL bytes are allowed in a message (not in other literals).
        assertCommand("a1 APPEND INBOX {3+}\r\na\0b\r\n", .append(IMAPAppendCommand(mailbox: "INBOX", messages: [IMAPAppendMessage(data: b("a\0b"))])))
    }

    func testMultiappendBinaryAndUTF8Forms() {
        assertCommand("a1 APPEND INBOX (\\Draft) {2+}\r\nm1 \"01-Jan-2020 00:00:00 +0100\" {2+}\r\nm2 {2+}\r\nm3\r\n",
                      .append(IMAPAppendCommand(mailbox: "INBOX", messages: [
                        IMAPAppendMessage(flags: [.draft], data: b("m1")),
                        IMAPAppendMessage(internalDate: IMAPDateTime(date: date(2020, 1, 1), hour: 0, minute: 0, second: 0, zoneMinutes: 60)!, data: b("m2")),
                        IMAPAppendMessage(data: b("m3")),
                      ])))
        assertCommand("a1 APPEND INBOX ~{3+}\r\n\0\u{1}\u{2}\r\n", .append(IMAPAppendCommand(mailbox: "INBOX", messages: [IMAPAppendMessage(data: [0, 1, 2], isBinary: true)])))
        assertCommand("a1 APPEND INBOX UTF8 (~{2+}\r\nhi)\r\n", .append(IMAPAppendCommand(mailbox: "INBOX", messages: [IMAPAppendMessage(data: b("hi"), isBinary: true, isUTF8: true)])))
        assertRefused("a1 APPEND INBOX CATENATE (URL \"/x\")\r\n", "a1 BAD CATENATE is not supported\r\n")
        assertRefused("a1 APPEND INBOX \"abc\"\r\n", "a1 BAD Invalid date-time \"abc\"\r\n")
        assertRefused("a1 APPEND INBOX (\\Recent) {1+}\r\nx\r\n", "a1 BAD \\Recent cannot be set\r\n")
        assertRefused("a1 APPEND INBOX (\\Bogus) {1+}\r\nx\r\n", "a1 BAD Unknown system flag \\Bogus\r\n")
        assertRefused("a1 APPEND INBOX\r\n", "a1 BAD Missing arguments for APPEND (expected a message)\r\n")
        assertRefused("a1 APPEND INBOX {1+}\r\nxjunk\r\n", "a1 BAD Expected a space before a message, found 'j'\r\n")
    }

    func testID() {
        assertCommand("a1 ID NIL\r\n", .id(nil))
        assertCommand("a1 ID (\"name\" \"sodr\" \"version\" \"19.34\" \"vendor\" NIL)\r\n",
                      .id([IMAPIDField("name", "sodr"), IMAPIDField("version", "19.34"), IMAPIDField("vendor", nil)]))
        let many = (1...31).map { "\"k\($0)\" \"v\"" }.joined(separator: " ")
        assertRefused("a1 ID (\(many))\r\n", "a1 BAD Too many ID fields (at most 30)\r\n")
        assertRefused("a1 ID (\"\(String(repeating: "k", count: 31))\" \"v\")\r\n", "a1 BAD ID field too long\r\n")
        assertRefused("a1 ID ()\r\n", "a1 BAD Expected a field name, found ')'\r\n")
    }

    func testQuotaCommands() {
        assertCommand("a1 GETQUOTA \"\"\r\n", .getQuota(root: ""))
        assertCommand("a1 GETQUOTAROOT INBOX\r\n", .getQuotaRoot("INBOX"))
        assertCommand("a1 SETQUOTA \"\" (STORAGE 512 message 1000)\r\n", .setQuota(root: "", limits: [IMAPQuotaLimit("STORAGE", 512), IMAPQuotaLimit("MESSAGE", 1000)]))
        assertCommand("a1 SETQUOTA \"\" ()\r\n", .setQuota(root: "", limits: []))
        assertRefused("a1 SETQUOTA \"\" (STORAGE)\r\n", "a1 BAD Expected a space before a limit, found ')'\r\n")
    }

    func testACLCommands() {
        assertCommand("a1 SETACL INBOX/Drafts John lrQswicda\r\n", .setACL(mailbox: "INBOX/Drafts", identifier: "John", rights: IMAPRightsModification(.replace, "lrQswicda")))
        assertCommand("a1 SETACL INBOX Fred +rwi\r\n", .setACL(mailbox: "INBOX", identifier: "Fred", rights: IMAPRightsModification(.add, "rwi")))
        assertCommand("a1 SETACL INBOX Fred \"-w\"\r\n", .setACL(mailbox: "INBOX", identifier: "Fred", rights: IMAPRightsModification(.remove, "w")))
        assertCommand("a1 DELETEACL INBOX -Fred\r\n", .deleteACL(mailbox: "INBOX", identifier: "-Fred"))
        assertCommand("a1 GETACL INBOX\r\n", .getACL("INBOX"))
        assertCommand("a1 LISTRIGHTS ~/Mail/saved smith\r\n", .listRights(mailbox: "~/Mail/saved", identifier: "smith"))
        assertCommand("a1 MYRIGHTS INBOX\r\n", .myRights("INBOX"))
        assertRefused("a1 SETACL INBOX Fred\r\n", "a1 BAD Missing arguments for SETACL (expected rights)\r\n")
    }

    func testCompress() {
        assertCommand("a1 COMPRESS deflate\r\n", .compress(mechanism: "DEFLATE"))
        assertRefused("a1 COMPRESS\r\n", "a1 BAD Missing arguments for COMPRESS (expected a compression mechanism)\r\n")
    }

    func testCopyMoveAndUIDForms() {
        assertCommand("a1 COPY 2:4 MEETING\r\n", .copy(set("2:4"), mailbox: "MEETING", byUID: false))
        assertCommand("a1 UID COPY 4827313:4828442 MEETING\r\n", .copy(set("4827313:4828442"), mailbox: "MEETING", byUID: true))
        assertCommand("a1 MOVE 1:* Archive\r\n", .move(set("1:*"), mailbox: "Archive", byUID: false))
        assertCommand("a1 uid move 42 Trash\r\n", .move(set("42"), mailbox: "Trash", byUID: true))
        assertCommand("a1 UID EXPUNGE 3000:3002\r\n", .uidExpunge(set("3000:3002")))
        assertCommand("a1 COPY $ Archive\r\n", .copy(.savedResult, mailbox: "Archive", byUID: false))
        assertRefused("a1 UID BOGUS 1\r\n", "a1 BAD Unknown command UID BOGUS\r\n")
        assertRefused("a1 UID\r\n", "a1 BAD Missing arguments for UID (expected a UID command)\r\n")
        assertRefused("a1 COPY 1:2\r\n", "a1 BAD Missing arguments for COPY (expected a mailbox name)\r\n")
    }

    func testStore() {
        assertCommand("A003 STORE 2:4 +FLAGS (\\Deleted)\r\n", .store(IMAPStoreCommand(set: set("2:4"), operation: .add, flags: [.deleted])), tag: "A003")
        assertCommand("a1 STORE 1 -FLAGS.SILENT \\Seen $Junk\r\n", .store(IMAPStoreCommand(set: set("1"), operation: .remove, silent: true, flags: [.seen, IMAPFlag("$Junk")])))
        assertCommand("a1 UID STORE 1:* FLAGS ()\r\n", .store(IMAPStoreCommand(set: set("1:*"), operation: .replace, flags: [], byUID: true)))
        assertCommand("a1 STORE 1 (UNCHANGEDSINCE 12345) flags.silent (\\ANSWERED)\r\n",
                      .store(IMAPStoreCommand(set: set("1"), unchangedSince: 12345, operation: .replace, silent: true, flags: [.answered])))
        assertRefused("a1 STORE 1 +FLAGZ (\\Seen)\r\n", "a1 BAD Unknown STORE item FLAGZ\r\n")
        assertRefused("a1 STORE 1 (CHANGEDSINCE 1) FLAGS ()\r\n", "a1 BAD Unknown STORE modifier CHANGEDSINCE\r\n")
        assertRefused("a1 STORE 1 FLAGS (\\Seen\r\n", "a1 BAD Missing ')'\r\n")
        assertRefused("a1 STORE 1 FLAGS (\\Seen]\r\n", "a1 BAD Expected ')' or a space before a flag, found ']'\r\n")
        assertRefused("a1 STORE 1 FLAGS\r\n", "a1 BAD Missing arguments for STORE (expected flags)\r\n")
    }

    func testCommandNamesAreCaseInsensitive() {
        assertCommand("a1 CaPaBiLiTy\r\n", .capability)
        assertCommand("a1 uid fetch 1 uid\r\n", .fetch(IMAPFetchCommand(set: set("1"), attributes: [.uid], byUID: true)))
    }

    func testRequiredStates() {
        XCTAssertEqual(IMAPCommand.noop.requiredState, .any)
        XCTAssertEqual(IMAPCommand.login(user: "a", password: "b").requiredState, .notAuthenticated)
        XCTAssertEqual(IMAPCommand.create("x").requiredState, .authenticated)
        XCTAssertEqual(IMAPCommand.uidExpunge(set("1")).requiredState, .selected)
        XCTAssertEqual(IMAPCommand.copy(set("1"), mailbox: "x", byUID: true).name, "UID COPY")
    }

    /// Every command the parser produces has its row in IMAPCommandTable (a missing row would stop
    /// the session), and the table says which answers may carry EXPUNGE (RFC 3501 §7.4.1).
    func testCommandTableCoversEveryCommand() {
        let lines = [
            "CAPABILITY", "NOOP", "LOGOUT", "ID NIL", "STARTTLS", "AUTHENTICATE PLAIN", "LOGIN a b", "ENABLE CONDSTORE",
            "SELECT INBOX", "EXAMINE INBOX", "CREATE x", "DELETE x", "RENAME x y", "SUBSCRIBE x", "UNSUBSCRIBE x",
            "LIST \"\" *", "LSUB \"\" *", "NAMESPACE", "STATUS INBOX (MESSAGES)", "APPEND x {1+}\r\nm", "IDLE",
            "GETQUOTA \"\"", "GETQUOTAROOT INBOX", "SETQUOTA \"\" (STORAGE 1)", "SETACL x bob lr", "DELETEACL x bob",
            "GETACL x", "LISTRIGHTS x bob", "MYRIGHTS x", "COMPRESS DEFLATE", "CHECK", "CLOSE", "UNSELECT", "EXPUNGE",
            "UID EXPUNGE 1", "SEARCH ALL", "UID SEARCH ALL", "SORT (DATE) UTF-8 ALL", "UID SORT (DATE) UTF-8 ALL", "FETCH 1 FLAGS", "UID FETCH 1 FLAGS",
            "STORE 1 FLAGS (\\Seen)", "UID STORE 1 FLAGS (\\Seen)", "COPY 1 x", "UID COPY 1 x", "MOVE 1 x", "UID MOVE 1 x",
        ]
        var names = Set<String>()
        for line in lines {
            for case .command(let tagged) in events("a1 \(line)\r\n") {
                XCTAssertNotNil(IMAPCommandTable.rows[tagged.command.name], "no row for \(tagged.command.name)")
                names.insert(tagged.command.name)
            }
        }
        XCTAssertEqual(names, Set(IMAPCommandTable.rows.keys), "each row is a command the parser knows, and each parsed command has one")
        XCTAssertFalse(IMAPCommandTable.rows["FETCH"]!.expungeResponses)
        XCTAssertTrue(IMAPCommandTable.rows["UID FETCH"]!.expungeResponses)
        XCTAssertTrue(IMAPCommandTable.rows["COPY"]!.expungeResponses)
    }
}
