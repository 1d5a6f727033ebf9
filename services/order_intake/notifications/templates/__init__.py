"""Customer e-mail templates: `<kind>.txt`, a `Subject:` line, a blank line, the body."""
