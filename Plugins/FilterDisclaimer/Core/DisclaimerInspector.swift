import Foundation
import PluginAPI

/// The `disclaimer` filter: at end of message, the first profile that applies to the message
/// decides its disclaimer, which goes into its text parts (`DisclaimerPlanner`, `PartAppender`)
/// as body changes (`MIMERewrite`). Never refuses a message: the verdict is always `continue`.
package struct DisclaimerInspector: MessageInspector {
    /// What was done to a message, for the log and the tests.
    package enum Outcome: Sendable, Equatable {
        case noProfile
        /// Bigger than `maxBufferedBytes`: not rewritten (its end was never seen).
        case tooBig
        case signedSkipped(profile: String)
        case alreadyPresent(profile: String)
        case stamped(profile: String, parts: Int)
        /// Signed, or nothing to stamp: a new multipart/mixed around the message.
        case wrapped(profile: String)
        /// A text part's transfer encoding could not be written again.
        case unwritable(profile: String)
    }

    package let profiles: [DisclaimerProfile]
    package let maxBufferedBytes: Int
    let logger: Logger?

    package init(profiles: [DisclaimerProfile], maxBufferedBytes: Int = 32 << 20, logger: Logger? = nil) {
        self.profiles = profiles
        self.maxBufferedBytes = maxBufferedBytes
        self.logger = logger
    }

    package func inspect(_ message: FilterMessage) async -> (FilterVerdict, [FilterModification]) {
        let (outcome, modifications) = stamp(message)
        logger?.debug("disclaimer", metadata: ["outcome": "\(outcome)", "transaction": "\(message.connection.transactionID ?? "-")"])
        return (.continue, modifications)
    }

    /// The outcome and the modifications for `message`.
    package func stamp(_ message: FilterMessage) -> (Outcome, [FilterModification]) {
        guard let profile = profiles.first(where: {
            $0.applies(sender: message.sender, recipients: message.recipients, direction: message.connection.direction)
        }) else { return (.noProfile, []) }
        guard !message.isTruncated else { return (.tooBig, []) }
        let bytes = message.bytes
        let mime = message.mime()
        if DisclaimerPlanner.alreadyCarries(profile.text, mime.root, in: bytes)
            || DisclaimerPlanner.alreadyCarries(HTMLText.visibleText(profile.html), mime.root, in: bytes) {
            return (.alreadyPresent(profile: profile.name), [])
        }
        if DisclaimerPlanner.isSignedOrEncrypted(mime.root, in: bytes) {
            guard profile.signed == .wrap else { return (.signedSkipped(profile: profile.name), []) }
            return (.wrapped(profile: profile.name), Self.wrap(bytes, mime: mime, text: profile.text))
        }
        let targets = DisclaimerPlanner.targets(mime.root)
        guard !targets.isEmpty else {
            return (.wrapped(profile: profile.name), Self.wrap(bytes, mime: mime, text: profile.text))
        }
        let parts = mime.root.allParts
        var changes: [MIMERewrite.Change] = []
        for target in targets {
            switch target {
            case .text(let index, let kind):
                guard let part = parts.first(where: { $0.index == index }),
                      let change = PartAppender.change(for: part, in: bytes, kind: kind,
                                                       addition: kind == .html ? profile.html : profile.text) else {
                    return (.unwritable(profile: profile.name), [])
                }
                changes.append(change)
            case .newPart(let multipart):
                changes.append(.appendPart(multipart: multipart, bytes: MIMERewrite.textPart(profile.text)))
            }
        }
        return (.stamped(profile: profile.name, parts: changes.count), MIMERewrite.modifications(changes, message: bytes, mime: mime))
    }

    /// The message's content, untouched, as the first part of a new multipart/mixed whose second
    /// part is the disclaimer: a signature over that content still verifies.
    static func wrap(_ message: [UInt8], mime: MIMEMessage, text: String) -> [FilterModification] {
        let root = mime.root
        let boundary = "=_disclaimer_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        var entity: [UInt8] = []
        for field in root.fields where MIMERewrite.contentFields.contains(where: { field.hasName($0) }) {
            entity += Array(field.name.utf8) + [58] + field.rawValue + [13, 10]
        }
        if root.field("Content-Type") == nil { entity += Array("Content-Type: text/plain; charset=us-ascii\r\n".utf8) }
        entity += [13, 10] + Array(message[min(root.bodyOffset, message.count)...])
        var header = "Content-Type: multipart/mixed; boundary=\"\(boundary)\"\r\n"
        if root.field("MIME-Version") == nil { header += "MIME-Version: 1.0\r\n" }
        // The CRLF before each delimiter belongs to the delimiter: the entity keeps its last line end.
        let body = Array("--\(boundary)\r\n".utf8) + entity + Array("\r\n--\(boundary)\r\n".utf8)
            + MIMERewrite.textPart(text) + Array("\r\n--\(boundary)--\r\n".utf8)
        return MIMERewrite.modifications([.replacePart(index: 0, bytes: Array(header.utf8) + [13, 10] + body)],
                                         message: message, mime: mime)
    }
}
