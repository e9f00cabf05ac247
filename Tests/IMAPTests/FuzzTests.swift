import PosternTestSupport
import PluginAPI
import XCTest
@testable import PosternIMAPCore

/// Random and mutated commands: the parser never crashes, never stalls (after a line end every
/// input ends in an event, unless announced literal bytes are still due), answers only with
/// commands, continuations and well-formed BAD/NO lines, and gives the same events whatever the
/// chunking.
final class FuzzTests: XCTestCase {
    private let corpus: [String] = [
        "a1 CAPABILITY\r\n", "a1 LOGIN fred secret\r\n", "a1 LOGIN {4}\r\nfred {6+}\r\nsecret\r\n", "a1 AUTHENTICATE PLAIN AHVzZXIAcGVuY2ls\r\n",
        "a1 AUTHENTICATE PLAIN\r\nAHVzZXIAcGVuY2ls\r\n", "a1 SELECT INBOX (CONDSTORE)\r\n", "a1 SELECT INBOX (QRESYNC (1 2 3:4 (1:2 7,9)))\r\n",
        "a1 EXAMINE \"Sent Items\"\r\n", "a1 CREATE ~peter/mail/&U,BTFw-/&ZeVnLIqe-\r\n", "a1 RENAME a b\r\n",
        "a1 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"%\" INBOX*) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n", "a1 LSUB \"\" *\r\n",
        "a1 STATUS INBOX (MESSAGES UIDNEXT)\r\n", "a1 APPEND INBOX (\\Seen) \"17-Jul-1996 02:44:25 -0700\" {5}\r\nhello\r\n",
        "a1 APPEND INBOX {2+}\r\nm1 {2+}\r\nm2\r\n", "a1 APPEND INBOX UTF8 (~{2+}\r\nhi)\r\n", "a1 IDLE\r\nDONE\r\n",
        "a1 ID (\"name\" \"x\" \"v\" NIL)\r\n", "a1 ENABLE CONDSTORE\r\n", "a1 GETQUOTAROOT INBOX\r\n", "a1 SETQUOTA \"\" (STORAGE 512)\r\n",
        "a1 SETACL INBOX Fred +rwi\r\n", "a1 MYRIGHTS INBOX\r\n", "a1 COMPRESS DEFLATE\r\n", "a1 STARTTLS\r\n",
        "a1 SEARCH CHARSET UTF-8 OR (FROM a TO b) NOT (SEEN) SINCE 1-Feb-1994 TEXT {3}\r\nabc\r\n",
        "a1 UID SEARCH RETURN (MIN COUNT) MODSEQ \"/flags/\\\\draft\" all 5 UID 1:*\r\n",
        "a1 FETCH 1:*,*:4 (FLAGS BODY.PEEK[HEADER.FIELDS (DATE FROM)]<0.100> BODY[1.2.MIME] BINARY[1]) (CHANGEDSINCE 5)\r\n",
        "a1 UID FETCH 1:* FLAGS (CHANGEDSINCE 5 VANISHED)\r\n", "a1 STORE 1 (UNCHANGEDSINCE 5) +FLAGS.SILENT (\\Deleted $Junk)\r\n",
        "a1 UID COPY 1:3 Archive\r\n", "a1 MOVE $ Trash\r\n", "a1 UID EXPUNGE 1:5\r\n", "a1 NOOP\r\n",
        "a1 SEARCH ((((SEEN))))\r\n", "a1 FETCH 1 FULL\r\n",
    ]
    private let tokens: [String] = ["{", "}", "{3}\r\n", "{2+}\r\n", "~{1}\r\n", "{0}\r\n", "{99999}\r\n", "{70+}\r\n", "(", ")", "\"", "\\", "\r\n", "\n", "\r",
                                    "\0", "\u{FF}", "*", " ", "  ", "[", "]", "<", ">", "NIL", "UID", "OR", "NOT", "%", "&", "&-", "+", "-", ":", ",", "$"]

    private let options = IMAPParserOptions(limits: IMAPParserLimits(maxLineLength: 256, maxLiteralSize: 64, maxAppendMessageSize: 128,
                                                                      maxAppendTotalSize: 200, maxCommandSize: 1024, maxNestingDepth: 8))

