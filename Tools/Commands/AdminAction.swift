import ArgumentParser
import PosternHost

/// One `postern admin` operation on an open store: it captures copies of the command's arguments
/// (it runs on another thread, hence `@Sendable`) and prints what it has to say.
typealias AdminOperation = @Sendable (AdminContext) async throws -> Void

/// The shape nearly every `postern admin` subcommand has: open the admin context from `-c FILE`
/// (`ConfigOption`, as the worker user when started as root), run one operation, print its
/// result. A refusal is one line on stderr and exit status 1 (`runAdmin`). A conforming command
/// declares its arguments and `operation()`; `run()` is this one.
protocol AdminAction: ParsableCommand {
    var options: ConfigOption { get }
    /// Directories the command writes outside the data directory, made and handed to the worker
    /// user before the privileges are dropped.
    var outputs: [String] { get }
    /// Checks the arguments (throwing a `ValidationError` refuses them with the usage) and
    /// returns the operation; called before the store is opened, so a password is read first.
    func operation() throws -> AdminOperation
}

extension AdminAction {
    var outputs: [String] { [] }

    func run() throws {
        let operation = try operation()
        try runAdmin(options, outputs: outputs, operation)
    }
}
