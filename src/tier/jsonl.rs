//! L2 as JSON Lines (being written).
