/// Why an import could not start (a missing or unreadable file or directory); problems with
/// single messages or rows are reported in the import's result instead, and the import goes on.
public struct ImportError: Error, CustomStringConvertible, Sendable {
    public var description: String

    public init(_ description: String) { self.description = description }
}
