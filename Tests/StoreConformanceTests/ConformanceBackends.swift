import Foundation
import PosternTestSupport
import XCTest

// The conformance suite once per store plugin. Each class lists every check itself because
// Linux's XCTest runs only the test methods a class declares (see StoreConformance);
// `ConformanceListTests` fails when a check is missing here.

/// The embedded store, `store-sqlite`.
final class SQLiteStoreConformanceTests: StoreConformance {
    override class var backend: StoreBackendKind { .sqlite }

    func testDomains() async throws { try await checkDomains() }
    func testAccounts() async throws { try await checkAccounts() }
    func testBatchCreation() async throws { try await checkBatchCreation() }
    func testAccountSettings() async throws { try await checkAccountSettings() }
    func testAliases() async throws { try await checkAliases() }
    func testForwarding() async throws { try await checkForwarding() }
    func testVacation() async throws { try await checkVacation() }
    func testPasswordsAndSuspension() async throws { try await checkPasswordsAndSuspension() }
    func testStoredSCRAMSecret() async throws { try await checkStoredSCRAMSecret() }
    func testRecipients() async throws { try await checkRecipients() }
    func testDeliveryOutcomes() async throws { try await checkDeliveryOutcomes() }
    func testQuotaExceededIsTemporary() async throws { try await checkQuotaExceededIsTemporary() }
    func testDeliveryIDIsStoredOnce() async throws { try await checkDeliveryIDIsStoredOnce() }
    func testChangeNotifications() async throws { try await checkChangeNotifications() }
    func testDefaultMailboxes() async throws { try await checkDefaultMailboxes() }
    func testCreateMailbox() async throws { try await checkCreateMailbox() }
    func testRenameMailbox() async throws { try await checkRenameMailbox() }
    func testDeleteMailbox() async throws { try await checkDeleteMailbox() }
    func testInboxRules() async throws { try await checkInboxRules() }
    func testSubscriptions() async throws { try await checkSubscriptions() }
    func testAppendAndStatus() async throws { try await checkAppendAndStatus() }
    func testSessionReads() async throws { try await checkSessionReads() }
    func testFlagsAndModseq() async throws { try await checkFlagsAndModseq() }
    func testCopy() async throws { try await checkCopy() }
    func testMove() async throws { try await checkMove() }
    func testExpungeOnlyDeleted() async throws { try await checkExpungeOnlyDeleted() }
    func testQuotaNumbers() async throws { try await checkQuotaNumbers() }
    func testAppendAndCopyRespectQuota() async throws { try await checkAppendAndCopyRespectQuota() }
    func testIntegrityAfterMixedWorkload() async throws { try await checkIntegrityAfterMixedWorkload() }
    func testSearchIndexCriteria() async throws { try await checkSearchIndexCriteria() }
    func testSearchContent() async throws { try await checkSearchContent() }
    func testIndexSearchAgreesWithTheMatcher() async throws { try await checkIndexSearchAgreesWithTheMatcher() }
    func testReadOnlyShare() async throws { try await checkReadOnlyShare() }
    func testRightsGateEachOperation() async throws { try await checkRightsGateEachOperation() }
    func testACLEntries() async throws { try await checkACLEntries() }
    func testAnyoneAndNegativeRights() async throws { try await checkAnyoneAndNegativeRights() }
    func testGrantsFollowRenameAndAccountDeletion() async throws { try await checkGrantsFollowRenameAndAccountDeletion() }
}

/// `store-postgres`, each test on a database of its own on the test process's PostgreSQL
/// (PostgresServer: started once, fails every test with the reason when it cannot start).
final class PostgresStoreConformanceTests: StoreConformance {
    override class var backend: StoreBackendKind { .postgres }

