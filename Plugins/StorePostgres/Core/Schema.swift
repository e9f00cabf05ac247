import Foundation
import PluginAPI
import PluginPostgres

/// The store's tables in PostgreSQL: the same model as store-sqlite's index (accounts, mailboxes,
/// messages referencing single-instance contents with a reference count), with the contents
/// themselves in `content.bytes` rather than in files, so that store nodes need no shared disk.
/// Names that compare without case (domains, accounts, aliases, ACL identifiers) are unique on
/// `lower(name)` and looked up the same way.
enum Schema {
    /// Each step once, in order; `schema_version` records how far a database is.
    static let steps: [String] = [
        """
        CREATE TABLE domain (
            id bigserial PRIMARY KEY,
            name text NOT NULL,
            created bigint NOT NULL);
        CREATE UNIQUE INDEX domain_name ON domain (lower(name));
        CREATE TABLE account (
            id bigserial PRIMARY KEY,
            name text NOT NULL,
            domain_id bigint NOT NULL REFERENCES domain(id),
            secret text NOT NULL,
            enabled boolean NOT NULL DEFAULT true,
            admin_level text NOT NULL DEFAULT 'user',
            quota_bytes bigint,
            quota_messages bigint,
            created bigint NOT NULL,
            -- The highest UIDVALIDITY of the account's deleted mailboxes (RFC 3501 2.3.1.1).
            uidvalidity_floor bigint NOT NULL DEFAULT 0,
            forwarding text,
            vacation text);
        CREATE UNIQUE INDEX account_name ON account (lower(name));
        CREATE INDEX account_domain ON account (domain_id);
        CREATE TABLE mailbox (
            id bigserial PRIMARY KEY,
            account_id bigint NOT NULL REFERENCES account(id) ON DELETE CASCADE,
            name text NOT NULL,
            special_use text,
            uidvalidity bigint NOT NULL,
            uidnext bigint NOT NULL DEFAULT 1,
            highest_modseq bigint NOT NULL DEFAULT 1,
            message_count bigint NOT NULL DEFAULT 0,
            message_bytes bigint NOT NULL DEFAULT 0,
            UNIQUE (account_id, name));
        CREATE TABLE content (
            id bigserial PRIMARY KEY,
            digest text NOT NULL UNIQUE,
            size bigint NOT NULL,
            refs bigint NOT NULL,
            bytes bytea NOT NULL);
        CREATE TABLE message (
            id bigserial PRIMARY KEY,
            mailbox_id bigint NOT NULL REFERENCES mailbox(id) ON DELETE CASCADE,
            uid bigint NOT NULL,
            content_id bigint NOT NULL REFERENCES content(id),
            flags text NOT NULL DEFAULT '',
            modseq bigint NOT NULL,
            internal_date bigint NOT NULL,
            size bigint NOT NULL,
            UNIQUE (mailbox_id, uid));
        CREATE INDEX message_content ON message (content_id);
        CREATE INDEX message_modseq ON message (mailbox_id, modseq);
        CREATE TABLE acl (
            mailbox_id bigint NOT NULL REFERENCES mailbox(id) ON DELETE CASCADE,
            identifier text NOT NULL,
            rights text NOT NULL);
        CREATE UNIQUE INDEX acl_entry ON acl (mailbox_id, lower(identifier));
        CREATE INDEX acl_identifier ON acl (lower(identifier));
        CREATE TABLE subscription (
            account_id bigint NOT NULL REFERENCES account(id) ON DELETE CASCADE,
            name text NOT NULL,
            PRIMARY KEY (account_id, name));
        CREATE TABLE alias (
            address text NOT NULL,
            domain_id bigint NOT NULL REFERENCES domain(id),
            targets text NOT NULL);
        CREATE UNIQUE INDEX alias_address ON alias (lower(address));
        CREATE TABLE vacation_log (
            account_id bigint NOT NULL REFERENCES account(id) ON DELETE CASCADE,
            sender text NOT NULL,
            sent bigint NOT NULL,
            PRIMARY KEY (account_id, sender));
        -- Which queue deliveries each account received (exactly-once local delivery).
        CREATE TABLE delivery_log (
            delivery_id text NOT NULL,
            account_id bigint NOT NULL REFERENCES account(id) ON DELETE CASCADE,
            delivered bigint NOT NULL,
            PRIMARY KEY (delivery_id, account_id));
        CREATE INDEX delivery_log_age ON delivery_log (delivered);
        -- Each mailbox's message count and bytes, kept by a trigger on every path that adds or
        -- removes a message row, so quota checks read a few mailbox rows.
        CREATE FUNCTION postern_count_message() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                UPDATE mailbox SET message_count = message_count + 1, message_bytes = message_bytes + NEW.size WHERE id = NEW.mailbox_id;
                RETURN NEW;
            END IF;
            UPDATE mailbox SET message_count = message_count - 1, message_bytes = message_bytes - OLD.size WHERE id = OLD.mailbox_id;
            RETURN OLD;
        END $$;
        CREATE TRIGGER message_counted AFTER INSERT OR DELETE ON message FOR EACH ROW EXECUTE FUNCTION postern_count_message();
        """,
    ]

