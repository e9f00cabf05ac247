// The greeting the plugin was built with. The reload test rewrites this file and rebuilds the
// plugin between reloads, so new sessions show which build serves them.
let builtGreeting = "postern greeter build 0"
