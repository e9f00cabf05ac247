/// Signs messages on their way out of the site (DKIM signatures, ARC seals): the SMTP transport
/// asks it for header fields to put on top of each message it sends to another host, after
/// every other change has been made (filters, masquerading, the 8BITMIME downgrade), so that
/// nothing changes the signed bytes afterwards. Registered by the plugin that holds the keys.
public protocol OutgoingMessageSigner: Sendable {
    /// The fields to prepend to `message` (each a whole field, `Name: value`, folded with CRLF
    /// and white space inside, without its final CRLF; in the order they go on top), or none.
    /// `message` is what will be sent: header block, empty line, body, CRLF line ends.
    func signatureFields(for message: [UInt8], envelope: Envelope) async -> [String]
}

extension OutgoingMessageSigner {
    /// `message` with the signer's fields on top.
    public func signed(_ message: [UInt8], envelope: Envelope) async -> [UInt8] {
        let fields = await signatureFields(for: message, envelope: envelope)
        guard !fields.isEmpty else { return message }
        var out: [UInt8] = []
        out.reserveCapacity(message.count + fields.reduce(0) { $0 + $1.utf8.count + 2 })
        for field in fields {
            out += Array(field.utf8)
            out += [13, 10]
        }
        return out + message
    }
}
