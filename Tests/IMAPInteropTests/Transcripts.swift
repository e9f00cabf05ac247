import PosternTestSupport
import Foundation

/// The compliance transcripts: RFC 3501 examples and edge cases, and the extensions Postern
/// offers. Each runs on its own account with the five standard messages in INBOX unless it says
/// `.empty` (see `TranscriptFixture`): 1 \Seen, 2 \Answered \Seen, 3 \Flagged, 4 (multipart,
/// no flags), 5 $Work. Patterns: `…` any text, `#` a number, `«x»` a remembered number.
enum Transcripts {
    static func fx(_ n: Int) -> String { TranscriptFixture.messages[n - 1].bytes }
    static func size(_ n: Int) -> Int { fx(n).utf8.count }
    static let select = S("s0 SELECT INBOX", "s0 OK [READ-WRITE]…")
    static let short = "Subject: hi\r\n\r\nhello\r\n"

    static var all: [Transcript] {
        var t: [Transcript] = []
        // MARK: Any state, greeting, authentication
        t.append(T("CAPABILITY before login", setup: .empty,
                   S("a1 CAPABILITY", "* CAPABILITY IMAP4rev1 …", "a1 OK…", session: 9)))
        t.append(T("CAPABILITY after login lists the extensions", setup: .empty,
                   S("a1 CAPABILITY", "re:\\* CAPABILITY IMAP4rev1 .*\\bUIDPLUS\\b.*", "a1 OK…"),
                   S("a2 CAPABILITY", "re:\\* CAPABILITY .*\\bIDLE\\b.*\\bMOVE\\b.*", "a2 OK…"),
                   S("a3 CAPABILITY", "re:\\* CAPABILITY .*\\bCONDSTORE\\b.*\\bQRESYNC\\b.*", "a3 OK…")))
        t.append(T("NOOP before login", setup: .empty, S("a1 NOOP", "a1 OK…", session: 9)))
        t.append(T("LOGOUT before login: BYE, then OK", setup: .empty, S("a1 LOGOUT", "* BYE …", "a1 OK…", session: 9)))
        t.append(T("LOGOUT after login", setup: .empty, S("a1 LOGOUT", "* BYE …", "a1 OK…")))
        t.append(T("Unknown command is BAD", setup: .empty, S("a1 FROBNICATE", "a1 BAD…")))
        t.append(T("Missing arguments are BAD", setup: .empty, S("a1 SELECT", "a1 BAD…"), S("a2 NOOP", "a2 OK…")))
        t.append(T("Lower-case command names", setup: .empty, S("a1 noop", "a1 OK…"), S("a2 select inbox", "a2 OK…")))
        t.append(T("ID NIL", setup: .empty, S("a1 ID NIL", "* ID (…)", "a1 OK…")))
        t.append(T("ID with fields", setup: .empty, S("a1 ID (\"name\" \"transcripts\" \"version\" \"1\")", "* ID (…)", "a1 OK…")))
        t.append(T("LOGIN with a wrong password", setup: .empty,
                   S("a1 LOGIN $USER wrong-password", "a1 NO [AUTHENTICATIONFAILED]…", session: 9)))
        t.append(T("LOGIN with a literal password", setup: .empty,
                   S("a1 LOGIN $USER {13}\r\ntranscript-pw", "+…", "a1 OK…", session: 9)))
        t.append(T("LOGIN with quoted strings", setup: .empty, S("a1 LOGIN \"$USER\" \"$PASS\"", "a1 OK…", session: 9)))
        t.append(T("LOGIN of an unknown user", setup: .empty,
                   S("a1 LOGIN nobody@example.org transcript-pw", "a1 NO [AUTHENTICATIONFAILED]…", session: 9)))
        t.append(T("LOGIN twice is BAD", setup: .empty, S("a1 LOGIN $USER $PASS", "a1 BAD…")))
        t.append(T("SELECT before login is refused", setup: .empty, S("a1 SELECT INBOX", "re:a1 (BAD|NO) .*", session: 9)))
        t.append(T("AUTHENTICATE PLAIN with an initial response (SASL-IR)", setup: .empty,
                   S("a1 AUTHENTICATE PLAIN $PLAIN", "a1 OK…", session: 9)))
        t.append(T("AUTHENTICATE PLAIN after an empty challenge", setup: .empty,
                   S("a1 AUTHENTICATE PLAIN\r\n<+>\r\n$PLAIN", "+…", "a1 OK…", session: 9)))
        t.append(T("AUTHENTICATE cancelled with *", setup: .empty,
                   S("a1 AUTHENTICATE PLAIN\r\n<+>\r\n*", "+…", "a1 BAD…", session: 9), S("a2 NOOP", "a2 OK…", session: 9)))
        t.append(T("AUTHENTICATE LOGIN", setup: .empty,
                   S("a1 AUTHENTICATE LOGIN\r\n<+>\r\n$USER64\r\n<+>\r\n$PASS64", "a1 OK…", session: 9)))
        t.append(T("AUTHENTICATE with an unknown mechanism", setup: .empty, S("a1 AUTHENTICATE X-NONE", "a1 NO…", session: 9)))
        t.append(T("AUTHENTICATE PLAIN with a wrong password", setup: .empty,
                   S("a1 AUTHENTICATE PLAIN AHQwMDFhQGV4YW1wbGUub3JnAHdyb25n", "a1 NO…", session: 9)))

        // MARK: SELECT, EXAMINE, STATUS
        t.append(T("SELECT INBOX reports the mailbox",
                   S("a1 SELECT INBOX", "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)",
                     "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work \\*)]…",
                     "* 5 EXISTS", "* 5 RECENT", "a1 OK [READ-WRITE]…"),
                   S("a2 SELECT INBOX", "* OK [UNSEEN 3]…", "* OK [UIDVALIDITY #]…", "* OK [UIDNEXT 6]…", "a2 OK…", ordered: false)))
        t.append(T("EXAMINE is read-only", S("a1 EXAMINE INBOX", "* OK [PERMANENTFLAGS ()]…", "* 5 EXISTS", "a1 OK [READ-ONLY]…")))
        t.append(T("SELECT of a missing mailbox", S("a1 SELECT Nowhere", "re:a1 NO (\\[NONEXISTENT\\] )?.*")))
        t.append(T("A failed SELECT leaves no mailbox selected",
                   select, S("a1 SELECT Nowhere", "a1 NO…"), S("a2 FETCH 1 FLAGS", "a2 BAD…")))
        t.append(T("SELECT inbox in lower case", S("a1 SELECT inbox", "* 5 EXISTS", "a1 OK [READ-WRITE]…")))
        t.append(T("SELECT of another mailbox without QRESYNC sends no CLOSED",
                   difference: "Dovecot sends [CLOSED] on every SELECT that leaves a mailbox; RFC 7162 §3.2.11 defines it for QRESYNC clients, which is when Postern sends it",
                   select, S("a1 SELECT Sent", "* 0 EXISTS", "a1 OK…", forbid: ["* OK [CLOSED]…"])))
        t.append(T("STATUS items",
                   S("a1 STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)",
                     "* STATUS INBOX (MESSAGES 5 RECENT 5 UIDNEXT 6 UIDVALIDITY # UNSEEN 3)", "a1 OK…")))
        t.append(T("STATUS of a missing mailbox", S("a1 STATUS Nowhere (MESSAGES)", "a1 NO…")))
        t.append(T("STATUS HIGHESTMODSEQ", S("a1 STATUS INBOX (HIGHESTMODSEQ)", "* STATUS INBOX (HIGHESTMODSEQ #)", "a1 OK…")))
        t.append(T("STATUS of the selected mailbox", select, S("a1 STATUS INBOX (MESSAGES UNSEEN)", "* STATUS INBOX (MESSAGES 5 UNSEEN 3)", "a1 OK…")))
        t.append(T("STATUS of an empty mailbox", S("a1 STATUS Sent (MESSAGES UIDNEXT)", "* STATUS Sent (MESSAGES 0 UIDNEXT 1)", "a1 OK…")))
        t.append(T("\\Recent belongs to the first session that selects",
                   S("a1 SELECT INBOX", "* 5 RECENT", "a1 OK…"),
                   S("b1 SELECT INBOX", "* 0 RECENT", "b1 OK…", session: 2)))

        // MARK: FETCH
        t.append(T("FETCH FLAGS of every message", select,
                   S("a1 FETCH 1:* FLAGS", "* 1 FETCH (FLAGS (\\Seen \\Recent))", "* 2 FETCH (FLAGS (\\Answered \\Seen \\Recent))",
                     "* 3 FETCH (FLAGS (\\Flagged \\Recent))", "* 4 FETCH (FLAGS (\\Recent))", "re:\\* 5 FETCH \\(FLAGS \\((\\\\Recent \\$Work|\\$Work \\\\Recent)\\)\\)",
                     "a1 OK…")))
        t.append(T("FETCH UID", select, S("a1 FETCH 1:3 UID", "* 1 FETCH (UID 1)", "* 2 FETCH (UID 2)", "* 3 FETCH (UID 3)", "a1 OK…")))
        t.append(T("FETCH INTERNALDATE", select,
                   S("a1 FETCH 1 INTERNALDATE", "re:\\* 1 FETCH \\(INTERNALDATE \"( 1|01)-Feb-2020 10:00:00 \\+0000\"\\)", "a1 OK…")))
        t.append(T("FETCH RFC822.SIZE", select,
                   S("a1 FETCH 1,4 RFC822.SIZE", "* 1 FETCH (RFC822.SIZE \(size(1)))", "* 4 FETCH (RFC822.SIZE \(size(4)))", "a1 OK…")))
        t.append(T("FETCH ENVELOPE with display names and Cc", select,
                   S("a1 FETCH 1 ENVELOPE", "* 1 FETCH (ENVELOPE (\"Sat, 1 Feb 2020 09:58:00 +0000\" \"Meeting tomorrow\" "
                     + "((\"Alice Example\" NIL \"alice\" \"example.net\")) ((\"Alice Example\" NIL \"alice\" \"example.net\")) "
                     + "((\"Alice Example\" NIL \"alice\" \"example.net\")) ((\"Bob\" NIL \"bob\" \"example.org\")) "
                     + "((NIL NIL \"carol\" \"example.org\")) NIL NIL \"<m1@example.net>\"))", "a1 OK…")))
        t.append(T("FETCH ENVELOPE with In-Reply-To", select,
                   S("a1 FETCH 2 ENVELOPE", "* 2 FETCH (ENVELOPE (\"Mon, 15 Mar 2021 11:59:00 +0100\" \"Re: Meeting tomorrow\" "
                     + "((NIL NIL \"bob\" \"example.org\")) ((NIL NIL \"bob\" \"example.org\")) ((NIL NIL \"bob\" \"example.org\")) "
                     + "((NIL NIL \"alice\" \"example.net\")) NIL NIL \"<m1@example.net>\" \"<m2@example.org>\"))", "a1 OK…")))
        t.append(T("FETCH ENVELOPE keeps encoded words and lists every recipient", select,
                   S("a1 FETCH 3 ENVELOPE", "* 3 FETCH (ENVELOPE (\"Mon, 20 Jun 2022 08:29:00 +0000\" \"=?UTF-8?Q?Caf=C3=A9_order?=\" "
                     + "((\"Carol C.\" NIL \"carol\" \"example.org\")) ((\"Carol C.\" NIL \"carol\" \"example.org\")) "
                     + "((\"Carol C.\" NIL \"carol\" \"example.org\")) ((NIL NIL \"alice\" \"example.net\")(NIL NIL \"bob\" \"example.org\")) "
                     + "NIL NIL NIL \"<m3@example.org>\"))", "a1 OK…")))
        t.append(T("FETCH BODYSTRUCTURE of a nested multipart with an attached message", select,
                   S("a1 FETCH 4 BODYSTRUCTURE", "* 4 FETCH (BODYSTRUCTURE (((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" # # NIL NIL NIL NIL)"
                     + "(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" # # NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"inner\") NIL NIL NIL)"
                     + "(\"application\" \"pdf\" (\"name\" \"r.pdf\") NIL NIL \"base64\" # NIL (\"attachment\" (\"filename\" \"r.pdf\")) NIL NIL)"
                     + "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" # (NIL \"Forwarded note\" ((NIL NIL \"erin\" \"example.com\")) "
                     + "((NIL NIL \"erin\" \"example.com\")) ((NIL NIL \"erin\" \"example.com\")) NIL NIL NIL NIL NIL) "
                     + "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" # # NIL NIL NIL NIL) # NIL NIL NIL NIL) "
                     + "\"mixed\" (\"boundary\" \"outer\") NIL NIL NIL))", "a1 OK…")))
        t.append(T("FETCH BODYSTRUCTURE of a quoted-printable text", select,
                   S("a1 FETCH 3 BODYSTRUCTURE", "* 3 FETCH (BODYSTRUCTURE (\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" # # NIL NIL NIL NIL))", "a1 OK…")))
        t.append(T("FETCH BODY (no extension data)", select,
                   S("a1 FETCH 1 BODY", "* 1 FETCH (BODY (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 44 2))", "a1 OK…")))
        t.append(T("FETCH BODY.PEEK[] is the whole message", select,
                   S("a1 FETCH 1 BODY.PEEK[]", "* 1 FETCH (BODY[] {\(size(1))}\r\n\(fx(1)))", "a1 OK…")))
        t.append(T("FETCH BODY.PEEK[HEADER]", select,
                   S("a1 FETCH 2 BODY.PEEK[HEADER]", "re:\\* 2 FETCH \\(BODY\\[HEADER\\] \\{[0-9]+\\}\r\nFrom: bob@example.org\r\n.*In-Reply-To: <m1@example.net>\r\n\r\n\\)", "a1 OK…")))
        t.append(T("FETCH BODY.PEEK[TEXT]", select,
                   S("a1 FETCH 1 BODY.PEEK[TEXT]", "* 1 FETCH (BODY[TEXT] {44}\r\nShall we meet at ten?\r\nThe agenda follows.\r\n)", "a1 OK…")))
        t.append(T("FETCH HEADER.FIELDS in message order", select,
                   S("a1 FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]",
                     "* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT FROM)] {70}\r\nFrom: Alice Example <alice@example.net>\r\nSubject: Meeting tomorrow\r\n\r\n)", "a1 OK…")))
        t.append(T("FETCH HEADER.FIELDS.NOT", select,
                   S("a1 FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (FROM TO CC DATE MESSAGE-ID)]",
                     "* 1 FETCH (BODY[HEADER.FIELDS.NOT (FROM TO CC DATE MESSAGE-ID)] {29}\r\nSubject: Meeting tomorrow\r\n\r\n)", "a1 OK…")))
        t.append(T("FETCH HEADER.FIELDS of a field that is absent", select,
                   S("a1 FETCH 1 BODY.PEEK[HEADER.FIELDS (X-NONE)]", "* 1 FETCH (BODY[HEADER.FIELDS (X-NONE)] {2}\r\n\r\n)", "a1 OK…")))
        t.append(T("FETCH BODY[1] of a single-part message is its body", select,
                   S("a1 FETCH 1 BODY.PEEK[1]", "* 1 FETCH (BODY[1] {44}\r\nShall we meet at ten?\r\nThe agenda follows.\r\n)", "a1 OK…")))
        t.append(T("FETCH nested parts", select,
                   S("a1 FETCH 4 (BODY.PEEK[1.1] BODY.PEEK[1.2])", "* 4 FETCH (BODY[1.1] {13}\r\nPlain report. BODY[1.2] {19}\r\n<p>HTML report.</p>)", "a1 OK…")))
        t.append(T("FETCH a base64 part as stored", select,
                   S("a1 FETCH 4 BODY.PEEK[2]", "* 4 FETCH (BODY[2] {12}\r\nJVBERi0xLjQK)", "a1 OK…")))
        t.append(T("FETCH the MIME header of a part", select,
                   S("a1 FETCH 4 BODY.PEEK[2.MIME]", "* 4 FETCH (BODY[2.MIME] {#}\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\n"
                     + "Content-Disposition: attachment; filename=\"r.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n)", "a1 OK…")))
        t.append(T("FETCH the header of an attached message", select,
                   S("a1 FETCH 4 BODY.PEEK[3.HEADER]", "* 4 FETCH (BODY[3.HEADER] {51}\r\nFrom: erin@example.com\r\nSubject: Forwarded note\r\n\r\n)", "a1 OK…")))
        t.append(T("FETCH the text of an attached message", select,
                   S("a1 FETCH 4 BODY.PEEK[3.TEXT]", "* 4 FETCH (BODY[3.TEXT] {15}\r\nForwarded body.)", "a1 OK…")))
        t.append(T("FETCH part 1 of an attached single-part message", select,
                   S("a1 FETCH 4 BODY.PEEK[3.1]", "* 4 FETCH (BODY[3.1] {15}\r\nForwarded body.)", "a1 OK…")))
        t.append(T("FETCH an attached message whole", select,
                   S("a1 FETCH 4 BODY.PEEK[3]", "* 4 FETCH (BODY[3] {66}\r\nFrom: erin@example.com\r\nSubject: Forwarded note\r\n\r\nForwarded body.)", "a1 OK…")))
        t.append(T("FETCH a part that does not exist", select,
                   S("a1 FETCH 4 BODY.PEEK[9]", "re:\\* 4 FETCH \\(BODY\\[9\\] (NIL|\"\"|\\{0\\}\r\n)\\)", "a1 OK…")))
        t.append(T("Partial FETCH from the start", select,
                   S("a1 FETCH 5 BODY.PEEK[TEXT]<0.10>", "* 5 FETCH (BODY[TEXT]<0> {10}\r\n0123456789)", "a1 OK…")))
        t.append(T("Partial FETCH echoes the origin", select,
                   S("a1 FETCH 5 BODY.PEEK[TEXT]<10.5>", "* 5 FETCH (BODY[TEXT]<10> {5}\r\nabcde)", "a1 OK…")))
        t.append(T("Partial FETCH past the end is empty", select,
                   S("a1 FETCH 5 BODY.PEEK[TEXT]<100.5>", "re:\\* 5 FETCH \\(BODY\\[TEXT\\]<100> (\"\"|\\{0\\}\r\n)\\)", "a1 OK…")))
        t.append(T("Partial FETCH with the count past the end", select,
                   S("a1 FETCH 5 BODY.PEEK[TEXT]<20.100>", "* 5 FETCH (BODY[TEXT]<20> {2}\r\n\r\n)", "a1 OK…")))
        t.append(T("Partial FETCH at exactly the end", select,
                   S("a1 FETCH 5 BODY.PEEK[TEXT]<22.1>", "re:\\* 5 FETCH \\(BODY\\[TEXT\\]<22> (\"\"|\\{0\\}\r\n)\\)", "a1 OK…")))
        t.append(T("Partial FETCH of the whole message", select,
                   S("a1 FETCH 1 BODY.PEEK[]<0.4>", "* 1 FETCH (BODY[]<0> {4}\r\nFrom)", "a1 OK…")))
        t.append(T("Partial FETCH of a header section", select,
                   S("a1 FETCH 2 BODY.PEEK[HEADER]<6.3>", "* 2 FETCH (BODY[HEADER]<6> {3}\r\nbob)", "a1 OK…")))
        t.append(T("FETCH * is the last message", select, S("a1 FETCH * UID", "* 5 FETCH (UID 5)", "a1 OK…", forbid: ["* 4 FETCH…"])))
        t.append(T("FETCH a reversed range", select,
                   S("a1 FETCH 4:2 UID", "* 2 FETCH (UID 2)", "* 3 FETCH (UID 3)", "* 4 FETCH (UID 4)", "a1 OK…")))
        t.append(T("FETCH a list", select,
                   S("a1 FETCH 4,2 UID", "* 2 FETCH (UID 2)", "* 4 FETCH (UID 4)", "a1 OK…", forbid: ["* 3 FETCH…"])))
        t.append(T("FETCH *:4 with * last", select, S("a1 FETCH *:4 UID", "* 4 FETCH (UID 4)", "* 5 FETCH (UID 5)", "a1 OK…")))
        t.append(T("FETCH beyond the last message is BAD", select, S("a1 FETCH 6 UID", "a1 BAD…")))
        t.append(T("FETCH 0 is BAD", select, S("a1 FETCH 0 UID", "a1 BAD…")))
        t.append(T("FETCH ALL", select,
                   S("a1 FETCH 1 ALL", "re:\\* 1 FETCH \\(.*FLAGS.*INTERNALDATE.*RFC822\\.SIZE.*ENVELOPE.*\\)", "a1 OK…")))
        t.append(T("FETCH FAST", select,
                   S("a1 FETCH 2 FAST", "* 2 FETCH (FLAGS (\\Answered \\Seen \\Recent) INTERNALDATE \"15-Mar-2021 12:00:00 +0000\" RFC822.SIZE \(size(2)))", "a1 OK…")))
        t.append(T("FETCH FULL", select,
                   S("a1 FETCH 1 FULL", "re:\\* 1 FETCH \\(.*ENVELOPE \\(.*\\) BODY \\(\"text\" \"plain\".*\\)\\)", "a1 OK…")))
        t.append(T("FETCH BODY[...] sets \\Seen and says so", select,
                   S("a1 FETCH 4 BODY[1.1]", "re:\\* 4 FETCH \\(.*FLAGS \\(\\\\Seen \\\\Recent\\).*\\)", "a1 OK…"),
                   S("a2 FETCH 4 FLAGS", "* 4 FETCH (FLAGS (\\Seen \\Recent))", "a2 OK…")))
        t.append(T("FETCH BODY.PEEK[...] leaves \\Seen alone", select,
                   S("a1 FETCH 4 BODY.PEEK[TEXT]", "a1 OK…", forbid: ["…\\Seen…"]), S("a2 FETCH 4 FLAGS", "* 4 FETCH (FLAGS (\\Recent))", "a2 OK…")))
        t.append(T("FETCH RFC822 sets \\Seen", select,
                   S("a1 FETCH 3 RFC822", "re:\\* 3 FETCH \\(.*RFC822 \\{[0-9]+\\}\r\nFrom: \"Carol C.\".*", "a1 OK…"),
                   S("a2 FETCH 3 FLAGS", "* 3 FETCH (FLAGS (\\Flagged \\Seen \\Recent))", "a2 OK…")))
        t.append(T("FETCH RFC822.HEADER does not set \\Seen", select,
                   S("a1 FETCH 4 RFC822.HEADER", "re:\\* 4 FETCH \\(RFC822\\.HEADER \\{[0-9]+\\}\r\nFrom: dave@example\\.com.*\\)", "a1 OK…", forbid: ["…\\Seen…"])))
        t.append(T("FETCH RFC822.TEXT", select,
                   S("a1 FETCH 1 RFC822.TEXT", "re:\\* 1 FETCH \\(RFC822\\.TEXT \\{44\\}\r\nShall we.*\\)", "a1 OK…")))
        t.append(T("UID FETCH returns the UID", select,
                   S("a1 UID FETCH 2 FLAGS", "re:\\* 2 FETCH \\((UID 2 FLAGS \\(.*\\)|FLAGS \\(.*\\) UID 2)\\)", "a1 OK…")))
        t.append(T("UID FETCH n:* beyond the last UID names the last", select,
                   S("a1 UID FETCH 100:* UID", "* 5 FETCH (UID 5)", "a1 OK…")))
        t.append(T("UID FETCH of absent UIDs answers nothing", select, S("a1 UID FETCH 10:20 UID", "a1 OK…", forbid: ["* # FETCH…"])))
        t.append(T("FETCH in EXAMINE does not set \\Seen",
                   S("a1 EXAMINE INBOX", "a1 OK [READ-ONLY]…"), S("a2 FETCH 4 BODY[TEXT]", "a2 OK…", forbid: ["…\\Seen…"]),
                   S("a3 FETCH 4 FLAGS", "a3 OK…", forbid: ["…\\Seen…"])))
        t.append(T("FETCH MODSEQ", select, S("a1 FETCH 1 MODSEQ", "* 1 FETCH (MODSEQ (#))", "a1 OK…")))
        t.append(T("FETCH BINARY decodes quoted-printable", select,
                   S("a1 FETCH 3 BINARY.PEEK[1]", "re:\\* 3 FETCH \\(BINARY\\[1\\] ~?\\{21\\}\r\nTwo caf\u{00e9}s, please\\.\r\n\\)", "a1 OK…")))
        t.append(T("FETCH BINARY.SIZE", select, S("a1 FETCH 3 BINARY.SIZE[1]", "* 3 FETCH (BINARY.SIZE[1] 21)", "a1 OK…")))
        t.append(T("FETCH BINARY decodes base64", select,
                   S("a1 FETCH 4 BINARY.PEEK[2]", "re:\\* 4 FETCH \\(BINARY\\[2\\] ~?\\{9\\}\r\n%PDF-1\\.4\n\\)", "a1 OK…")))
        t.append(T("FETCH with an invalid section is BAD", select, S("a1 FETCH 1 BODY[HEADERX]", "a1 BAD…")))
        t.append(T("FETCH with a missing ] is BAD", select, S("a1 FETCH 1 BODY[TEXT", "a1 BAD…"), S("a2 NOOP", "a2 OK…")))
        t.append(T("FETCH several items keep their order", select,
                   S("a1 FETCH 5 (UID RFC822.SIZE INTERNALDATE)", "* 5 FETCH (UID 5 RFC822.SIZE \(size(5)) INTERNALDATE \"10-Oct-2023 18:45:00 +0000\")", "a1 OK…")))

        // MARK: STORE
        t.append(T("STORE +FLAGS", select, S("a1 STORE 1 +FLAGS (\\Flagged)", "* 1 FETCH (FLAGS (\\Flagged \\Seen \\Recent))", "a1 OK…")))
        t.append(T("STORE -FLAGS", select, S("a1 STORE 2 -FLAGS (\\Answered)", "* 2 FETCH (FLAGS (\\Seen \\Recent))", "a1 OK…")))
        t.append(T("STORE FLAGS replaces", select, S("a1 STORE 3 FLAGS (\\Draft)", "* 3 FETCH (FLAGS (\\Draft \\Recent))", "a1 OK…")))
        t.append(T("STORE .SILENT answers nothing", select,
                   S("a1 STORE 3 +FLAGS.SILENT (\\Deleted)", "a1 OK…", forbid: ["* 3 FETCH…"]),
                   S("a2 FETCH 3 FLAGS", "* 3 FETCH (FLAGS (\\Flagged \\Deleted \\Recent))", "a2 OK…")))
        t.append(T("STORE a new keyword announces it in FLAGS", select,
                   S("a1 STORE 1 +FLAGS ($Important)", "re:\\* 1 FETCH \\(FLAGS \\(.*\\$Important.*\\)\\)", "* FLAGS (…$Important…)", "a1 OK…", ordered: false)))
        t.append(T("STORE \\Recent is refused", select, S("a1 STORE 1 +FLAGS (\\Recent)", "re:a1 (BAD|NO) .*")))
        t.append(T("STORE an unknown system flag is BAD", select, S("a1 STORE 1 +FLAGS (\\Frobbed)", "a1 BAD…")))
        t.append(T("STORE in a read-only mailbox", difference: "Dovecot answers OK (\"Store ignored with read-only mailbox\") and changes nothing; Postern answers NO, so the client knows its change was not made", S("a1 EXAMINE INBOX", "a1 OK…"), S("a2 STORE 1 +FLAGS (\\Flagged)", "a2 NO…")))
        t.append(T("UID STORE answers with UIDs", select,
                   S("a1 UID STORE 4 +FLAGS (\\Answered)", "re:\\* 4 FETCH \\((UID 4 FLAGS \\(\\\\Answered \\\\Recent\\)|FLAGS \\(\\\\Answered \\\\Recent\\) UID 4)\\)", "a1 OK…")))
        t.append(T("STORE on every message", select,
                   S("a1 STORE 1:* +FLAGS (\\Deleted)", "* 1 FETCH…", "* 2 FETCH…", "* 3 FETCH…", "* 4 FETCH…", "* 5 FETCH…", "a1 OK…")))
        t.append(T("STORE UNCHANGEDSINCE 0 always fails (MODIFIED)", select,
                   S("a1 STORE 1:2 (UNCHANGEDSINCE 0) +FLAGS (\\Flagged)", "a1 OK [MODIFIED 1:2]…", forbid: ["* # FETCH (FLAGS…"])))
        t.append(T("STORE UNCHANGEDSINCE in the future succeeds with MODSEQ", select,
                   S("a1 STORE 1 (UNCHANGEDSINCE 99999999999) +FLAGS (\\Flagged)", "re:\\* 1 FETCH \\(.*MODSEQ \\([0-9]+\\).*\\)", "a1 OK…",
                     forbid: ["…MODIFIED…"])))
        t.append(T("UID STORE UNCHANGEDSINCE names UIDs in MODIFIED", select,
                   S("a1 UID STORE 2,4 (UNCHANGEDSINCE 0) FLAGS ()", "a1 OK [MODIFIED 2,4]…")))
        t.append(T("STORE of a keyword, then SEARCH for it", select,
                   S("a1 STORE 2 +FLAGS.SILENT (Urgent)", "a1 OK…"), S("a2 SEARCH KEYWORD Urgent", "* SEARCH 2", "a2 OK…")))

        // MARK: SEARCH
        func search(_ name: String, _ criteria: String, _ result: String, difference: String? = nil) -> Transcript {
            Transcript(name: name, setup: .standard, steps: [select, S("a1 SEARCH \(criteria)", "* SEARCH\(result.isEmpty ? "" : " " + result)", "a1 OK…")],
                       expectedDifference: difference)
        }
        t.append(search("SEARCH ALL", "ALL", "1 2 3 4 5"))
        t.append(search("SEARCH SEEN", "SEEN", "1 2"))
        t.append(search("SEARCH UNSEEN", "UNSEEN", "3 4 5"))
        t.append(search("SEARCH FLAGGED", "FLAGGED", "3"))
        t.append(search("SEARCH ANSWERED", "ANSWERED", "2"))
        t.append(search("SEARCH UNANSWERED", "UNANSWERED", "1 3 4 5"))
        t.append(search("SEARCH KEYWORD", "KEYWORD $Work", "5"))
        t.append(search("SEARCH UNKEYWORD", "UNKEYWORD $Work", "1 2 3 4"))
        t.append(search("SEARCH DELETED of none", "DELETED", ""))
        t.append(search("SEARCH FROM (display name and address)", "FROM alice", "1 5"))
        t.append(search("SEARCH TO", "TO bob", "1 3"))
        t.append(search("SEARCH CC", "CC carol", "1"))
        t.append(search("SEARCH SUBJECT without case", "SUBJECT meeting", "1 2"))
        t.append(search("SEARCH BODY", "BODY agenda", "1"))
        t.append(search("SEARCH TEXT in headers and body", "TEXT erin", "4"))
        t.append(search("SEARCH HEADER with a value", "HEADER X-Priority 1", "3"))
        t.append(search("SEARCH HEADER with an empty value", "HEADER X-Priority \"\"", "3"))
        t.append(search("SEARCH OR", "OR FROM bob FLAGGED", "2 3"))
        t.append(search("SEARCH NOT", "NOT SEEN", "3 4 5"))
        t.append(search("SEARCH NOT with a parenthesised OR", "NOT (OR SEEN FLAGGED)", "4 5"))
        t.append(search("SEARCH nested OR with NOT and a list", "OR OR 1 2 (UNSEEN UNKEYWORD $Work)", "1 2 3 4"))
        t.append(search("SEARCH implicit AND", "UNSEEN FROM dave", "4"))
        t.append(search("SEARCH SINCE (internal date)", "SINCE 1-Jan-2022", "3 4 5"))
        t.append(search("SEARCH BEFORE", "BEFORE 1-Jan-2021", "1"))
        t.append(search("SEARCH ON", "ON 1-Jan-2023", "4"))
        t.append(search("SEARCH SENTSINCE (Date: header)", "SENTSINCE 1-Jan-2023", "4 5"))
        t.append(search("SEARCH SENTBEFORE", "SENTBEFORE 1-Mar-2021", "1"))
        t.append(search("SEARCH SENTON uses the day as written", "SENTON 15-Mar-2021", "2"))
        t.append(search("SEARCH LARGER", "LARGER 600", "4"))
        t.append(search("SEARCH SMALLER", "SMALLER 600", "1 2 3 5"))
        t.append(search("SEARCH by UID", "UID 2:4", "2 3 4"))
        t.append(search("SEARCH UID n:*", "UID 4:*", "4 5"))
        t.append(search("SEARCH a sequence set with *", "3:*", "3 4 5"))
        t.append(search("SEARCH *", "*", "5"))
        t.append(search("SEARCH RECENT", "RECENT", "1 2 3 4 5"))
        t.append(search("SEARCH NEW", "NEW", "3 4 5"))
        t.append(search("SEARCH OLD", "OLD", ""))
        t.append(search("SEARCH CHARSET US-ASCII", "CHARSET US-ASCII SUBJECT report", "4"))
        t.append(T("SEARCH CHARSET UTF-8 finds an encoded-word subject", select,
                   S("a1 SEARCH CHARSET UTF-8 SUBJECT {5}\r\ncaf\u{00e9}", "+…", "* SEARCH 3", "a1 OK…")))
        t.append(T("SEARCH with an unknown charset", select,
                   S("a1 SEARCH CHARSET X-UNKNOWN-CHARSET ALL", "a1 NO [BADCHARSET…]…")))
        t.append(T("UID SEARCH answers UIDs", select,
                   S("a1 STORE 1 +FLAGS.SILENT (\\Deleted)", "a1 OK…"), S("a2 EXPUNGE", "a2 OK…"),
                   S("a3 UID SEARCH FLAGGED", "* SEARCH 3", "a3 OK…"), S("a4 SEARCH FLAGGED", "* SEARCH 2", "a4 OK…")))
        t.append(T("ESEARCH MIN MAX COUNT", select,
                   S("a1 SEARCH RETURN (MIN MAX COUNT) UNSEEN", "* ESEARCH (TAG \"a1\") MIN 3 MAX 5 COUNT 3", "a1 OK…")))
        t.append(T("ESEARCH ALL with UID", select,
                   S("a1 UID SEARCH RETURN (ALL) ALL", "* ESEARCH (TAG \"a1\") UID ALL 1:5", "a1 OK…")))
        t.append(T("ESEARCH RETURN () is ALL", select,
                   S("a1 SEARCH RETURN () SEEN", "* ESEARCH (TAG \"a1\") ALL 1:2", "a1 OK…")))
        t.append(T("ESEARCH with no match", select,
                   S("a1 SEARCH RETURN (MIN COUNT) KEYWORD $None", "* ESEARCH (TAG \"a1\") COUNT 0", "a1 OK…")))
        t.append(T("SEARCHRES: SAVE, then $", select,
                   S("a1 SEARCH RETURN (SAVE) FLAGGED", "a1 OK…", forbid: ["* ESEARCH…", "* SEARCH…"]),
                   S("a2 FETCH $ UID", "* 3 FETCH (UID 3)", "a2 OK…")))
        t.append(T("SEARCH MODSEQ answers the highest", select,
                   S("a1 SEARCH MODSEQ 1", "* SEARCH 1 2 3 4 5 (MODSEQ #)", "a1 OK…")))
        t.append(T("SEARCH with an unknown key is BAD", select, S("a1 SEARCH FROBBED", "a1 BAD…")))
        t.append(T("SEARCH with an invalid date is BAD", difference: "Dovecot takes 31-Feb-2020 (and matches nothing); the parser refuses a day the month does not have", select, S("a1 SEARCH SINCE 31-Feb-2020", "a1 BAD…")))
        t.append(T("SEARCH beyond the last message", select, S("a1 SEARCH 9", "re:a1 (BAD .*|OK .*)")))

        // MARK: COPY, MOVE, EXPUNGE, CLOSE
        t.append(T("COPY answers COPYUID", select, S("a1 COPY 1:2 Archive", "a1 OK [COPYUID # 1:2 1:2]…")))
        t.append(T("COPY to a missing mailbox asks to create it", select, S("a1 COPY 1 Nowhere", "a1 NO [TRYCREATE]…")))
        t.append(T("UID COPY of a list", select, S("a1 UID COPY 3,5 Archive", "a1 OK [COPYUID # 3,5 1:2]…")))
        t.append(T("COPY keeps the flags", select, S("a1 COPY 2 Archive", "a1 OK…"), S("a2 EXAMINE Archive", "a2 OK…"),
                   S("a3 FETCH 1 FLAGS", "re:\\* 1 FETCH \\(FLAGS \\(\\\\Answered \\\\Seen( \\\\Recent)?\\)\\)", "a3 OK…")))
        t.append(T("MOVE: COPYUID first, then EXPUNGE", select,
                   S("a1 MOVE 2 Archive", "* OK [COPYUID # 2 1]…", "* 2 EXPUNGE", "a1 OK…"),
                   S("a2 SEARCH ALL", "* SEARCH 1 2 3 4", "a2 OK…")))
        t.append(T("UID MOVE of a range", select,
                   S("a1 UID MOVE 4:5 Archive", "* OK [COPYUID # 4:5 1:2]…", "re:\\* [45] EXPUNGE", "* 4 EXPUNGE", "a1 OK…")))
        t.append(T("MOVE to a missing mailbox", select, S("a1 MOVE 1 Nowhere", "a1 NO [TRYCREATE]…", forbid: ["…EXPUNGE…"])))
        t.append(T("EXPUNGE renumbers as it goes", select, S("a1 STORE 2:3 +FLAGS.SILENT (\\Deleted)", "a1 OK…"),
                   S("a2 EXPUNGE", "re:\\* [23] EXPUNGE", "* 2 EXPUNGE", "a2 OK…"), S("a3 FETCH 1:* UID", "* 2 FETCH (UID 4)", "a3 OK…")))
        t.append(T("RFC 3501 §6.4.3: EXPUNGE of 3, 4, 7, 11", setup: .empty,
                   difference: "Dovecot announces the expunges from the highest number down (11, 7, 4, 3), which needs no renumbering; Postern follows the RFC example (3, 3, 5, 8). RFC 3501 §7.4.1 allows both",
                   S("a0 APPEND INBOX {22+}\r\n\(short) {22+}\r\n\(short) {22+}\r\n\(short) {22+}\r\n\(short) {22+}\r\n\(short) {22+}\r\n\(short)"
                     + " {22+}\r\n\(short) {22+}\r\n\(short) {22+}\r\n\(short) {22+}\r\n\(short) {22+}\r\n\(short)", "a0 OK…"),
                   S("a1 SELECT INBOX", "* 11 EXISTS", "a1 OK…"),
                   S("a2 STORE 3,4,7,11 +FLAGS.SILENT (\\Deleted)", "a2 OK…"),
                   S("a3 EXPUNGE", "* 3 EXPUNGE", "* 3 EXPUNGE", "* 5 EXPUNGE", "* 8 EXPUNGE", "a3 OK…")))
        t.append(T("UID EXPUNGE expunges only the named", select, S("a1 STORE 1:3 +FLAGS.SILENT (\\Deleted)", "a1 OK…"),
                   S("a2 UID EXPUNGE 2", "* 2 EXPUNGE", "a2 OK…", forbid: ["* 1 EXPUNGE", "* 3 EXPUNGE"]),
                   S("a3 SEARCH DELETED", "* SEARCH 1 2", "a3 OK…")))
        t.append(T("CLOSE expunges without a word", select, S("a1 STORE 1 +FLAGS.SILENT (\\Deleted)", "a1 OK…"),
                   S("a2 CLOSE", "a2 OK…", forbid: ["…EXPUNGE…"]), S("a3 STATUS INBOX (MESSAGES)", "* STATUS INBOX (MESSAGES 4)", "a3 OK…")))
        t.append(T("UNSELECT does not expunge", select, S("a1 STORE 1 +FLAGS.SILENT (\\Deleted)", "a1 OK…"),
                   S("a2 UNSELECT", "a2 OK…"), S("a3 STATUS INBOX (MESSAGES)", "* STATUS INBOX (MESSAGES 5)", "a3 OK…")))
        t.append(T("CLOSE of a read-only mailbox expunges nothing", select, S("a1 STORE 1 +FLAGS.SILENT (\\Deleted)", "a1 OK…"),
                   S("a2 EXAMINE INBOX", "a2 OK…"), S("a3 CLOSE", "a3 OK…"), S("a4 STATUS INBOX (MESSAGES)", "* STATUS INBOX (MESSAGES 5)", "a4 OK…")))
        t.append(T("EXPUNGE in a read-only mailbox", difference: "Dovecot answers OK and expunges nothing; Postern answers NO (RFC 3501 §6.4.3 gives no OK for a mailbox that cannot be changed)", S("a1 EXAMINE INBOX", "a1 OK…"), S("a2 EXPUNGE", "a2 NO…")))
        t.append(T("MOVE from a read-only mailbox", difference: "Dovecot 2.3 moves the message out of a mailbox selected with EXAMINE; Postern refuses, since RFC 6851 §3.3 MOVE expunges from the source, which EXAMINE forbids", S("a1 EXAMINE INBOX", "a1 OK…"), S("a2 MOVE 1 Archive", "a2 NO…")))
        t.append(T("CHECK", select, S("a1 CHECK", "a1 OK…")))
        t.append(T("CLOSE then FETCH is BAD", select, S("a1 CLOSE", "a1 OK…"), S("a2 FETCH 1 UID", "a2 BAD…")))

        // MARK: APPEND
        t.append(T("APPEND with flags and date answers APPENDUID",
                   S("a1 APPEND Archive (\\Seen) \"01-Jan-2024 00:00:00 +0000\" {22}\r\n\(short)", "+…", "a1 OK [APPENDUID # 1]…"),
                   S("a2 EXAMINE Archive", "a2 OK…"),
                   S("a3 FETCH 1 (FLAGS INTERNALDATE)", "re:\\* 1 FETCH \\(FLAGS \\(\\\\Seen( \\\\Recent)?\\) INTERNALDATE \"( 1|01)-Jan-2024 00:00:00 \\+0000\"\\)", "a3 OK…")))
        t.append(T("APPEND to a missing mailbox asks to create it",
                   S("a1 APPEND Nowhere {22}\r\n\(short)", "a1 NO [TRYCREATE]…")))
        t.append(T("APPEND to the selected mailbox announces it", select,
                   S("a1 APPEND INBOX {22+}\r\n\(short)", "* 6 EXISTS", "a1 OK [APPENDUID # 6]…")))
        t.append(T("MULTIAPPEND", S("a1 APPEND Archive {22+}\r\n\(short) (\\Flagged) {22+}\r\n\(short)", "a1 OK [APPENDUID # 1:2]…"),
                   S("a2 STATUS Archive (MESSAGES)", "* STATUS Archive (MESSAGES 2)", "a2 OK…")))
        t.append(T("APPEND of an empty message", S("a1 APPEND Archive {0+}\r\n", "a1 NO…")))
        t.append(T("APPEND with an impossible date", difference: "Dovecot accepts 32-Jan-2024; the parser refuses a date-time that does not exist (RFC 3501 §9 date-day-fixed is a day of the month)", S("a1 APPEND Archive \"32-Jan-2024 00:00:00 +0000\" {22+}\r\n\(short)", "a1 BAD…")))
        t.append(T("APPEND with a keyword", S("a1 APPEND Archive ($Todo) {22+}\r\n\(short)", "a1 OK…"),
                   S("a2 SELECT Archive", "* FLAGS (…$Todo…)", "a2 OK…")))
        t.append(T("APPEND with \\Recent is refused", S("a1 APPEND Archive (\\Recent) {22+}\r\n\(short)", "re:a1 (BAD|NO) .*")))
        t.append(T("APPEND with a LITERAL+ literal sends no continuation",
                   S("a1 APPEND Archive {22+}\r\n\(short)", "a1 OK…", forbid: ["+…"])))

        // MARK: Two sessions
        t.append(T("Another session's EXPUNGE arrives with NOOP",
                   select, S("b0 SELECT INBOX", "b0 OK…", session: 2),
                   S("b1 STORE 2 +FLAGS.SILENT (\\Deleted)", "b1 OK…", session: 2), S("b2 EXPUNGE", "* 2 EXPUNGE", "b2 OK…", session: 2),
                   S("a1 NOOP", "* 2 EXPUNGE", "a1 OK…")))
        t.append(T("No EXPUNGE while answering FETCH",
                   select, S("b0 SELECT INBOX", "b0 OK…", session: 2),
                   S("b1 STORE 2 +FLAGS.SILENT (\\Deleted)", "b1 OK…", session: 2), S("b2 EXPUNGE", "b2 OK…", session: 2),
                   S("a1 FETCH 1 FLAGS", "a1 OK…", forbid: ["* # EXPUNGE"]),
                   S("a2 STORE 1 +FLAGS (\\Flagged)", "a2 OK…", forbid: ["* # EXPUNGE"]),
                   S("a3 SEARCH ALL", "re:\\* SEARCH 1 (2 )?3 4 5", "a3 OK…", forbid: ["* # EXPUNGE"]),
                   S("a4 NOOP", "* 2 EXPUNGE", "a4 OK…")))
        t.append(T("A message fetched after another session expunged it",
                   select, S("b0 SELECT INBOX", "b0 OK…", session: 2),
                   S("b1 STORE 2 +FLAGS.SILENT (\\Deleted)", "b1 OK…", session: 2), S("b2 EXPUNGE", "b2 OK…", session: 2),
                   S("a1 FETCH 2 FLAGS", "re:a1 (OK|NO) .*", forbid: ["* # EXPUNGE"]),
                   S("a2 NOOP", "* 2 EXPUNGE", "a2 OK…")))
        t.append(T("Another session's APPEND arrives as EXISTS and RECENT",
                   select, S("b1 APPEND INBOX {22+}\r\n\(short)", "b1 OK…", session: 2),
                   S("a1 NOOP", "* 6 EXISTS", "* 6 RECENT", "a1 OK…", ordered: false)))
        t.append(T("Another session's flag change arrives as FETCH",
                   select, S("b0 SELECT INBOX", "b0 OK…", session: 2), S("b1 STORE 4 +FLAGS (\\Flagged)", "b1 OK…", session: 2),
                   S("a1 NOOP", "* 4 FETCH (FLAGS (\\Flagged \\Recent))", "a1 OK…")))
        t.append(T("IDLE: another session's APPEND",
                   select, S("a1 IDLE", "+ idling", until: "+…"),
                   S("b1 APPEND INBOX {22+}\r\n\(short)", "b1 OK…", session: 2),
                   W("* 6 EXISTS"), S("DONE", "a1 OK…", until: "a1 …")))
        t.append(T("IDLE: another session's EXPUNGE",
                   select, S("b0 SELECT INBOX", "b0 OK…", session: 2), S("a1 IDLE", "+ idling", until: "+…"),
                   S("b1 STORE 1 +FLAGS.SILENT (\\Deleted)", "b1 OK…", session: 2), S("b2 EXPUNGE", "b2 OK…", session: 2),
                   W("* 1 EXPUNGE"), S("DONE", "a1 OK…", until: "a1 …")))
        t.append(T("IDLE: another session's flag change",
                   select, S("b0 SELECT INBOX", "b0 OK…", session: 2), S("a1 IDLE", "+ idling", until: "+…"),
                   S("b1 STORE 5 +FLAGS (\\Seen)", "b1 OK…", session: 2),
                   W("* 5 FETCH…"), S("DONE", "a1 OK…", until: "a1 …")))
        t.append(T("IDLE ended by something other than DONE", select, S("a1 IDLE", "+ idling", until: "+…"),
                   S("NOPE", "a1 BAD…", until: "a1 …"), S("a2 NOOP", "a2 OK…")))

        // MARK: CONDSTORE, QRESYNC
        t.append(T("ENABLE CONDSTORE", S("a1 ENABLE CONDSTORE", "* ENABLED CONDSTORE", "a1 OK…")))
        t.append(T("ENABLE QRESYNC", S("a1 ENABLE QRESYNC", "re:\\* ENABLED (QRESYNC|CONDSTORE QRESYNC|QRESYNC CONDSTORE)", "a1 OK…")))
        t.append(T("ENABLE of something unknown", S("a1 ENABLE X-UNKNOWN", "a1 OK…", forbid: ["…X-UNKNOWN…"])))
        t.append(T("SELECT (CONDSTORE) reports HIGHESTMODSEQ", S("a1 SELECT INBOX (CONDSTORE)", "* OK [HIGHESTMODSEQ #]…", "a1 OK [READ-WRITE]…")))
        t.append(T("STORE after CONDSTORE carries MODSEQ", S("a1 SELECT INBOX (CONDSTORE)", "a1 OK…"),
                   S("a2 STORE 1 +FLAGS (\\Flagged)", "re:\\* 1 FETCH \\(.*MODSEQ \\([0-9]+\\).*\\)", "a2 OK…")))
        t.append(T("FETCH CHANGEDSINCE", S("a1 SELECT INBOX (CONDSTORE)", "* OK [HIGHESTMODSEQ «m»]…", "a1 OK…"),
                   S("a2 STORE 4 +FLAGS.SILENT (\\Flagged)", "a2 OK…"),
                   S("a3 FETCH 1:* FLAGS (CHANGEDSINCE «m»)", "re:\\* 4 FETCH \\(.*MODSEQ.*\\)", "a3 OK…", forbid: ["* 1 FETCH…", "* 5 FETCH…"])))
        t.append(T("EXPUNGE under QRESYNC is VANISHED", S("a1 ENABLE QRESYNC", "a1 OK…"), select,
                   S("a2 STORE 2 +FLAGS.SILENT (\\Deleted)", "a2 OK…"), S("a3 EXPUNGE", "* VANISHED 2", "a3 OK…", forbid: ["…EXPUNGE…"])))
        t.append(T("SELECT with QRESYNC resynchronises",
                   S("a1 ENABLE QRESYNC", "a1 OK…"),
                   S("a2 SELECT INBOX", "* OK [UIDVALIDITY «v»]…", "* OK [HIGHESTMODSEQ «m»]…", "a2 OK…", ordered: false),
                   S("a3 STORE 3 +FLAGS.SILENT (\\Deleted)", "a3 OK…"), S("a4 EXPUNGE", "* VANISHED 3", "a4 OK…"),
                   S("a5 STORE 1 +FLAGS (\\Flagged)", "a5 OK…"), S("a6 UNSELECT", "a6 OK…"),
                   S("a7 SELECT INBOX (QRESYNC («v» «m» 1:5))", "* VANISHED (EARLIER) 3", "re:\\* 1 FETCH \\(.*UID 1.*\\\\Flagged.*\\)", "a7 OK…")))
        t.append(T("UID FETCH CHANGEDSINCE with VANISHED",
                   S("a1 ENABLE QRESYNC", "a1 OK…"), S("a2 SELECT INBOX", "* OK [HIGHESTMODSEQ «m»]…", "a2 OK…"),
                   S("a3 STORE 2 +FLAGS.SILENT (\\Deleted)", "a3 OK…"), S("a4 EXPUNGE", "a4 OK…"),
                   S("a5 UID FETCH 1:* FLAGS (CHANGEDSINCE «m» VANISHED)", "* VANISHED (EARLIER) 2", "a5 OK…")))
        t.append(T("Reselecting under QRESYNC says CLOSED", S("a1 ENABLE QRESYNC", "a1 OK…"), select,
                   S("a2 SELECT Archive", "* OK [CLOSED]…", "a2 OK…")))
        t.append(T("SELECT QRESYNC without ENABLE is BAD", S("a1 SELECT INBOX (QRESYNC (1 1))", "a1 BAD…")))

        // MARK: NAMESPACE, QUOTA, ACL
        t.append(T("NAMESPACE", setup: .empty, S("a1 NAMESPACE", "* NAMESPACE ((\"\" \"/\")) ((\"Other Users/\" \"/\")) NIL", "a1 OK…")))
        t.append(T("GETQUOTAROOT", S("a1 GETQUOTAROOT INBOX", "* QUOTAROOT INBOX \"User quota\"", "* QUOTA \"User quota\" (STORAGE # 102400)", "a1 OK…")))
        t.append(T("GETQUOTA", S("a1 GETQUOTA \"User quota\"", "* QUOTA \"User quota\" (STORAGE # 102400)", "a1 OK…")))
        t.append(T("SETQUOTA is refused", S("a1 SETQUOTA \"User quota\" (STORAGE 1)", "re:a1 (NO|BAD) .*")))
        t.append(T("MYRIGHTS on one's own INBOX", setup: .empty, S("a1 MYRIGHTS INBOX", "re:\\* MYRIGHTS INBOX [a-z]*l[a-z]*", "a1 OK…")))
        t.append(T("GETACL of one's own INBOX", setup: .empty, S("a1 GETACL INBOX", "* ACL INBOX …", "a1 OK…")))
        t.append(T("SETACL, then GETACL shows the entry", setup: .empty,
                   S("a1 SETACL Archive $USERB lr", "a1 OK…"), S("a2 GETACL Archive", "* ACL Archive …$USERB lr…", "a2 OK…")))
        t.append(T("A shared mailbox appears under Other Users", setup: .empty,
                   S("a1 SETACL Archive $USERB lr", "a1 OK…"),
                   S("b1 LIST \"\" \"Other Users/*\"", "re:\\* LIST \\(.*\\) \"/\" \"Other Users/$USER/Archive\"", "b1 OK…", session: 3)))
        t.append(T("MYRIGHTS on a shared mailbox", setup: .empty,
                   S("a1 SETACL Archive $USERB lr", "a1 OK…"),
                   S("b1 MYRIGHTS \"Other Users/$USER/Archive\"", "* MYRIGHTS \"Other Users/$USER/Archive\" lr", "b1 OK…", session: 3)))
        t.append(T("A shared mailbox with read rights only is selected read-only",
                   select, S("a1 COPY 1 Archive", "a1 OK…"),
                   S("a2 SETACL Archive $USERB lr", "a2 OK…"),
                   S("b1 SELECT \"Other Users/$USER/Archive\"", "* 1 EXISTS", "b1 OK [READ-ONLY]…", session: 3),
                   S("b2 FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]", "* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {29}\r\nSubject: Meeting tomorrow\r\n\r\n)", "b2 OK…", session: 3)))
        t.append(T("DELETEACL takes the mailbox away again", setup: .empty,
                   S("a1 SETACL Archive $USERB lr", "a1 OK…"), S("a2 DELETEACL Archive $USERB", "a2 OK…"),
                   S("b1 SELECT \"Other Users/$USER/Archive\"", "b1 NO…", session: 3)))
        t.append(T("LISTRIGHTS", setup: .empty, S("a1 LISTRIGHTS Archive $USERB", "re:\\* LISTRIGHTS Archive \\S+ \"\" .*", "a1 OK…")))
        t.append(T("SETACL with an unknown right", setup: .empty, S("a1 SETACL Archive $USERB lrZ", "re:a1 (BAD|NO) .*")))
        t.append(T("Another user cannot see a mailbox without an ACL", setup: .empty,
                   S("b1 SELECT \"Other Users/$USER/Archive\"", "b1 NO…", session: 3)))

        // MARK: LIST, LSUB, mailbox management
        t.append(T("LIST with an empty pattern gives the delimiter", setup: .empty,
                   S("a1 LIST \"\" \"\"", "* LIST (\\Noselect) \"/\" \"\"", "a1 OK…")))
        t.append(T("LIST * lists every mailbox with special use", setup: .empty,
                   S("a1 LIST \"\" *", "re:\\* LIST \\(.*\\) \"/\" INBOX", "re:\\* LIST \\(.*\\\\Sent.*\\) \"/\" Sent", "re:\\* LIST \\(.*\\\\Trash.*\\) \"/\" Trash",
                     "a1 OK…", ordered: false)))
        t.append(T("LIST % stays at the top level", setup: .empty, S("a1 CREATE Work/Reports", "a1 OK…"),
                   S("a2 LIST \"\" %", "re:\\* LIST \\((\\\\Noselect )?\\\\HasChildren\\) \"/\" Work", "a2 OK…", forbid: ["…Work/Reports…"])))
        t.append(T("LIST inbox matches INBOX", setup: .empty, S("a1 LIST \"\" inbox", "re:\\* LIST \\(.*\\) \"/\" INBOX", "a1 OK…")))
        t.append(T("LIST with a reference", setup: .empty, S("a1 CREATE Work/Reports", "a1 OK…"),
                   S("a2 LIST Work/ %", "* LIST (\\HasNoChildren) \"/\" Work/Reports", "a2 OK…")))
        t.append(T("LIST with * inside the pattern", setup: .empty, S("a1 CREATE Work/Reports", "a1 OK…"),
                   S("a2 LIST \"\" *ork*", "re:\\* LIST \\((\\\\Noselect )?\\\\HasChildren\\) \"/\" Work", "* LIST (\\HasNoChildren) \"/\" Work/Reports", "a2 OK…", ordered: false)))
        t.append(T("LIST of a name that matches nothing", setup: .empty, S("a1 LIST \"\" Nothing*", "a1 OK…", forbid: ["* LIST…"])))
        t.append(T("LIST (SPECIAL-USE) lists only special-use mailboxes", setup: .empty,
                   S("a1 LIST (SPECIAL-USE) \"\" *", "re:\\* LIST \\(.*\\\\Drafts.*\\) \"/\" Drafts", "a1 OK…", forbid: ["…INBOX"])))
        t.append(T("LIST RETURN (SPECIAL-USE)", setup: .empty,
                   S("a1 LIST \"\" * RETURN (SPECIAL-USE)", "re:\\* LIST \\(.*\\) \"/\" INBOX", "re:\\* LIST \\(.*\\\\Junk.*\\) \"/\" Junk", "a1 OK…", ordered: false)))
        t.append(T("LIST (SUBSCRIBED)", setup: .empty, S("a1 CREATE Work", "a1 OK…"), S("a2 SUBSCRIBE Work", "a2 OK…"),
                   S("a3 LIST (SUBSCRIBED) \"\" *", "re:\\* LIST \\(.*\\\\Subscribed.*\\) \"/\" Work", "a3 OK…", forbid: ["…\"/\" Drafts/…"])))
        t.append(T("LIST (SUBSCRIBED) shows a subscribed name that does not exist", setup: .empty,
                   difference: "Dovecot refuses SUBSCRIBE of a name that does not exist, so there is nothing to list",
                   S("a1 SUBSCRIBE Ghost", "a1 OK…"),
                   S("a2 LIST (SUBSCRIBED) \"\" *", "re:\\* LIST \\(.*\\\\NonExistent.*\\) \"/\" Ghost", "a2 OK…")))
        t.append(T("LIST RETURN (CHILDREN)", setup: .empty, S("a1 CREATE Work/Reports", "a1 OK…"),
                   S("a2 LIST \"\" % RETURN (CHILDREN)", "re:\\* LIST \\((\\\\Noselect )?\\\\HasChildren\\) \"/\" Work", "a2 OK…")))
        t.append(T("LIST RETURN (STATUS)", S("a1 LIST \"\" INBOX RETURN (STATUS (MESSAGES UNSEEN))",
                                             "re:\\* LIST \\(.*\\) \"/\" INBOX", "* STATUS INBOX (MESSAGES 5 UNSEEN 3)", "a1 OK…")))
        t.append(T("LIST with several patterns", setup: .empty,
                   S("a1 LIST \"\" (INBOX Sent)", "re:\\* LIST \\(.*\\) \"/\" INBOX", "re:\\* LIST \\(.*\\) \"/\" Sent", "a1 OK…", ordered: false)))
        t.append(T("LIST (SUBSCRIBED RECURSIVEMATCH) gives CHILDINFO", setup: .empty,
                   S("a1 CREATE Work/Reports", "a1 OK…"), S("a2 SUBSCRIBE Work/Reports", "a2 OK…"),
                   S("a3 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %", "re:\\* LIST \\(.*\\) \"/\" Work \\(\"?CHILDINFO\"? \\(\"SUBSCRIBED\"\\)\\)", "a3 OK…")))
        t.append(T("LSUB", setup: .empty, S("a1 CREATE Work", "a1 OK…"), S("a2 SUBSCRIBE Work", "a2 OK…"),
                   S("a3 LSUB \"\" *", "re:\\* LSUB \\(.*\\) \"/\" Work", "a3 OK…")))
        t.append(T("LSUB % lists an unsubscribed parent as \\Noselect", setup: .empty,
                   S("a1 CREATE Work/Reports", "a1 OK…"), S("a2 SUBSCRIBE Work/Reports", "a2 OK…"),
                   S("a3 LSUB \"\" %", "re:\\* LSUB \\(.*\\\\Noselect.*\\) \"/\" Work", "a3 OK…")))
        t.append(T("UNSUBSCRIBE", setup: .empty, S("a1 SUBSCRIBE Sent", "a1 OK…"), S("a2 UNSUBSCRIBE Sent", "a2 OK…"),
                   S("a3 LSUB \"\" *", "a3 OK…", forbid: ["…Sent"])))
        t.append(T("CREATE makes missing parents", setup: .empty, S("a1 CREATE A/B/C", "a1 OK…"),
                   S("a2 LIST \"\" A*", "re:\\* LIST \\(.*\\) \"/\" A", "re:\\* LIST \\(.*\\) \"/\" A/B", "* LIST (\\HasNoChildren) \"/\" A/B/C", "a2 OK…", ordered: false)))
        t.append(T("CREATE of an existing name", setup: .empty, S("a0 CREATE Dup", "a0 OK…"), S("a1 CREATE Dup", "a1 NO [ALREADYEXISTS]…")))
        t.append(T("CREATE INBOX", setup: .empty, S("a0 SELECT INBOX", "a0 OK…"), S("a1 CREATE INBOX", "a1 NO…")))
        t.append(T("CREATE with a trailing delimiter", setup: .empty, S("a1 CREATE Foo/", "a1 OK…"),
                   S("a2 LIST \"\" Foo", "re:\\* LIST \\((\\\\Noselect )?\\\\HasNoChildren\\) \"/\" Foo", "a2 OK…")))
        t.append(T("CREATE with a space in the name", setup: .empty, S("a1 CREATE \"My Box\"", "a1 OK…"),
                   S("a2 LIST \"\" My*", "* LIST (\\HasNoChildren) \"/\" \"My Box\"", "a2 OK…")))
        t.append(T("CREATE a modified UTF-7 name", setup: .empty, S("a1 CREATE Entw&APw-rfe", "a1 OK…"),
                   S("a2 LIST \"\" Entw*", "* LIST (\\HasNoChildren) \"/\" Entw&APw-rfe", "a2 OK…")))
        t.append(T("CREATE a name that is not modified UTF-7", setup: .empty, S("a1 CREATE Bad&Name", "re:a1 (BAD|NO) .*")))
        t.append(T("CREATE a name given as a literal", setup: .empty, S("a1 CREATE {4}\r\nLit1", "+…", "a1 OK…"),
                   S("a2 LIST \"\" Lit1", "* LIST (\\HasNoChildren) \"/\" Lit1", "a2 OK…")))
        t.append(T("DELETE", setup: .empty, S("a1 CREATE Gone", "a1 OK…"), S("a2 DELETE Gone", "a2 OK…"),
                   S("a3 LIST \"\" Gone", "a3 OK…", forbid: ["* LIST…"])))
        t.append(T("DELETE of a missing mailbox", setup: .empty, S("a1 DELETE Nowhere", "a1 NO [NONEXISTENT]…")))
        t.append(T("DELETE INBOX", setup: .empty, S("a1 DELETE INBOX", "a1 NO…")))
        t.append(T("DELETE of a mailbox with children", setup: .empty, S("a1 CREATE P/C", "a1 OK…"), S("a2 DELETE P", "a2 NO…")))
        t.append(T("RENAME", setup: .empty, S("a1 CREATE Old", "a1 OK…"), S("a2 RENAME Old New", "a2 OK…"),
                   S("a3 LIST \"\" *", "re:\\* LIST \\(.*\\) \"/\" New", "a3 OK…", forbid: ["…\"/\" Old"])))
        t.append(T("RENAME moves the children along", setup: .empty, S("a1 CREATE Old/Kid", "a1 OK…"), S("a2 RENAME Old New", "a2 OK…"),
                   S("a3 LIST \"\" New/*", "* LIST (\\HasNoChildren) \"/\" New/Kid", "a3 OK…")))
        t.append(T("RENAME onto an existing name", setup: .empty, S("a1 RENAME Sent Trash", "a1 NO…")))
        t.append(T("RENAME of a missing mailbox", setup: .empty, S("a1 RENAME Nowhere Somewhere", "a1 NO…")))
        t.append(T("RENAME INBOX moves its messages and leaves it empty",
                   difference: "Dovecot refuses (NO [CANNOT] Renaming INBOX isn't supported) with this mailbox layout; Postern does what RFC 3501 §6.3.5 describes",
                   S("a1 RENAME INBOX Old", "a1 OK…"), S("a2 STATUS INBOX (MESSAGES)", "* STATUS INBOX (MESSAGES 0)", "a2 OK…"),
                   S("a3 STATUS Old (MESSAGES)", "* STATUS Old (MESSAGES 5)", "a3 OK…")))
        t.append(T("SUBSCRIBE to a name that does not exist", setup: .empty,
                   difference: "Dovecot refuses to subscribe to a name that does not exist; Postern keeps it, as RFC 3501 §6.3.6 allows (subscriptions need not name existing mailboxes)", S("a1 SUBSCRIBE Ghost", "a1 OK…")))

        // MARK: Syntax and literals
        t.append(T("A mailbox name as a synchronizing literal", S("a1 SELECT {5}\r\nINBOX", "+…", "* 5 EXISTS", "a1 OK…")))
        t.append(T("LITERAL+ needs no continuation", S("a1 SELECT {5+}\r\nINBOX", "* 5 EXISTS", "a1 OK…", forbid: ["+…"])))
        t.append(T("A zero-length literal", setup: .empty, S("a1 LIST \"\" {0}\r\n", "+…", "* LIST (\\Noselect) \"/\" \"\"", "a1 OK…")))
        t.append(T("Quoted mailbox names", S("a1 SELECT \"INBOX\"", "a1 OK…")))
        t.append(T("Commands ended by a bare LF", setup: .empty, S("a1 NOOP\na2 NOOP", "a1 OK…", "a2 OK…", until: "a2 …")))
        t.append(T("Pipelined commands are answered in order", setup: .empty,
                   S("a1 NOOP\r\na2 CAPABILITY\r\na3 NOOP", "a1 OK…", "* CAPABILITY…", "a2 OK…", "a3 OK…", until: "a3 …")))
        t.append(T("Two spaces between tag and command", setup: .empty, S("a1  NOOP", "a1 BAD…")))
        t.append(T("An unknown UID command", select, S("a1 UID FROB 1", "a1 BAD…")))
        t.append(T("A literal with the wrong keyword after it is BAD", setup: .empty,
                   difference: "Dovecot selects INBOX and ignores the extra argument; the parser refuses arguments SELECT does not take",
                   S("a1 SELECT {5}\r\nINBOX EXTRA", "+…", "a1 BAD…"), S("a2 NOOP", "a2 OK…")))
        t.append(T("An unbalanced parenthesis is BAD", select, S("a1 FETCH 1 (FLAGS", "a1 BAD…"), S("a2 NOOP", "a2 OK…")))
        t.append(T("Escapes in quoted strings", setup: .empty, S("a1 LOGIN \"$USER\" \"transcript\\-pw\"", "re:a1 (BAD|NO) .*")))
        return t
    }
}