    /// 1...`maxEdits` random edits at or after `from`: byte changes, inserted tokens, deletions,
    /// truncation, duplicated pieces.
    private func mutate(_ input: [UInt8], maxEdits: Int = 4, from: Int = 0, _ rng: inout SeededRandom) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...maxEdits, using: &rng) {
            let low = min(from, bytes.count)
            let at = Int.random(in: low...bytes.count, using: &rng)
            switch Int.random(in: 0..<6, using: &rng) {
            case 0 where at < bytes.count: bytes[at] = UInt8.random(in: 0...255, using: &rng)
            case 1: bytes.insert(contentsOf: Array(tokens.randomElement(using: &rng)!.utf8), at: at)
            case 2 where at < bytes.count: bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...8, using: &rng)))
            case 3: bytes = Array(bytes.prefix(at))
            case 4 where at < bytes.count:
                let piece = bytes[at..<min(bytes.count, at + Int.random(in: 1...20, using: &rng))]
                bytes.insert(contentsOf: piece, at: at)
            default: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: at)
            }
        }
        return bytes
    }

    /// A tag, a command name and random arguments separated by spaces.
    private func randomCommand(_ rng: inout SeededRandom) -> [UInt8] {
        let names = ["FETCH", "UID FETCH", "SEARCH", "UID SEARCH", "LOGIN", "APPEND", "SELECT", "LIST", "STORE", "STATUS", "COPY", "ID", "SETQUOTA", "ENABLE"]
        let arguments = ["1:*", "1", "*:4", "$", "INBOX", "\"q\\\"x\"", "{3}\r\nabc", "{2+}\r\nab", "~{1+}\r\n\0", "(FLAGS)", "BODY[1.2]<0.5>", "BODY.PEEK[HEADER.FIELDS (A B)]",
                         "(\\Seen $Junk)", "+FLAGS", "OR", "NOT", "(", ")", "SINCE", "1-Jan-2000", "\"17-Jul-1996 02:44:25 -0700\"", "NIL", "RETURN", "(MIN)",
                         "CHARSET", "UTF-8", "(CHANGEDSINCE 5)", "(UNCHANGEDSINCE 5)", "(MESSAGES)", "(CONDSTORE)", "\"\"", "%", "TEXT", "HEADER", "x"]
        var text = "t\(Int.random(in: 0...9, using: &rng)) \(names.randomElement(using: &rng)!)"
        for _ in 0..<Int.random(in: 0...8, using: &rng) { text += " " + arguments.randomElement(using: &rng)! }
        return b(text + "\r\n")
    }

    /// The `i`th input: a fifth each of corpus commands with one edit after the tag, with up to
    /// four edits anywhere, random commands (some edited), random bytes, and pipelined corpus
    /// commands with one edit.
    private func fuzzInput(_ i: Int, _ rng: inout SeededRandom) -> [UInt8] {
        switch i % 5 {
        case 0: return mutate(b(corpus.randomElement(using: &rng)!), maxEdits: 1, from: 3, &rng)
        case 1: return mutate(b(corpus.randomElement(using: &rng)!), &rng)
        case 2: return Bool.random(using: &rng) ? randomCommand(&rng) : mutate(randomCommand(&rng), maxEdits: 2, from: 3, &rng)
        case 3: return (0..<Int.random(in: 0...120, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        default:
            let several = (0..<Int.random(in: 2...3, using: &rng)).flatMap { _ in b(corpus.randomElement(using: &rng)!) }
            return mutate(several, maxEdits: 1, &rng)
        }
    }

    /// Plays a minimal session: resumes after every pause (IDLE waits for DONE, AUTHENTICATE
    /// reads one response line), so bytes keep flowing. Feeds `input` in chunks of the sizes
    /// `chunk` returns.
    private func drive(_ input: [UInt8], chunk: (Int) -> Int) -> (events: [Event], parser: IMAPCommandParser) {
        var parser = IMAPCommandParser(options: options)
        var out: [Event] = []
        func settle(_ new: [Event]) {
            var pending = new
            while true {
                out += pending
                guard parser.isPaused else { return }
                var expecting = IMAPCommandParser.Expectation.command
                if case .command(let c)? = pending.last {
                    if c.command == .idle { expecting = .idleDone }
                    if case .authenticate = c.command { expecting = .authenticationResponse }
                }
                pending = parser.resume(expecting: expecting)
            }
        }
        var i = 0
        while i < input.count {
            let n = min(input.count - i, max(1, chunk(input.count - i)))
            settle(parser.feed(input[i..<i + n]))
            i += n
        }
        return (out, parser)
    }

    private func check(_ input: [UInt8], file: StaticString = #filePath, line: UInt = #line) {
        let flush = b(String(repeating: "x", count: 300) + "\r\nz9 NOOP\r\n")
        var whole = drive(input + flush) { $0 }
        var chunkRNG = SeededRandom(seed: UInt64(input.count) &* 31 &+ 7)
        let chunked = drive(input + flush) { _ in Int.random(in: 1...7, using: &chunkRNG) }
        let single = drive(input + flush) { _ in 1 }
        XCTAssertEqual(whole.events, chunked.events, "chunking changed the events for \(Array(input))", file: file, line: line)
        XCTAssertEqual(whole.events, single.events, "byte-by-byte feeding changed the events for \(Array(input))", file: file, line: line)
        for event in whole.events {
            guard case .error(let error) = event else { continue }
            XCTAssertTrue(error.status == .bad || (error.status == .no && error.code == .tooBig), "\(error)", file: file, line: line)
            let reply = error.responseBytes
            XCTAssertEqual(Array(reply.suffix(2)), [0x0D, 0x0A], file: file, line: line)
            XCTAssertFalse(reply.dropLast(2).contains { $0 == 0x0D || $0 == 0x0A || $0 == 0 }, "reply breaks the line: \(reply)", file: file, line: line)
            if let tag = error.tag {
                XCTAssertTrue(!tag.isEmpty && tag.utf8.allSatisfy(IMAPCharacters.isTagChar), "bad tag echoed: \(tag)", file: file, line: line)
            }
        }
        // Still inside an announced literal: feed what it waits for, then flush again.
        if whole.events.last != .command(IMAPTaggedCommand(tag: "z9", command: .noop)) {
            let due = whole.parser.awaitedLiteralBytes
            XCTAssertGreaterThan(due, 0, "stalled without waiting for a literal: \(Array(input)) gave \(transcript(whole.events))", file: file, line: line)
            // A refused non-synchronizing literal may announce more than is worth feeding here.
            guard due > 0, due <= 1 << 20 else { return }
            let more = drive(input + flush + [UInt8](repeating: 0x78, count: due) + flush) { $0 }
            whole = more
            XCTAssertEqual(whole.events.last, .command(IMAPTaggedCommand(tag: "z9", command: .noop)),
                           "no resynchronisation for \(Array(input)): \(transcript(whole.events))", file: file, line: line)
        }
    }

    func testTwoThousandRandomAndMutatedCommands() {
        var rng = SeededRandom(seed: 0x1AB_5EED)
        for i in 0..<2000 {
            check(fuzzInput(i, &rng))
        }
    }

    func testEveryCorpusCommandParsesCleanly() {
        for text in corpus {
            check(b(text))
            let got = drive(b(text)) { $0 }.events
            XCTAssertFalse(got.contains { if case .error = $0 { return true }; return false }, "\(text): \(transcript(got))")
        }
    }

    func testModifiedUTF7DecodeIsCanonicalOnRandomInput() {
        var rng = SeededRandom(seed: 42)
        let alphabet = Array("&-AOQPwZeVnLIqe,+/=a b~".utf8)
        for _ in 0..<5000 {
            let bytes = (0..<Int.random(in: 0...12, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            if let name = ModifiedUTF7.decode(bytes) {
                XCTAssertEqual(Array(ModifiedUTF7.encode(name).utf8), bytes)
            }
        }
        for _ in 0..<2000 {
            let scalars = (0..<Int.random(in: 0...8, using: &rng)).compactMap { _ -> Unicode.Scalar? in
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: return Unicode.Scalar(UInt32.random(in: 0x20...0x7E, using: &rng))
                case 1: return Unicode.Scalar(UInt32.random(in: 0x80...0xFFFF, using: &rng))
                case 2: return Unicode.Scalar(UInt32.random(in: 0x10000...0x10FFFF, using: &rng))
                default: return "&"
                }
            }
            let name = String(String.UnicodeScalarView(scalars))
            XCTAssertEqual(ModifiedUTF7.decode(ModifiedUTF7.encode(name)), name)
        }
    }

    func testSequenceSetDescriptionRoundTrips() {
        var rng = SeededRandom(seed: 7)
        for _ in 0..<2000 {
            let ranges = (0..<Int.random(in: 1...5, using: &rng)).map { _ -> IMAPSequenceSet.Range in
                func bound() -> IMAPSequenceSet.Bound { Int.random(in: 0..<5, using: &rng) == 0 ? .largest : .number(UInt32.random(in: 1...UInt32.max, using: &rng)) }
                return Bool.random(using: &rng) ? .init(bound(), bound()) : { let x = bound(); return .init(x, x) }()
            }
            let s = IMAPSequenceSet(ranges)
            XCTAssertEqual(IMAPSequenceSet.parse(Array(s.description.utf8)), s)
        }
    }
}
