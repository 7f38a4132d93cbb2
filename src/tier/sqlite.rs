//! L2 and L3 in SQLite (being written).