    /// The mailboxes every new account starts with, as store-sqlite makes them.
    static let defaultMailboxes: [(name: String, specialUse: String?)] = [
        ("INBOX", nil), ("Sent", "\\Sent"), ("Drafts", "\\Drafts"), ("Trash", "\\Trash"),
        ("Junk", "\\Junk"), ("Archive", "\\Archive"),
    ]

    /// Brings the database up to date. Every worker of every node runs this at its first
    /// statement; a transaction-scoped advisory lock lets one at a time look, so two never both
    /// find the schema missing.
    static func migrate(_ client: PostgresClient, logger: Logger, within seconds: Double, server: String) async throws {
        do {
            try await client.withConnection(within: seconds, server: server) { connection in
                let sql = SQL(connection: connection, logger: logger)
                try await sql.run("BEGIN")
                do {
                    try await sql.run("SELECT pg_advisory_xact_lock(7403115)")
                    try await sql.run("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
                    let current = try await sql.value("SELECT max(version) FROM schema_version", as: Int.self) ?? 0
                    for (index, step) in steps.enumerated() where index + 1 > current {
                        for statement in statements(step) { try await sql.run(PostgresQuery(unsafeSQL: statement)) }
                        try await sql.run("INSERT INTO schema_version (version) VALUES (\(index + 1))")
                    }
                    try await sql.run("COMMIT")
                } catch {
                    _ = try? await sql.run("ROLLBACK")
                    throw error
                }
            }
        } catch let error as PSQLError {
            throw PostgresStore.translate(error)
        }
    }

    /// A step's statements one by one (the extended protocol takes one at a time): split at each
    /// `;` that ends a line outside a `$$` function body.
    static func statements(_ step: String) -> [String] {
        var out: [String] = [], current = "", inBody = false
        for line in step.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.trimmingCharacters(in: .whitespaces).hasPrefix("--") { continue }
            current += line + "\n"
            if line.components(separatedBy: "$$").count % 2 == 0 { inBody.toggle() }
            if !inBody, line.hasSuffix(";") {
                out.append(current.trimmingCharacters(in: .whitespacesAndNewlines))
                current = ""
            }
        }
        let rest = current.trimmingCharacters(in: .whitespacesAndNewlines)
        if !rest.isEmpty { out.append(rest) }
        return out
    }

    /// Messages and bytes of all the account's mailboxes.
    static func usage(_ sql: SQL, accountID: Int64) async throws -> (bytes: Int, messages: Int) {
        guard let row = try await sql.row("""
            SELECT COALESCE(SUM(message_bytes), 0)::bigint, COALESCE(SUM(message_count), 0)::bigint FROM mailbox WHERE account_id = \(accountID)
            """) else { return (0, 0) }
        let (bytes, messages) = try row.decode((Int, Int).self)
        return (bytes, messages)
    }
}
