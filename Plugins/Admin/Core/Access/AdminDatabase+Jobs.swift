import Foundation
import GRDB
import PluginAPI

/// A long change running in the background (a bulk import), with its progress, in the database
/// every worker shares: the console polls it from whichever worker answers.
struct AdminJob: Sendable, Equatable, Encodable {
    var id: String
    var owner: String
    /// `user.import`.
    var kind: String
    /// `running`, `done`, or `failed`.
    var state: String
    var done: Int
    var total: Int
    /// The finished job's answer (the import report) as JSON, or why it failed.
    var result: JSONValue?
    var error: String?
    var created: Int64
    var updated: Int64
}

extension AdminDatabase {
    /// A running job that has not moved for this long was cut off (its worker stopped).
    static let jobStallSeconds: Int64 = 300

    func createJob(owner: String, kind: String, total: Int) throws -> AdminJob {
        let now = Int64(Date().timeIntervalSince1970)
        let job = AdminJob(id: Self.randomToken(bytes: 12), owner: owner, kind: kind, state: "running", done: 0, total: total,
                           result: nil, error: nil, created: now, updated: now)
        try pool.write { db in
            // Finished jobs are kept a week.
            try db.execute(sql: "DELETE FROM admin_job WHERE updated < ? AND state != 'running'", arguments: [now - 7 * 86_400])
            try db.execute(sql: "INSERT INTO admin_job (id, owner, kind, state, done, total, created, updated) VALUES (?, ?, ?, ?, 0, ?, ?, ?)",
                           arguments: [job.id, owner, kind, job.state, total, now, now])
        }
        return job
    }

    /// `total`: the rows the job works through, once it knows (a file's rows less those refused
    /// before any is created).
    func progressJob(_ id: String, done: Int, total: Int) throws {
        try pool.write { db in
            try db.execute(sql: "UPDATE admin_job SET done = ?, total = ?, updated = ? WHERE id = ?",
                           arguments: [done, total, Int64(Date().timeIntervalSince1970), id])
        }
    }

    /// Ends a job with its answer (an Encodable value) or the reason it failed.
    func finishJob(_ id: String, result: some Encodable, error: String?) throws {
        let text = error == nil ? String(decoding: try JSONEncoder().encode(result), as: UTF8.self) : error!
        try pool.write { db in
            try db.execute(sql: "UPDATE admin_job SET state = ?, result = ?, updated = ?, done = CASE WHEN ? THEN total ELSE done END WHERE id = ?",
                           arguments: [error == nil ? "done" : "failed", text, Int64(Date().timeIntervalSince1970), error == nil, id])
        }
    }

    func job(_ id: String, now: Int64 = Int64(Date().timeIntervalSince1970)) throws -> AdminJob? {
        try pool.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM admin_job WHERE id = ?", arguments: [id]) else { return nil }
            var job = AdminJob(id: row["id"], owner: row["owner"], kind: row["kind"], state: row["state"], done: row["done"], total: row["total"],
                               result: nil, error: nil, created: row["created"], updated: row["updated"])
            let text: String? = row["result"]
            switch job.state {
            case "done": job.result = text.flatMap { try? JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) }
            case "failed": job.error = text
            default:
                if now - job.updated > Self.jobStallSeconds {
                    job.state = "failed"
                    job.error = "the job stopped making progress (its worker stopped): run it again; rows already created are refused as existing"
                }
            }
            return job
        }
    }
}
