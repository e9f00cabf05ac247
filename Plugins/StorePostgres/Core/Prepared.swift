import PluginAPI
import PluginPostgres

/// Statements every IMAP command runs, prepared once per connection (postgres-nio keeps them by
/// name): the server parses and plans them once instead of at every command.
enum Prepared {
    /// One's own mailbox and the account it belongs to.
    struct OwnMailbox: PostgresPreparedStatement {
        static let sql = """
            SELECT m.id, a.id, a.name, m.name, m.uidvalidity, m.uidnext, m.highest_modseq
            FROM account a JOIN mailbox m ON m.account_id = a.id WHERE lower(a.name) = lower($1) AND m.name = $2
            """
        typealias Row = (Int64, Int64, String, String, Int64, Int64, Int64)
        var user: String
        var mailbox: String

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 2)
            try bindings.append(user)
            try bindings.append(mailbox)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    /// The same, its row locked for the rest of the transaction.
    struct OwnMailboxLocked: PostgresPreparedStatement {
        static let sql = OwnMailbox.sql + " FOR UPDATE OF m"
        typealias Row = OwnMailbox.Row
        var user: String
        var mailbox: String

        func makeBindings() throws -> PostgresBindings { try OwnMailbox(user: user, mailbox: mailbox).makeBindings() }
        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    /// Bodies of messages of one's own mailbox, by UID.
    struct OwnContents: PostgresPreparedStatement {
        static let sql = """
            SELECT msg.uid, c.bytes FROM account a JOIN mailbox m ON m.account_id = a.id JOIN message msg ON msg.mailbox_id = m.id
            JOIN content c ON c.id = msg.content_id WHERE lower(a.name) = lower($1) AND m.name = $2 AND msg.uid = ANY($3)
            """
        typealias Row = (Int64, ByteBuffer)
        var user: String
        var mailbox: String
        var uids: [Int64]

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 3)
            try bindings.append(user)
            try bindings.append(mailbox)
            try bindings.append(uids)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    /// Index rows of one's own mailbox in a UID range.
    struct OwnMessages: PostgresPreparedStatement {
        static let sql = """
            SELECT msg.uid, msg.flags, msg.modseq, msg.internal_date, msg.size
            FROM account a JOIN mailbox m ON m.account_id = a.id JOIN message msg ON msg.mailbox_id = m.id
            WHERE lower(a.name) = lower($1) AND m.name = $2 AND msg.uid BETWEEN $3 AND $4 ORDER BY msg.uid
            """
        typealias Row = (Int64, String, Int64, Int64, Int)
        var user: String
        var mailbox: String
        var first: Int64
        var last: Int64

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 4)
            try bindings.append(user)
            try bindings.append(mailbox)
            try bindings.append(first)
            try bindings.append(last)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }
}

extension SQL {
    /// The rows of a prepared statement.
    func rows<Statement: PostgresPreparedStatement>(_ statement: Statement) async throws -> [Statement.Row] {
        var out: [Statement.Row] = []
        for try await row in try await connection.execute(statement, logger: logger) { out.append(row) }
        return out
    }
}
