import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// The behaviour every store plugin owes the rest of Postern (IMAP, POP3, LMTP, the queue, the
/// admin tools), checked through the PluginAPI protocols alone: `StorageBackend`, `AccountStore`,
/// `CredentialBackend` and `ChangeNotifier`, on a store opened from a config as `postern admin`
/// opens it (`StoreFixture`). Nothing here reads a backend's files or tables, so one suite serves
/// every backend; the expected values are those the embedded store's own tests (StoreTests) hold.
///
/// The checks are `check…` methods, not `test…` ones: on Linux, XCTest's test list is made by the
/// build from the methods each class declares itself, never inherited ones
/// (swift-package-manager#5573), so an inherited `test…` would run for this base class only.
/// Each backend's class (ConformanceBackends.swift) declares one `test…` per check and names its
/// backend; `ConformanceListTests` fails when a check is missing from a backend's list.
class StoreConformance: XCTestCase {
    /// The store plugin under test; each backend's subclass names its own.
    class var backend: StoreBackendKind { fatalError("\(self) must override `backend`") }

    let alice = "alice@example.org", bob = "bob@example.org", carol = "carol@example.org"
    let nobody = "nobody@example.org"

    /// A fresh store of this class's backend; with `users`, the domain example.org and those
    /// accounts (password `secret-<local part>`).
    func fixture(_ function: String = #function, users: [String] = []) async throws -> StoreFixture {
        let name = "conf-" + function.prefix { $0 != "(" }.filter { $0.isLetter || $0.isNumber }
        let f = try StoreFixture(name, backend: Self.backend)
        if !users.isEmpty { try await f.populate(users: users) }
        return f
    }
}

// MARK: errors

/// Stands for the free text of an error (`permissionDenied`, `overQuota`, `invalidPassword`,
/// `aliasConflict`): each backend words its reasons itself, so only the case is compared.
let anyReason = "(any reason)"

/// Whether `actual` is `expected`: names, addresses and UIDs exactly, free texts not at all.
func matches(_ actual: StorageError, _ expected: StorageError) -> Bool {
    switch (actual, expected) {
    case (.permissionDenied, .permissionDenied), (.overQuota, .overQuota), (.temporary, .temporary): return true
    default: return actual == expected
    }
}

func matches(_ actual: AccountError, _ expected: AccountError) -> Bool {
    switch (actual, expected) {
    case (.invalidPassword, .invalidPassword), (.aliasConflict, .aliasConflict): return true
    default: return actual == expected
    }
}

/// Asserts that `body` throws `expected` (see `matches`).
func assertThrows<T>(_ expected: StorageError, file: StaticString = #filePath, line: UInt = #line,
                     _ body: () async throws -> T) async {
    do {
        let value = try await body()
        XCTFail("expected \(expected), got \(value)", file: file, line: line)
    } catch let error as StorageError {
        XCTAssertTrue(matches(error, expected), "expected \(expected), got \(error)", file: file, line: line)
    } catch {
        XCTFail("expected \(expected), got \(error)", file: file, line: line)
    }
}

func assertThrows<T>(_ expected: AccountError, file: StaticString = #filePath, line: UInt = #line,
                     _ body: () async throws -> T) async {
    do {
        let value = try await body()
        XCTFail("expected \(expected), got \(value)", file: file, line: line)
    } catch let error as AccountError {
        XCTAssertTrue(matches(error, expected), "expected \(expected), got \(error)", file: file, line: line)
    } catch {
        XCTFail("expected \(expected), got \(error)", file: file, line: line)
    }
}

/// Asserts that one result of `createAccounts` is the refusal `expected` (see `matches`).
func assertRefused(_ result: Result<AccountInfo, AccountError>, _ expected: AccountError,
                   file: StaticString = #filePath, line: UInt = #line) {
    switch result {
    case .success(let info): XCTFail("expected \(expected), got \(info)", file: file, line: line)
    case .failure(let error): XCTAssertTrue(matches(error, expected), "expected \(expected), got \(error)", file: file, line: line)
    }
}

// MARK: delivery outcomes

/// An outcome as the conformance suite compares it: recipient, status, code and enhanced code
/// (`alice@example.org delivered 250 2.0.0`). The reply's text is the backend's own wording.
func summary(_ outcomes: [RecipientOutcome]) -> [String] {
    outcomes.map { "\($0.recipient) \($0.status.rawValue) \($0.reply.code) \($0.reply.enhanced ?? "-")" }
}

// MARK: messages

/// A message of CRLF lines.
func mail(_ lines: [String]) -> [UInt8] { Array(lines.joined(separator: "\r\n").utf8) }

// MARK: change notifications

/// Changes collected from a notifier's thread.
final class Changes: @unchecked Sendable {   // items is read and written under lock only
    private let lock = NSLock()
    private var items: [MailboxChange] = []
    /// How many of `items` the expectations so far have consumed.
    private var consumed = 0

    func add(_ change: MailboxChange) { lock.withLock { items.append(change) } }
    var all: [MailboxChange] { lock.withLock { items } }

    /// Waits for the next change (after the ones earlier calls matched) that is `kind` with
    /// `uids`; fails after `seconds`. Changes before it that are not are passed over: a
    /// notification means "look again" (ARCHITECTURE.md, Store, "Change notifications between
    /// processes"), so a store may send more of them than there were changes (one when its
    /// listener connects, say), never fewer.
    @discardableResult
    func next(_ kind: MailboxChange.Kind, uids: [UInt32], within seconds: Double,
              file: StaticString = #filePath, line: UInt = #line) async throws -> MailboxChange? {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let found: MailboxChange? = lock.withLock {
                guard let i = items[consumed...].firstIndex(where: { $0.kind == kind && $0.uids == uids }) else { return nil }
                consumed = i + 1
                return items[i]
            }
            if let found { return found }
            guard Date() < deadline else { break }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        XCTFail("no \(kind) \(uids) within \(seconds) s; got \(all)", file: file, line: line)
        return nil
    }
}
