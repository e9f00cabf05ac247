import ArgumentParser
import Foundation
import PosternHost

// What every `postern` subcommand shares: finding and loading the config (ConfigLocator), and
// path arguments made absolute before a command moves to the config's directory.

public let configHelp = "The configuration file; default: $POSTERN_CONFIG, ./postern.toml, /etc/postern/postern.toml, else the built-in default."

/// Finds the config (ConfigLocator), or says why not and exits 78.
public func locateConfig(_ explicit: String?) throws -> ConfigLocator.Found {
    do {
        return try ConfigLocator.locate(explicit: explicit)
    } catch {
        FileHandle.standardError.write(Data("postern: no config file given or found, and the built-in default cannot be written: \(error)\n".utf8))
        throw ExitCode(78)
    }
}

/// A path the user typed, made absolute against the directory they typed it in (commands then
/// run from the config's directory).
public func absolutePath(_ path: String) -> String {
    path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
}

/// Loads a config or prints every diagnostic and exits 78 (EX_CONFIG). Then works from the
/// config's directory, so that relative paths in plugin sections mean the same in every process.
public func loadConfig(_ file: String, label: String? = nil) -> HostConfig {
    switch HostConfig.load(file: file, label: label) {
    case .success(let config):
        _ = FileManager.default.changeCurrentDirectoryPath(HostConfig.baseDirectory(of: label ?? file))
        return config
    case .failure(let diagnostics):
        for d in diagnostics.all { FileHandle.standardError.write(Data("\(d)\n".utf8)) }
        Foundation.exit(78)
    }
}
