import Foundation
import PluginAPI

public enum SystemError: Error, CustomStringConvertible {
    case call(String, CInt)
    case message(String)

    public var description: String {
        switch self {
        case .call(let what, let err): return "\(what): \(String(cString: strerror(err)))"
        case .message(let m): return m
        }
    }
}
