import PluginAPI

/// The read-only session of an ANONYMOUS login (RFC 4505 §3: the guest may read what the site
/// publishes, never change it). SELECT opens mailboxes with EXAMINE semantics (so FETCH sets no
/// \Seen and CLOSE expunges nothing), and the commands below are refused with NO [NOPERM] before
/// they reach the store, whatever the account's ACL rights.
extension IMAPSession {
    static func changesTheStore(_ command: IMAPCommand) -> Bool {
        switch command {
        case .create, .delete, .rename, .subscribe, .unsubscribe, .append, .setACL, .deleteACL, .setQuota,
             .store, .copy, .move, .expunge, .uidExpunge:
            return true
        default:
            return false
        }
    }
}
