import GRDB
import PluginAPI

/// SEARCH from the index: the query as SQL (SearchIndex.swift) over the message rows and the
/// text kept per content file (`search_text`, filled at delivery and append from
/// `SearchableText`), confirming with `SearchMatcher` on the content only the rows SQL cannot
/// decide exactly. The answer is the matcher's over every message, without reading every message.
extension SQLiteStore {
    func search(user: String, mailbox: String, query: SearchQuery) async throws -> [UInt32] {
        let condition = SearchCondition(query)
        // Index criteria alone are exact in SQL: the UIDs are the answer.
        guard query.needsContent else {
            return try readingInline { db in
                let box = try Self.resolve(db, user, mailbox, needing: "r")
                // Unordered, sorted here: ORDER BY uid would make SQLite walk the (mailbox, uid)
                // index and test every row rather than seek in the system flags' index.
                let sql = "SELECT m.uid FROM message m WHERE m.mailbox_id = ? AND (\(condition.maybe.sql))"
                var out: [UInt32] = []
                let cursor = try Int64.fetchCursor(db, sql: sql, arguments: [box.id] + condition.maybe.arguments)
                while let uid = try cursor.next() { out.append(UInt32(uid)) }
                return out.sorted()
            }
        }
        typealias Unsure = (uid: UInt32, flags: String, size: Int, date: Int64, modseq: Int64, root: String, digest: String)
        let (sure, unsure): ([UInt32], [Unsure]) = try readingInline { db in
            let box = try Self.resolve(db, user, mailbox, needing: "r")
            let sql = """
                SELECT m.uid, (\(condition.sure.sql)), m.flags, m.size, m.internal_date, m.modseq, m.blob_id
                FROM message m LEFT JOIN search_text t ON t.blob_id = m.blob_id
                WHERE m.mailbox_id = ? AND (\(condition.maybe.sql))
                """
            var sure: [UInt32] = [], unsure: [Unsure] = []
            // Where the content is only for the rows to confirm: few, usually.
            let place = try db.cachedStatement(sql: "SELECT partition, digest FROM blob WHERE id = ?")
            let cursor = try Row.fetchCursor(db, sql: sql, arguments: condition.sure.arguments + [box.id] + condition.maybe.arguments)
            while let row = try cursor.next() {
                let uid = UInt32(row[0] as Int64)
                if row[1] as Bool {
                    sure.append(uid)
                } else if let blob = try Row.fetchOne(place, arguments: [row[6] as Int64]) {
                    unsure.append((uid, row[2], row[3], row[4], row[5], blob[0], blob[1]))
                }
            }
            return (sure, unsure)
        }
        guard !unsure.isEmpty else { return sure.sorted() }
        let matcher = SearchMatcher(query)
        var confirmed: [UInt32] = []
        for row in unsure {
            let candidate = SearchCandidate(uid: row.uid, flags: StoreRules.flagWords(row.flags), size: row.size, internalDate: row.date,
                                            modseq: UInt64(row.modseq), content: { try BlobStore.read(root: row.root, digest: row.digest) })
            // A message expunged (its file removed) since the rows were read no longer matches.
            do {
                if try matcher.matches(candidate) { confirmed.append(candidate.uid) }
            } catch BlobStore.Failure.missing(_) {
                continue
            }
        }
        return (sure + confirmed).sorted()
    }

    /// Keeps what SEARCH compares with of a content file (nothing when it is kept already: the
    /// same content has the same text).
    static func recordSearchText(_ db: Database, blobID: Int64, _ text: SearchableText) throws {
        let statement = try db.cachedStatement(sql: """
            INSERT OR IGNORE INTO search_text (blob_id, header, header_ascii, body, body_ascii, sent_day, h_from, h_to, h_cc, h_bcc, h_subject)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        var arguments: StatementArguments = [blobID, text.header, isPlainASCII(text.header), text.body, isPlainASCII(text.body), text.sentDay]
        // Several fields of one name: one value per line (a needle never holds a line end).
        for name in SearchableText.fieldNames { arguments += [text.fields[name]?.joined(separator: "\n")] }
        try statement.execute(arguments: arguments)
    }

    /// Indexes the text of every content file that has none (after the migration that brought
    /// the index, or a restore). A file that cannot be read is left out: its messages are then
    /// confirmed on their content at each search, and `postern admin check` reports the file.
    static func indexUnindexedText(_ db: Database) throws {
        let rows = try Row.fetchAll(db, sql: "SELECT b.id, b.partition, b.digest FROM blob b LEFT JOIN search_text t ON t.blob_id = b.id WHERE t.blob_id IS NULL")
        for row in rows {
            guard let bytes = try? BlobStore.read(root: row["partition"], digest: row["digest"]) else { continue }
            try recordSearchText(db, blobID: row["id"], SearchableText(message: bytes))
        }
    }

    /// ASCII without NUL: where SQL's byte comparison is the matcher's (SearchIndex.swift).
    static func isPlainASCII(_ s: String) -> Bool { s.utf8.allSatisfy { $0 != 0 && $0 < 0x80 } }
}
