import PluginAPI

// What a milter's answers mean to the filter chain: its verdicts as FilterVerdicts (with the
// reply texts Sendmail uses when the milter gives none), its end-of-message changes as
// FilterModifications.
enum MilterVerdictMapping {
    static func verdict(_ v: MilterAnswer.Verdict) -> FilterVerdict {
        switch v {
        case .continue, .skip: return .continue
        case .accept: return .accept
        case .discard: return .discard
        case .reject(let text): return .reject(text.map(reply) ?? MailReply(550, "5.7.1", "Command rejected"))
        case .tempfail(let text): return .tempfail(text.map(reply) ?? MailReply(451, "4.7.1", "Service unavailable - try again later"))
        }
    }

    /// The verdict and changes of an end-of-message answer. QUARANTINE is a change that puts the
    /// message on hold; a refusing verdict still wins over it (the chain's order of severity).
    static func endOfMessage(_ answer: MilterAnswer, leadingSpace: Bool) -> (FilterVerdict, [FilterModification]) {
        var verdict = verdict(answer.verdict)
        var changes: [FilterModification] = []
        var body: [UInt8]?
        // With SMFIP_HDR_LEADSPC the milter writes the space after the colon itself.
        func value(_ v: String) -> String { leadingSpace && v.hasPrefix(" ") ? String(v.dropFirst()) : v }
        for m in answer.modifications {
            switch m {
            case .addHeader(let name, let v): changes.append(.addHeader(name: name, value: value(v)))
            case .insertHeader(let index, let name, let v): changes.append(.insertHeader(index: Int(index), name: name, value: value(v)))
            case .changeHeader(let index, let name, let v):
                // Sendmail counts from 1 and takes 0 as 1; an empty value deletes the field.
                changes.append(.changeHeader(name: name, index: max(1, Int(index)), value: v.isEmpty ? nil : value(v)))
            case .addRecipient(let r, _): changes.append(.addRecipient(bare(r)))
            case .deleteRecipient(let r): changes.append(.removeRecipient(bare(r)))
            case .changeFrom(let s, _): changes.append(.changeSender(bare(s)))
            case .replaceBody(let chunk): body = (body ?? []) + chunk
            case .quarantine(let reason):
                if verdict.severity < FilterVerdict.quarantine(reason: reason).severity { verdict = .quarantine(reason: reason) }
            default: break
            }
        }
        if let body { changes.append(.replaceBody(body)) }
        return (verdict, changes)
    }

    /// An address without its angle brackets.
    static func bare(_ address: String) -> String {
        address.hasPrefix("<") && address.hasSuffix(">") ? String(address.dropFirst().dropLast()) : address
    }

    /// A SMFIR_REPLYCODE text (`550 5.7.1 text`, possibly several lines) as a reply.
    static func reply(_ text: String) -> MailReply {
        let lines = text.split(omittingEmptySubsequences: true, whereSeparator: { $0.isNewline })
        let code = Int(text.prefix(3)) ?? 550
        var enhanced: String?
        var texts: [String] = []
        for line in lines {
            var rest = line.dropFirst(min(4, line.count))
            let words = rest.split(separator: " ", maxSplits: 1)
            if let first = words.first, first.split(separator: ".").count == 3, first.allSatisfy({ $0.isNumber || $0 == "." }) {
                enhanced = enhanced ?? String(first)
                rest = words.count > 1 ? words[1] : ""
            }
            texts.append(String(rest))
        }
        return MailReply(code, enhanced, texts.joined(separator: " "))
    }
}
