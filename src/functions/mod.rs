//! The HTTP functions SubmitCode, ApproveCode and GetStatus, served to the Functions host.
