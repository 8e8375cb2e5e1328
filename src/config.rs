//! Process configuration: settings read from the environment and checked at start.
