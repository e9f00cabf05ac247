import ArgumentParser
import Foundation
import PluginAPI
import PosternHost

extension Admin {
    /// `postern admin auth ...`: authentication data of the store, as opposed to single accounts.
    struct AuthCommand: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "auth", abstract: "Password schemes and their migration.",
                                                        subcommands: [Report.self])

        struct Report: AdminAction {
            static let configuration = CommandConfiguration(
                abstract: "Per domain, how many accounts are on each password scheme, and how many were migrated.",
                discussion: """
                    Accounts imported with a legacy hash ({SHA512-CRYPT}, {SSHA}, crypt(3)...) keep it until \
                    their first login, which rehashes the password to SCRAM-SHA-256. Lines: DOMAIN<TAB>SCHEME<TAB>COUNT, \
                    then DOMAIN<TAB>migrated<TAB>COUNT.
                    """)
            @OptionGroup var options: ConfigOption
            @Flag(help: "Print JSON: {\"domains\": {DOMAIN: {\"accounts\": {SCHEME: N}, \"migrated\": N}}}.") var json = false
            func operation() -> AdminOperation {
                { [json] ctx in
                    guard let reporting = try ctx.accounts() as? any PasswordSchemeReporting else {
                        throw SystemError.message("the account store of \(ctx.config.file) cannot report password schemes")
                    }
                    let report = try await reporting.passwordSchemeReport()
                    if json {
                        let encoder = JSONEncoder()
                        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
                        print(String(decoding: try encoder.encode(report), as: UTF8.self))
                    } else {
                        for line in report.lines { print(line) }
                    }
                }
            }
        }
    }
}
