import PosternTestSupport
import Foundation
import PosternHost
import XCTest

/// One scripted exchange of the compliance suite: client lines and what the server's answer must
/// hold. The same transcripts run against Postern and against a throw-away Dovecot; where
/// Dovecot answers otherwise, `expectedDifference` says why (and the suite fails if such a note
/// goes stale because Dovecot now matches).
struct Transcript {
    var name: String
    var setup: TranscriptSetup = .standard
    var steps: [Step]
    var expectedDifference: String?
    /// Skipped on Dovecot (a configuration-specific behaviour nothing in Dovecot corresponds to).
    var postternOnly: String?

    struct Step {
        /// Which connection: 1 and 2 are logged in as the transcript's user `a`, 3 as user `b`,
        /// 9 is not logged in.
        var session: Int
        /// What the client sends (lines separated by CRLF are sent one at a time; after a line
        /// ending in a synchronizing literal `{n}` the runner waits for the continuation).
        var send: String?
        /// The line that ends the answer (pattern); nil: the tagged line of `send`'s tag.
        var until: String?
        /// Patterns that lines of the answer must match, in this order (others may be between).
        var expect: [String]
        /// Patterns no line of the answer may match.
        var forbid: [String]
        /// Whether `expect` must match in order.
        var ordered = true
    }
}

enum TranscriptSetup {
    /// The five standard messages in INBOX (see `TranscriptFixture.messages`).
    case standard
    /// Nothing added.
    case empty
}

/// `S("a1 SELECT INBOX", "* # EXISTS", "a1 OK [READ-WRITE]…")`: `…` is any text, `#` a number,
/// `«name»` a number remembered as `«name»` for later steps. In what is sent, `$USER`, `$USERB`,
/// `$PASS`, `$PLAIN` (PLAIN's base64), `$USER64` and `$PASS64` are replaced, and a line `<+>`
/// waits for a continuation request.
func S(_ send: String, _ expect: String..., forbid: [String] = [], session: Int = 0, until: String? = nil, ordered: Bool = true) -> Transcript.Step {
    Transcript.Step(session: session, send: send, until: until, expect: expect, forbid: forbid, ordered: ordered)
}

/// Waits on `session` for a line matching `until` without sending anything (IDLE updates).
func W(_ until: String, _ expect: String..., session: Int = 0) -> Transcript.Step {
    Transcript.Step(session: session, send: nil, until: until, expect: expect, forbid: [])
}

func T(_ name: String, setup: TranscriptSetup = .standard, difference: String? = nil, postternOnly: String? = nil,
       _ steps: Transcript.Step...) -> Transcript {
    Transcript(name: name, setup: setup, steps: steps, expectedDifference: difference, postternOnly: postternOnly)
}

/// A pattern of the transcripts as a regular expression over one response line (literals inlined).
struct LinePattern {
    let source: String
    let regex: NSRegularExpression

    /// Names of `«name»` captures, in order.
    let captures: [String]

    init(_ source: String, variables: [String: String] = [:]) {
        var re = "^"
        var captures: [String] = []
        var text = source
        for k in variables.keys.sorted(by: { $0.count > $1.count }) { text = text.replacingOccurrences(of: k, with: variables[k]!) }
        self.source = text
        if text.hasPrefix("re:") {
            re += String(text.dropFirst(3))
        } else {
            var name: String?
            for c in text {
                if var n = name {
                    if c == "»" {
                        captures.append(n)
                        re += "([0-9]+)"
                        name = nil
                    } else {
                        n.append(c)
                        name = n
                    }
                    continue
                }
                switch c {
                case "«": name = ""
                case "…": re += ".*"
                case "#": re += "[0-9]+"
                case "\\", ".", "*", "+", "?", "(", ")", "[", "]", "{", "}", "^", "$", "|": re += "\\" + String(c)
                default: re += String(c)
                }
            }
        }
        re += "$"
        self.captures = captures
        regex = try! NSRegularExpression(pattern: re, options: [.dotMatchesLineSeparators])
    }

    func matches(_ line: String) -> Bool {
        regex.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)) != nil
    }

    /// The `«name»` values in a matching line.
    func captured(_ line: String) -> [String: String] {
        guard !captures.isEmpty, let m = regex.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)) else { return [:] }
        var out: [String: String] = [:]
        for (i, name) in captures.enumerated() {
            if let r = Range(m.range(at: i + 1), in: line) { out["«\(name)»"] = String(line[r]) }
        }
        return out
    }
}

/// A blocking IMAP client that reads logical lines: a line ending in a literal `{n}` continues
/// with the n bytes and the rest of the line, all in one string.
final class RawIMAPConnection {
    let fd: CInt
    private var buffer: [UInt8] = []

    init(port: Int, timeout: Int = 15) throws {
        switch connectLoopback(port: port, timeout: timeout) {
        case .success(let fd): self.fd = fd
        case .failure(let e): throw SystemError.message("connect to \(port): \(String(cString: strerror(e.code)))")
        }
    }

    deinit { close(fd) }

