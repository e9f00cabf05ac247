import PluginAPI
import PluginPostgres

/// SEARCH with the matcher every store shares (`SearchMatcher`), so both stores answer alike:
/// first over the index rows alone, then, for the messages whose answer needs their text, over
/// their contents read from the database in batches.
extension PostgresStore {
    /// Thrown by a candidate's content in the first pass: this one needs its bytes.
    private struct ContentNeeded: Error {}

    /// Contents read per statement in the second pass.
    static let searchBatch = 200

    func search(user: String, mailbox: String, query: SearchQuery) async throws -> [UInt32] {
        // Index criteria alone: one statement, the answer computed by PostgreSQL.
        if !query.needsContent {
            return try await reading { sql in
                let box = try await Self.resolve(sql, user, mailbox, needing: "r")
                var builder = SearchSQL(first: 1)
                let mailboxParameter = try builder.bind(box.id)
                guard let condition = try builder.condition(query) else { throw StorageError.temporary("search: no SQL for \(query)") }
                let statement = "SELECT uid FROM message WHERE mailbox_id = \(mailboxParameter) AND \(condition) ORDER BY uid"
                return try await sql.rows(PostgresQuery(unsafeSQL: statement, binds: builder.bindings)).map { UInt32(try $0.decode(Int64.self)) }
            }
        }
        let matcher = SearchMatcher(query)
        typealias Row = (uid: Int64, flags: String, modseq: Int64, date: Int64, size: Int)
        let (boxID, rows): (Int64, [Row]) = try await reading { sql in
            let box = try await Self.resolve(sql, user, mailbox, needing: "r")
            let rows = try await sql.rows("SELECT uid, flags, modseq, internal_date, size FROM message WHERE mailbox_id = \(box.id) ORDER BY uid")
                .map { try $0.decode((Int64, String, Int64, Int64, Int).self) }
            return (box.id, rows.map { Row($0.0, $0.1, $0.2, $0.3, $0.4) })
        }
        func candidate(_ row: Row, _ content: @escaping () throws -> [UInt8]) -> SearchCandidate {
            SearchCandidate(uid: UInt32(row.uid), flags: StoreRules.flagWords(row.flags), size: row.size, internalDate: row.date,
                            modseq: UInt64(row.modseq), content: content)
        }
        var found: [UInt32] = []
        var unsure: [Row] = []
        for row in rows {
            do {
                if try matcher.matches(candidate(row, { throw ContentNeeded() })) { found.append(UInt32(row.uid)) }
            } catch is ContentNeeded {
                unsure.append(row)
            }
        }
        for start in stride(from: 0, to: unsure.count, by: Self.searchBatch) {
            let batch = Array(unsure[start..<min(start + Self.searchBatch, unsure.count)])
            let bytes: [Int64: [UInt8]] = try await reading { sql in
                var out: [Int64: [UInt8]] = [:]
                for row in try await sql.rows("""
                    SELECT m.uid, c.bytes FROM message m JOIN content c ON c.id = m.content_id
                    WHERE m.mailbox_id = \(boxID) AND m.uid = ANY(\(batch.map(\.uid)))
                    """) {
                    let (uid, buffer) = try row.decode((Int64, ByteBuffer).self)
                    out[uid] = Array(buffer: buffer)
                }
                return out
            }
            // A message expunged since the rows were read no longer matches.
            for row in batch {
                guard let content = bytes[row.uid] else { continue }
                if try matcher.matches(candidate(row, { content })) { found.append(UInt32(row.uid)) }
            }
        }
        return found.sorted()
    }
}
