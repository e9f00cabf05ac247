import PluginAPI

/// Why a SEARCH cannot be asked of the store.
enum SearchTranslationError: Error, Equatable {
    /// CHARSET other than US-ASCII or UTF-8: `NO [BADCHARSET (US-ASCII UTF-8)]`.
    case badCharset(String)
    /// A message sequence number beyond the mailbox: BAD.
    case invalidSequenceSet
    /// `$` without a saved result is an empty set (RFC 5182 §2.1), so this is never thrown for
    /// it; kept for sets the session cannot resolve.
    case noSavedResult
}

/// Turns an IMAP SEARCH key into the store's `SearchQuery`: sequence numbers become UID ranges
/// through the session's view, \Recent/NEW/OLD become the session's UID set, FROM/TO/CC/BCC/SUBJECT
/// become header criteria, dates become day numbers. Pure: the view and saved result are given.
struct SearchTranslator {
    let view: MailboxView
    /// RFC 5182 `$`: UIDs of the last `SEARCH RETURN (SAVE)`, nil when none was saved.
    let savedResult: [UInt32]?

    /// The charsets search strings may be in.
    static let charsets = ["US-ASCII", "UTF-8"]

    func translate(_ command: IMAPSearchCommand) throws -> SearchQuery {
        if let charset = command.charset, !Self.charsets.contains(charset.uppercased()) {
            throw SearchTranslationError.badCharset(charset)
        }
        return try translate(command.key)
    }

    func translate(_ key: IMAPSearchKey) throws -> SearchQuery {
        switch key {
        case .all: return .all
        case .answered: return .flag("\\Answered")
        case .deleted: return .flag("\\Deleted")
        case .draft: return .flag("\\Draft")
        case .flagged: return .flag("\\Flagged")
        case .seen: return .flag("\\Seen")
        case .unanswered: return .not(.flag("\\Answered"))
        case .undeleted: return .not(.flag("\\Deleted"))
        case .undraft: return .not(.flag("\\Draft"))
        case .unflagged: return .not(.flag("\\Flagged"))
        case .unseen: return .not(.flag("\\Seen"))
        case .keyword(let flag): return .flag(flag.name)
        case .unkeyword(let flag): return .not(.flag(flag.name))
        case .recent: return recentQuery
        case .new: return .and([recentQuery, .not(.flag("\\Seen"))])
        case .old: return .not(recentQuery)
        case .bcc(let s): return .header(name: "Bcc", value: text(s))
        case .cc(let s): return .header(name: "Cc", value: text(s))
        case .from(let s): return .header(name: "From", value: text(s))
        case .to(let s): return .header(name: "To", value: text(s))
        case .subject(let s): return .header(name: "Subject", value: text(s))
        case .header(let name, let s): return .header(name: name, value: text(s))
        case .body(let s): return .body(text(s))
        case .text(let s): return .text(text(s))
        case .larger(let n): return .larger(Int(clamping: n))
        case .smaller(let n): return .smaller(Int(clamping: n))
        case .before(let d): return .internalDate(.before, day: Int64(d.daysSince1970))
        case .on(let d): return .internalDate(.on, day: Int64(d.daysSince1970))
        case .since(let d): return .internalDate(.since, day: Int64(d.daysSince1970))
        case .sentBefore(let d): return .sentDate(.before, day: Int64(d.daysSince1970))
        case .sentOn(let d): return .sentDate(.on, day: Int64(d.daysSince1970))
        case .sentSince(let d): return .sentDate(.since, day: Int64(d.daysSince1970))
        // Per-flag metadata MODSEQs are not kept: the message's MODSEQ stands for all of them,
        // which RFC 7162 §3.1.5 allows (a server may return a superset).
        case .modSeq(_, let value): return .modseqAtLeast(value)
        case .uid(let set):
            if set.isSavedResult { return .uids(ranges(savedResult ?? [])) }
            // `*` is the largest UID in the mailbox, so ranges are resolved against the view.
            return .uids(set.resolved(largest: view.largestUID))
        case .sequenceSet(let set):
            if set.isSavedResult { return .uids(ranges(savedResult ?? [])) }
            if set.exceeds(UInt32(view.count)) { throw SearchTranslationError.invalidSequenceSet }
            return .uids(MailboxView.uidRanges(view.resolve(sequenceSet: set)))
        case .not(let k): return .not(try translate(k))
        case .or(let a, let b): return .or(try translate(a), try translate(b))
        case .and(let keys): return .and(try keys.map(translate))
        }
    }

    private var recentQuery: SearchQuery { .uids(ranges(Array(view.recent))) }

    /// Search strings are UTF-8 or US-ASCII (a subset); invalid bytes become U+FFFD and match
    /// nothing real.
    private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    /// UIDs compressed into ascending ranges (an empty list matches nothing).
    private func ranges(_ list: [UInt32]) -> [ClosedRange<UInt32>] {
        var out: [ClosedRange<UInt32>] = []
        for uid in list.sorted() {
            if let last = out.last, last.upperBound != UInt32.max, uid <= last.upperBound + 1 {
                out[out.count - 1] = last.lowerBound...max(last.upperBound, uid)
            } else {
                out.append(uid...uid)
            }
        }
        return out
    }

    /// Whether the key asks about MODSEQ, which makes the answer carry `(MODSEQ n)` (RFC 7162 §3.1.5).
    static func mentionsModSeq(_ key: IMAPSearchKey) -> Bool {
        switch key {
        case .modSeq: return true
        case .not(let k): return mentionsModSeq(k)
        case .or(let a, let b): return mentionsModSeq(a) || mentionsModSeq(b)
        case .and(let keys): return keys.contains(where: mentionsModSeq)
        default: return false
        }
    }
}
