//! ToDo server.
