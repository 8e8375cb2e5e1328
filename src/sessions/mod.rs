//! Running code in a session: the session-pool client and the local code interpreter.