    func testDomains() async throws { try await checkDomains() }
    func testAccounts() async throws { try await checkAccounts() }
    func testBatchCreation() async throws { try await checkBatchCreation() }
    func testAccountSettings() async throws { try await checkAccountSettings() }
    func testAliases() async throws { try await checkAliases() }
    func testForwarding() async throws { try await checkForwarding() }
    func testVacation() async throws { try await checkVacation() }
    func testPasswordsAndSuspension() async throws { try await checkPasswordsAndSuspension() }
    func testStoredSCRAMSecret() async throws { try await checkStoredSCRAMSecret() }
    func testRecipients() async throws { try await checkRecipients() }
    func testDeliveryOutcomes() async throws { try await checkDeliveryOutcomes() }
    func testQuotaExceededIsTemporary() async throws { try await checkQuotaExceededIsTemporary() }
    func testDeliveryIDIsStoredOnce() async throws { try await checkDeliveryIDIsStoredOnce() }
    func testChangeNotifications() async throws { try await checkChangeNotifications() }
    func testDefaultMailboxes() async throws { try await checkDefaultMailboxes() }
    func testCreateMailbox() async throws { try await checkCreateMailbox() }
    func testRenameMailbox() async throws { try await checkRenameMailbox() }
    func testDeleteMailbox() async throws { try await checkDeleteMailbox() }
    func testInboxRules() async throws { try await checkInboxRules() }
    func testSubscriptions() async throws { try await checkSubscriptions() }
    func testAppendAndStatus() async throws { try await checkAppendAndStatus() }
    func testSessionReads() async throws { try await checkSessionReads() }
    func testFlagsAndModseq() async throws { try await checkFlagsAndModseq() }
    func testCopy() async throws { try await checkCopy() }
    func testMove() async throws { try await checkMove() }
    func testExpungeOnlyDeleted() async throws { try await checkExpungeOnlyDeleted() }
    func testQuotaNumbers() async throws { try await checkQuotaNumbers() }
    func testAppendAndCopyRespectQuota() async throws { try await checkAppendAndCopyRespectQuota() }
    func testIntegrityAfterMixedWorkload() async throws { try await checkIntegrityAfterMixedWorkload() }
    func testSearchIndexCriteria() async throws { try await checkSearchIndexCriteria() }
    func testSearchContent() async throws { try await checkSearchContent() }
    func testIndexSearchAgreesWithTheMatcher() async throws { try await checkIndexSearchAgreesWithTheMatcher() }
    func testReadOnlyShare() async throws { try await checkReadOnlyShare() }
    func testRightsGateEachOperation() async throws { try await checkRightsGateEachOperation() }
    func testACLEntries() async throws { try await checkACLEntries() }
    func testAnyoneAndNegativeRights() async throws { try await checkAnyoneAndNegativeRights() }
    func testGrantsFollowRenameAndAccountDeletion() async throws { try await checkGrantsFollowRenameAndAccountDeletion() }
}

/// Keeps the lists above complete: every `check…` method of StoreConformance (in the
/// Conformance*.swift files beside this one) is a `test…` of every backend's class.
final class ConformanceListTests: XCTestCase {
    func testEveryCheckRunsForEveryBackend() throws {
        let dir = (#filePath as NSString).deletingLastPathComponent
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("Conformance") && $0.hasSuffix(".swift") }
        var checks: [String] = []
        for file in files {
            let text = try String(contentsOfFile: dir + "/" + file, encoding: .utf8)
            for line in text.split(separator: "\n") {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                guard trimmed.hasPrefix("func check"), let paren = trimmed.firstIndex(of: "(") else { continue }
                checks.append(String(trimmed[trimmed.index(trimmed.startIndex, offsetBy: "func check".count)..<paren]))
            }
        }
        XCTAssertGreaterThan(checks.count, 20, "no checks found in \(dir)")
        let listing = try String(contentsOfFile: dir + "/ConformanceBackends.swift", encoding: .utf8)
        for backend in ["SQLiteStoreConformanceTests", "PostgresStoreConformanceTests"] {
            // The class's body: from its declaration to the first closing brace at the start of a line.
            let start = try XCTUnwrap(listing.range(of: "final class \(backend):"), backend)
            let rest = listing[start.upperBound...]
            let section = rest[..<(rest.range(of: "\n}\n")?.lowerBound ?? rest.endIndex)]
            for check in checks {
                XCTAssertTrue(section.contains("func test\(check)() async throws { try await check\(check)() }"),
                              "\(backend) does not run check\(check)")
            }
        }
    }
}
