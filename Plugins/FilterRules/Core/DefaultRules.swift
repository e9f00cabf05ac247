/// The shipped default rule set: the text of Plugins/FilterRules/default-rules.toml (a test
/// checks the two are the same), compiled in so that the plugin needs no file to work.
enum DefaultRules {
    static let text = #"""
# The default rule set of the filter-rules plugin (README.md documents every rule).
# Used as is when no set is configured; a set with `default_rules = true` starts from these rules.
# Copy this file, edit it and name it in `rules_file` to run your own version.

[[sets]]
name = "default"
directions = ["inbound"]
tag = 5.0
quarantine = 10.0
subject_prefix = "[SPAM] "

[[sets.rules]]
name = "GTUBE"
score = 1000.0
description = "the Generic Test for Unsolicited Bulk Email string: a test message meant to be caught"
body = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

[[sets.rules]]
name = "MISSING_DATE"
score = 1.5
description = "no Date field, which RFC 5322 requires and every real mail client writes"
missing_header = "Date"

[[sets.rules]]
name = "MALFORMED_DATE"
score = 1.5
description = "a Date field that is not an RFC 5322 date, or two of them"
malformed_date = true

[[sets.rules]]
name = "MISSING_MESSAGE_ID"
score = 1.0
description = "no Message-ID field; bulk tools often leave it out"
missing_header = "Message-ID"

[[sets.rules]]
name = "MALFORMED_MESSAGE_ID"
score = 1.0
description = "a Message-ID that is not <left@right>, or two of them"
malformed_message_id = true

[[sets.rules]]
name = "MISSING_FROM"
score = 2.0
description = "no From field"
missing_header = "From"

[[sets.rules]]
name = "MISSING_SUBJECT"
score = 0.5
description = "no Subject field"
missing_header = "Subject"

[[sets.rules]]
name = "UNQUALIFIED_SENDER_DOMAIN"
score = 2.5
description = "a client outside trusted_networks gave an envelope sender whose domain has no dot (or no domain)"
unqualified_sender_domain = true

[[sets.rules]]
name = "SUBJECT_ALL_CAPS"
score = 1.5
description = "a Subject of ten or more characters with capitals and no lower-case letter"
header = "Subject"
pattern = '(?-i)^(?=.*\p{Lu})[^\p{Ll}]{10,}$'

[[sets.rules]]
name = "SUBJECT_SPAM_WORDS"
score = 2.5
description = "a Subject naming what spam sells"
header = "Subject"
pattern = '\b(viagra|cialis|casino|lottery|jackpot)\b'

[[sets.rules]]
name = "BODY_MONEY_OFFER"
score = 2.0
description = "advance-fee wording: millions of dollars on offer"
body_regex = '\b(million|billion)\s+(us\s+)?(dollars|usd)\b'

[[sets.rules]]
name = "EMPTY_BODY"
score = 1.0
description = "no text at all in the message's text parts (or no text part)"
body_regex = '\S'
negate = true

[[sets.rules]]
name = "HTML_ONLY"
score = 1.0
description = "HTML text without a plain-text alternative"
html_only = true

[[sets.rules]]
name = "MANY_RECIPIENTS"
score = 1.5
description = "more than 20 envelope recipients in one message"
recipients_over = 20
"""#
}
