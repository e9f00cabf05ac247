/// The changes of every filter of a chain, merged in one documented order (ARCHITECTURE.md,
/// "Filters"). Each filter saw the message as the client sent it, so every position and index
/// refers to that message, and the merge never lets one filter's change shift another's:
///
/// - **Header fields changed or deleted** (`changeHeader`): keyed by the field of the received
///   message they name (`name`, `index`). Within one filter its last change counts; across filters
///   the first filter in chain order that touches a field wins, and later ones are conflicts.
/// - **Inserted fields** (`insertHeader`): before the received field at that position, in chain
///   order where several filters insert at one position.
/// - **Added fields** (`addHeader`): after the last field, in chain order.
/// - **Recipients**: every removal applies to the envelope as received, then additions follow in
///   chain order (an address one filter removes and another adds is kept).
/// - **Further messages** (`addMessage`, archive copies): every one, in chain order.
/// - **Body and envelope sender** (`replaceBody`, `changeSender`): the first filter in chain order
///   that replaces them wins (within one filter, its last); later ones are conflicts.
/// - **Body ranges** (`editBody`, a part changed by `MIMERewrite`): every filter's, as long as they
///   do not overlap one kept from an earlier filter (which wins) and no earlier filter replaced
///   the whole body; insertions at one position go in chain order.
public struct MessageEdits: Sendable, Equatable {
    /// A field of the received message: its name without case and its 1-based index among the fields of that name.
    public struct FieldKey: Hashable, Sendable {
        public var name: String
        public var index: Int
        public init(name: String, index: Int) {
            self.name = name.lowercased()
            self.index = index
        }
    }

    public struct Field: Sendable, Equatable {
        public var name: String
        public var value: String
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// Bytes of the received body replaced (an empty range inserts).
    public struct BodyEdit: Sendable, Equatable {
        public var range: Range<Int>
        public var bytes: [UInt8]
        public init(range: Range<Int>, bytes: [UInt8]) {
            self.range = range
            self.bytes = bytes
        }

        /// Whether two edits touch the same bytes (an insertion inside a replaced range counts).
        func overlaps(_ other: BodyEdit) -> Bool {
            if range.isEmpty && other.range.isEmpty { return false }
            if range.isEmpty { return other.range.lowerBound < range.lowerBound && range.lowerBound < other.range.upperBound }
            if other.range.isEmpty { return range.lowerBound < other.range.lowerBound && other.range.lowerBound < range.upperBound }
            return range.overlaps(other.range)
        }
    }

    /// A message a filter queues beside the one it saw.
    public struct AddedMessage: Sendable, Equatable {
        public var sender: String
        public var recipients: [String]
        public var content: [UInt8]
        public init(sender: String, recipients: [String], content: [UInt8]) {
            self.sender = sender
            self.recipients = recipients
            self.content = content
        }
    }

    /// New values of received fields; a nil value deletes the field.
    public var changedFields: [FieldKey: String?] = [:]
    /// Fields to insert before the received field at each position (0: before the first), in order.
    public var insertedFields: [Int: [Field]] = [:]
    /// Fields to append after the last one, in order.
    public var addedFields: [Field] = []
    public var removedRecipients: [String] = []
    public var addedRecipients: [String] = []
    public var sender: String?
    public var body: [UInt8]?
    /// Changes to ranges of the body as received, in chain order (see `body(from:)`).
    public var bodyEdits: [BodyEdit] = []
    /// Messages to queue with this one (archive and journal copies), in chain order.
    public var addedMessages: [AddedMessage] = []
    /// The mailbox local delivery files the message into (`Envelope.folder`).
    public var folder: String?
    /// What was dropped because an earlier filter had changed the same thing: `filter: change`, for the log.
    public var conflicts: [String] = []

    public init() {}

