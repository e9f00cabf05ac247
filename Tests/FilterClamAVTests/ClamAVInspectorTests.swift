import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest
@testable import PosternFilterClamAVCore

// The inspector in process against the real clamd over TCP (ClamdFixture, started once for the
// class), and against a "clamd" that accepts and never answers.

final class ClamAVInspectorTests: XCTestCase {
    static let rig = PeerRig("clamav-inspector")
    nonisolated(unsafe) static var clamdPort = 0
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    override class func setUp() {
        super.setUp()
        do {
            let clamd = try ClamdFixture(rig.work)
            rig.peers.append(clamd.process)
            clamdPort = clamd.port
        } catch {
            rig.setupError = error
        }
    }

    override class func tearDown() {
        rig.tearDown()
        super.tearDown()
    }

    func inspector(port: Int? = nil, _ change: (inout ClamAVSettings) -> Void = { _ in }) throws -> ClamAVInspector {
        if let error = Self.rig.setupError { throw error }
        var settings = ClamAVSettings(clamd: .tcp(host: "127.0.0.1", port: port ?? Self.clamdPort))
        change(&settings)
        let client = ClamdClient(address: settings.clamd, group: Self.group, connectTimeout: settings.connectTimeout, timeout: settings.timeout)
        return ClamAVInspector(settings: settings, client: client, logger: Logger(label: "test"), counters: nil)
    }

    func message(_ text: String, direction: FilterDirection = .inbound) -> FilterMessage {
        FilterMessage(bytes: Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8), sender: "s@remote.example", recipients: ["r@example.org"],
                      connection: FilterConnection(peerAddress: "127.0.0.1", listener: "mx", direction: direction, localHostname: "mx.example", isSecure: false))
    }

    func testTheClientScansOverTCP() async throws {
        let client = try inspector().client
        let infected = try await client.scan(Array(Signatures.eicar.utf8))
        XCTAssertEqual(infected, "Eicar-Test-Signature.UNOFFICIAL")
        let clean = try await client.scan(Array("nothing".utf8))
        XCTAssertNil(clean)
        // Bigger than one INSTREAM chunk, the pattern across a chunk boundary.
        let big = [UInt8](repeating: 46, count: ClamdInstream.chunkSize - 10) + Array(Signatures.pattern.utf8) + [UInt8](repeating: 46, count: 100_000)
        let found = try await client.scan(big)
        XCTAssertEqual(found, "Postern.Test.Pattern.UNOFFICIAL")
        // Over StreamMaxLength (1 MiB here).
        do {
            _ = try await client.scan([UInt8](repeating: 46, count: 1_200_000))
            XCTFail("no size limit")
        } catch {
            XCTAssertEqual(error as? ClamdScanError, .sizeLimitExceeded)
        }
    }

    func testManyPartsOneInfectedIsLocatedAndCleansed() async throws {
        var body = ""
        for i in 0..<12 {
            let content = i == 7 ? Array(Signatures.eicar.utf8) : Array("attachment \(i)\n".utf8)
            body += "--p\nContent-Type: application/octet-stream; name=\"f\(i).bin\"\nContent-Transfer-Encoding: base64\n\n\(Fixtures.base64(content))\n"
        }
        let text = Fixtures.headers("many", extra: "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=p\n") + "\n" + body + "--p--\n"
        let inspector = try inspector { $0.actions[.inbound] = .cleanse }
        let sent = message(text)
        let (verdict, mods) = await inspector.inspect(sent)
        XCTAssertEqual(verdict, .continue)
        // The part changes as the SMTP session makes them (MessageEdits over the received body).
        let edits = MessageEdits(merging: [("clamav", mods)])
        guard edits.changesBody else { return XCTFail("\(mods)") }
        let newBody = edits.body(from: Array(sent.bytes[MIMEMessage(parsing: sent.bytes).root.bodyOffset...]))
        let out = String(decoding: newBody, as: UTF8.self)
        XCTAssertTrue(out.contains("The attachment \"f7.bin\" (application/octet-stream) was removed"), out)
        for i in 0..<12 where i != 7 { XCTAssertTrue(out.contains("name=\"f\(i).bin\""), "f\(i).bin kept") }
        XCTAssertFalse(out.contains(Fixtures.base64(Array(Signatures.eicar.utf8))))
    }

    func testMalformedAndForeignCharsetMail() async throws {
        let inspector = try inspector()
        // Latin-1 text, a broken boundary (no close delimiter), an RFC 2231 name: clean.
        let clean = Fixtures.headers("caf\u{e9}", extra: "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"x\"\n")
            + "\n--x\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nCaf=E9 cr=E8me\n"
            + "--x\nContent-Type: text/plain; name*=iso-8859-1''r%E9sum%E9.txt\n\nnotes\n"
        let (verdict, mods) = await inspector.inspect(message(clean))
        XCTAssertEqual(verdict, .continue)
        XCTAssertEqual(mods, [.addHeader(name: "X-Virus-Scanned", value: "ClamAV at mx.example"), .addHeader(name: "X-Virus-Status", value: "Clean")])
        // The same with EICAR after the last part that never closes.
        let infected = clean + "--x\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n\(Fixtures.base64(Array(Signatures.eicar.utf8)))\n"
        let (refused, _) = await inspector.inspect(message(infected))
        XCTAssertEqual(refused, .reject(MailReply(554, "5.7.1", "message refused: virus Eicar-Test-Signature.UNOFFICIAL found")))
    }

    func testAClamdThatNeverAnswersTimesOut() async throws {
        // Listening, never accepting: the connection is made (the backlog), the reply never comes.
        let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        XCTAssertEqual(listen(fd, 8), 0)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        let port = Int(UInt16(bigEndian: addr.sin_port))
        let inspector = try inspector(port: port) { $0.timeout = 1 }
        let started = Date()
        let (verdict, _) = await inspector.inspect(message(Fixtures.plain("slow", body: "hello")))
        XCTAssertEqual(verdict, .tempfail(MailReply(451, "4.7.1", "virus scanner unavailable, try again later")))
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
        do {
            _ = try await inspector.client.scan([1, 2, 3])
            XCTFail("answered")
        } catch {
            XCTAssertEqual(error as? ClamdScanError, .timedOut)
        }
    }

    func testOversizeMessagesFollowOnOversize() async throws {
        var big = message(Fixtures.plain("big", body: Signatures.eicar))
        big.isTruncated = true
        big.size = 30 << 20
        let accept = try inspector()
        let (accepted, mods) = await accept.inspect(big)
        XCTAssertEqual(accepted, .continue, "not scanned, so not refused either")
        XCTAssertEqual(mods, [])
        let deferring = try inspector { $0.onOversize = .tempfail }
        let (deferred, _) = await deferring.inspect(big)
        XCTAssertEqual(deferred, .tempfail(MailReply(451, "4.7.1", "message too big to scan for viruses, try again later")))
        let refusing = try inspector { $0.onOversize = .reject }
        let (refused, _) = await refusing.inspect(big)
        XCTAssertEqual(refused, .reject(MailReply(552, "5.3.4", "message too big to scan for viruses")))
        XCTAssertEqual(accept.maxBufferedBytes, 25 << 20)
    }
}
