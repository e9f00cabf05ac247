import ArgumentParser
import Foundation
import PosternHost

extension Admin {
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "On a store without any domain: create one and postmaster@ it, a site administrator with a generated password.",
            discussion: "postern serve does this by itself on its first start (first_account = true). The login and password go to DATA/first-account.txt, mode 0600.")
        @OptionGroup var options: ConfigOption
        @Option(help: "The domain; default: the host name when it has a dot, else NAME.localdomain.") var domain: String?
        @Flag(help: "JSON instead of text.") var json = false
        func run() throws {
            let domain = self.domain, json = self.json
            let created = try runAdmin(options) { try await FirstRun.prepare($0, domain: domain) }
            if json {
                print(String(decoding: try JSONEncoder().encode(created), as: UTF8.self))
            } else if let created {
                FirstRun.announcement(created).forEach { print($0) }
            } else {
                print("the store already has a domain (or the config keeps no accounts): nothing to do")
            }
        }
    }
}