    func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { throw SystemError.message("write: \(String(cString: strerror(errno)))") }
            offset += n
        }
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = Glibc.read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n == 0 { throw SystemError.message("connection closed") }
            if n < 0 { throw SystemError.message(errno == EAGAIN ? "timed out waiting for the server" : "read: \(String(cString: strerror(errno)))") }
            buffer += chunk[0..<n]
            return
        }
    }

    private func rawLine() throws -> [UInt8] {
        while true {
            if let i = buffer.firstIndex(of: 0x0A) {
                var line = Array(buffer[..<i])
                buffer.removeSubrange(...i)
                if line.last == 0x0D { line.removeLast() }
                return line
            }
            try fill()
        }
    }

    /// One logical line: literals inlined (their bytes, then the rest of the line).
    func line() throws -> String {
        var out: [UInt8] = []
        while true {
            let l = try rawLine()
            out += l
            guard let size = Self.literalSize(l) else { break }
            out += [0x0D, 0x0A]
            while buffer.count < size { try fill() }
            out += buffer[..<size]
            buffer.removeFirst(size)
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func literalSize(_ line: [UInt8]) -> Int? {
        guard line.last == UInt8(ascii: "}"), let open = line.lastIndex(of: UInt8(ascii: "{")) else { return nil }
        let digits = line[(open + 1)..<(line.count - 1)]
        guard !digits.isEmpty, digits.count < 10, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(String(decoding: digits, as: UTF8.self))
    }

    /// Reads until a line matches `end`; returns the lines (that one last).
    func read(until end: LinePattern) throws -> [String] {
        var lines: [String] = []
        while true {
            let l = try line()
            lines.append(l)
            if end.matches(l) { return lines }
        }
    }
}

/// A server the transcripts run against.
struct TranscriptTarget {
    var name: String
    var port: Int
    var password: String
}

/// The messages every `.standard` transcript starts with, appended to INBOX in this order.
enum TranscriptFixture {
    struct Message {
        var flags: String
        var date: String
        var bytes: String
    }

    static let messages: [Message] = [
        Message(flags: "\\Seen", date: "01-Feb-2020 10:00:00 +0000", bytes: """
            From: Alice Example <alice@example.net>\r
            To: Bob <bob@example.org>\r
            Cc: carol@example.org\r
            Subject: Meeting tomorrow\r
            Date: Sat, 1 Feb 2020 09:58:00 +0000\r
            Message-ID: <m1@example.net>\r
            \r
            Shall we meet at ten?\r
            The agenda follows.\r

            """),
        Message(flags: "\\Answered \\Seen", date: "15-Mar-2021 12:00:00 +0000", bytes: """
            From: bob@example.org\r
            To: alice@example.net\r
            Subject: Re: Meeting tomorrow\r
            Date: Mon, 15 Mar 2021 11:59:00 +0100\r
            Message-ID: <m2@example.org>\r
            In-Reply-To: <m1@example.net>\r
            \r
            Yes, ten works.\r

            """),
        Message(flags: "\\Flagged", date: "20-Jun-2022 08:30:00 +0000", bytes: """
            From: "Carol C." <carol@example.org>\r
            To: alice@example.net, bob@example.org\r
            Subject: =?UTF-8?Q?Caf=C3=A9_order?=\r
            Date: Mon, 20 Jun 2022 08:29:00 +0000\r
            Message-ID: <m3@example.org>\r
            X-Priority: 1\r
            Content-Type: text/plain; charset=utf-8\r
            Content-Transfer-Encoding: quoted-printable\r
            \r
            Two caf=C3=A9s, please.\r

            """),
        Message(flags: "", date: "01-Jan-2023 00:00:00 +0000", bytes: """
            From: dave@example.com\r
            To: alice@example.net\r
            Subject: Report with attachments\r
            Date: Sun, 1 Jan 2023 00:00:00 +0000\r
            Message-ID: <m4@example.com>\r
            MIME-Version: 1.0\r
            Content-Type: multipart/mixed; boundary="outer"\r
            \r
            This is a multi-part message.\r
            --outer\r
            Content-Type: multipart/alternative; boundary="inner"\r
            \r
            --inner\r
            Content-Type: text/plain; charset=us-ascii\r
            \r
            Plain report.\r
            --inner\r
            Content-Type: text/html; charset=us-ascii\r
            \r
            <p>HTML report.</p>\r
            --inner--\r
            --outer\r
            Content-Type: application/pdf; name="r.pdf"\r
            Content-Disposition: attachment; filename="r.pdf"\r
            Content-Transfer-Encoding: base64\r
            \r
            JVBERi0xLjQK\r
            --outer\r
            Content-Type: message/rfc822\r
            \r
            From: erin@example.com\r
            Subject: Forwarded note\r
            \r
            Forwarded body.\r
            --outer--\r

            """),
        Message(flags: "$Work", date: "10-Oct-2023 18:45:00 +0000", bytes: """
            From: alice@example.net\r
            To: alice@example.net\r
            Subject: Note to self\r
            Date: Tue, 10 Oct 2023 18:44:00 +0000\r
            Message-ID: <m5@example.net>\r
            \r
            0123456789abcdefghij\r

            """),
    ]
}

/// Runs transcripts against one target. Each transcript has its own account (so nothing one does
/// shows in another): `tNNNa@example.org`, and `tNNNb@example.org` as session 2.
final class TranscriptRunner {
    let target: TranscriptTarget

    init(target: TranscriptTarget) { self.target = target }

    static func user(_ index: Int, _ session: Int) -> String {
        String(format: "t%03d%@@example.org", index, session == 3 ? "b" : "a")
    }

    /// Nil when the transcript passed; the first mismatch otherwise, with what was seen.
    func run(_ transcript: Transcript, index: Int) -> String? {
        var sessions: [Int: RawIMAPConnection] = [:]
        func session(_ n: Int) throws -> RawIMAPConnection {
            if let s = sessions[n] { return s }
            let c = try RawIMAPConnection(port: target.port)
            _ = try c.read(until: LinePattern("* OK …"))
            if n == 9 {
                sessions[n] = c
                return c
            }
            try c.write(Array("L LOGIN \(Self.user(index, n)) \(target.password)\r\n".utf8))
            let login = try c.read(until: LinePattern("L …"))
            guard login.last?.hasPrefix("L OK") == true else { throw SystemError.message("login failed: \(login)") }
            sessions[n] = c
            return c
        }
        do {
            if case .standard = transcript.setup {
                let c = try session(1)
                for (i, m) in TranscriptFixture.messages.enumerated() {
                    let bytes = Array(m.bytes.utf8)
                    try c.write(Array("P\(i) APPEND INBOX (\(m.flags)) \"\(m.date)\" {\(bytes.count)+}\r\n".utf8) + bytes + [0x0D, 0x0A])
                    let r = try c.read(until: LinePattern("P\(i) …"))
                    guard r.last?.hasPrefix("P\(i) OK") == true else { throw SystemError.message("setup APPEND failed: \(r)") }
                }
            }
            let user = Self.user(index, 1), userB = Self.user(index, 3)
            var variables: [String: String] = [
                "$USERB": userB, "$USER64": Data(user.utf8).base64EncodedString(), "$PASS64": Data(target.password.utf8).base64EncodedString(),
                "$PLAIN": Data("\u{0}\(user)\u{0}\(target.password)".utf8).base64EncodedString(), "$USER": user, "$PASS": target.password,
            ]
            func substitute(_ text: String) -> String {
                var out = text
                // Longer names first ($USERB before $USER).
                for k in variables.keys.sorted(by: { $0.count > $1.count }) { out = out.replacingOccurrences(of: k, with: variables[k]!) }
                return out
            }
            for (n, step) in transcript.steps.enumerated() {
                let c = try session(step.session == 0 ? 1 : step.session)
                var lines: [String] = []
                let send = step.send.map(substitute)
                let tag = send.map { String($0.prefix { $0 != " " && $0 != "\r" && $0 != "\n" }) } ?? ""
                let end = LinePattern(step.until ?? "\(tag) …", variables: variables)
                if let send {
                    var parts = send.components(separatedBy: "\r\n")
                    let waitLine = LinePattern("re:(\\+ .*|\\+|" + NSRegularExpression.escapedPattern(for: tag) + " .*)")
                    while !parts.isEmpty {
                        let part = parts.removeFirst()
                        if part == "<+>" {
                            // Wait for a continuation request (or a refusal) before going on.
                            let l = try c.read(until: waitLine)
                            lines += l
                            if end.matches(l.last!) { parts.removeAll() }
                            continue
                        }
                        let more = !parts.isEmpty && parts.first != "<+>"
                        try c.write(Array((part + "\r\n").utf8))
                        // A synchronizing literal: wait for "+" (or a refusal) before the rest.
                        if more, part.hasSuffix("}"), !part.hasSuffix("+}") {
                            let l = try c.read(until: waitLine)
                            lines += l
                            if end.matches(l.last!) { parts.removeAll() }
                        }
                    }
                }
                if lines.last.map({ !end.matches($0) }) ?? true {
                    lines += try c.read(until: end)
                }
                var cursor = 0
                for pattern in step.expect.map({ LinePattern($0, variables: variables) }) {
                    let searched = step.ordered ? lines[cursor...] : lines[...]
                    guard let found = searched.firstIndex(where: pattern.matches) else {
                        return "step \(n + 1) (\(send ?? "wait")): no line matching \"\(pattern.source)\"\(step.ordered ? " in order" : ""); got:\n  "
                            + lines.joined(separator: "\n  ")
                    }
                    variables.merge(pattern.captured(lines[found])) { _, new in new }
                    if step.ordered { cursor = found + 1 }
                }
                for pattern in step.forbid.map({ LinePattern($0, variables: variables) }) {
                    if let bad = lines.first(where: pattern.matches) {
                        return "step \(n + 1) (\(send ?? "wait")): forbidden line \"\(bad)\" matches \"\(pattern.source)\""
                    }
                }
            }
            return nil
        } catch {
            return "\(error)"
        }
    }
}
