"""The SIP stack: a sans-IO core (grammar, transactions, dialogs, digest, registration)
driven by events and an injected clock, and thin Twisted adapters that own the sockets."""
