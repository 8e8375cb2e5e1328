//! The embedded task hub: a durable Durable Task backend stored in SQLite.
