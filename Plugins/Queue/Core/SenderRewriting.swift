import Foundation
import PluginAPI

/// Outbound sender rewriting, as Postfix's cleanup does it: canonical maps first (a lookup table
/// of `address` or `@domain` to a new address or domain), then masquerading (`user@host.sub.
/// example.org` becomes `user@example.org` for a masquerade domain `example.org`). Applied to the
/// envelope sender and to the addresses of the From:, Sender: and Reply-To: fields; recipients
/// are never rewritten here (aliases do that).
struct SenderRewriter {
    let services: HostServices
    let canonicalTables: [String]
    let masqueradeDomains: [String]

    var isEmpty: Bool { canonicalTables.isEmpty && masqueradeDomains.isEmpty }

    func rewrite(_ address: String) async throws -> String {
        guard let parsed = EnvelopeAddress(address) else { return address }
        let local = parsed.local, domain = parsed.domain
        var result = address
        if let values = try await services.directory.lookup(address.lowercased(), in: canonicalTables), let first = values.first {
            result = first
        } else if let values = try await services.directory.lookup("@" + domain, in: canonicalTables), let first = values.first {
            // `@old.example  @new.example` keeps the local part.
            result = first.hasPrefix("@") ? local + first : first
        }
        guard let rewritten = EnvelopeAddress(result) else { return result }
        for masquerade in masqueradeDomains where rewritten.domain.hasSuffix("." + masquerade.lowercased()) {
            return rewritten.local + "@" + masquerade.lowercased()
        }
        return result
    }

    /// Rewrites the message file's sender fields in place when an address in them changes
    /// (through a new file and a rename, fsynced). Returns whether it changed.
    func rewriteHeader(file path: String) async throws -> Bool {
        guard let data = FileManager.default.contents(atPath: path) else { return false }
        let bytes = Array(data)
        let block = MailHeaderBlock(parsing: bytes)
        var replacements: [(range: Range<Int>, text: [UInt8])] = []
        for field in block.fields where ["From", "Sender", "Reply-To"].contains(where: field.hasName) {
            var value = String(decoding: field.rawValue, as: UTF8.self)
            var changed = false
            for mailbox in MailAddressList(parsing: field.value).mailboxes {
                let old = mailbox.address, new = try await rewrite(old)
                if new != old, value.contains(old) {
                    value = value.replacingOccurrences(of: old, with: new)
                    changed = true
                }
            }
            if changed {
                // The field's raw bytes start after "Name:"; keep the name as written.
                let start = field.offset + field.name.utf8.count + 1
                replacements.append((start..<(start + field.rawValue.count), Array(value.utf8)))
            }
        }
        guard !replacements.isEmpty else { return false }
        var out = bytes
        for r in replacements.sorted(by: { $0.range.lowerBound > $1.range.lowerBound }) { out.replaceSubrange(r.range, with: r.text) }
        let tmp = path + ".rewrite"
        // Not synced: the message is not accepted yet, and `enqueue` syncs what it queues.
        try Spool.write(out, to: tmp)
        guard rename(tmp, path) == 0 else { throw QueueError.io("rename \(tmp)", errno) }
        return true
    }
}
