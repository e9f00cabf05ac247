import GRDB

/// The index of the embedded store: accounts and mailboxes in one SQLite database (WAL), so that
/// a delivery checks the account, its quota and inserts its rows in one transaction. Message
/// contents live in blob files (`BlobStore`); rows reference them by digest with a reference count.
enum Schema {
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE domain (
                    id INTEGER PRIMARY KEY,
                    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
                    created INTEGER NOT NULL);
                CREATE TABLE account (
                    id INTEGER PRIMARY KEY,
                    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
                    domain_id INTEGER NOT NULL REFERENCES domain(id),
                    secret TEXT NOT NULL,
                    enabled INTEGER NOT NULL DEFAULT 1,
                    admin_level TEXT NOT NULL DEFAULT 'user',
                    quota_bytes INTEGER,
                    quota_messages INTEGER,
                    partition TEXT NOT NULL,
                    created INTEGER NOT NULL);
                CREATE INDEX account_domain ON account(domain_id);
                CREATE TABLE mailbox (
                    id INTEGER PRIMARY KEY,
                    account_id INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
                    name TEXT NOT NULL,
                    special_use TEXT,
                    uidvalidity INTEGER NOT NULL,
                    uidnext INTEGER NOT NULL DEFAULT 1,
                    highest_modseq INTEGER NOT NULL DEFAULT 1,
                    subscribed INTEGER NOT NULL DEFAULT 1,
                    UNIQUE(account_id, name));
                CREATE TABLE blob (
                    id INTEGER PRIMARY KEY,
                    digest TEXT NOT NULL,
                    partition TEXT NOT NULL,
                    size INTEGER NOT NULL,
                    refs INTEGER NOT NULL,
                    UNIQUE(partition, digest));
                CREATE TABLE message (
                    id INTEGER PRIMARY KEY,
                    mailbox_id INTEGER NOT NULL REFERENCES mailbox(id) ON DELETE CASCADE,
                    uid INTEGER NOT NULL,
                    blob_id INTEGER NOT NULL REFERENCES blob(id),
                    flags TEXT NOT NULL DEFAULT '',
                    modseq INTEGER NOT NULL,
                    internal_date INTEGER NOT NULL,
                    size INTEGER NOT NULL,
                    UNIQUE(mailbox_id, uid));
                CREATE INDEX message_blob ON message(blob_id);
                """)
        }
        // The highest UIDVALIDITY of the account's deleted mailboxes, so that a mailbox created
        // again under a freed name never gets a UIDVALIDITY already used (RFC 3501 §2.3.1.1).
        m.registerMigration("v2") { db in
            try db.execute(sql: "ALTER TABLE account ADD COLUMN uidvalidity_floor INTEGER NOT NULL DEFAULT 0")
        }
        // RFC 4314 ACLs (rows only for grants: an owner's rights are implicit) and subscriptions
        // by name (RFC 3501 lets a client subscribe to a name that does not exist, and a shared
        // mailbox's subscription belongs to the subscriber, not the owner).
        m.registerMigration("v3") { db in
            try db.execute(sql: """
                CREATE TABLE acl (
                    mailbox_id INTEGER NOT NULL REFERENCES mailbox(id) ON DELETE CASCADE,
                    identifier TEXT NOT NULL COLLATE NOCASE,
                    rights TEXT NOT NULL,
                    PRIMARY KEY (mailbox_id, identifier));
                CREATE INDEX acl_identifier ON acl(identifier);
                CREATE TABLE subscription (
                    account_id INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
                    name TEXT NOT NULL,
                    PRIMARY KEY (account_id, name));
                INSERT INTO subscription (account_id, name) SELECT account_id, name FROM mailbox WHERE subscribed = 1;
                """)
        }
        // Aliases (and `@domain` catch-alls), owned by the store beside the accounts so that one
        // transaction can refuse an alias that shadows an account and vice versa.
        m.registerMigration("v4") { db in
            try db.execute(sql: """
                CREATE TABLE alias (
                    address TEXT PRIMARY KEY COLLATE NOCASE,
                    domain_id INTEGER NOT NULL REFERENCES domain(id),
                    targets TEXT NOT NULL);
                """)
        }
        // Forwarding and vacation settings per account (JSON), and the log that keeps an
        // auto-reply to one per sender per period.
        m.registerMigration("v5") { db in
            try db.execute(sql: """
                ALTER TABLE account ADD COLUMN forwarding TEXT;
                ALTER TABLE account ADD COLUMN vacation TEXT;
                CREATE TABLE vacation_log (
                    account_id INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
                    sender TEXT NOT NULL COLLATE NOCASE,
                    sent INTEGER NOT NULL,
                    PRIMARY KEY (account_id, sender));
                """)
        }
        // Which queue deliveries each account received, so the queue's retry after a crash
        // between this commit and its own record finds the recipient done (exactly once).
        m.registerMigration("v6") { db in
            try db.execute(sql: """
                CREATE TABLE delivery_log (
                    delivery_id TEXT NOT NULL,
                    account_id INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
                    delivered INTEGER NOT NULL,
                    PRIMARY KEY (delivery_id, account_id));
                CREATE INDEX delivery_log_age ON delivery_log(delivered);
                """)
        }
        // What changed since a MODSEQ (an IMAP session catching up, CONDSTORE) without reading
        // every row of the mailbox.
        m.registerMigration("v7") { db in
            try db.execute(sql: "CREATE INDEX message_modseq ON message(mailbox_id, modseq)")
        }
        // Each mailbox's message count and bytes, kept by triggers on every path that adds,
        // removes or moves a message row (delivery, append, copy, move, expunge, cascades,
        // restore), so quota checks and usage read a few mailbox rows instead of summing every
        // message of the account on each append and delivery.
        m.registerMigration("v8") { db in
            try db.execute(sql: """
                ALTER TABLE mailbox ADD COLUMN message_count INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE mailbox ADD COLUMN message_bytes INTEGER NOT NULL DEFAULT 0;
                CREATE TRIGGER message_counted AFTER INSERT ON message BEGIN
                    UPDATE mailbox SET message_count = message_count + 1, message_bytes = message_bytes + NEW.size WHERE id = NEW.mailbox_id;
                END;
                CREATE TRIGGER message_uncounted AFTER DELETE ON message BEGIN
                    UPDATE mailbox SET message_count = message_count - 1, message_bytes = message_bytes - OLD.size WHERE id = OLD.mailbox_id;
                END;
                CREATE TRIGGER message_recounted AFTER UPDATE OF mailbox_id, size ON message BEGIN
                    UPDATE mailbox SET message_count = message_count - 1, message_bytes = message_bytes - OLD.size WHERE id = OLD.mailbox_id;
                    UPDATE mailbox SET message_count = message_count + 1, message_bytes = message_bytes + NEW.size WHERE id = NEW.mailbox_id;
                END;
                """)
            try recount(db)
        }
        // App passwords (AppPasswords.swift): generated secrets limited to some protocols,
        // revocable one by one; kept as SHA-256 of the secret, looked up by that hash.
        m.registerMigration("main-app-passwords") { db in
            try db.execute(sql: """
                CREATE TABLE app_password (
                    account_id INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
                    name TEXT NOT NULL,
                    scopes TEXT NOT NULL,
                    hash TEXT NOT NULL UNIQUE,
                    created INTEGER NOT NULL,
                    last_used INTEGER,
                    PRIMARY KEY (account_id, name));
                """)
        }
        // Per-mechanism stored secrets (CRAM-MD5, DIGEST-MD5, SCRAM-SHA-1): MechanismSecrets.swift.
        MechanismSecretSchema.register(&m)
        registerLegacyPasswordMigrations(&m)
        // Accounts whose passwords a directory checks (the ldap plugin provisions them at first
        // login or delivery): the credential backend answers "unknown user" for them, so the
        // directory's answer counts and a directory that is down is a temporary failure.
        m.registerMigration("auth-ldap-external-accounts") { db in
            try db.execute(sql: """
                CREATE TABLE external_account (
                    account_id INTEGER PRIMARY KEY REFERENCES account(id) ON DELETE CASCADE,
                    source TEXT NOT NULL,
                    provisioned INTEGER NOT NULL);
                """)
        }
        // What SEARCH compares header and body criteria with (SearchableText), per content file
        // (copies of a message share it), so that a search reads rows instead of parsing every
        // message (MailboxSearch.swift). Filled at delivery and append; existing messages here.
        // And the system flags of each message as bits, indexed, so that SEARCH FLAGGED or
        // UNSEEN seeks the matching rows (SearchIndex.swift).
        m.registerMigration("imap-search-text") { db in
            try db.execute(sql: """
                CREATE TABLE search_text (
                    blob_id INTEGER PRIMARY KEY REFERENCES blob(id) ON DELETE CASCADE,
                    header TEXT NOT NULL,
                    header_ascii INTEGER NOT NULL,
                    body TEXT NOT NULL,
                    body_ascii INTEGER NOT NULL,
                    sent_day INTEGER,
                    h_from TEXT, h_to TEXT, h_cc TEXT, h_bcc TEXT, h_subject TEXT);
                CREATE INDEX message_system_flags ON message(mailbox_id, \(SearchCondition.systemFlagBits("flags")), uid);
                """)
            try SQLiteStore.indexUnindexedText(db)
        }
        return m
    }

    /// Sets every mailbox's message count and bytes from its message rows (after a migration or
    /// a restore, which copies rows wholesale, counters included).
    static func recount(_ db: Database) throws {
        try db.execute(sql: """
            UPDATE mailbox SET message_count = (SELECT COUNT(*) FROM message WHERE mailbox_id = mailbox.id),
                               message_bytes = (SELECT COALESCE(SUM(size), 0) FROM message WHERE mailbox_id = mailbox.id)
            """)
    }

    /// What an account holds (RFC 9208 usage): the sum of its mailboxes' counters.
    static func usage(_ db: Database, accountID: Int64) throws -> (bytes: Int, messages: Int) {
        let row = try Row.fetchOne(db, sql: "SELECT COALESCE(SUM(message_bytes), 0), COALESCE(SUM(message_count), 0) FROM mailbox WHERE account_id = ?",
                                   arguments: [accountID])!
        return (row[0], row[1])
    }

    /// The mailboxes every new account gets, with their RFC 6154 special-use attribute.
    static let defaultMailboxes: [(name: String, specialUse: String?)] = [
        ("INBOX", nil), ("Sent", "\\Sent"), ("Drafts", "\\Drafts"), ("Trash", "\\Trash"),
        ("Junk", "\\Junk"), ("Archive", "\\Archive"),
    ]
}