    public init(merging byFilter: [(filter: String, modifications: [FilterModification])]) {
        var fieldOwner: [FieldKey: String] = [:]
        var bodyOwner: String?, senderOwner: String?
        var rangeOwners: [(filter: String, edit: BodyEdit)] = []
        for (filter, modifications) in byFilter {
            for m in modifications {
                switch m {
                case .addHeader(let name, let value):
                    addedFields.append(Field(name: name, value: value))
                case .insertHeader(let index, let name, let value):
                    insertedFields[max(0, index), default: []].append(Field(name: name, value: value))
                case .changeHeader(let name, let index, let value):
                    let key = FieldKey(name: name, index: index)
                    if let owner = fieldOwner[key], owner != filter {
                        conflicts.append("\(filter): change of \(name)[\(index)] (changed by \(owner))")
                        continue
                    }
                    fieldOwner[key] = filter
                    changedFields[key] = .some(value)
                case .removeRecipient(let r):
                    if !removedRecipients.contains(where: { $0.lowercased() == r.lowercased() }) { removedRecipients.append(r) }
                case .addRecipient(let r):
                    if !addedRecipients.contains(where: { $0.lowercased() == r.lowercased() }) { addedRecipients.append(r) }
                case .changeSender(let s):
                    if let owner = senderOwner, owner != filter {
                        conflicts.append("\(filter): sender change (changed by \(owner))")
                        continue
                    }
                    senderOwner = filter
                    sender = s
                case .addMessage(let sender, let recipients, let content):
                    addedMessages.append(AddedMessage(sender: sender, recipients: recipients, content: content))
                case .fileInto(let name):
                    if let folder, folder != name {
                        conflicts.append("\(filter): file into \(name) (filed into \(folder) by an earlier filter)")
                        continue
                    }
                    folder = name
                case .editBody(let range, let bytes):
                    let edit = BodyEdit(range: range, bytes: bytes)
                    if let owner = bodyOwner {
                        conflicts.append("\(filter): change of body bytes \(range) (body replaced by \(owner))")
                        continue
                    }
                    if let other = rangeOwners.first(where: { $0.filter != filter && $0.edit.overlaps(edit) }) {
                        conflicts.append("\(filter): change of body bytes \(range) (changed by \(other.filter))")
                        continue
                    }
                    rangeOwners.append((filter, edit))
                    bodyEdits.append(edit)
                case .replaceBody(let b):
                    if let owner = bodyOwner, owner != filter {
                        conflicts.append("\(filter): body replacement (replaced by \(owner))")
                        continue
                    }
                    if let other = rangeOwners.first(where: { $0.filter != filter }) {
                        conflicts.append("\(filter): body replacement (body changed by \(other.filter))")
                        continue
                    }
                    bodyOwner = filter
                    body = b
                }
            }
        }
    }

    /// Whether the header block or the body changes (the spool file must be rewritten).
    public var changesContent: Bool {
        !changedFields.isEmpty || !insertedFields.isEmpty || !addedFields.isEmpty || body != nil || !bodyEdits.isEmpty
    }

    /// Whether the body changes.
    public var changesBody: Bool { body != nil || !bodyEdits.isEmpty }

    /// The new body: the replacement, or `original` with the range edits made (in position
    /// order; at one position insertions first, in chain order). Edits beyond the end are cut.
    public func body<Bytes: Collection>(from original: Bytes) -> [UInt8] where Bytes.Element == UInt8, Bytes.Index == Int {
        if let body { return body }
        let base = original.startIndex
        let ordered = bodyEdits.enumerated().sorted { a, b in
            if a.element.range.lowerBound != b.element.range.lowerBound { return a.element.range.lowerBound < b.element.range.lowerBound }
            if a.element.range.isEmpty != b.element.range.isEmpty { return a.element.range.isEmpty }
            return a.offset < b.offset
        }.map(\.element)
        var out: [UInt8] = []
        out.reserveCapacity(original.count)
        var cursor = 0
        for edit in ordered {
            let lower = min(edit.range.lowerBound, original.count), upper = min(edit.range.upperBound, original.count)
            guard lower >= cursor else { continue }
            out += original[(base + cursor)..<(base + lower)]
            out += edit.bytes
            cursor = upper
        }
        out += original[(base + cursor)...]
        return out
    }

    /// The envelope's recipients after the edits: removals on the received list, then additions.
    public func recipients(from received: [String]) -> [String] {
        var out = received.filter { r in !removedRecipients.contains(where: { $0.lowercased() == r.lowercased() }) }
        for r in addedRecipients where !out.contains(where: { $0.lowercased() == r.lowercased() }) { out.append(r) }
        return out
    }

    /// The fields of a received header block after the edits, as (name, value or the raw field
    /// kept as it was). `received` is the block's field names in order; the caller keeps the bytes.
    public func arrange(receivedNames received: [String]) -> [ArrangedField] {
        var out: [ArrangedField] = []
        var seen: [String: Int] = [:]
        for (position, name) in received.enumerated() {
            for f in insertedFields[position] ?? [] { out.append(.new(f)) }
            let n = (seen[name.lowercased()] ?? 0) + 1
            seen[name.lowercased()] = n
            switch changedFields[FieldKey(name: name, index: n)] {
            case .none: out.append(.received(position))
            case .some(.none): break
            case .some(.some(let value)): out.append(.new(Field(name: name, value: value)))
            }
        }
        // Insertions at or beyond the end go after the received fields, before the added ones.
        for position in insertedFields.keys.sorted() where position >= received.count {
            for f in insertedFields[position]! { out.append(.new(f)) }
        }
        for f in addedFields { out.append(.new(f)) }
        return out
    }

    public enum ArrangedField: Sendable, Equatable {
        /// The received field at this position, unchanged.
        case received(Int)
        case new(Field)
    }
}
